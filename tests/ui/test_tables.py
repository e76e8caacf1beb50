"""The tables pages, the SQL console and the "run a model" action in a real browser.

Every expected figure is computed here from the demo lake with :func:`lakeline.api.query` (the
path ``lakeline sql`` takes), never copied from the page.
"""

from __future__ import annotations

import re
import shutil
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from playwright.sync_api import expect

from lakeline import api
from lakeline.config import load_settings
from lakeline.lake import Lake
from lakeline.ui.app import load_pages
from lakeline.ui.pages.tables import SAMPLE_ROWS, chart, human_bytes, ident, kind
from lakeline.ui.render import Links, View, environment, render_page
from lakeline.ui.server import UiServer
from tests.e2e.helpers import Cli
from tests.ui.conftest import opener

CARRIERS = "SELECT carrier, count(*) AS n FROM silver.shipments GROUP BY 1 ORDER BY 1"
RETAIL = "retail_silver.orders_silver"


@pytest.fixture(scope="module")
def demo(demo_home: Path) -> Lake:
    """The demo lake opened for the expected figures (read only)."""
    return api.open_lake(demo_home)


def rows(lake: Lake, sql: str) -> list[tuple[Any, ...]]:
    table = api.query(lake, sql)
    return list(zip(*(c.to_pylist() for c in table.columns), strict=True))


def count(lake: Lake, table: str) -> int:
    return int(rows(lake, f"SELECT count(*) FROM {table}")[0][0])


def snapshots(lake: Lake) -> list[int]:
    """The retail table's snapshot ids, oldest first."""
    return [r[0] for r in rows(lake, 'SELECT snapshot_id FROM retail_silver."orders_silver$snapshots" '
                                     "ORDER BY committed_at")]


# ---- the tables ------------------------------------------------------------------------------


def test_the_tables_page_lists_every_table_with_its_exact_row_count(visit, demo):
    page = visit("/tables")
    expect(page.locator("h1")).to_have_text("Tables")
    names = page.locator("#tables tbody tr").evaluate_all("rows => rows.map(r => r.dataset.table)")
    wanted = ["silver.shipments", "silver.transactions", RETAIL, "gold.emissions"]
    assert set(wanted) <= set(names)
    assert {"quarantine.rejects", "silver.transactions__runs", "silver.tracking_events"} <= set(names)
    for name in names:
        n = count(demo, name)
        expect(page.locator(f'#tables tr[data-table="{name}"] td.rows')).to_have_text(f"{n:,}")
    assert count(demo, "silver.shipments") == 3001  # the generated 3,000 + the dirty file's good line
    assert count(demo, RETAIL) == 700  # 400 + 300 orders in two snapshots
    expect(page.locator(f'#tables tr[data-table="{RETAIL}"] td').nth(1)).to_have_text("Iceberg")
    expect(page.locator('#tables tr[data-table="gold.emissions"] td').nth(1)).to_have_text("Parquet dataset")
    expect(page.locator('#tables tr[data-table="silver.transactions"] td').nth(5)).to_have_text("transactions")
    expect(page.locator("#models")).to_contain_text("No SQL models")
    page.get_by_role("link", name="silver.shipments", exact=True).click()
    expect(page.locator("h1")).to_contain_text("silver.shipments")
    expect(page.locator("#row-count")).to_have_text(f"{count(demo, 'silver.shipments'):,}")


def test_a_table_name_opens_the_sql_console_on_its_first_100_rows(visit):
    page = visit("/tables")
    page.locator('#tables tr[data-table="silver.shipments"] a.sql-link').click()
    expect(page.locator("#sql-query")).to_have_value("SELECT * FROM silver.shipments LIMIT 100")
    expect(page.locator("#sql-result tbody tr")).to_have_count(100)
    expect(page.locator("#sql-summary")).to_contain_text("100 rows")


def test_a_parquet_table_shows_its_schema_partitions_and_a_sample(visit, demo):
    page = visit("/tables/detail?name=silver.shipments")
    expect(page.locator("h1")).to_contain_text("Parquet dataset")
    columns = page.locator("#schema tbody tr td:nth-child(2)").all_inner_texts()
    assert {"shipment_id", "carrier", "weight_kg", "dt"} <= set(columns)
    # one row per dt= partition, with the rows its files' footers declare
    per_day = rows(demo, "SELECT CAST(dt AS VARCHAR), count(*) FROM silver.shipments GROUP BY 1 ORDER BY 1")
    shown = [[c.strip() for c in r.split("\t")] for r in page.locator("#partitions tbody tr").all_inner_texts()]
    assert [(r[0], r[1]) for r in shown] == [(f"dt={d}", f"{n:,}") for d, n in per_day]
    expect(page.locator("#sample tbody tr")).to_have_count(SAMPLE_ROWS)
    expect(page.locator("#sample thead th")).to_have_count(len(columns))
    expect(page.locator("#snapshots")).to_have_count(0)


