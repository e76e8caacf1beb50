"""`pipelines.totesys.schedule`: `lakeline serve` extracts on the schedule, one extraction at a
time (the lease in the state store; a killed holder's lease expires), and a bad expression is a
ConfigError naming the key and the allowed forms.

Time passes the way the other schedule tests make it pass: the scheduler remembers the last
tick it fired in the state store (``schedules/<name>``); a test that puts an earlier time there
has a tick due now, without waiting for the clock (``rate(1 minute)`` is EventBridge's
shortest schedule).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest

from lakeline.config import load_settings
from lakeline.errors import ConfigError, LockedError
from lakeline.lake import Lake
from lakeline.pipelines.registry import registry
from lakeline.pipelines.totesys import gen as gen
from lakeline.pipelines.totesys.extract import committed_packet_id, extract, list_packets
from lakeline.pipelines.totesys.lease import LEASE_KEY, LEASE_TABLE, Lease
from lakeline.pipelines.totesys.pipeline import TOTESYS
from lakeline.pipelines.totesys.schema import TABLES
from lakeline.pipelines.totesys.star import processed_packet_id
from lakeline.runner import Jobs
from lakeline.schedule import SCHEDULES
from lakeline.sql import connect
from tests.totesys_pg import pg_database, pg_server  # noqa: F401

LAKELINE = str(Path(sys.executable).with_name("lakeline"))
SCALE = 200


def _env(**settings: str) -> dict[str, str]:
    env = dict(os.environ, LAKELINE_LOG_LEVEL="INFO", LAKELINE__RUNNER__WATCH_INTERVAL="0.2",
               LAKELINE__RUNNER__POLL_INTERVAL="0.05")
    env.update({f"LAKELINE__PIPELINES__TOTESYS__{k.upper()}": v for k, v in settings.items()})
    return env


def _tick_due(lake: Lake, expression: str) -> None:
    """Make a tick due now: the scheduler's memory says it last fired two minutes ago."""
    last = datetime.now(UTC) - timedelta(minutes=2)
    lake.state.put(SCHEDULES, "totesys", {"last": last.isoformat(), "expression": expression})


def _claimed(lake: Lake) -> bool:
    """True once serve's scheduler claimed a tick: it remembers a whole minute (rate(1 minute)
    fires on :00), not the time :func:`_tick_due` put there."""
    item = lake.state.get(SCHEDULES, "totesys")
    last = datetime.fromisoformat(str(item.data["last"])) if item is not None else None
    return last is not None and (last.second, last.microsecond) == (0, 0)


def _wait(what: str, ok: Callable[[], bool], timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not ok():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def _extractions(lake: Lake) -> list[dict[str, Any]]:
    return [r for r in lake.state.runs(limit=100) if r.get("pipeline") == "totesys" and r.get("key") == "extract"]


@pytest.fixture
def serve(home: Path, tmp_path: Path) -> Iterator[Callable[[dict[str, str]], tuple[subprocess.Popen[str], Path]]]:
    """Start `lakeline serve` (stderr to a file); every server started is stopped with SIGTERM."""
    started: list[subprocess.Popen[str]] = []

    def start(env: dict[str, str]) -> tuple[subprocess.Popen[str], Path]:
        log = tmp_path / f"serve-{len(started)}.log"
        proc = subprocess.Popen([LAKELINE, "--home", str(home), "serve"], env=env, stdout=subprocess.DEVNULL,
                                stderr=open(log, "w"), text=True)  # noqa: SIM115 - closed with the process
        started.append(proc)
        return proc, log

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _stop(proc: subprocess.Popen[str]) -> int:
    proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout=30)


# ---- settings --------------------------------------------------------------------------
def test_the_schedule_is_declared_once_a_source_is_configured(home: Path) -> None:
    assert TOTESYS.schedules(load_settings(home)) == []  # no source: every tick would fail and alert
    [default] = TOTESYS.schedules(load_settings(home, {"pipelines.totesys.source_url": "t.db"}))
    assert (default.name, default.expression) == ("totesys", "rate(30 minutes)")
    assert TOTESYS.schedules(load_settings(home, {"pipelines.totesys.source_url": "t.db",
                                                  "pipelines.totesys.schedule": ""})) == []
    shown = TOTESYS.describe(load_settings(home, {"pipelines.totesys.source_url_parameter": "/src",
                                                  "pipelines.totesys.schedule": "cron(0/15 * * * ? *)"}))
    assert shown["schedules"] == [{"name": "totesys", "expression": "cron(0/15 * * * ? *)"}]


