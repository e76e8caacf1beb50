"""No stranded carbon file (seed 003): a workflow that fails after the quality gate is reported
FAILED, notified, listed by ``failures()`` and ``run_log()``, and finished by a redrive (or a new
landing of the same file) without duplicating a row of gold.emissions."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from lakeline.errors import UsageError
from lakeline.lake import Lake
from lakeline.pipelines.base import task_registry
from lakeline.pipelines.carbon import job
from lakeline.pipelines.carbon.factors import packaged_path
from lakeline.pipelines.carbon.pipeline import CARBON, definition
from lakeline.workflow.engine import REDRIVE_TABLE, load_execution, redrive_execution
from tests.functional.helpers import land, query, run, settings
from tests.functional.test_carbon_pipeline import KEY, ROWS, _csv

GOLD = ("SELECT activity_event_id, count(*), any_value(emissions_output.calculated_emissions.co2e.ar4.amount) "
        "FROM gold.emissions GROUP BY 1 ORDER BY 1")


def _notes(s: Any) -> list[dict[str, Any]]:
    path = s.outbox_dir / "notifications.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _carbon(summary: dict[str, Any]) -> list[dict[str, Any]]:
    return [b for b in summary["batch_runs"] if b.get("pipeline") == "carbon"]


def _assert_gold(lake: Lake) -> None:
    got = query(lake, GOLD)
    assert [(r[0], r[1]) for r in got] == [("e1", 1), ("e2", 1), ("e3", 1)]
    assert [r[2] for r in got] == [pytest.approx(0.07932482325, rel=1e-12), pytest.approx(0.473987524, rel=1e-12),
                                   pytest.approx(0.025708, rel=1e-12)]


@pytest.fixture
def broken(home: Path):  # type: ignore[no-untyped-def]
    """A lake whose configured factor table is broken (the quality gate does not read it)."""
    (home / "factors.csv").write_text("scope,category\n1,mobile-combustion\n")
    s = settings(home, pipelines__carbon__batch_size=2, pipelines__carbon__max_concurrency=1,
                 pipelines__carbon__factors="factors.csv")
    return Lake.open(s), s, home / "factors.csv"


def test_a_bad_factor_table_fails_after_the_gate_is_reported_listed_and_redriven(broken) -> None:  # type: ignore[no-untyped-def]
    lake, s, factors = broken
    land(lake, KEY, _csv(ROWS))
    [report] = [r for r in CARBON.run(lake) if r.pipeline == "carbon"]
    name = report.data["execution_name"]
    command = f"lakeline workflow redrive {name}"
    assert (report.status, report.data["error"], report.data["state"]) == ("FAILED", "ConfigError",
                                                                             "CalculateBatches")
    assert KEY in report.summary and f"`{command}`" in report.summary and "missing column" in report.summary
    # past the gate: the file is in raw, not in landing; nothing reached gold
    assert lake.store.exists("raw", KEY) and not lake.store.exists("landing", KEY)
    assert query(lake, "SELECT count(*) FROM information_schema.tables WHERE table_name = 'emissions'") == [(0,)]
    [note] = [n for n in _notes(s) if n["subject"] == job.NOTIFY_SUBJECT]
    assert KEY in note["message"] and command in note["message"]
    [failure] = CARBON.failures(lake)
    assert (failure.pipeline, failure.what, failure.command) == ("carbon", KEY, command)
    assert failure.error.startswith(f"execution {name} FAILED in state CalculateBatches: ConfigError: ")
    [entry] = CARBON.run_log(lake, 10)
    assert (entry.kind, entry.run_id, entry.status, entry.key, entry.loaded) == ("job", name, "FAILED", KEY, None)
    assert entry.error is not None and entry.error.startswith("ConfigError: ")
    assert entry.detail["state"] == "CalculateBatches" and entry.detail["redrive_count"] == 0

    # the next run neither starts it again nor notifies again: it waits for a person
    assert CARBON.run(lake) == []
    assert len([n for n in _notes(s) if n["subject"] == job.NOTIFY_SUBJECT]) == 1
    assert CARBON.failures(lake) == [failure]

    # a redrive before the cause is fixed fails again, and is still listed
    again = redrive_execution(lake.state, report.data["execution"], tasks=task_registry(lake, CARBON.tasks()))
    assert (again.status, again.error, again.redrive_count) == ("FAILED", "ConfigError", 1)
    assert [f.what for f in CARBON.failures(lake)] == [KEY]

    shutil.copyfile(packaged_path(), factors)  # the cause, fixed
    done = redrive_execution(lake.state, report.data["execution"], tasks=task_registry(lake, CARBON.tasks()))
    assert (done.status, done.redrive_count, done.output["calculated"], done.output["failed"]) == (
        "SUCCEEDED", 2, 3, 2)
    types = [e["type"] for e in done.history]
    assert types.count("ExecutionRedriven") == 2 and types[-1] == "ExecutionSucceeded"
    # a redrive restarts at the failed state: Kickoff, DataQuality and Split ran once
    assert [e["stateEnteredEventDetails"]["name"] for e in done.history
            if e["type"] == "TaskStateEntered"].count("Split") == 1
    _assert_gold(lake)
    assert CARBON.failures(lake) == []
    [entry] = CARBON.run_log(lake, 10)
    assert (entry.status, entry.records, entry.loaded, entry.rejected, entry.detail["redrive_count"]) == (
        "SUCCEEDED", 5, 3, 2, 2)
    # a succeeded execution cannot be redriven: nothing written twice
    with pytest.raises(UsageError, match="is SUCCEEDED and cannot be redriven") as info:
        redrive_execution(lake.state, report.data["execution"], tasks=task_registry(lake, CARBON.tasks()))
    assert info.value.code == "EXECUTION_NOT_REDRIVABLE"
    _assert_gold(lake)
    assert lake.state.query(REDRIVE_TABLE) == []


def test_landing_the_file_again_finishes_a_failed_one(broken) -> None:  # type: ignore[no-untyped-def]
    lake, s, factors = broken
    land(lake, KEY, _csv(ROWS))
    [failed] = _carbon(run(s))
    assert failed["status"] == "FAILED" and [f.what for f in CARBON.failures(lake)] == [KEY]
    shutil.copyfile(packaged_path(), factors)
    land(lake, KEY, _csv(ROWS))
    [done] = _carbon(run(s))
    assert (done["status"], done["calculated"]) == ("SUCCEEDED", 3)
    _assert_gold(lake)
    assert CARBON.failures(lake) == []  # the newer execution of the key superseded the failed one
    entries = CARBON.run_log(lake, 10)
    assert [(e.status, e.run_id) for e in entries] == [("SUCCEEDED", done["execution_name"]),
                                                       ("FAILED", failed["execution_name"])]
    assert [e.run_id for e in CARBON.run_log(lake, 1)] == [done["execution_name"]]


def test_a_map_iteration_failing_is_redriven_alone(home: Path) -> None:
    """A crash inside one Map iteration: the redrive runs that iteration only (the others'
    results are kept) and publishes every row once."""
    s = settings(home, pipelines__carbon__batch_size=2, pipelines__carbon__max_concurrency=1)
    lake = Lake.open(s)
    land(lake, KEY, _csv(ROWS))
    tasks = task_registry(lake, CARBON.tasks())
    real = tasks.resolve("lakeline-carbon-calculate", None)[0]

    def crash_on_last_batch(payload: dict[str, Any]) -> Any:
        if payload["storage_location"].endswith("part_2.parquet"):
            raise RuntimeError("worker lost")
        return real(payload)

    tasks.register("lakeline-carbon-calculate", crash_on_last_batch)
    [report] = job.run_pending(lake, tasks, definition())
    assert (report["status"], report["error"], report["state"]) == ("FAILED", "RuntimeError", "CalculateBatches")
    assert [f.what for f in CARBON.failures(lake)] == [KEY]
    done = redrive_execution(lake.state, report["execution"], tasks=task_registry(lake, CARBON.tasks()))
    assert done.status == "SUCCEEDED"
    ex = load_execution(lake.state, report["execution"])
    assert ex is not None
    redriven = next(i for i, e in enumerate(ex.history) if e["type"] == "ExecutionRedriven")
    started = [e["mapIterationStartedEventDetails"]["index"] for e in ex.history[redriven:]
               if e["type"] == "MapIterationStarted"]
    assert started == [2]  # iterations 0 and 1 succeeded before: not run again
    assert (done.output["calculated"], done.output["failed"]) == (3, 2)
    _assert_gold(lake)
    assert lake.lineage.counts(done.output["root_id"])["CALCULATION_COMPLETE"] == 3
    assert CARBON.failures(lake) == []


def test_a_file_failing_its_quality_rules_is_logged_but_not_a_failure(home: Path) -> None:
    s = settings(home)
    lake = Lake.open(s)
    land(lake, KEY, _csv([ROWS[0], ROWS[0]]))
    [report] = CARBON.run(lake)
    assert (report.status, report.data["error"]) == ("FAILED", "DataQualityCheckFailed")
    assert "redrive" not in report.summary and "command" not in report.data
    assert CARBON.failures(lake) == []  # gated to error and notified by the gate
    assert [n["subject"] for n in _notes(s)] == ["Data Quality check failed"]
    [entry] = CARBON.run_log(lake, 10)
    assert (entry.status, entry.detail["state"]) == ("FAILED", "DataQualityFailed")
    assert entry.error is not None and entry.error.startswith("DataQualityCheckFailed: ")
