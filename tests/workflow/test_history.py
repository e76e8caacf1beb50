"""Reading an execution's history as the Step Functions console shows it
(:mod:`lakeline.workflow.history`): each event placed in its state and Map iteration, what
happened to every state (succeeded, failed, caught or retried, aborted, running, not reached),
each entry's input and output, a Map's iteration counts, nested Maps, Parallel branches, a
redrive."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from lakeline.lake import Lake
from lakeline.workflow.engine import Execution, TaskRegistry, redrive_execution, run_definition
from lakeline.workflow.errors import TaskError
from lakeline.workflow.history import iteration_key, read, walk
from tests.functional.helpers import settings

FN = "arn:aws:lambda:us-east-1:000000000000:function:"


def _task(fn: str, **extra: Any) -> dict[str, Any]:
    return {"Type": "Task", "Resource": FN + fn, **extra}


def _run(machine: dict[str, Any], data: Any, **fns: Any) -> Execution:
    return run_definition(machine, data, tasks=TaskRegistry(fns), sleep=lambda s: None, max_workers=4)


def _bad(error: str, cause: str) -> Any:
    def fn(payload: Any) -> Any:
        raise TaskError(error, cause)
    return fn


def test_walk_lists_every_state_with_its_arrows_and_nested_states():
    machine = {
        "StartAt": "Pick",
        "States": {
            "Pick": {"Type": "Choice", "Choices": [
                {"Variable": "$.n", "NumericGreaterThanEqualsPath": "$.max", "Next": "Both"},
                {"And": [{"Variable": "$.a", "IsPresent": True}], "Next": "Stop"}], "Default": "Each"},
            "Each": {"Type": "Map", "ItemProcessor": {"StartAt": "One", "States": {"One": _task("one", End=True)}},
                     "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Stop"}], "Next": "Both"},
            "Both": {"Type": "Parallel", "End": True, "Branches": [
                {"StartAt": "Left", "States": {"Left": {"Type": "Pass", "End": True}}},
                {"StartAt": "Right", "States": {"Right": {"Type": "Pass", "End": True}}}]},
            "Stop": {"Type": "Fail", "Error": "Stopped"},
        },
    }
    states = walk(machine)
    assert [(s.path, s.type, s.parent, s.terminal, s.start) for s in states] == [
        ("Pick", "Choice", None, False, True), ("Each", "Map", None, False, False),
        ("Each/One", "Task", "Each", True, True), ("Both", "Parallel", None, True, False),
        ("Both/Left", "Pass", "Both", True, True), ("Both/Right", "Pass", "Both", True, True),
        ("Stop", "Fail", None, True, False)]
    arrows = {s.path: [(t.target, t.kind, t.label) for t in s.transitions] for s in states}
    assert arrows["Pick"] == [("Both", "choice", "$.n >= $.max"), ("Stop", "choice", "And"),
                              ("Each", "default", "Default")]
    assert arrows["Each"] == [("Both", "next", ""), ("Stop", "catch", "Catch States.ALL")]
    assert states[2].definition == machine["States"]["Each"]["ItemProcessor"]["States"]["One"]


def test_a_map_s_iterations_each_have_their_own_entries():
    machine = {"StartAt": "Each", "States": {"Each": {
        "Type": "Map", "ItemsPath": "$.items", "End": True,
        "ItemProcessor": {"StartAt": "Double", "States": {"Double": _task("double", End=True)}}}}}
    ex = _run(machine, {"items": [1, 2, 3, 4]}, double=lambda n: n * 2)
    r = read(ex)
    assert r.counts("Each") == {"succeeded": 4}
    assert sorted(r.iterations["Each"]) == [f"Each#{i}" for i in range(4)]
    for i in range(4):
        [run] = r.runs[(iteration_key("", "Each", i), "Each/Double")]
        assert (run.status, json.loads(run.input or ""), json.loads(run.output or "")) == \
            ("succeeded", i + 1, 2 * (i + 1))
    assert r.status("Each") == "succeeded"
    assert r.status("Each/Double") == "notrun"  # only per iteration
    assert len(r.places) == len(ex.history)
    task_events = [p for e, p in zip(ex.history, r.places, strict=True) if e["type"].startswith("Task")]
    assert {p.state for p in task_events} == {"Each/Double"}
    assert sorted({p.iteration for p in task_events}) == [f"Each#{i}" for i in range(4)]


def test_retried_and_caught_states_are_told_apart_from_failed_ones():
    calls = {"n": 0}

    def flaky(payload: Any) -> Any:
        calls["n"] += 1
        if calls["n"] < 3:
            raise TaskError("TransientError", f"attempt {calls['n']}")
        return "ok"

    machine = {"StartAt": "Flaky", "States": {
        "Flaky": _task("flaky", ResultPath="$.f", Next="Risky",
                       Retry=[{"ErrorEquals": ["TransientError"], "IntervalSeconds": 1, "MaxAttempts": 3}]),
        "Risky": _task("boom", Next="Unreached", Catch=[{"ErrorEquals": ["Boom"], "Next": "Last"}]),
        "Unreached": {"Type": "Pass", "End": True},
        "Last": _task("last", End=True),
    }}
    ex = _run(machine, {}, flaky=flaky, boom=_bad("Boom", "always"), last=_bad("Final", "the end"))
    r = read(ex)
    status = {s.path: r.status(s.path) for s in r.states}
    assert status == {"Flaky": "caught", "Risky": "caught", "Unreached": "notrun", "Last": "failed"}
    [flaky_run] = r.runs[("", "Flaky")]
    assert (flaky_run.failures, flaky_run.error, flaky_run.cause) == (2, "TransientError", "attempt 2")
    assert flaky_run.output is not None
    [risky] = r.runs[("", "Risky")]
    assert (risky.failures, risky.error, risky.exited, risky.output) == (1, "Boom", None, None)
    [last] = r.runs[("", "Last")]
    assert (last.error, last.cause) == ("Final", "the end")


def test_a_failed_iteration_fails_its_map_and_the_map_carries_its_error():
    machine = {"StartAt": "Each", "States": {"Each": {
        "Type": "Map", "ItemsPath": "$", "MaxConcurrency": 1, "End": True,
        "ItemProcessor": {"StartAt": "Check", "States": {"Check": _task("check", End=True)}}}}}

    def check(n: int) -> int:
        if n == 3:
            raise TaskError("BadItem", "three")
        return n

    r = read(_run(machine, [1, 2, 3], check=check))
    assert r.counts("Each") == {"failed": 1, "succeeded": 2}
    assert r.status("Each") == "failed"
    [each] = r.runs[("", "Each")]
    assert (each.error, each.cause) == ("BadItem", "three")
    assert r.status("Each/Check", "Each#2") == "failed"
    assert r.status("Each/Check", "Each#0") == "succeeded"


def test_tolerated_failures_leave_the_map_succeeded():
    machine = {"StartAt": "Each", "States": {"Each": {
        "Type": "Map", "ItemsPath": "$", "ToleratedFailureCount": 2, "End": True,
        "ItemProcessor": {"StartAt": "Check", "States": {"Check": _task("check", End=True)}}}}}

    def check(n: int) -> int:
        if n % 2:
            raise TaskError("Odd", str(n))
        return n

    ex = _run(machine, [1, 2, 3, 4], check=check)
    assert ex.status == "SUCCEEDED"
    r = read(ex)
    assert r.counts("Each") == {"failed": 2, "succeeded": 2}
    assert r.status("Each") == "succeeded"
    assert r.status("Each/Check", "Each#0") == "failed" and r.status("Each/Check", "Each#1") == "succeeded"


def test_nested_maps_and_parallel_branches():
    machine = {"StartAt": "Outer", "States": {
        "Outer": {"Type": "Map", "ItemsPath": "$", "Next": "Both", "ResultPath": None,
                  "ItemProcessor": {"StartAt": "Inner", "States": {"Inner": {
                      "Type": "Map", "ItemsPath": "$", "End": True,
                      "ItemProcessor": {"StartAt": "Leaf", "States": {"Leaf": _task("leaf", End=True)}}}}}},
        "Both": {"Type": "Parallel", "End": True, "Branches": [
            {"StartAt": "Left", "States": {"Left": _task("leaf", End=True)}},
            {"StartAt": "Right", "States": {"Right": {"Type": "Pass", "Next": "After"},
                                             "After": {"Type": "Pass", "End": True}}}]},
    }}
    ex = _run(machine, [[1, 2], [3, 4, 5]], leaf=lambda x: x)
    assert ex.status == "SUCCEEDED"
    r = read(ex)
    assert r.counts("Outer") == {"succeeded": 2}
    assert r.counts("Outer/Inner") == {"succeeded": 5}
    inner_key = iteration_key(iteration_key("", "Outer", 1), "Outer/Inner", 2)
    assert inner_key == "Outer#1|Outer/Inner#2"
    [leaf] = r.runs[(inner_key, "Outer/Inner/Leaf")]
    assert (leaf.status, leaf.input) == ("succeeded", "5")
    assert r.status("Outer/Inner", "Outer#0") == "succeeded"
    assert {p: r.status(p) for p in ("Both", "Both/Left", "Both/Right", "Both/After")} == \
        dict.fromkeys(("Both", "Both/Left", "Both/Right", "Both/After"), "succeeded")


def test_a_redriven_state_shows_its_last_entry(home):
    machine = {"StartAt": "Each", "States": {
        "Each": {"Type": "Map", "ItemsPath": "$", "MaxConcurrency": 1, "ResultPath": "$", "Next": "Sum",
                 "ItemProcessor": {"StartAt": "Square", "States": {"Square": _task("square", End=True)}}},
        "Sum": {"Type": "Pass", "End": True}}}
    broken = {"on": True}

    def square(n: int) -> int:
        if broken["on"] and n == 4:
            raise TaskError("Busy", "cannot square 4 today")
        return n * n

    store = Lake.open(settings(home)).state
    ex = run_definition(machine, [1, 2, 3, 4], tasks=TaskRegistry({"square": square}), store=store,
                        sleep=lambda s: None)
    before = read(ex)
    assert (ex.status, before.status("Each"), before.status("Sum")) == ("FAILED", "failed", "notrun")
    assert before.counts("Each") == {"failed": 1, "succeeded": 3}
    broken["on"] = False
    ex = redrive_execution(store, ex.execution_arn, tasks=TaskRegistry({"square": square}), sleep=lambda s: None)
    assert ex.status == "SUCCEEDED"
    r = read(ex)
    assert [run.status for run in r.runs[("", "Each")]] == ["failed", "succeeded"]
    assert (r.status("Each"), r.status("Sum")) == ("succeeded", "succeeded")
    assert r.counts("Each") == {"succeeded": 4}
    assert [run.status for run in r.runs[("Each#3", "Each/Square")]] == ["failed", "succeeded"]


def test_a_running_execution_leaves_its_open_states_running():
    machine = {"StartAt": "One", "States": {"One": _task("f", Next="Two"), "Two": _task("f", End=True)}}
    ex = _run(machine, {}, f=lambda x: x)
    cut = next(i for i, e in enumerate(ex.history) if e["type"] == "TaskStarted" and i > 5)
    running = replace(ex, status="RUNNING", history=ex.history[:cut + 1], stop_date=None)
    r = read(running)
    assert (r.status("One"), r.status("Two")) == ("succeeded", "running")