def test_the_promoted_table_counts_its_promoted_run_only(visit, demo):
    page = visit("/tables/detail?name=silver.transactions")
    expect(page.locator("#row-count")).to_have_text(f"{count(demo, 'silver.transactions'):,}")
    # year=/month=/schema_v= partitions: the run folder of the promoted view is not one
    parts = page.locator("#partitions tbody tr td:first-child").all_inner_texts()
    assert parts and all(p.startswith("year=") and "run_id" not in p for p in parts)
    total = sum(int(t.replace(",", "")) for t in page.locator("#partitions tbody tr td:nth-child(2)").all_inner_texts())
    assert total == count(demo, "silver.transactions")


def test_the_iceberg_table_shows_two_snapshots_and_travels_to_the_first(visit, demo):
    first, second = snapshots(demo)
    then = count(demo, f"{RETAIL} FOR VERSION AS OF {first}")
    assert (then, count(demo, RETAIL)) == (400, 700)
    page = visit(f"/tables/detail?name={RETAIL}")
    expect(page.locator("h1")).to_contain_text("Iceberg")
    expect(page.locator("#snapshots tbody tr")).to_have_count(2)
    ids = page.locator("#snapshots tbody tr").evaluate_all("rows => rows.map(r => r.dataset.snapshot)")
    assert ids == [str(first), str(second)]
    expect(page.locator(f'#snapshots tr[data-snapshot="{second}"]')).to_contain_text("current")
    expect(page.locator("#snapshots tbody tr").first).to_contain_text("append")
    expect(page.locator("#row-count")).to_have_text("700")
    expect(page.locator("body")).to_contain_text("order_date_day")  # the partition spec
    page.locator('#time-travel select[name="snapshot"]').select_option(str(first))
    page.locator("#time-travel button").click()
    expect(page).to_have_url(re.compile(rf"snapshot={first}"))
    expect(page.locator("#travel")).to_contain_text(str(first))
    expect(page.locator("#row-count")).to_have_text(f"{then:,}")
    expect(page.locator("#sample tbody tr")).to_have_count(SAMPLE_ROWS)
    partition_rows = page.locator("#partitions tbody tr td:nth-child(2)").all_inner_texts()
    assert sum(int(t.replace(",", "")) for t in partition_rows) == then


def test_bad_table_params_get_a_clear_404_or_400(visit, page, demo):
    base = visit("/").url.rstrip("/")
    response = page.goto(f"{base}/tables/detail?name=silver.shipment")
    assert response is not None and response.status == 404
    expect(page.locator(".error")).to_have_text(
        "no table 'silver.shipment' in the lake; close names: silver.shipments, silver.tracking_events")
    response = page.goto(f"{base}/tables/detail?name=silver.shipments&snapshot=1")
    assert response is not None and response.status == 400
    expect(page.locator(".error")).to_contain_text("silver.shipments is a Parquet dataset: only Iceberg tables")
    response = page.goto(f"{base}/tables/detail?name={RETAIL}&snapshot=12")
    assert response is not None and response.status == 404
    expect(page.locator(".error")).to_contain_text(f"{RETAIL} has no snapshot 12; snapshots: {snapshots(demo)[0]}")
    response = page.goto(f"{base}/tables/detail?name={RETAIL}&snapshot=latest")
    assert response is not None and response.status == 400
    expect(page.locator(".error")).to_contain_text("snapshot must be a snapshot id (a number), not 'latest'")
    response = page.goto(f"{base}/tables/detail")
    assert response is not None and response.status == 400


# ---- the SQL console -------------------------------------------------------------------------


def test_the_sql_console_runs_a_query_and_draws_a_bar_chart(visit, demo):
    expected = rows(demo, CARRIERS)
    assert len(expected) >= 3
    page = visit("/sql")
    page.locator("#sql-query").fill(CARRIERS)
    page.get_by_role("button", name="Run").click()
    expect(page).to_have_url(re.compile(r"/sql\?q=SELECT"))  # a GET form: the result is linkable
    expect(page.locator("#sql-result thead th")).to_have_text(["carrier", "n"])
    shown = [tuple(r.split("\t")) for r in page.locator("#sql-result tbody tr").all_inner_texts()]
    assert shown == [(c, str(n)) for c, n in expected]
    expect(page.locator("#sql-summary")).to_contain_text(f"{len(expected)} rows")
    assert page.evaluate("window.sqlChart.config.type") == "bar"
    assert page.evaluate("window.sqlChart.data.labels") == [c for c, _ in expected]
    assert page.evaluate("window.sqlChart.data.datasets.length") == 1
    assert page.evaluate("window.sqlChart.data.datasets[0].data") == [n for _, n in expected]
    expect(page.locator("#sql-query")).to_have_value(CARRIERS)


