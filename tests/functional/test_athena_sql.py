"""Every analyst query of seeds 002 and 004, copied verbatim from the seed documents, runs
unchanged under `lakeline sql --dialect athena` with exact answers on a small lake.

Name mapping (README "Athena SQL"): seed 002 queries ``"<db>".silver`` — the table its Glue
crawler made of the whole ``silver/`` prefix, every record type with ``record_type`` — after
"replace ``<db>`` with the Glue database name". lakeline's Glue database for a lake is the lake
name (``lakeline``, what ``lakeline deploy sam`` creates), so the test substitutes ``<db>``
exactly as the seed tells its reader to, and lakeline maps ``lakeline.silver`` to its silver
tables. Seed 004's ``retail_silver.orders_silver`` is lakeline's own Iceberg name, and its
``<snapshot_id>`` placeholder gets a snapshot id of the table, as the seed says."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import orjson
import pytest

from lakeline.cli.main import main
from lakeline.lake import Lake
from lakeline.pipelines.retail import job
from lakeline.sql_dialect import athena_timestamp, glue_database, split_explain, translate
from lakeline.tables import iceberg
from tests.functional.helpers import land, rec, run, settings

# ---- seed 002 (shipments ELT), "Athena quick queries", verbatim ---------------------------------
SEED_002_LATEST = """-- 1) Latest shipments
SELECT dt, shipment_id, origin, destination, carrier, weight_kg, event_time
FROM "<db>".silver
WHERE record_type = 'shipments'
ORDER BY dt DESC, event_time DESC
LIMIT 20;"""
SEED_002_ROWS = """-- 2) Row counts per partition/day
SELECT dt, COUNT(*) AS rows
FROM "<db>".silver
WHERE record_type = 'shipments'
GROUP BY dt
ORDER BY dt DESC;"""
SEED_002_SANITY = """-- 3) Simple sanity checks (range / uniqueness signal)
SELECT
  dt,
  MIN(weight_kg) AS min_weight_kg,
  MAX(weight_kg) AS max_weight_kg,
  APPROX_DISTINCT(shipment_id) AS approx_unique_shipments
FROM "<db>".silver
WHERE record_type = 'shipments'
GROUP BY dt
ORDER BY dt DESC;"""

# ---- seed 004 (retail Iceberg lakehouse), "Query & Validate in Athena", verbatim ----------------
SEED_004_PEEK = """-- peek a few rows
SELECT * FROM retail_silver.orders_silver
LIMIT 10;"""
SEED_004_TOTAL = """-- total rows (should match number of landed orders after your transforms)
SELECT COUNT(*) AS rows
FROM retail_silver.orders_silver;"""
SEED_004_RANGE = """-- date range present
SELECT MIN(order_date) AS min_date, MAX(order_date) AS max_date
FROM retail_silver.orders_silver;"""
SEED_004_DISTINCT = """SELECT COUNT(DISTINCT customer_id) AS distinct_customers,
       COUNT(DISTINCT product_id)  AS distinct_products
FROM retail_silver.orders_silver;"""
SEED_004_MISSING = """-- any missing enrichment?
SELECT
  SUM(CASE WHEN region   IS NULL THEN 1 ELSE 0 END) AS missing_region,
  SUM(CASE WHEN category IS NULL THEN 1 ELSE 0 END) AS missing_category
FROM retail_silver.orders_silver;"""
SEED_004_BY_DAY = """SELECT order_date AS day, SUM(sales_amount) AS sales
FROM retail_silver.orders_silver
GROUP BY 1
ORDER BY 1 DESC
LIMIT 7;"""
SEED_004_BY_CHANNEL = """SELECT channel, ROUND(SUM(sales_amount), 2) AS sales
FROM retail_silver.orders_silver
GROUP BY 1
ORDER BY sales DESC;"""
SEED_004_BY_REGION = """SELECT region, ROUND(SUM(sales_amount), 2) AS sales
FROM retail_silver.orders_silver
GROUP BY 1
ORDER BY sales DESC;"""
SEED_004_BY_CATEGORY = """SELECT category, ROUND(SUM(sales_amount), 2) AS sales, SUM(qty) AS units
FROM retail_silver.orders_silver
GROUP BY 1
ORDER BY sales DESC
LIMIT 10;"""
SEED_004_RECOMPUTE = """-- compute again from qty * unit_price and compare
WITH recompute AS (
  SELECT SUM(qty * unit_price) AS calc_sales
  FROM retail_silver.orders_silver
),
stored AS (
  SELECT SUM(sales_amount) AS stored_sales
  FROM retail_silver.orders_silver
)
SELECT stored.stored_sales, recompute.calc_sales,
       ROUND(stored.stored_sales - recompute.calc_sales, 6) AS diff