@pytest.mark.parametrize(("expression", "reason"), [
    ("every 30 minutes", "is not a schedule expression"),
    ("rate(30 seconds)", "rate unit must be one of minute, minutes, hour, hours, day, days"),
    ("rate(0 minutes)", "rate value must be a positive integer"),
    ("rate(1 minutes)", "a value of 1 takes the singular unit"),
    ("cron(0 * * * *)", "a cron expression has 6 fields"),
    ("cron(0 * * * * *)", "one of day-of-month ('*') and day-of-week ('*') must be '?'"),
])
def test_a_bad_schedule_is_a_config_error_naming_key_and_forms(home: Path, expression: str, reason: str) -> None:
    toml = home / "lakeline.toml"
    toml.write_text(toml.read_text() + f'\n[pipelines.totesys]\nschedule = "{expression}"\n')
    with pytest.raises(ConfigError) as caught:
        TOTESYS.schedules(load_settings(home))
    message = str(caught.value)
    assert message.startswith(f"{toml}: pipelines.totesys.schedule ")
    assert reason in message
    assert message.endswith("allowed forms: rate(value unit) with unit minute(s), hour(s) or day(s), e.g. "
                            "rate(30 minutes); cron(minutes hours day-of-month month day-of-week year), e.g. "
                            "cron(0/30 * * * ? *); or \"\" to turn the schedule off")
    # serve refuses to start: exit 2 with the same message, nothing extracted
    out = subprocess.run([LAKELINE, "--home", str(home), "serve", "--json"], capture_output=True, text=True,
                         timeout=60, env=_env(source_url="unused.db"))
    assert out.returncode == 2, out.stderr
    error = orjson.loads(out.stdout)
    assert (error["code"], error["reason"]) == ("CONFIG_ERROR", message)
    assert _extractions(Lake.open(load_settings(home))) == []


# ---- ticks, in process -----------------------------------------------------------------
def test_a_tick_while_an_extraction_runs_is_skipped(home: Path, tmp_path: Path) -> None:
    db = tmp_path / "totesys.db"
    gen.create(str(db), scale=SCALE, seed=3)
    s = load_settings(home, {"pipelines.totesys.source_url": str(db), "pipelines.retail.schedule": "",
                             "pipelines.totesys.schedule": "cron(0 * * * ? *)"})
    lake = Lake.open(s)
    jobs = Jobs(lake, registry(s), since=datetime(2026, 3, 1, tzinfo=UTC))
    assert list(jobs.schedules) == ["totesys"]
    lake.state.put(LEASE_TABLE, LEASE_KEY, {"run_id": "manual-1"}, expires_at=time.time() + 600)
    [skipped] = jobs.fire_schedules(datetime(2026, 3, 1, 10, 30, tzinfo=UTC))
    assert (skipped.status, skipped.summary) == (
        "SKIPPED", "totesys scheduled extraction skipped: another totesys extraction is running "
                   "({'run_id': 'manual-1'}); try again when it has finished")
    assert list_packets(lake) == {} and _extractions(lake) == []
    assert jobs.fire_schedules(datetime(2026, 3, 1, 10, 59, tzinfo=UTC)) == []  # the 10:00 tick is spent
    lake.state.delete(LEASE_TABLE, LEASE_KEY)  # the other extraction ended
    extracted, processed = jobs.fire_schedules(datetime(2026, 3, 1, 11, 0, tzinfo=UTC))
    sizes = gen.sizes(SCALE)
    assert (extracted.status, extracted.data["rows"], extracted.data["packets"]) == (
        "SUCCEEDED", sum(sizes.values()), 11)
    assert extracted.summary == f"totesys scheduled extraction: {sum(sizes.values())} rows in 11 packets"
    assert (processed.status, processed.data["packets"], processed.data["facts"]) == (
        "SUCCEEDED", 11, {"fact_sales_order": 200, "fact_purchase_order": 20, "fact_payment": 70})
    assert lake.state.get(LEASE_TABLE, LEASE_KEY) is None
    assert jobs.fire_schedules(datetime(2026, 3, 1, 11, 30, tzinfo=UTC)) == []


