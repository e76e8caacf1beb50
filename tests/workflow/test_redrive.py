"""RedriveExecution on the local engine (AWS semantics): a FAILED execution restarts at the
state that failed, with that state's input; earlier states are not run again, and a Map or
Parallel state reruns only its iterations/branches that did not succeed. Execution references
resolve by ARN, name or unique name prefix."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from lakeline.errors import UsageError
from lakeline.lake import Lake
from lakeline.ports.state import StateStore
from lakeline.workflow import engine
from lakeline.workflow.engine import (
    REDRIVE_TABLE,
    TaskRegistry,
    load_execution,
    redrive_execution,
    resolve_execution,
    resume_execution,
    resume_or_fail,
    run_definition,
)
from tests.functional.helpers import settings


def _task(fn: str, **extra: Any) -> dict[str, Any]:
    return {"Type": "Task", "Resource": f"arn:aws:lambda:us-east-1:000000000000:function:{fn}", **extra}


MAP_MACHINE = {
    "StartAt": "Prepare",
    "States": {
        "Prepare": _task("prepare", Next="Each"),
        "Each": {"Type": "Map", "ItemsPath": "$.items", "MaxConcurrency": 1, "ResultPath": "$.squares",
                 "ItemProcessor": {"StartAt": "Square", "States": {"Square": _task("square", End=True)}},
                 "Next": "Sum"},
        "Sum": _task("sum", End=True),
    },
}


@pytest.fixture
def store(home: Path) -> StateStore:
    return Lake.open(settings(home)).state


class Tasks:
    """Task functions that record their calls; ``broken`` makes ``square`` fail on 4."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.broken = True

    def registry(self) -> TaskRegistry:
        def prepare(p: dict[str, Any]) -> dict[str, Any]:
            self.calls.append(("prepare", None))
            return {"items": [1, 2, 3, 4]}

        def square(n: int) -> int:
            self.calls.append(("square", n))
            if self.broken and n == 4:
                raise RuntimeError("cannot square 4 today")
            return n * n

        def total(p: dict[str, Any]) -> int:
            self.calls.append(("sum", None))
            return sum(p["squares"])

        return TaskRegistry({"prepare": prepare, "square": square, "sum": total})


def test_redrive_reruns_only_the_failed_map_iteration(store: StateStore) -> None:
    t = Tasks()
    ex = run_definition(MAP_MACHINE, {}, tasks=t.registry(), name="m1", store=store)
    assert (ex.status, ex.error, ex.cause) == ("FAILED", "RuntimeError", "cannot square 4 today")
    assert t.calls == [("prepare", None), ("square", 1), ("square", 2), ("square", 3), ("square", 4)]
    assert len(store.query(REDRIVE_TABLE, f"{ex.execution_arn}#Each#")) == 3  # the kept iterations
    t.calls.clear()
    t.broken = False
    done = redrive_execution(store, ex.execution_arn, tasks=t.registry())
    assert (done.status, done.output, done.redrive_count, done.error) == ("SUCCEEDED", 30, 1, None)
    assert t.calls == [("square", 4), ("sum", None)]
    stored = load_execution(store, ex.execution_arn)
    assert stored is not None and (stored.status, stored.output, stored.redrive_count) == ("SUCCEEDED", 30, 1)
    assert stored.redrive_date is not None
    types = [e["type"] for e in stored.history]
    at = types.index("ExecutionRedriven")
    assert types[at - 1] == "ExecutionFailed" and types[-1] == "ExecutionSucceeded"
    assert stored.history[at]["executionRedrivenEventDetails"] == {"redriveCount": 1}
    assert [e["id"] for e in stored.history] == list(range(1, len(stored.history) + 1))
    assert store.query(REDRIVE_TABLE) == []  # nothing kept once the Map succeeded


@pytest.mark.parametrize("flush_seconds", [0.0, 60.0])
def test_a_crash_inside_the_map_resumes_or_redrives_only_the_unfinished_iterations(
        store: StateStore, monkeypatch: pytest.MonkeyPatch, flush_seconds: float) -> None:
    # finished iterations' outputs are kept in groups (at most HISTORY_FLUSH_SECONDS late):
    # with 0 each is written at once and only the unfinished one reruns; with a group still
    # unwritten at the crash, the iterations of that group rerun too — the result is the same
    monkeypatch.setattr(engine, "HISTORY_FLUSH_SECONDS", flush_seconds)
    rerun = [("square", 4)] if flush_seconds == 0 else [("square", n) for n in (1, 2, 3, 4)]
    t = Tasks()
    reg = t.registry()
    square = reg.resolve("square", None)[0]

    def dies_on_4(n: int) -> Any:
        if n == 4 and t.broken:
            raise KeyboardInterrupt  # the process dies inside iteration 3
        return square(n)

    reg.register("square", dies_on_4)
    for name in ("crash1", "crash2"):
        with pytest.raises(KeyboardInterrupt):
            run_definition(MAP_MACHINE, {}, tasks=reg, name=name, store=store)
    arn1, arn2 = (f"arn:aws:states:us-east-1:000000000000:execution:lakeline-local:{n}" for n in ("crash1", "crash2"))
    t.broken = False
    t.calls.clear()
    resumed = resume_execution(store, arn1, tasks=reg)  # `lakeline run` resumes a RUNNING one
    assert (resumed.status, resumed.output, sorted(t.calls)) == ("SUCCEEDED", 30, [*rerun, ("sum", None)])
    assert resume_or_fail(store, arn2, "worker process died").status == "FAILED"
    t.calls.clear()
    redriven = redrive_execution(store, arn2, tasks=reg)  # a dead one marked FAILED is redriven
    assert (redriven.status, redriven.output, sorted(t.calls)) == ("SUCCEEDED", 30, [*rerun, ("sum", None)])