FROM stored CROSS JOIN recompute;"""
SEED_004_PRUNING = """EXPLAIN
SELECT SUM(sales_amount)
FROM retail_silver.orders_silver
WHERE order_date BETWEEN DATE '2025-09-15' AND DATE '2025-09-21';"""
SEED_004_SNAPSHOTS = """SELECT snapshot_id, parent_id, committed_at, operation, summary
FROM retail_silver."orders_silver$snapshots"
ORDER BY committed_at DESC
LIMIT 5;"""
SEED_004_TIME_TRAVEL = """-- copy a snapshot_id from the query above
SELECT COUNT(*) AS rows_at_that_time
FROM retail_silver.orders_silver
FOR VERSION AS OF <snapshot_id>;"""
SEED_004_HISTORY = """SELECT *
FROM retail_silver."orders_silver$history"
ORDER BY made_current_at DESC
LIMIT 5;"""


def athena(capsys: pytest.CaptureFixture[str], home: Path, query: str) -> object:
    """``lakeline sql --dialect athena --json -- QUERY``, parsed (exit code 0 required); ``--``
    because a query may start with a ``--`` comment, which click would take for an option."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as done:
        main(["--home", str(home), "sql", "--dialect", "athena", "--json", "--", query])
    out = capsys.readouterr()
    assert (done.value.code, out.err) == (0, "")  # nothing on stderr: no sqlglot warnings either
    return json.loads(out.out)


# ---- seed 002 ---------------------------------------------------------------------------------------
SHIPMENTS = [
    rec(shipment_id="shp_000000000001", event_time="2026-01-05T10:00:00Z", origin="SZX", destination="SEA",
        carrier="UPS", weight_kg=1.5),
    rec(shipment_id="shp_000000000002", event_time="2026-01-05T11:00:00Z", origin="PVG", destination="LAX",
        carrier="DHL", weight_kg=20.25),
    rec(shipment_id="shp_000000000003", event_time="2026-01-06T09:00:00Z", origin="SZX", destination="JFK",
        carrier="FedEx", weight_kg=7.0),
    rec("tracking_events", event_time="2026-01-06T12:00:00Z"),  # other record types share "<db>".silver
    rec("invoice_lines", event_time="2026-01-06T12:00:00Z"),
]


@pytest.fixture
def shipments_home(home: Path) -> Path:
    lake = Lake.open(settings(home))
    land(lake, "shipments/2026-01-06/s.jsonl", b"".join(orjson.dumps(r) + b"\n" for r in SHIPMENTS))
    assert run(lake.settings)["loaded"] == 5
    return home


def seed_002(query: str) -> str:
    return query.replace("<db>", glue_database("lakeline"))  # the seed: "replace <db> with that value"


def test_seed_002_athena_quick_queries(capsys, shipments_home):
    home = shipments_home
    assert glue_database("lakeline") == "lakeline"
    assert athena(capsys, home, seed_002(SEED_002_LATEST)) == [
        {"dt": "2026-01-06", "shipment_id": "shp_000000000003", "origin": "SZX", "destination": "JFK",
         "carrier": "FedEx", "weight_kg": 7.0, "event_time": "2026-01-06T09:00:00+00:00"},
        {"dt": "2026-01-05", "shipment_id": "shp_000000000002", "origin": "PVG", "destination": "LAX",
         "carrier": "DHL", "weight_kg": 20.25, "event_time": "2026-01-05T11:00:00+00:00"},
        {"dt": "2026-01-05", "shipment_id": "shp_000000000001", "origin": "SZX", "destination": "SEA",
         "carrier": "UPS", "weight_kg": 1.5, "event_time": "2026-01-05T10:00:00+00:00"}]
    assert athena(capsys, home, seed_002(SEED_002_ROWS)) == [
        {"dt": "2026-01-06", "rows": 1}, {"dt": "2026-01-05", "rows": 2}]
    assert athena(capsys, home, seed_002(SEED_002_SANITY)) == [
        {"dt": "2026-01-06", "min_weight_kg": 7.0, "max_weight_kg": 7.0, "approx_unique_shipments": 1},
        {"dt": "2026-01-05", "min_weight_kg": 1.5, "max_weight_kg": 20.25, "approx_unique_shipments": 2}]
    # the union holds every record type: each row's record_type is its table
    everything = seed_002('SELECT record_type, COUNT(*) AS n FROM "<db>".silver GROUP BY 1 ORDER BY 1')
    assert athena(capsys, home, everything) == [
        {"record_type": "invoice_lines", "n": 1}, {"record_type": "shipments", "n": 3},
        {"record_type": "tracking_events", "n": 1}]
    # lakeline's own Glue tables (one per record type) by their Glue names too
    assert athena(capsys, home, "SELECT COUNT(*) AS n FROM lakeline.shipments") == [{"n": 3}]