def test_a_failing_scheduled_extraction_is_a_failed_report(home: Path, tmp_path: Path) -> None:
    s = load_settings(home, {"pipelines.totesys.source_url": f"postgresql://nobody@127.0.0.1:{_closed_port()}/x",
                             "pipelines.totesys.retries": 1, "pipelines.retail.schedule": ""})
    lake = Lake.open(s)
    jobs = Jobs(lake, registry(s), since=datetime(2026, 3, 1, tzinfo=UTC))
    [failed] = jobs.fire_schedules(datetime(2026, 3, 1, 0, 30, tzinfo=UTC))
    assert failed.status == "FAILED"
    assert failed.summary.startswith("totesys scheduled extraction failed: OperationalError: ")
    assert failed.summary.endswith("(lakeline runs --pipeline totesys shows the runs)")
    assert [(r["status"], r["mode"]) for r in _extractions(lake)] == [("FAILED", "incremental")]
    assert lake.params.get("/lakeline/totesys/consecutive_failed_runs") == "1"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ---- a killed extraction's lease expires ---------------------------------------------------
def test_a_killed_extractions_lease_expires(home: Path, tmp_path: Path) -> None:
    db = tmp_path / "totesys.db"
    gen.create(str(db), scale=SCALE, seed=3)
    env = _env(lease_seconds="5")
    env["LAKELINE_CRASH_AT"] = "totesys.extract.leased"
    killed = subprocess.run([LAKELINE, "--home", str(home), "extract", "--pipeline", "totesys", "--source",
                             str(db)], env=env, capture_output=True, text=True, timeout=60)
    assert killed.returncode == 137, killed.stderr
    lake = Lake.open(load_settings(home, {"pipelines.totesys.lease_seconds": 5}))
    held = lake.state.get(LEASE_TABLE, LEASE_KEY)
    assert held is not None and held.expires_at is not None
    with pytest.raises(LockedError, match=f"another totesys extraction is running .*{held.data['run_id']}"):
        extract(lake, str(db))
    _wait("the killed extraction's lease to expire", lambda: lake.state.get(LEASE_TABLE, LEASE_KEY) is None,
          timeout=20)
    assert time.time() >= held.expires_at
    report = extract(lake, str(db))
    assert (report.status, report.packets) == ("SUCCEEDED", 11)
    assert [r["status"] for r in _extractions(lake)] == ["SUCCEEDED"]  # the killed one logged nothing


def test_a_lost_lease_is_noticed_and_left_to_its_new_holder(home: Path) -> None:
    """A holder whose lease expired and was taken over fails its next renewal (the extraction
    renews before each table and each publish, so it stops there) and does not delete it."""
    lake = Lake.open(load_settings(home))
    mine = Lease(lake.state, "run-a", 600, {})
    mine.acquire()
    lake.state.put(LEASE_TABLE, LEASE_KEY, {"run_id": "run-b"})  # as if run-a's lease expired and b took it
    with pytest.raises(LockedError, match="totesys extraction run-a lost its lease"):
        mine.renew()
    mine.release()
    assert lake.state.get(LEASE_TABLE, LEASE_KEY).data == {"run_id": "run-b"}  # type: ignore[union-attr]