def test_redrive_restarts_at_a_failed_task_after_the_map(store: StateStore) -> None:
    t = Tasks()
    t.broken = False
    reg = t.registry()
    reg.register("sum", lambda p: (_ for _ in ()).throw(ValueError("sum is down")))
    ex = run_definition(MAP_MACHINE, {}, tasks=reg, name="m2", store=store)
    assert (ex.status, ex.error) == ("FAILED", "ValueError")
    t.calls.clear()
    done = redrive_execution(store, ex.execution_arn, tasks=t.registry())
    assert (done.status, done.output) == ("SUCCEEDED", 30)
    assert t.calls == [("sum", None)]  # the Map is not run again: Sum gets its recorded input


def test_redrive_reruns_only_the_failed_parallel_branch(store: StateStore) -> None:
    calls: list[str] = []
    broken = {"b": True}
    a_done = threading.Event()  # b fails only after a succeeded (else a may be aborted first)

    def fn(name: str) -> Any:
        def run(p: Any) -> str:
            if name == "b":
                assert a_done.wait(10)
            calls.append(name)
            a_done.set()
            if broken.get(name):
                raise RuntimeError(f"{name} failed")
            return name
        return run

    machine = {"StartAt": "Both", "States": {"Both": {"Type": "Parallel", "End": True, "Branches": [
        {"StartAt": "A", "States": {"A": _task("a", End=True)}},
        {"StartAt": "B", "States": {"B": _task("b", End=True)}}]}}}
    reg = TaskRegistry({"a": fn("a"), "b": fn("b")})
    ex = run_definition(machine, {}, tasks=reg, name="p1", store=store)
    assert ex.status == "FAILED" and sorted(calls) == ["a", "b"]
    calls.clear()
    broken["b"] = False
    done = redrive_execution(store, ex.execution_arn, tasks=reg)
    assert (done.status, done.output, calls) == ("SUCCEEDED", ["a", "b"], ["b"])


def test_only_failed_timed_out_or_aborted_executions_are_redriven(store: StateStore) -> None:
    ok = run_definition({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}, {"x": 1},
                        name="fine", store=store)
    with pytest.raises(UsageError, match="execution fine is SUCCEEDED and cannot be redriven") as info:
        redrive_execution(store, ok.execution_arn)
    assert info.value.code == "EXECUTION_NOT_REDRIVABLE"
    with pytest.raises(UsageError, match="no execution"):
        redrive_execution(store, ok.execution_arn + "-nope")
    # a Fail state fails again when redriven (the cause is in the definition)
    failing = run_definition({"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "Nope"}}}, {},
                             name="fails", store=store)
    again = redrive_execution(store, failing.execution_arn)
    assert (again.status, again.error, again.redrive_count) == ("FAILED", "Nope", 1)


def test_resolve_execution_by_arn_name_or_unique_prefix(store: StateStore) -> None:
    machine = {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}
    arns = {n: run_definition(machine, {}, name=n, store=store).execution_arn
            for n in ("carbon-0a1b", "carbon-0a2c", "carbon-7f00", "carbon")}
    assert resolve_execution(store, arns["carbon-7f00"]) == arns["carbon-7f00"]
    assert resolve_execution(store, "carbon-7f00") == arns["carbon-7f00"]
    assert resolve_execution(store, "carbon-7") == arns["carbon-7f00"]
    assert resolve_execution(store, "carbon") == arns["carbon"]  # an exact name wins over prefixes
    assert resolve_execution(store, "carbon-0a2") == arns["carbon-0a2c"]
    with pytest.raises(UsageError, match=r"'carbon-0a' matches 2 executions: carbon-0a1b, carbon-0a2c; "
                                         "give more of the name") as amb:
        resolve_execution(store, "carbon-0a")
    assert amb.value.code == "AMBIGUOUS_EXECUTION"
    with pytest.raises(UsageError, match=r"no execution 'zz'.*recent executions: .*carbon-0a1b") as unknown:
        resolve_execution(store, "zz")
    assert unknown.value.code == "EXECUTION_NOT_FOUND"
    with pytest.raises(UsageError, match="no execution ''"):
        resolve_execution(store, "")


def test_redrive_and_resume_keep_the_variables_assigned_before(store: StateStore) -> None:
    """Variables assigned before the state that failed are there when a redrive (or a resume
    after a crash) restarts it, as on Step Functions."""
    up = {"ok": False}

    def flaky(payload: Any) -> Any:
        if not up["ok"]:
            raise ValueError("down")
        return payload

    machine = {
        "QueryLanguage": "JSONata",
        "StartAt": "Set",
        "States": {
            "Set": {"Type": "Pass", "Assign": {"factor": 3, "who": "{% $states.input.who %}"}, "Next": "Call"},
            "Call": {**_task("flaky", Next="Done"), "Arguments": {"n": "{% 14 * $factor %}", "who": "{% $who %}"}},
            "Done": {"Type": "Pass", "Output": {"got": "{% $states.input %}", "factor": "{% $factor %}"}, "End": True},
        },
    }
    reg = TaskRegistry({"flaky": flaky})
    ex = run_definition(machine, {"who": "ann"}, tasks=reg, name="vars", store=store)
    assert (ex.status, ex.error) == ("FAILED", "ValueError")
    up["ok"] = True
    done = redrive_execution(store, ex.execution_arn, tasks=reg)
    assert (done.status, done.output) == ("SUCCEEDED", {"got": {"n": 42, "who": "ann"}, "factor": 3})
