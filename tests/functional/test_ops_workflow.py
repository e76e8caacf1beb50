"""The seed's ops workflow stands alone: `lakeline workflow run ops_replay_quality` with the seed's
own input replays a window, loads the copies itself (no `serve` beside it), and the counts
reconcile; beside another runner it leaves the work to that runner; bad input fails at once."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner

from lakeline.cli.main import cli
from lakeline.lake import Lake
from lakeline.pipelines.registry import registry
from lakeline.pipelines.tasks import lake_tasks
from lakeline.runner import process_queues, runner_lock
from tests.functional.helpers import land, query, rec, run, settings

FAST = {"LAKELINE__QUEUE__RETRY_DELAY": "0", "LAKELINE__RUNNER__POLL_INTERVAL": "0.01"}
#: the seed's start-execution input, verbatim but for the local bucket names and a short poll
SEED_INPUT = {
    "bronze_bucket": "landing", "src_prefix": "bronze/shipments/", "dest_prefix_base": "bronze/replay/manual",
    "window_hours": 24, "silver_bucket": "silver", "silver_prefix": "silver", "record_type": "shipments",
    "min_parquet_objects": 1, "poll_interval_seconds": 0, "max_attempts": 2,
}


def jsonl(n: int, first: int = 0, day: str = "2026-01-05") -> bytes:
    return b"".join(orjson.dumps(rec(shipment_id=f"shp_{i:012d}", event_time=f"{day}T10:00:00Z")) + b"\n"
                    for i in range(first, first + n))


def workflow(home: Path, name: str, payload: dict[str, Any], execution: str) -> tuple[int, dict[str, Any]]:
    result = CliRunner().invoke(cli, ["workflow", "run", name, "--json", "--execution-name", execution,
                                      "--input", json.dumps(payload)],
                                env={"LAKELINE_HOME": str(home), **FAST}, catch_exceptions=False)
    return result.exit_code, json.loads(result.stdout)


def count(lake: Lake) -> int:
    return int(query(lake, "SELECT count(*) FROM silver.shipments")[0][0])


@pytest.fixture
def lake(home: Path) -> Lake:
    lk = Lake.open(settings(home))
    land(lk, "shipments/2026/a.jsonl", jsonl(40))
    land(lk, "shipments/2026/b.jsonl", jsonl(25, first=100, day="2026-01-06"))
    assert run(lk.settings)["loaded"] == 65
    return lk


def test_seed_input_replays_loads_and_reconciles_without_serve(lake: Lake, home: Path) -> None:
    code, ex = workflow(home, "ops_replay_quality", SEED_INPUT, "ops-1")
    assert (code, ex["status"]) == (0, "SUCCEEDED"), ex
    out = ex["output"]
    replayed = out["replay"]["value"]
    assert (replayed["scanned"], replayed["copied"], replayed["dest_prefix"]) == (
        2, 2, "shipments/replay/manual/ops-1/")
    assert (replayed["src_prefix"], replayed["bronze_bucket"], replayed["pipeline"]) == (
        "shipments/", "landing", "shipments")
    processed = out["process"]["value"]
    assert (processed["processed"], processed["ingested_objects"], processed["loaded"], processed["copies"]) == (
        True, 2, 65, 2)
    assert (out["quality"]["value"]["ok"], out["quality"]["value"]["new_parquet_objects"]) == (True, 2)
    assert out["state"]["attempt"] == 1
    assert count(lake) == 65  # the copies superseded the originals' rows
    assert lake.ingest_queue.counts().total == 0 and lake.transform_queue.counts().total == 0
    landed = sorted(i.key for i in lake.store.list("landing", "shipments/replay/"))
    assert landed == ["shipments/replay/manual/ops-1/shipments/2026/a.jsonl",
                      "shipments/replay/manual/ops-1/shipments/2026/b.jsonl"]


@pytest.fixture
def other_runner(home: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process holding the runner lock, as a running `lakeline run` would."""
    code = textwrap.dedent(f"""
        import sys
        from lakeline.config import load_settings
        from lakeline.runner import runner_lock
        with runner_lock(load_settings({str(home)!r})):
            print("locked", flush=True)
            sys.stdin.read()
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
        yield proc
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(timeout=30)


def test_beside_another_runner_it_leaves_the_work_to_it(lake: Lake, home: Path,
                                                        other_runner: subprocess.Popen[str]) -> None:
    code, ex = workflow(home, "ops_replay_quality", dict(SEED_INPUT, max_attempts=1), "ops-busy")
    assert (code, ex["status"], ex["error"]) == (1, "FAILED", "QualityCheckFailed")
    history = CliRunner().invoke(cli, ["workflow", "history", ex["executionArn"], "--json"],
                                 env={"LAKELINE_HOME": str(home)})
    exited = [e["stateExitedEventDetails"] for e in json.loads(history.stdout)["events"]
              if e["type"] == "TaskStateExited"]
    processed = json.loads(next(d for d in exited if d["name"] == "Process")["output"])["process"]["value"]
    assert processed["processed"] is False
    assert f"(pid {other_runner.pid}); wait for it or stop it; that runner loads the replayed objects" in (
        processed["reason"])
    assert lake.ingest_queue.counts().total == 2  # the copies wait for the runner holding the lock
    assert count(lake) == 65
    assert other_runner.stdin is not None
    other_runner.stdin.close()  # that runner ends; the next run loads the copies, once
    other_runner.wait(timeout=30)
    assert run(lake.settings)["loaded"] == 65
    assert count(lake) == 65


def test_inside_the_runner_of_this_process_it_works_as_one_more_worker(lake: Lake, home: Path) -> None:

    with runner_lock(lake.settings):  # held in this process: like a [[rules]] workflow inside serve
        code, ex = workflow(home, "ops_replay_quality", SEED_INPUT, "ops-in-serve")
    assert (code, ex["status"]) == (0, "SUCCEEDED"), ex
    assert ex["output"]["process"]["value"]["loaded"] == 65
    assert count(lake) == 65


@pytest.mark.parametrize(("change", "error", "cause"), [
    ({"bronze_bucket": "elsewhere"}, "NotFoundError",
     "bronze_bucket 'elsewhere' is not this lake's landing bucket 'landing'"),
    ({"src_prefix": "bronze/nope/"}, "UsageError", "unknown pipeline 'nope'"),
    ({"src_prefix": "bronze/shipments/", "pipeline": "retail"}, "UsageError",
     "src_prefix 'bronze/shipments/' is not under pipeline retail' landing prefix 'retail/'"),
    ({"dest_prefix_base": "bronze/elsewhere"}, "UsageError",
     "dest_prefix_base 'bronze/elsewhere' must be under replay/"),
    ({"silver_bucket": "gold"}, "NotFoundError", "silver_bucket 'gold' is not this lake's silver bucket 'silver'"),
])
def test_bad_input_fails_at_once_naming_the_field(lake: Lake, home: Path, change: dict[str, Any], error: str,
                                                  cause: str) -> None:
    code, ex = workflow(home, "ops_replay_quality", dict(SEED_INPUT, **change), "ops-bad")
    assert (code, ex["status"], ex["error"]) == (1, "FAILED", error)
    assert cause in ex["cause"]
    history = CliRunner().invoke(cli, ["workflow", "history", ex["executionArn"], "--json"],
                                 env={"LAKELINE_HOME": str(home)})
    failed = [e for e in json.loads(history.stdout)["events"] if e["type"] == "TaskFailed"]
    assert len(failed) == 1  # no retries of a usage error
    if "silver_bucket" not in change:
        assert list(lake.store.list("landing", "shipments/replay/")) == []  # nothing copied
    assert count(lake) == 65


def test_quality_gate_writes_under_result_prefix(lake: Lake, home: Path) -> None:
    code, ex = workflow(home, "quality_gate", {"record_type": "shipments", "dt": "2026-01-05",
                                               "result_prefix": "ge/results/"}, "gate-1")
    assert (code, ex["status"]) == (0, "SUCCEEDED"), ex
    value = ex["output"]["result"]["value"]
    assert value["result_key"] == "ge/results/shipments/dt=2026-01-05/run_gate-1.json"
    stored = json.loads(lake.store.get("gold", value["result_key"]))
    assert (stored["success"], stored["statistics"]["rows"]) == (True, 40)
    assert lake.store.exists("gold", "ge/results/shipments/dt=2026-01-05/run_gate-1.html")
    assert not lake.store.exists("gold", "_quality/results/shipments/dt=2026-01-05/run_gate-1.json")
    code, ex = workflow(home, "quality_gate", {"record_type": "shipments", "dt": "2026-01-05"}, "gate-2")
    assert ex["output"]["result"]["value"]["result_key"] == "_quality/results/shipments/dt=2026-01-05/run_gate-2.json"


@pytest.mark.parametrize(("prefix", "cause"), [
    ("../outside", "result_prefix '../outside' escapes the gold zone"),
    ("/etc/results", "result_prefix '/etc/results' escapes the gold zone"),
    ("s3://other/ge", "result_prefix 's3://other/ge' names a bucket"),
])
def test_quality_gate_result_prefix_must_stay_in_gold(lake: Lake, home: Path, prefix: str, cause: str) -> None:
    before = sorted(i.key for i in lake.store.list("gold"))
    code, ex = workflow(home, "quality_gate", {"record_type": "shipments", "dt": "2026-01-05",
                                               "result_prefix": prefix}, "gate-bad")
    assert (code, ex["status"], ex["error"]) == (1, "FAILED", "UsageError")
    assert ex["cause"].startswith(cause)
    assert sorted(i.key for i in lake.store.list("gold")) == before
    assert not (home / "zones" / "outside").exists()


@pytest.mark.parametrize(("silver_prefix", "fresh"), [("silver", 2), ("silver/", 2), (None, 2),
                                                      ("silver_compacted", 0), ("silver/other", 0)])
def test_quality_check_reads_under_the_seed_silver_prefix(lake: Lake, silver_prefix: str | None,
                                                           fresh: int) -> None:

    given = {} if silver_prefix is None else {"silver_prefix": silver_prefix}
    check, payload, _ = lake_tasks(lake, registry(lake.settings), drive=process_queues).resolve(
        "arn:aws:states:::lambda:invoke", {"FunctionName": "lakeline-quality-check", "Payload": {
            "input": given, "record_type": "shipments", "min_parquet_objects": 1, "since": "2000-01-01T00:00:00Z"}})
    assert check(payload)["new_parquet_objects"] == fresh
