"""`lakeline extract --pipeline totesys --table T --since ISO`: a re-read window becomes a new
packet that recovers a missing one, the watermark never moves backwards, and the star schema
holds exactly the rows it would have held without the loss (no duplicates), on a SQLite source
through the real CLI."""

from __future__ import annotations

import sqlite3
import subprocess
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from lakeline.config import load_settings
from lakeline.lake import Lake, init_home
from lakeline.pipelines.totesys import gen as gen
from lakeline.pipelines.totesys.extract import (
    committed_packet_id,
    extract,
    list_packets,
    missing_packets,
    param_name,
    recovery_since,
)
from lakeline.pipelines.totesys.pipeline import TOTESYS
from lakeline.pipelines.totesys.schema import TABLES
from lakeline.pipelines.totesys.star import GOLD_TABLES, process_pending
from lakeline.sql import connect
from tests.e2e.helpers import InProcess

SCALE = 400
EPOCH = datetime(1970, 1, 1)


def _cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``lakeline --home HOME ARGS``, run in this process (:class:`tests.e2e.helpers.InProcess`)."""
    return InProcess(home, home.parent)("--home", home, *args, home=False)


def _counts(lake: Lake) -> dict[str, int]:
    con = connect(lake)
    return {t: int(con.execute(f"SELECT count(*) FROM gold.{t}").fetchall()[0][0]) for t in GOLD_TABLES}


def _rows(lake: Lake, sql: str) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in connect(lake).execute(sql).fetchall()]


def _params(lake: Lake) -> dict[str, str]:
    return {k: str(v) for k, v in lake.params.get_by_path("/lakeline/totesys").items()}


def _lake_db(home: Path, db: Path) -> tuple[Lake, Path]:
    gen.create(str(db), scale=SCALE, seed=11)
    lake = Lake.open(load_settings(home))
    assert extract(lake, str(db)).status == "SUCCEEDED"
    assert process_pending(lake) is not None
    return lake, db


@pytest.fixture
def lake_db(home: Path, tmp_path: Path) -> tuple[Lake, Path]:
    return _lake_db(home, tmp_path / "totesys.db")


@pytest.fixture(scope="module")
def untouched_lake_db(tmp_path_factory: pytest.TempPathFactory) -> tuple[Lake, Path]:
    """One lake for the cases that must leave it untouched (each checks it still is)."""
    root = tmp_path_factory.mktemp("untouched")
    init_home(root / "lake")
    return _lake_db(root / "lake", root / "totesys.db")


def test_reread_recovers_a_missing_packet_exactly(lake_db: tuple[Lake, Path]) -> None:
    lake, db = lake_db
    home = lake.settings.home
    first_facts = _counts(lake)["fact_sales_order"]
    assert first_facts == gen.sizes(SCALE)["sales_order"] == 400
    changed = gen.mutate(str(db), seed=1)["changed"]
    second = extract(lake, str(db))
    [so] = [t for t in second.tables if t.table == "sales_order"]
    assert (so.rows, so.packet_id) == (changed["sales_order"], 2) and so.rows == 8
    watermark = lake.params.get(param_name("sales_order", "latest_extracted_timestamp"))
    assert watermark == so.watermark

    # packet 2 of sales_order is lost before processing: its 8 versions never reach the facts
    lake.store.delete("raw", list_packets(lake)["sales_order"][2])
    assert missing_packets(lake) == {"sales_order": [2]}
    process_pending(lake)
    assert _counts(lake)["fact_sales_order"] == 400
    since = recovery_since(lake, "sales_order", 2)
    [note] = TOTESYS.status(lake)["notes"]
    assert note.endswith(f"lakeline extract --pipeline totesys --table sales_order --since {since}")

    # the command the status names re-reads the window into packet 3
    out = _cli(home, "extract", "--pipeline", "totesys", "--source", str(db), "--table", "sales_order",
               "--since", since, "--json")
    assert out.returncode == 0, out.stderr
    report = orjson.loads(out.stdout)
    assert (report["status"], report["mode"], report["since"]) == ("SUCCEEDED", "reread", since)
    [t] = report["tables"]
    # the window starts an overlap before packet 1's watermark: the 8 lost versions and the 3
    # packet 1 already held (the ones the incremental run dropped as duplicates)
    assert so.duplicates_dropped == 3
    assert (t["table"], t["rows"], t["packet_id"], t["watermark"]) == ("sales_order", 11, 3, watermark)
    # the high-water mark did not move (not backwards, not forwards); only the packet id did
    assert lake.params.get(param_name("sales_order", "latest_extracted_timestamp")) == watermark
    assert committed_packet_id(lake, "sales_order") == 3
    boundary = orjson.loads(lake.store.get("raw", "totesys/_state/sales_order_00000003.json"))
    before = orjson.loads(lake.store.get("raw", "totesys/_state/sales_order_00000002.json"))
    assert (boundary["watermark"], boundary["ids"], boundary["reread_since"]) == (
        before["watermark"], before["ids"], since)

    # status no longer warns: the re-read covered the missing packet
    assert missing_packets(lake) == {"sales_order": [2]}  # still absent from the raw zone
    shown = TOTESYS.status(lake)
    assert (shown["missing_packets"], shown["recovered_packets"], shown["notes"]) == ({}, {"sales_order": [2]}, [])
    done = process_pending(lake)
    assert done is not None and done["facts"] == {"fact_sales_order": 8}
    assert _counts(lake)["fact_sales_order"] == 408
    versions = _rows(lake, "SELECT count(*), count(DISTINCT (sales_order_id, last_updated_date, "
                           "last_updated_time)), count(DISTINCT sales_record_id) FROM gold.fact_sales_order")
    assert versions == [(408, 408, 408)]
    # the next incremental run continues from the unchanged watermark: nothing new, nothing again
    again = extract(lake, str(db))
    assert (again.rows, again.packets) == (0, 0)
    assert process_pending(lake) is None


def test_rereading_an_intact_window_changes_no_star_table(lake_db: tuple[Lake, Path]) -> None:
    lake, db = lake_db
    gen.mutate(str(db), seed=2)
    extract(lake, str(db))
    process_pending(lake)
    counts = _counts(lake)
    assert {t: counts[t] for t in ("fact_sales_order", "fact_purchase_order", "fact_payment", "dim_staff",
                                  "dim_counterparty", "dim_location")} == {
        "fact_sales_order": 408, "fact_purchase_order": 42, "fact_payment": 144, "dim_staff": 20,
        "dim_counterparty": 20, "dim_location": 31}
    star = {t: _rows(lake, f"SELECT * FROM gold.{t} ORDER BY ALL") for t in GOLD_TABLES}
    params = _params(lake)
    # every row of three tables again (one fact source, two dimension sources)
    for table in ("sales_order", "staff", "address"):
        report = extract(lake, str(db), tables=[table], since=EPOCH)
        [t] = report.tables
        with sqlite3.connect(db) as conn:
            [(rows,)] = conn.execute(f"SELECT count(*) FROM {table}").fetchall()
        assert (report.status, t.rows, t.packet_id) == ("SUCCEEDED", rows, 3)
        assert rows == {"sales_order": 405, "staff": 20, "address": 31}[table]
    processed = process_pending(lake)
    assert processed is not None and processed["rows_read"] == 405 + 20 + 31
    assert processed["facts"] == {"fact_sales_order": 0}
    assert _counts(lake) == counts
    assert {t: _rows(lake, f"SELECT * FROM gold.{t} ORDER BY ALL") for t in GOLD_TABLES} == star
    # only the three packet ids (and their processed ids) moved
    now = _params(lake)
    moved = {k for k in now if now[k] != params.get(k)}
    assert moved == {f"/lakeline/totesys/{t}_{w}" for t in ("sales_order", "staff", "address")
                     for w in ("latest_packet_id", "processed_packet_id")}


def test_since_is_inclusive(lake_db: tuple[Lake, Path]) -> None:
    lake, db = lake_db
    [[first]] = _rows(lake, "SELECT min(last_updated) FROM (SELECT CAST(last_updated_date AS VARCHAR) || 'T' "
                            "|| CAST(last_updated_time AS VARCHAR) AS last_updated FROM gold.fact_payment)")
    at = datetime.fromisoformat(str(first))
    with_it = extract(lake, str(db), tables=["payment"], since=at)
    with sqlite3.connect(db) as conn:
        [(n,)] = conn.execute("SELECT count(*) FROM payment WHERE last_updated >= ?", (str(at),)).fetchall()
    assert with_it.tables[0].rows == n == 140


@pytest.mark.parametrize(("args", "message"), [
    (["--pipeline", "retail"],
     "extract supports --pipeline totesys, not 'retail' (pipelines that can extract: totesys)"),
    (["--pipeline", "totesys", "--table", "orders", "--since", "2024-01-01"],
     "--table 'orders' is not a totesys table; tables: " + ", ".join(TABLES)),
    (["--pipeline", "totesys", "--table", "sales_order", "--since", "yesterday"],
     "--since 'yesterday' is not an ISO-8601 date or date-time"),
    (["--pipeline", "totesys", "--table", "sales_order", "--since", "2024-13-01"],
     "--since '2024-13-01' is not an ISO-8601 date or date-time"),
    (["--pipeline", "totesys", "--since", "2024-01-01"], "--since re-reads one table: name it with --table"),
])
def test_bad_extract_arguments_exit_2_and_write_nothing(untouched_lake_db: tuple[Lake, Path], args: list[str],
                                                        message: str) -> None:
    lake, db = untouched_lake_db
    params, packets = _params(lake), list_packets(lake)
    out = _cli(lake.settings.home, "extract", "--source", str(db), *args, "--json")
    assert out.returncode == 2, (out.stdout, out.stderr)
    error = orjson.loads(out.stdout)
    assert (error["status"], error["code"]) == ("error", "USAGE_ERROR")
    assert error["reason"].startswith(message)
    assert message in out.stderr
    assert (_params(lake), list_packets(lake)) == (params, packets)


def test_table_alone_extracts_that_table_incrementally(lake_db: tuple[Lake, Path]) -> None:
    lake, db = lake_db
    changed = gen.mutate(str(db), seed=3)["changed"]
    params = _params(lake)
    out = _cli(lake.settings.home, "extract", "--pipeline", "totesys", "--source", str(db), "--table", "staff")
    assert out.returncode == 0, out.stderr
    assert f"SUCCEEDED: {changed['staff']} rows in 1 packets" in out.stdout
    now = _params(lake)
    assert {k for k in now if now[k] != params.get(k)} == {
        "/lakeline/totesys/staff_latest_packet_id", "/lakeline/totesys/staff_latest_extracted_timestamp"}
    assert {t: committed_packet_id(lake, t) for t in TABLES} == {t: 2 if t == "staff" else 1 for t in TABLES}
    # the text report of a re-read names its window
    out = _cli(lake.settings.home, "extract", "--pipeline", "totesys", "--source", str(db), "--table", "staff",
               "--since", "2026-03-01T10:00:00+01:00")
    assert out.returncode == 0, out.stderr
    assert "(re-read since 2026-03-01T09:00:00.000000)" in out.stdout  # the zone converted to UTC
    assert "SUCCEEDED: 0 rows in 0 packets" in out.stdout  # the source's rows are older


def test_a_reread_starting_too_late_leaves_the_warning(lake_db: tuple[Lake, Path]) -> None:
    lake, db = lake_db
    gen.mutate(str(db), seed=1)
    extract(lake, str(db))
    lake.store.delete("raw", list_packets(lake)["sales_order"][2])
    since = datetime.fromisoformat(recovery_since(lake, "sales_order", 2))
    late = extract(lake, str(db), tables=["sales_order"], since=since + timedelta(microseconds=1))
    assert (late.status, late.tables[0].packet_id) == ("SUCCEEDED", 3)
    shown = TOTESYS.status(lake)
    assert (shown["missing_packets"], shown["recovered_packets"]) == ({"sales_order": [2]}, {})
    assert len(shown["notes"]) == 1
