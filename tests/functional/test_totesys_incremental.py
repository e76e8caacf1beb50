"""totesys against the real PostgreSQL: three mutate → extract → process → load rounds with
exact row counts, only changed rows re-extracted, dimension updates visible, fact history kept,
and a load re-run that changes nothing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

from lakeline.config import load_settings
from lakeline.lake import Lake
from lakeline.pipelines.totesys import gen as gen
from lakeline.pipelines.totesys.extract import extract, param_name
from lakeline.pipelines.totesys.pipeline import TOTESYS
from lakeline.pipelines.totesys.schema import TABLES
from lakeline.pipelines.totesys.warehouse import load
from lakeline.sql import connect
from tests.totesys_pg import pg_database, pg_server  # noqa: F401

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("totesys_pg")]

SCALE = 2000
STAR = ("fact_sales_order", "fact_purchase_order", "fact_payment", "dim_date", "dim_staff", "dim_location",
        "dim_currency", "dim_design", "dim_counterparty", "dim_payment_type", "dim_transaction")


def _pg(url: str) -> psycopg.Connection[Any]:
    return psycopg.connect(url)


def _gold_counts(lake: Lake) -> dict[str, int]:
    con = connect(lake)
    return {t: con.execute(f"SELECT count(*) FROM gold.{t}").fetchall()[0][0] for t in STAR}


def _warehouse(url: str) -> dict[str, tuple[int, str]]:
    """Row count and an order-independent checksum of every star table."""
    out = {}
    with _pg(url) as conn:
        for t in STAR:
            n, digest = conn.execute(
                f"SELECT count(*), md5(coalesce(string_agg(md5(x::text), '' ORDER BY md5(x::text)), '')) "
                f"FROM {t} x").fetchone()  # type: ignore[misc]
            out[t] = (n, digest)
    return out


def _source(url: str, sql: str) -> list[tuple[Any, ...]]:
    with _pg(url) as conn:
        return conn.execute(sql).fetchall()


def test_three_incremental_rounds(tmp_path: Path, home: Path, pg_database: Callable[[str], str]) -> None:  # noqa: F811
    src, wh = pg_database("src"), pg_database("wh")
    counts = gen.create(src, scale=SCALE, seed=7)
    assert counts == {"currency": 3, "department": 8, "design": 10, "address": 30, "payment_type": 4,
                      "staff": 20, "counterparty": 20, "sales_order": 2000, "purchase_order": 200,
                      "transaction": 700, "payment": 700}
    lake = Lake.open(load_settings(home, {"pipelines.totesys.chunk_rows": 300}))

    # round 0: the initial full extraction, processing and load
    first = extract(lake, src)
    assert first.status == "SUCCEEDED"
    assert {t.table: t.rows for t in first.tables} == counts
    assert all(t.packet_id == 1 for t in first.tables)
    [report] = [r.to_dict() for r in TOTESYS.run(lake)]
    assert (report["packets"], report["rows_read"]) == (11, sum(counts.values()))
    gold = _gold_counts(lake)
    assert {k: gold[k] for k in STAR if k != "dim_date"} == {
        "fact_sales_order": 2000, "fact_purchase_order": 200, "fact_payment": 700, "dim_staff": 20,
        "dim_location": 30, "dim_currency": 3, "dim_design": 10, "dim_counterparty": 20, "dim_payment_type": 4,
        "dim_transaction": 700}
    loaded = load(lake, wh)
    assert {t: v["rows"] for t, v in loaded["tables"].items()} == gold

    expected_facts = {"fact_sales_order": 2000, "fact_purchase_order": 200, "fact_payment": 700}
    for rnd in range(1, 4):
        watermark_before = lake.params.get(param_name("sales_order", "latest_extracted_timestamp"))
        change = gen.mutate(src, seed=rnd)
        assert change["inserted"]["sales_order"] == 20 and change["updated"]["sales_order"] == 10
        result = extract(lake, src)
        assert result.status == "SUCCEEDED"
        # only the changed rows are extracted: exactly what the round inserted or updated
        assert {t.table: t.rows for t in result.tables} == change["changed"]
        assert {t.table: t.packet_id for t in result.tables if t.rows} == {
            t: rnd + 1 for t, n in change["changed"].items() if n}
        assert lake.params.get(param_name("sales_order", "latest_extracted_timestamp")) > watermark_before  # type: ignore[operator]
        [report] = [r.to_dict() for r in TOTESYS.run(lake)]
        assert report["rows_read"] == sum(change["changed"].values())
        for fact, source in (("fact_sales_order", "sales_order"), ("fact_purchase_order", "purchase_order"),
                             ("fact_payment", "payment")):
            expected_facts[fact] += change["changed"][source]
            assert report["facts"][fact] == change["changed"][source]
        gold = _gold_counts(lake)
        assert {k: gold[k] for k in expected_facts} == expected_facts
        assert gold["dim_location"] == 30 + rnd and gold["dim_design"] == 10 + rnd
        assert gold["dim_counterparty"] == 20 and gold["dim_staff"] == 20
        assert gold["dim_transaction"] == change["counts"]["transaction"]

        before = _warehouse(wh)
        loaded = load(lake, wh)
        after = _warehouse(wh)
        assert {t: v[0] for t, v in after.items()} == gold
        assert after != before
        # a re-run of the load changes nothing: same counts, same checksums, nothing written
        again = load(lake, wh)
        assert _warehouse(wh) == after
        assert all(v["written"] == 0 and v["files_loaded"] == 0 for v in again["tables"].values())

    # three rounds of 30 sales-order changes on top of 2000: 2090 fact rows in the warehouse
    assert _warehouse(wh)["fact_sales_order"][0] == 2090 == expected_facts["fact_sales_order"]

    # dimension updates are visible: the renamed counterparties, with their current legal address
    names = dict(_source(src, "SELECT counterparty_id, counterparty_legal_name FROM counterparty"))
    renamed = {i: n for i, n in names.items() if n.endswith(" Holdings")}
    assert renamed
    with _pg(wh) as conn:
        got = dict(conn.execute("SELECT counterparty_id, counterparty_legal_name FROM dim_counterparty").fetchall())
        assert got == names
        legal = conn.execute("""SELECT c.counterparty_id, c.counterparty_legal_address_line_1,
            c.counterparty_legal_phone_number FROM dim_counterparty c ORDER BY 1""").fetchall()
    assert legal == _source(src, """SELECT c.counterparty_id, a.address_line_1, a.phone FROM counterparty c
        JOIN address a ON a.address_id = c.legal_address_id ORDER BY 1""")

    # fact history: every version of an updated sales order is its own fact row
    updated = _source(src, """SELECT sales_order_id, units_sold, last_updated FROM sales_order
        WHERE last_updated > created_at + interval '40 days' ORDER BY sales_order_id""")
    assert len(updated) >= 10
    with _pg(wh) as conn:
        for so_id, units, last_updated in updated[:5]:
            versions = conn.execute("""SELECT units_sold, last_updated_date + last_updated_time
                FROM fact_sales_order WHERE sales_order_id = %s ORDER BY sales_record_id""", (so_id,)).fetchall()
            assert len(versions) >= 2
            assert versions[-1] == (units, last_updated)  # the newest version is the source's row
            assert len({v[1] for v in versions}) == len(versions)
        # every date a fact references is in dim_date
        orphans = conn.execute("""SELECT count(*) FROM fact_sales_order f LEFT JOIN dim_date d
            ON d.date_id = f.agreed_delivery_date WHERE d.date_id IS NULL""").fetchone()
    assert orphans == (0,)

    # one more extraction with no changes: no packet, no new rows, watermarks unchanged
    marks = {t: lake.params.get(param_name(t, "latest_extracted_timestamp")) for t in TABLES}
    idle = extract(lake, src)
    assert (idle.status, idle.rows, idle.packets) == ("SUCCEEDED", 0, 0)
    assert {t: lake.params.get(param_name(t, "latest_extracted_timestamp")) for t in TABLES} == marks
    assert TOTESYS.run(lake) == []