# ---- a real `lakeline serve` -----------------------------------------------------------------
def test_serve_extracts_on_schedule(home: Path, tmp_path: Path, serve: Any) -> None:
    db = tmp_path / "totesys.db"
    sizes = gen.create(str(db), scale=SCALE, seed=3)
    lake = Lake.open(load_settings(home))
    _tick_due(lake, "rate(1 minute)")
    proc, log = serve(_env(source_url=str(db), schedule="rate(1 minute)"))
    _wait("the scheduled extraction and its processing",
          lambda: _claimed(lake) and all(processed_packet_id(lake, t) == 1 for t in TABLES))
    assert {t: committed_packet_id(lake, t) for t in TABLES} == dict.fromkeys(TABLES, 1)
    con = connect(lake)
    facts = {t: con.execute(f"SELECT count(*) FROM gold.{t}").fetchall()[0][0]
             for t in ("fact_sales_order", "fact_purchase_order", "fact_payment")}
    assert facts == {"fact_sales_order": sizes["sales_order"], "fact_purchase_order": sizes["purchase_order"],
                     "fact_payment": sizes["payment"]} == {"fact_sales_order": 200, "fact_purchase_order": 20,
                                                          "fact_payment": 70}

    # the next tick extracts only what changed
    changed = gen.mutate(str(db), seed=1)["changed"]
    _tick_due(lake, "rate(1 minute)")
    _wait("the second scheduled extraction",
          lambda: _claimed(lake) and processed_packet_id(lake, "sales_order") == 2)
    con = connect(lake)
    assert con.execute("SELECT count(*) FROM gold.fact_sales_order").fetchall()[0][0] == 200 + changed["sales_order"]
    assert _stop(proc) == 0
    runs = _extractions(lake)
    assert all(r["status"] == "SUCCEEDED" and r["mode"] == "incremental" for r in runs)
    # every extraction is one fired tick (the two the test made due, plus a real minute if one
    # passed: those find nothing new), and each tick fired one extraction
    fired = [line for line in log.read_text().splitlines() if '"msg":"totesys scheduled extraction"' in line]
    assert len(runs) == len(fired) >= 2
    assert sorted(r["records"] for r in runs) == [0] * (len(runs) - 2) + sorted(
        [sum(changed.values()), sum(sizes.values())])


@pytest.mark.slow
@pytest.mark.xdist_group("totesys_pg")
def test_a_tick_during_a_running_extraction_does_not_start_a_second(
        home: Path, serve: Any, pg_database: Callable[[str], str]) -> None:  # noqa: F811
    """`lakeline extract` holds the lease while PostgreSQL blocks its first read (the test
    locks the table); the scheduled tick of `lakeline serve` meanwhile is skipped. One
    extraction, one packet per table."""
    src = pg_database("sched")
    sizes = gen.create(src, scale=SCALE, seed=3)
    lake = Lake.open(load_settings(home))
    with psycopg.connect(src) as blocker:
        blocker.execute(f'LOCK TABLE "{TABLES[0]}" IN ACCESS EXCLUSIVE MODE')  # held until the block ends
        manual = subprocess.Popen([LAKELINE, "--home", str(home), "extract", "--pipeline", "totesys", "--source",
                                   src, "--json"], env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True)
        _wait("the manual extraction's lease", lambda: lake.state.get(LEASE_TABLE, LEASE_KEY) is not None,
              timeout=60)
        holder = lake.state.get(LEASE_TABLE, LEASE_KEY)
        assert holder is not None
        _tick_due(lake, "rate(1 minute)")
        proc, log = serve(_env(source_url=src, schedule="rate(1 minute)"))
        _wait("the scheduled tick to be skipped",
              lambda: "totesys scheduled extraction skipped" in log.read_text(), timeout=60)
        assert manual.poll() is None and list_packets(lake) == {}
        assert lake.state.get(LEASE_TABLE, LEASE_KEY).data["run_id"] == holder.data["run_id"]  # type: ignore[union-attr]
    # the lock is released: the manual extraction finishes, alone
    out, err = manual.communicate(timeout=60)
    assert manual.returncode == 0, err
    report = orjson.loads(out)
    assert (report["status"], report["rows"], report["packets"]) == ("SUCCEEDED", sum(sizes.values()), 11)
    _wait("serve to process the packets", lambda: all(processed_packet_id(lake, t) == 1 for t in TABLES))
    assert _stop(proc) == 0
    assert {t: sorted(ids) for t, ids in list_packets(lake).items()} == {t: [1] for t in TABLES}
    runs = _extractions(lake)
    assert [r["records"] for r in runs if r["records"]] == [sum(sizes.values())]  # one extraction read rows
    assert all(r["status"] == "SUCCEEDED" for r in runs)
    # the pipeline's own lines (serve also logs each scheduled job's report: "scheduled job: …")
    skipped = [doc for line in log.read_text().splitlines() if line.startswith("{")
               and str((doc := orjson.loads(line)).get("msg", "")).startswith("totesys scheduled extraction skipped")]
    assert skipped and all(holder.data["run_id"] in line["reason"] for line in skipped)