def test_the_sql_console_draws_a_line_over_an_ordered_date(visit, demo):
    query = "SELECT dt, count(*) AS n, avg(weight_kg) AS kg FROM silver.shipments GROUP BY 1 ORDER BY 1"
    expected = rows(demo, query)
    page = visit("/sql?q=" + query.replace(" ", "+"))
    expect(page.locator("#sql-result tbody tr")).to_have_count(len(expected))
    assert page.evaluate("window.sqlChart.config.type") == "line"
    assert page.evaluate("window.sqlChart.data.labels") == [str(d) for d, _, _ in expected]
    assert page.evaluate("window.sqlChart.data.datasets.map(d => d.label)") == ["n", "kg"]


def test_a_query_over_500_rows_shows_500_and_says_so(visit, demo):
    page = visit("/sql?q=SELECT+shipment_id+FROM+silver.shipments")
    expect(page.locator("#sql-result tbody tr")).to_have_count(500)
    expect(page.locator("#sql-summary")).to_contain_text("The first 500 rows are shown: the result has more")
    assert page.evaluate("window.sqlChart") is None  # one text column: nothing to draw


def test_a_failing_query_shows_its_error_on_the_page(visit, page, tmp_path):
    base = visit("/").url.rstrip("/")
    response = page.goto(base + "/sql?q=SELEC+carrier+FROM+silver.shipments")
    assert response is not None and response.status == 400
    expect(page.locator("#sql-error")).to_contain_text('SQL error: Parser Error: syntax error at or near "SELEC"')
    expect(page.locator("#sql-query")).to_have_value("SELEC carrier FROM silver.shipments")  # to fix it
    response = page.goto(base + "/sql?q=SELECT+*+FROM+silver.nope")
    assert response is not None and response.status == 400
    expect(page.locator("#sql-error")).to_contain_text("Table with name nope does not exist")
    assert page.evaluate("window.sqlChart") is None
    # a GET runs the console: a statement that changes things is refused before it runs
    out = tmp_path / "out.csv"
    response = page.goto(base + "/sql?" + urlencode({"q": f"COPY (SELECT 1) TO '{out}'"}))
    assert response is not None and response.status == 400
    expect(page.locator("#sql-error")).to_have_text(
        "only queries run here (SELECT, WITH … SELECT, DESCRIBE, EXPLAIN …), not COPY: run it with `lakeline sql`")
    assert not out.exists()
    response = page.goto(base + "/sql?" + urlencode({"q": "SELECT 1; DROP VIEW silver.shipments"}))
    assert response is not None and response.status == 400
    expect(page.locator("#sql-error")).to_contain_text("not DROP")


def test_a_query_over_max_bytes_is_refused_with_the_cli_message(page, demo_home, tmp_path):
    home = tmp_path / "lake"
    shutil.copytree(demo_home, home)
    config = home / "lakeline.toml"
    text = config.read_text()
    assert "\n[sql]\nmax_bytes = 0\n" in text
    config.write_text(text.replace("\n[sql]\nmax_bytes = 0\n", "\n[sql]\nmax_bytes = 1000\n"))
    query = "SELECT count(*) FROM silver.shipments"
    cli = Cli(home, tmp_path).fails(2, "sql", query)
    message = cli.strip().removeprefix("error: ")
    assert message.startswith("query would scan ") and "over the limit of 1000" in message
    server = UiServer(Lake.open(load_settings(home))).start()
    try:
        visit = opener(page, server)
        visit("/sql")
        expect(page.locator("#sql-form")).to_contain_text("more than 1,000 bytes are refused")
        page.locator("#sql-query").fill(query)
        with page.expect_response(re.compile(r"/sql\?q=")) as answer:
            page.get_by_role("button", name="Run").click()
        assert answer.value.status == 400
        expect(page.locator("#sql-error")).to_have_text(message)
        expect(page.locator("#sql-result")).to_have_count(0)
        visit("/sql?q=SELECT+1+AS+one")  # a query reading no table scans nothing
        expect(page.locator("#sql-result tbody tr")).to_have_text("1")
    finally:
        server.stop()


# ---- the "run a model" action ----------------------------------------------------------------


