"""totesys extraction failures against the real PostgreSQL: a connection killed mid-extract
leaves that table's watermark and packet id unchanged, transient drops are retried with
backoff, three failed runs in a row alert the administrators, and passwords never leak."""

from __future__ import annotations

import json
import logging
import re
import socket
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import event

from lakeline.config import load_settings
from lakeline.lake import Lake
from lakeline.pipelines.totesys import gen as gen
from lakeline.pipelines.totesys.extract import FAILURES_PARAM, extract, list_packets, param_name
from lakeline.pipelines.totesys.schema import TABLES
from lakeline.pipelines.totesys.source import Source, engine_for
from tests.totesys_pg import admin_dsn, pg_database, pg_server  # noqa: F401

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("totesys_pg")]


def _lake(home: Path, **extra: Any) -> Lake:
    return Lake.open(load_settings(home, {"pipelines.totesys.retries": 2, "pipelines.totesys.retry_delay": 0.01, **extra}))


def _state(lake: Lake) -> dict[str, tuple[str | None, str | None]]:
    return {t: (lake.params.get(param_name(t, "latest_extracted_timestamp")),
                lake.params.get(param_name(t, "latest_packet_id"))) for t in TABLES}


def _killing_source(url: str, table: str, kills: int) -> tuple[Source, list[int]]:
    """A source whose first ``kills`` reads of ``table`` lose their connection: the server
    terminates the backend (pg_terminate_backend) just as the SELECT is sent."""
    engine = engine_for(url)
    killed: list[int] = []
    pattern = re.compile(rf'FROM "?{table}"?\s')

    @event.listens_for(engine, "before_cursor_execute")
    def _kill(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
        if pattern.search(statement) and len(killed) < kills:
            pid = conn.connection.driver_connection.info.backend_pid
            with psycopg.connect(admin_dsn(), autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
            killed.append(pid)

    return Source(engine=engine, chunk_rows=100), killed


def test_connection_killed_mid_extract_leaves_the_watermark_unchanged(
        home: Path, pg_database: Callable[[str], str]) -> None:  # noqa: F811
    src = pg_database("src")
    gen.create(src, scale=500, seed=3)
    lake = _lake(home)
    assert extract(lake, src).status == "SUCCEEDED"
    change = gen.mutate(src, seed=1)
    before = _state(lake)

    source, killed = _killing_source(src, "payment", kills=10)
    report = extract(lake, source=source)
    source.close()
    assert report.status == "FAILED"
    assert report.error is not None and report.error.startswith("OperationalError")
    assert len(killed) == 2  # the first attempt and its one retry
    after = _state(lake)
    # payment is the last table: its watermark and packet id did not move, no packet 2 exists
    assert after["payment"] == before["payment"]
    assert sorted(list_packets(lake)["payment"]) == [1]
    # the tables extracted before the failure kept their progress (each table commits alone)
    assert after["transaction"][1] == "2" and after["sales_order"][1] == "2"
    assert lake.params.get(FAILURES_PARAM) == "1"
    assert not any((lake.settings.home / "work").glob("totesys-*/*"))  # scratch files removed

    # the next run extracts exactly the payment changes the failed run missed
    retry = extract(lake, src)
    assert retry.status == "SUCCEEDED"
    assert {t.table: t.rows for t in retry.tables} == {t: (change["changed"]["payment"] if t == "payment" else 0)
                                                       for t in TABLES}
    assert _state(lake)["payment"][1] == "2"
    assert lake.params.get(FAILURES_PARAM) == "0"


def test_a_dropped_connection_is_retried_with_backoff(home: Path, pg_database: Callable[[str], str]) -> None:  # noqa: F811
    src = pg_database("src")
    counts = gen.create(src, scale=300, seed=4)
    lake = _lake(home)
    source, killed = _killing_source(src, "sales_order", kills=1)
    report = extract(lake, source=source)
    source.close()
    assert report.status == "SUCCEEDED" and len(killed) == 1
    by_table = {t.table: t for t in report.tables}
    assert (by_table["sales_order"].attempts, by_table["sales_order"].rows) == (2, counts["sales_order"])
    assert by_table["currency"].attempts == 1


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_three_failed_runs_alert_and_passwords_never_leak(
        home: Path, pg_database: Callable[[str], str], caplog: pytest.LogCaptureFixture) -> None:  # noqa: F811
    secret = "s3cr3t-Pa55"
    url = f"postgresql://postgres:{secret}@127.0.0.1:{_closed_port()}/totesys"
    lake = _lake(home)
    caplog.set_level(logging.DEBUG, logger="lakeline")
    reports = [extract(lake, url) for _ in range(3)]
    assert [(r.status, r.consecutive_failures, r.alerted) for r in reports] == [
        ("FAILED", 1, False), ("FAILED", 2, False), ("FAILED", 3, True)]
    assert all(r.tables == [] for r in reports)  # the first table already failed
    assert all(v == (None, None) for v in _state(lake).values())
    [alert] = lake.notifier.sent()
    assert alert.subject == "totesys extraction failed 3 times in a row"
    assert alert.attributes["consecutive_failures"] == 3
    assert reports[0].source == f"postgresql+psycopg://postgres:***@127.0.0.1:{url.rsplit(':', 1)[1]}"
    outbox = (lake.settings.outbox_dir / "notifications.jsonl").read_text()
    for text in (caplog.text, outbox, json.dumps([r.to_dict() for r in reports]),
                 json.dumps(lake.state.runs(limit=10))):
        assert secret not in text

    # a successful run resets the counter; the next failure starts again at 1
    src = pg_database("src")
    gen.create(src, scale=50)
    assert extract(lake, src).status == "SUCCEEDED"
    assert lake.params.get(FAILURES_PARAM) == "0"
    again = extract(lake, url)
    assert (again.consecutive_failures, again.alerted) == (1, False)
    assert len(lake.notifier.sent()) == 1


def test_connection_lost_mid_stream_discards_the_partial_packet(
        home: Path, pg_database: Callable[[str], str]) -> None:  # noqa: F811
    """The server ends the session while the server-side cursor is mid-way through sales_order
    (a row-security tripwire terminates its own backend at one row): chunks already fetched
    are discarded with the scratch file, nothing is published for the table."""
    src = pg_database("src")
    gen.create(src, scale=2000, seed=5)
    role = f"totesys_reader_{uuid.uuid4().hex[:8]}"
    dbname = src.rsplit("/", 1)[1]
    with psycopg.connect(f"{admin_dsn(dbname)}", autocommit=True) as admin:
        admin.execute(f"CREATE ROLE {role} LOGIN")
        admin.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}")
        admin.execute("""CREATE FUNCTION tripwire(id integer) RETURNS boolean LANGUAGE plpgsql
            SECURITY DEFINER AS $$ BEGIN
                IF id = 1500 THEN PERFORM pg_terminate_backend(pg_backend_pid()); PERFORM pg_sleep(5); END IF;
                RETURN true; END $$""")
        admin.execute(f"GRANT EXECUTE ON FUNCTION tripwire(integer) TO {role}")
        admin.execute("ALTER TABLE sales_order ENABLE ROW LEVEL SECURITY")
        admin.execute(f"CREATE POLICY trip ON sales_order FOR SELECT TO {role} USING (tripwire(sales_order_id))")
        [(position,)] = admin.execute("""SELECT n FROM (SELECT sales_order_id,
            row_number() OVER (ORDER BY last_updated, sales_order_id) AS n FROM sales_order) s
            WHERE sales_order_id = 1500""").fetchall()
    with psycopg.connect(admin_dsn(dbname)) as conn:  # a cursor streams from the index: no sort first
        plan = conn.execute("EXPLAIN DECLARE c CURSOR FOR SELECT * FROM sales_order "
                            "ORDER BY last_updated, sales_order_id").fetchall()
    try:
        assert plan[0][0].startswith("Index Scan using ix_sales_order_last_updated")
        assert position > 300  # three full chunks of 100 rows are fetched before the tripwire
        lake = _lake(home, **{"pipelines.totesys.chunk_rows": 100})
        report = extract(lake, f"postgresql://{role}@127.0.0.1:5432/{dbname}")
        assert report.status == "FAILED" and report.error is not None
        assert report.error.startswith("OperationalError")
        state = _state(lake)
        assert state["sales_order"] == (None, None)  # no watermark, no packet id
        assert "sales_order" not in list_packets(lake)
        assert state["counterparty"][1] == "1"  # earlier tables committed their packets
        assert not any((lake.settings.home / "work").glob("totesys-*/*"))

        # with the tripwire gone the same lake extracts every sales order once
        with psycopg.connect(admin_dsn(dbname), autocommit=True) as admin:
            admin.execute("DROP POLICY trip ON sales_order")
            admin.execute("ALTER TABLE sales_order DISABLE ROW LEVEL SECURITY")
        again = extract(lake, f"postgresql://{role}@127.0.0.1:5432/{dbname}")
        assert again.status == "SUCCEEDED"
        assert {t.table: t.rows for t in again.tables}["sales_order"] == 2000
        assert {t.table: t.rows for t in again.tables}["counterparty"] == 0
    finally:
        with psycopg.connect(admin_dsn(dbname), autocommit=True) as admin:
            admin.execute(f"DROP OWNED BY {role}")
        with psycopg.connect(admin_dsn(), autocommit=True) as admin:
            admin.execute(f"DROP ROLE IF EXISTS {role}")