# ---- seed 004 ---------------------------------------------------------------------------------------
HEADER = "order_id,order_date,customer_id,product_id,qty,unit_price,channel\n"
CUSTOMERS = "customer_id,customer_name,region\n10,Ann,North\n11,Bob,South\n12,Cid,North\n"
PRODUCTS = "product_id,category\n100,Electronics\n101,Garden\n"
FIRST = HEADER + (
    '1,14/09/2025,10,100,2,"10,50",web\n'      # 21.00  North Electronics
    '2,15/09/2025,11,101,1,"4,25",store\n'     #  4.25  South Garden
    '3,15/09/2025,12,100,3,"1,10",web\n'       #  3.30  North Electronics
    '4,21/09/2025,10,999,4,"0,25",mobile\n'    #  1.00  North (unknown product: no category)
    '5,22/09/2025,11,100,1,"100,00",web\n'     # 100.00 South Electronics
)
SECOND = HEADER + '6,16/09/2025,12,101,2,"7,75",store\n'  # 15.50 North Garden


def _land(lake: Lake, tmp_path: Path, name: str, text: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    assert job.land_retail(lake, path, today=date(2025, 10, 4)) is not None


@pytest.fixture
def retail(home: Path, tmp_path: Path) -> tuple[Lake, list[int]]:
    """Two orders batches: the first 5 orders, then 1; returns the lake and its snapshot ids."""
    lake = Lake.open(settings(home))
    _land(lake, tmp_path, "customers.csv", CUSTOMERS)
    _land(lake, tmp_path, "products.csv", PRODUCTS)
    _land(lake, tmp_path, "orders_1.csv", FIRST)
    assert job.run_retail(lake)["rows"] == 5
    _land(lake, tmp_path, "orders_2.csv", SECOND)
    assert job.run_retail(lake)["rows"] == 1
    table = iceberg.catalog(lake).load_table("retail_silver.orders_silver")
    return lake, [s.snapshot_id for s in table.snapshots()]


def test_seed_004_sanity_referential_and_business_queries(capsys, home, retail):
    rows = athena(capsys, home, SEED_004_PEEK)
    assert sorted((tuple(r.values()) for r in rows), key=lambda r: r[0]) == [
        (1, "2025-09-14", 10, 100, 2, 10.5, "web", "North", "Electronics", 21.0),
        (2, "2025-09-15", 11, 101, 1, 4.25, "store", "South", "Garden", 4.25),
        (3, "2025-09-15", 12, 100, 3, 1.1, "web", "North", "Electronics", 3 * 1.1),
        (4, "2025-09-21", 10, 999, 4, 0.25, "mobile", "North", None, 1.0),
        (5, "2025-09-22", 11, 100, 1, 100.0, "web", "South", "Electronics", 100.0),
        (6, "2025-09-16", 12, 101, 2, 7.75, "store", "North", "Garden", 15.5)]
    assert list(rows[0]) == ["order_id", "order_date", "customer_id", "product_id", "qty", "unit_price",
                             "channel", "region", "category", "sales_amount"]
    assert athena(capsys, home, SEED_004_TOTAL) == [{"rows": 6}]
    assert athena(capsys, home, SEED_004_RANGE) == [{"min_date": "2025-09-14", "max_date": "2025-09-22"}]
    assert athena(capsys, home, SEED_004_DISTINCT) == [{"distinct_customers": 3, "distinct_products": 3}]
    assert athena(capsys, home, SEED_004_MISSING) == [{"missing_region": 0, "missing_category": 1}]

    by_day = athena(capsys, home, SEED_004_BY_DAY)
    assert [(r["day"], round(r["sales"], 2)) for r in by_day] == [
        ("2025-09-22", 100.0), ("2025-09-21", 1.0), ("2025-09-16", 15.5), ("2025-09-15", 7.55),
        ("2025-09-14", 21.0)]
    assert athena(capsys, home, SEED_004_BY_CHANNEL) == [
        {"channel": "web", "sales": 124.3}, {"channel": "store", "sales": 19.75},
        {"channel": "mobile", "sales": 1.0}]
    assert athena(capsys, home, SEED_004_BY_REGION) == [
        {"region": "South", "sales": 104.25}, {"region": "North", "sales": 40.8}]
    assert athena(capsys, home, SEED_004_BY_CATEGORY) == [
        {"category": "Electronics", "sales": 124.3, "units": 6}, {"category": "Garden", "sales": 19.75, "units": 3},
        {"category": None, "sales": 1.0, "units": 4}]
    [recompute] = athena(capsys, home, SEED_004_RECOMPUTE)
    assert (round(recompute["stored_sales"], 2), round(recompute["calc_sales"], 2), recompute["diff"]) == (
        145.05, 145.05, 0.0)


def test_seed_004_partition_pruning_explain(capsys, home, retail):
    plan = athena(capsys, home, SEED_004_PRUNING)
    [p] = plan["plans"]
    # days(order_date): 15, 16 and 21 September hold data inside the range, 14 and 22 outside
    assert (p["table"], p["planned_files"], p["total_files"]) == ("retail_silver.orders_silver", 3, 5)
    assert p["planned_bytes"] < p["total_bytes"]
    assert "order_date" in p["row_filter"]


def test_seed_004_snapshots_time_travel_and_history(capsys, home, retail):
    _, (first, second) = retail
    snapshots = athena(capsys, home, SEED_004_SNAPSHOTS)
    assert [(s["snapshot_id"], s["parent_id"], s["operation"]) for s in snapshots] == [
        (second, first, "append"), (first, None, "append")]
    assert snapshots[0]["committed_at"] >= snapshots[1]["committed_at"]
    assert snapshots[1]["summary"]["added-records"] == "5"  # a map: a JSON object
    for snap, rows in ((first, 5), (second, 6)):
        assert athena(capsys, home, SEED_004_TIME_TRAVEL.replace("<snapshot_id>", str(snap))) == [
            {"rows_at_that_time": rows}]
    history = athena(capsys, home, SEED_004_HISTORY)
    assert [(h["snapshot_id"], h["parent_id"]) for h in history] == [(second, first), (first, None)]

    # Athena's timestamp form of time travel: a TIMESTAMP literal, UTC unless it names a zone
    committed = snapshots[1]["committed_at"]  # ISO 8601, e.g. 2026-12-07T12:00:00.123000+00:00
    literal = committed.replace("T", " ").removesuffix("+00:00")
    query = f"SELECT COUNT(*) AS n FROM retail_silver.orders_silver FOR TIMESTAMP AS OF TIMESTAMP '{literal}'"
    assert athena(capsys, home, query) == [{"n": 5}]
    assert athena(capsys, home, query.replace(f"'{literal}'", f"'{literal} UTC'")) == [{"n": 5}]
    # lakeline's own dialect takes Trino's timestamp literal too
    capsys.readouterr()
    with pytest.raises(SystemExit) as done:
        main(["--home", str(home), "sql", "--json", query.replace(f"'{literal}'", f"'{literal} UTC'")])
    assert (done.value.code, json.loads(capsys.readouterr().out)) == (0, [{"n": 5}])
    with pytest.raises(SystemExit) as done:
        main(["--home", str(home), "sql", "--dialect", "athena", query.replace(literal, "yesterday")])
    assert (done.value.code, capsys.readouterr().err) == (2, "error: Athena SQL: not a timestamp: 'yesterday'\n")


# ---- the translation itself -------------------------------------------------------------------------
@pytest.mark.parametrize(("athena_sql", "duckdb_sql"), [
    ("SELECT approx_distinct(x) FROM t", "SELECT APPROX_COUNT_DISTINCT(x) FROM t"),
    ("SELECT date_trunc('day', from_iso8601_timestamp('2026-01-05T10:00:00Z'))",
     "SELECT DATE_TRUNC('DAY', CAST('2026-01-05T10:00:00Z' AS TIMESTAMPTZ))"),
    ("SELECT date_format(ts, '%Y-%m-%d %H:%i') FROM t", "SELECT STRFTIME(ts, '%Y-%m-%d %H:%M') FROM t"),
    ("SELECT CAST(x AS varchar) FROM t", "SELECT CAST(x AS TEXT) FROM t"),
    ("SELECT regexp_like(s, '^a') FROM t", "SELECT REGEXP_MATCHES(s, '^a') FROM t"),
    ("SELECT cardinality(a), element_at(a, 1) FROM t", "SELECT ARRAY_LENGTH(a), a[1] FROM t"),
    ("SELECT * FROM n.t FOR VERSION AS OF 42", "SELECT * FROM n.t FOR VERSION AS OF 42"),
    ("SELECT * FROM n.t FOR TIMESTAMP AS OF TIMESTAMP '2026-01-05 12:00:00 Europe/Berlin'",
     "SELECT * FROM n.t FOR TIMESTAMP AS OF '2026-01-05T11:00:00+00:00'"),
])
def test_translation_of_each_construct(athena_sql, duckdb_sql):
    assert translate(athena_sql, "athena") == duckdb_sql
    assert translate(athena_sql, "duckdb") == athena_sql  # the DuckDB dialect is left alone


def test_translated_functions_give_athena_answers(capsys, shipments_home):
    q = ("SELECT date_trunc('day', from_iso8601_timestamp('2026-01-05T10:30:00Z')) AS d, "
         "date_format(TIMESTAMP '2026-01-05 10:07:00', '%Y-%m-%d %H:%i') AS f, CAST(42 AS varchar) AS v, "
         "regexp_like('shp_1', '^shp_') AS r, cardinality(ARRAY[1, 2, 3]) AS c, element_at(ARRAY[7, 8], 2) AS e, "
         "element_at(MAP(ARRAY['a'], ARRAY[5]), 'a') AS m")
    assert athena(capsys, shipments_home, q) == [
        {"d": "2026-01-05T00:00:00+00:00", "f": "2026-01-05 10:07", "v": "42", "r": True, "c": 3, "e": 8, "m": 5}]


def test_split_explain_and_timestamps():
    assert split_explain("-- why\nexplain (TYPE LOGICAL) SELECT 1") == ("EXPLAIN", "SELECT 1")
    assert split_explain("EXPLAIN ANALYZE SELECT 1") == ("EXPLAIN ANALYZE", "SELECT 1")
    assert split_explain("SELECT 'EXPLAIN'") == (None, "SELECT 'EXPLAIN'")
    assert athena_timestamp("2026-01-05 10:00:00.250") == "2026-01-05T10:00:00.250000+00:00"
    assert athena_timestamp("2026-01-05 12:00:00 +02:00") == "2026-01-05T10:00:00+00:00"
    with pytest.raises(Exception, match="unknown time zone 'Mars/Base'"):
        athena_timestamp("2026-01-05 12:00:00 Mars/Base")


def test_glue_names_of_gold_and_promoted_tables_run_on_duckdb_too(capsys, shipments_home):
    """The names `lakeline catalog sync` gives gold tables (gold_<name>) and promoted runs
    (transactions) in Glue read the same tables locally, so one Athena query runs on both engines."""
    home = shipments_home
    (home / "models").mkdir()
    (home / "models" / "daily.sql").write_text("SELECT dt, count(*) AS n FROM silver.shipments GROUP BY ALL")
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main(["--home", str(home), "models", "run"])
    assert athena(capsys, home, 'SELECT dt, n FROM "lakeline".gold_daily ORDER BY dt') == [
        {"dt": "2026-01-05", "n": 2}, {"dt": "2026-01-06", "n": 1}]
    from lakeline.pipelines.transactions.job import execute_run
    from lakeline.promotion.promote import promote

    lake = Lake.open(settings(home))
    lake.store.put("landing", "transactions/t.csv", b"TransactionID,CustomerID,TransactionAmount,Currency,"
                   b"TransactionTimestamp\nT1,C1,1.50,EUR,2024-01-05T10:00:00Z\n")
    execute_run(lake, ["transactions/t.csv"])
    assert promote(lake, {"silver_prefix": "mortgages/transactions", "schema_version": "v1"})["status"] == "success"
    assert athena(capsys, home, 'SELECT "TransactionID" AS id FROM lakeline.transactions') == [{"id": "T1"}]