def test_running_a_model_from_the_pages_materialises_it(page, fresh_server, tmp_path, demo):
    home = tmp_path / "lake"  # fresh_server's copy of the demo lake
    (home / "models").mkdir()
    model = home / "models" / "carrier_counts.sql"
    model.write_text("-- shipments per carrier\nSELECT carrier, count(*) AS n FROM silver.shipments GROUP BY ALL\n")
    carriers = len(rows(demo, CARRIERS))
    visit = opener(page, fresh_server)
    page = visit("/tables")
    expect(page.locator('#models tr[data-model="carrier_counts"]')).to_contain_text("NEW")
    page.get_by_role("button", name="Run carrier_counts").click()  # confirm() is accepted
    expect(page.locator(".flash")).to_have_text(
        f"model carrier_counts: {carriers} rows into gold.carrier_counts (inputs silver.shipments)")
    expect(page.locator("h1")).to_contain_text("gold.carrier_counts")
    expect(page.locator("#row-count")).to_have_text(str(carriers))
    expect(page.locator("#model")).to_contain_text("SUCCEEDED")
    # the model changes: running it again from the table's page gives the table its new rows
    model.write_text("SELECT shipment_id, carrier FROM silver.shipments ORDER BY shipment_id LIMIT 7\n")
    page.reload()
    page.get_by_role("button", name="Run model carrier_counts").click()
    expect(page.locator(".flash")).to_have_text("model carrier_counts: 7 rows into gold.carrier_counts "
                                                "(inputs silver.shipments)")
    expect(page.locator("#row-count")).to_have_text("7")
    expect(page.locator("#schema tbody tr td:nth-child(2)")).to_have_text(["shipment_id", "carrier"])
    page = visit("/tables")
    expect(page.locator('#tables tr[data-table="gold.carrier_counts"] td.rows')).to_have_text("7")


def test_running_a_model_whose_file_is_gone_is_a_400_naming_it(page, fresh_server, tmp_path):
    home = tmp_path / "lake"  # fresh_server's copy of the demo lake
    (home / "models").mkdir()
    (home / "models" / "gone.sql").write_text("SELECT 1 AS one\n")
    page = opener(page, fresh_server)("/tables")
    (home / "models" / "gone.sql").unlink()  # removed between showing the button and clicking it
    with page.expect_response(re.compile(r"/actions/model-run")) as answer:
        page.get_by_role("button", name="Run gone").click()
    assert answer.value.status == 400
    expect(page.locator(".error")).to_contain_text("model-run: no model 'gone'; models: none")


# ---- the static export and the helpers -------------------------------------------------------


def test_the_exported_table_page_has_no_console_links_nor_forms(demo_home):
    load_pages()
    lake = Lake.open(load_settings(demo_home))
    view = View(lake, Links(exporting=True, here=Links.file("table", name=RETAIL)))
    html = render_page(environment(), view, "table", {"name": RETAIL})
    assert "<form" not in html and "/sql" not in html and "sql.html" not in html
    assert 'href="../tables.html"' in html  # relative links
    assert html.count("data-snapshot=") == 2
    index = render_page(environment(), View(lake, Links(exporting=True, here="tables.html")), "tables", {})
    assert 'href="tables/detail-retail_silver.orders_silver-' in index and "sql-link" not in index


def test_the_chart_is_a_bar_for_labels_a_line_for_ordered_dates_and_nothing_else():
    text, num, day = ({"name": n, "type": t, "kind": kind(t)} for n, t in
                      (("c", "VARCHAR"), ("n", "BIGINT"), ("d", "DATE")))
    bar = chart([text, num], [("DHL", 3), ("UPS", 5)])
    assert bar == {"type": "bar", "labels": ["DHL", "UPS"], "datasets": [{"label": "n", "data": [3.0, 5.0]}]}
    line = chart([day, num, {**num, "name": "m"}], [(date(2026, 1, 1), 1, Decimal("2.5")),
                                                    (date(2026, 1, 2), 2, None)])
    assert line is not None and line["type"] == "line" and line["labels"] == ["2026-01-01", "2026-01-02"]
    assert line["datasets"][1] == {"label": "m", "data": [2.5, None]}
    unordered = chart([day, num], [(date(2026, 1, 2), 1), (date(2026, 1, 1), 2)])
    assert unordered is not None and unordered["type"] == "bar"
    assert chart([num, num], [(2, 1), (1, 2)]) is None  # unordered numbers: no chart
    assert chart([num, num], [(1, float("nan")), (2, 2)]) == {
        "type": "line", "labels": ["1", "2"], "datasets": [{"label": "n", "data": [None, 2.0]}]}
    assert chart([text, text], [("a", "b")]) is None and chart([text, num], []) is None
    assert [kind(t) for t in ("DECIMAL(18,2)", "TIMESTAMP WITH TIME ZONE", "BOOLEAN", "UBIGINT")] == [
        "number", "temporal", "text", "number"]


def test_sizes_and_identifiers():
    assert [human_bytes(n) for n in (0, 999, 75836, 1_500_000, None)] == ["0 B", "999 B", "75.8 kB", "1.5 MB", ""]
    assert ident("silver.shipments") == "silver.shipments"
    assert ident('ns.odd "name"') == 'ns."odd ""name"""'
