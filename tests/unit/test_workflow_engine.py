"""The States Language interpreter: state types, Choice, Retry/Catch, Map/Parallel
concurrency, timeouts, history and persistence."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from lakeline.adapters.local.sqlite import Database
from lakeline.adapters.local.state import SCHEMA, SqliteStateStore
from lakeline.errors import UsageError
from lakeline.workflow.choice import evaluate_rule, string_matches
from lakeline.workflow.engine import (
    Execution,
    TaskRegistry,
    list_executions,
    load_execution,
    resume_execution,
    resume_or_fail,
    retry_delay,
    run_definition,
)
from lakeline.workflow.errors import StatesError, TaskError


def machine(*states: tuple[str, dict[str, Any]], start: str | None = None) -> dict[str, Any]:
    return {"StartAt": start or states[0][0], "States": dict(states)}


def one(state: dict[str, Any]) -> dict[str, Any]:
    return machine(("S", state))


def run(definition: Any, data: Any = None, **kw: Any) -> Execution:
    kw.setdefault("sleep", lambda s: None)
    return run_definition(definition, data, **kw)


def registry(**fns: Any) -> TaskRegistry:
    tasks = TaskRegistry()
    for name, fn in fns.items():
        tasks.register(name, fn)
    return tasks


# ---- simple states -----------------------------------------------------------------------
def test_pass_result_and_result_path() -> None:
    ex = run(one({"Type": "Pass", "Result": {"x": 1}, "ResultPath": "$.r", "End": True}), {"a": 0})
    assert ex.status == "SUCCEEDED" and ex.output == {"a": 0, "r": {"x": 1}}
    ex = run(one({"Type": "Pass", "Parameters": {"b.$": "$.a"}, "End": True}), {"a": 3})
    assert ex.output == {"b": 3}
    ex = run(one({"Type": "Pass", "End": True}), [1, 2])
    assert ex.output == [1, 2]


def test_succeed_and_fail() -> None:
    ex = run(one({"Type": "Succeed", "InputPath": "$.a", "OutputPath": "$.b"}), {"a": {"b": 7}})
    assert ex.status == "SUCCEEDED" and ex.output == 7
    ex = run(one({"Type": "Fail", "Error": "MyError", "Cause": "because"}))
    assert (ex.status, ex.error, ex.cause, ex.output) == ("FAILED", "MyError", "because", None)
    ex = run(one({"Type": "Fail", "ErrorPath": "$.e", "CausePath": "States.Format('bad {}', $.n)"}),
             {"e": "Dyn", "n": 3})  # fmt: skip
    assert (ex.error, ex.cause) == ("Dyn", "bad 3")


def test_wait_variants_use_injected_sleep() -> None:
    slept: list[float] = []
    ex = run(one({"Type": "Wait", "Seconds": 10, "End": True}), {"x": 1}, sleep=slept.append)
    assert ex.output == {"x": 1} and slept == [10.0]
    slept.clear()
    run(one({"Type": "Wait", "SecondsPath": "$.s", "End": True}), {"s": 3}, sleep=slept.append)
    assert slept == [3.0]
    slept.clear()
    run(one({"Type": "Wait", "Timestamp": "2000-01-01T00:00:00Z", "End": True}), sleep=slept.append)
    assert slept == []  # in the past: no wait
    future = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 100))
    run(one({"Type": "Wait", "TimestampPath": "$.t", "End": True}), {"t": future}, sleep=slept.append)
    assert len(slept) == 1 and 95 < slept[0] <= 100
    ex = run(one({"Type": "Wait", "TimestampPath": "$.t", "End": True}), {"t": "nope"})
    assert ex.error == "States.Runtime"


# ---- Choice ------------------------------------------------------------------------------
CASES: list[tuple[dict[str, Any], Any, bool]] = [
    ({"StringEquals": "a"}, "a", True),
    ({"StringEquals": "a"}, 1, False),
    ({"StringLessThan": "b"}, "a", True),
    ({"StringGreaterThan": "b"}, "a", False),
    ({"StringLessThanEquals": "a"}, "a", True),
    ({"StringGreaterThanEquals": "b"}, "c", True),
    ({"StringEqualsPath": "$.other"}, "o", True),
    ({"StringMatches": "log-*.txt"}, "log-2024.txt", True),
    ({"StringMatches": "log-*.txt"}, "log-2024.csv", False),
    ({"StringMatches": r"a\*b"}, "a*b", True),
    ({"StringMatches": r"a\*b"}, "axxb", False),
    ({"StringMatches": r"a\\*"}, "a\\zz", True),
    ({"NumericEquals": 1}, 1.0, True),
    ({"NumericEquals": 1}, True, False),
    ({"NumericLessThan": 2}, 1, True),
    ({"NumericGreaterThan": 2}, 1, False),
    ({"NumericLessThanEquals": 2}, 2, True),
    ({"NumericGreaterThanEquals": 2.5}, 2, False),
    ({"NumericGreaterThanPath": "$.n"}, 6, True),
    ({"NumericEquals": 1}, "1", False),
    ({"BooleanEquals": True}, True, True),
    ({"BooleanEquals": True}, 1, False),
    ({"BooleanEqualsPath": "$.b"}, False, True),
    ({"TimestampEquals": "2024-01-01T00:00:00Z"}, "2024-01-01T01:00:00+01:00", True),
    ({"TimestampLessThan": "2024-01-01T00:00:00Z"}, "2023-12-31T23:59:59.5Z", True),
    ({"TimestampGreaterThan": "2024-01-01T00:00:00Z"}, "2023-12-31T23:59:59Z", False),
    ({"TimestampLessThanEquals": "2024-01-01T00:00:00Z"}, "2024-01-01T00:00:00Z", True),
    ({"TimestampGreaterThanEquals": "2024-01-01T00:00:00Z"}, "not a time", False),
    ({"TimestampGreaterThanPath": "$.t"}, "2025-01-01T00:00:00Z", True),
    ({"IsNull": True}, None, True),
    ({"IsNull": False}, None, False),
    ({"IsString": True}, "x", True),
    ({"IsNumeric": True}, False, False),
    ({"IsNumeric": True}, 1.5, True),
    ({"IsBoolean": True}, False, True),
    ({"IsTimestamp": True}, "2024-02-03T04:05:06Z", True),
    ({"IsTimestamp": True}, "2024-02-03", False),
]
EXTRA = {"other": "o", "n": 5, "b": False, "t": "2024-06-01T00:00:00Z"}


@pytest.mark.parametrize(("test", "value", "expected"), CASES)
def test_choice_operators(test: dict[str, Any], value: Any, expected: bool) -> None:
    assert evaluate_rule({"Variable": "$.v", **test}, {"v": value, **EXTRA}) is expected


def test_choice_boolean_and_presence() -> None:
    data = {"a": 1, "s": "x"}
    rule = {
        "And": [{"Variable": "$.a", "NumericEquals": 1}, {"Not": {"Variable": "$.s", "StringEquals": "y"}}]
    }
    assert evaluate_rule(rule, data)
    assert not evaluate_rule(
        {"Or": [{"Variable": "$.a", "NumericEquals": 2}, {"Variable": "$.s", "IsNull": True}]}, data
    )
    assert evaluate_rule({"Variable": "$.zz", "IsPresent": False}, data)
    assert evaluate_rule({"Variable": "$.a", "IsPresent": True}, data)
    with pytest.raises(StatesError) as exc:
        evaluate_rule({"Variable": "$.zz", "NumericEquals": 1}, data)
    assert exc.value.error == "States.Runtime"
    assert string_matches("", "*") and not string_matches("ab", "a")


def test_choice_state_routing() -> None:
    definition = machine(
        ("C", {"Type": "Choice", "Choices": [
            {"Variable": "$.n", "NumericLessThan": 0, "Next": "Neg"},
            {"And": [{"Variable": "$.n", "NumericGreaterThanEquals": 0}, {"Variable": "$.n", "NumericLessThan": 10}], "Next": "Small"},
        ], "Default": "Big", "OutputPath": "$.n"}),
        ("Neg", {"Type": "Pass", "Result": "neg", "End": True}),
        ("Small", {"Type": "Pass", "Result": "small", "End": True}),
        ("Big", {"Type": "Pass", "Result": "big", "End": True}),
    )  # fmt: skip
    assert [run(definition, {"n": n}).output for n in (-1, 3, 50)] == ["neg", "small", "big"]
    no_default = dict(definition, States=dict(definition["States"]))
    no_default["States"]["C"] = {k: v for k, v in definition["States"]["C"].items() if k != "Default"}
    ex = run(no_default, {"n": 50})
    assert (ex.status, ex.error) == ("FAILED", "States.NoChoiceMatched")


# ---- Task, Retry, Catch ---------------------------------------------------------------------
def test_task_resources() -> None:
    tasks = registry(double=lambda p: p * 2)
    ex = run(
        one(
            {"Type": "Task", "Resource": "arn:aws:lambda:eu-west-1:123456789012:function:double", "End": True}
        ),
        4,
        tasks=tasks,
    )
    assert ex.output == 8
    ex = run(one({"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                  "Parameters": {"FunctionName": "arn:aws:lambda:eu-west-1:1:function:double:$LATEST", "Payload.$": "$.v"},
                  "End": True}), {"v": 5}, tasks=tasks)  # fmt: skip
    assert ex.output == {"Payload": 10, "StatusCode": 200}
    ex = run(
        one({"Type": "Task", "Resource": "arn:aws:lambda:eu-west-1:1:function:missing", "End": True}),
        tasks=tasks,
    )
    assert ex.error == "Lambda.ResourceNotFoundException"


def test_task_errors_are_named() -> None:
    def raises_task_error(p: Any) -> Any:
        raise TaskError("Custom.Error", "details")

    def raises_value_error(p: Any) -> Any:
        raise ValueError("bad value")

    tasks = registry(a=raises_task_error, b=raises_value_error)
    ex = run(one({"Type": "Task", "Resource": "a", "End": True}), tasks=tasks)
    assert (ex.status, ex.error, ex.cause) == ("FAILED", "Custom.Error", "details")
    ex = run(one({"Type": "Task", "Resource": "b", "End": True}), tasks=tasks)
    assert (ex.error, ex.cause) == ("ValueError", "bad value")


def flaky(failures: int, error: str = "Flaky") -> tuple[Any, list[int]]:
    calls: list[int] = []

    def fn(payload: Any) -> Any:
        calls.append(1)
        if len(calls) <= failures:
            raise TaskError(error, f"attempt {len(calls)}")
        return "ok"

    return fn, calls


def test_retry_backoff_exact_delays() -> None:
    fn, calls = flaky(3)
    slept: list[float] = []
    state = {"Type": "Task", "Resource": "f", "End": True,
             "Retry": [{"ErrorEquals": ["Flaky"], "IntervalSeconds": 3, "BackoffRate": 2, "MaxAttempts": 3}]}  # fmt: skip
    ex = run(one(state), tasks=registry(f=fn), sleep=slept.append)
    assert ex.status == "SUCCEEDED" and len(calls) == 4 and slept == [3.0, 6.0, 12.0]


def test_retry_defaults_and_exhaustion() -> None:
    fn, calls = flaky(10)
    slept: list[float] = []
    state = {"Type": "Task", "Resource": "f", "End": True, "Retry": [{"ErrorEquals": ["States.ALL"]}]}
    ex = run(one(state), tasks=registry(f=fn), sleep=slept.append)
    assert (ex.status, ex.error, ex.cause) == ("FAILED", "Flaky", "attempt 4")
    assert len(calls) == 4 and slept == [1.0, 2.0, 4.0]


def test_retry_max_delay_and_zero_attempts() -> None:
    fn, calls = flaky(4)
    slept: list[float] = []
    state = {"Type": "Task", "Resource": "f", "End": True, "Retry": [
        {"ErrorEquals": ["Other"], "MaxAttempts": 5},
        {"ErrorEquals": ["States.TaskFailed"], "IntervalSeconds": 2, "BackoffRate": 3, "MaxAttempts": 4,
         "MaxDelaySeconds": 10, "JitterStrategy": "NONE"},
    ]}  # fmt: skip
    ex = run(one(state), tasks=registry(f=fn), sleep=slept.append)
    assert ex.status == "SUCCEEDED" and slept == [2.0, 6.0, 10.0, 10.0]
    fn, calls = flaky(1)
    state = {
        "Type": "Task",
        "Resource": "f",
        "End": True,
        "Retry": [{"ErrorEquals": ["Flaky"], "MaxAttempts": 0}],
    }
    ex = run(one(state), tasks=registry(f=fn))
    assert ex.status == "FAILED" and len(calls) == 1


def test_jitter_full_is_bounded() -> None:
    retrier = {"ErrorEquals": ["X"], "IntervalSeconds": 4, "BackoffRate": 2, "JitterStrategy": "FULL"}
    for attempt in range(3):
        for _ in range(20):
            assert 0 <= retry_delay(retrier, attempt) <= 4 * 2**attempt


def test_catch_routes_with_error_output() -> None:
    def boom(p: Any) -> Any:
        raise TaskError("Bad", "it broke")

    definition = machine(
        ("T", {"Type": "Task", "Resource": "boom", "Next": "Done", "Catch": [
            {"ErrorEquals": ["Other"], "Next": "Wrong"},
            {"ErrorEquals": ["States.ALL"], "ResultPath": "$.err", "Next": "Handler"},
        ]}),
        ("Handler", {"Type": "Pass", "End": True}),
        ("Wrong", {"Type": "Fail", "Error": "Wrong"}),
        ("Done", {"Type": "Succeed"}),
    )  # fmt: skip
    ex = run(definition, {"in": 1}, tasks=registry(boom=boom))
    assert ex.status == "SUCCEEDED"
    assert ex.output == {"in": 1, "err": {"Error": "Bad", "Cause": "it broke"}}
    del definition["States"]["T"]["Catch"][1]["ResultPath"]
    assert run(definition, {"in": 1}, tasks=registry(boom=boom)).output == {
        "Error": "Bad",
        "Cause": "it broke",
    }


def test_runtime_errors_are_not_caught_by_states_all() -> None:
    definition = machine(
        ("T", {"Type": "Task", "Resource": "f", "InputPath": "$.missing", "Next": "Done",
               "Retry": [{"ErrorEquals": ["States.ALL"]}],
               "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Done"}]}),
        ("Done", {"Type": "Succeed"}),
    )  # fmt: skip
    ex = run(definition, {}, tasks=registry(f=lambda p: p))
    assert (ex.status, ex.error) == ("FAILED", "States.Runtime")


def test_missing_parameters_path_fails_with_runtime() -> None:
    definition = machine(
        ("Ok", {"Type": "Pass", "Result": 1, "ResultPath": "$.one", "Next": "Bad"}),
        ("Bad", {"Type": "Pass", "Parameters": {"x.$": "$.does_not_exist"}, "End": True}),
    )
    ex = run(definition, {"a": 1})
    assert (ex.status, ex.error) == ("FAILED", "States.Runtime")
    assert ex.cause is not None
    assert ex.cause.startswith(
        "An error occurred while executing the state 'Bad' (entered at the event id #4)."
    )
    assert "The JSONPath '$.does_not_exist' specified for the field 'x.$' could not be found" in ex.cause


def test_result_path_failure_is_catchable() -> None:
    definition = machine(
        ("T", {"Type": "Task", "Resource": "f", "ResultPath": "$.a.b", "Next": "Done",
               "Catch": [{"ErrorEquals": ["States.ResultPathMatchFailure"], "Next": "Done"}]}),
        ("Done", {"Type": "Succeed"}),
    )  # fmt: skip
    ex = run(definition, {"a": "string"}, tasks=registry(f=lambda p: 1))
    assert ex.status == "SUCCEEDED" and ex.output["Error"] == "States.ResultPathMatchFailure"
    del definition["States"]["T"]["Catch"]
    assert run(definition, {"a": "s"}, tasks=registry(f=lambda p: 1)).error == "States.ResultPathMatchFailure"


def test_task_timeout() -> None:
    def slow(p: Any) -> Any:
        time.sleep(2.5)
        return "late"

    definition = machine(
        ("T", {"Type": "Task", "Resource": "slow", "TimeoutSeconds": 1, "Next": "Done",
               "Retry": [{"ErrorEquals": ["States.TaskFailed"], "MaxAttempts": 2}]}),
        ("Done", {"Type": "Succeed"}),
    )  # fmt: skip
    t0 = time.monotonic()
    ex = run(definition, tasks=registry(slow=slow))
    assert (ex.status, ex.error) == ("FAILED", "States.Timeout")  # TaskFailed does not match Timeout
    assert time.monotonic() - t0 < 2.4
    assert any(e["type"] == "TaskTimedOut" for e in ex.history)
    definition["States"]["T"]["TimeoutSecondsPath"] = "$.t"
    del definition["States"]["T"]["TimeoutSeconds"]
    definition["States"]["T"]["Catch"] = [{"ErrorEquals": ["States.Timeout"], "Next": "Done"}]
    assert run(definition, {"t": 1}, tasks=registry(slow=slow)).status == "SUCCEEDED"
    # a fractional timeout read from the input fails the state as on Step Functions
    ex = run(definition, {"t": 0.5}, tasks=registry(slow=slow))
    assert (ex.status, ex.error) == ("FAILED", "States.Runtime")
    assert ex.cause is not None and ex.cause.endswith("The TimeoutSeconds must be a positive integer, but was: 0.5")


def test_execution_timeout() -> None:
    definition = machine(("W", {"Type": "Wait", "Seconds": 100, "End": True}))
    definition["TimeoutSeconds"] = 5
    slept: list[float] = []
    ex = run(definition, sleep=slept.append)
    # Step Functions records no error or cause for the machine's own timeout
    assert (ex.status, ex.error, ex.cause) == ("TIMED_OUT", None, None)
    assert len(slept) == 1 and slept[0] <= 5
    assert ex.history[-1]["type"] == "ExecutionTimedOut"


# ---- Parallel and Map ----------------------------------------------------------------------
def test_parallel_output_order_and_concurrency() -> None:
    barrier = threading.Barrier(3, timeout=5)

    def wait_then(value: Any) -> Any:
        barrier.wait()  # all three branches must run at once
        return value

    branches = [
        {"StartAt": f"B{i}", "States": {f"B{i}": {"Type": "Task", "Resource": "w", "Parameters": {"v": i}, "OutputPath": "$.v", "End": True}}}
        for i in range(3)
    ]  # fmt: skip
    definition = one({"Type": "Parallel", "Branches": branches, "ResultPath": "$.out", "End": True})
    ex = run(definition, {"k": 1}, tasks=registry(w=wait_then))
    assert ex.status == "SUCCEEDED" and ex.output == {"k": 1, "out": [0, 1, 2]}


def test_parallel_failing_branch_fails_state() -> None:
    branches = [
        {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}},
        {"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "BranchErr", "Cause": "x"}}},
    ]
    definition = machine(
        ("Par", {"Type": "Parallel", "Branches": branches, "Next": "Done",
                 "Catch": [{"ErrorEquals": ["BranchErr"], "ResultPath": "$.e", "Next": "Done"}]}),
        ("Done", {"Type": "Succeed"}),
    )  # fmt: skip
    ex = run(definition, {})
    assert ex.output == {"e": {"Error": "BranchErr", "Cause": "x"}}
    types = [e["type"] for e in ex.history]
    assert "ParallelStateFailed" in types


def _map_state(**extra: Any) -> dict[str, Any]:
    proc = {"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "f", "End": True}}}
    return {"Type": "Map", "ItemProcessor": proc, "End": True, **extra}


def test_map_max_concurrency_is_honoured() -> None:
    active = 0
    peak = 0
    lock = threading.Lock()

    def fn(p: Any) -> Any:
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        time.sleep(0.05)
        with lock:
            active -= 1
        return p * 10

    ex = run(one(_map_state(MaxConcurrency=3)), list(range(12)), tasks=registry(f=fn))
    assert ex.status == "SUCCEEDED" and ex.output == [i * 10 for i in range(12)]
    assert peak == 3
    peak = 0
    ex = run(one(_map_state(MaxConcurrency=1)), list(range(4)), tasks=registry(f=fn))
    assert peak == 1


def test_map_items_path_and_selector() -> None:
    state = _map_state(
        ItemsPath="$.detail.items",
        ItemSelector={"item.$": "$$.Map.Item.Value", "index.$": "$$.Map.Item.Index", "tag.$": "$.tag"},
        ResultPath="$.results",
    )
    data = {"tag": "T", "detail": {"items": ["a", "b"]}}
    ex = run(one(state), data, tasks=registry(f=lambda p: p))
    assert ex.output["results"] == [
        {"item": "a", "index": 0, "tag": "T"},
        {"item": "b", "index": 1, "tag": "T"},
    ]
    legacy = {"Type": "Map", "Iterator": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}},
              "Parameters": {"v.$": "$$.Map.Item.Value"}, "End": True}  # fmt: skip
    assert run(one(legacy), [1, 2]).output == [{"v": 1}, {"v": 2}]
    assert run(one(_map_state()), [], tasks=registry(f=lambda p: p)).output == []
    assert run(one(_map_state()), {"not": "a list"}, tasks=registry(f=lambda p: p)).error == "States.Runtime"


def _fail_odd(p: Any) -> Any:
    if p % 2:
        raise TaskError("Odd", str(p))
    return p


def test_map_failure_without_tolerance_fails_with_item_error() -> None:
    ex = run(one(_map_state(MaxConcurrency=1)), [0, 1, 2], tasks=registry(f=_fail_odd))
    assert (ex.status, ex.error, ex.cause) == ("FAILED", "Odd", "1")


def test_map_tolerated_failures() -> None:
    items = list(range(10))  # 5 odd items fail
    ok = run(one(_map_state(ToleratedFailureCount=5)), items, tasks=registry(f=_fail_odd))
    assert ok.status == "SUCCEEDED"
    assert ok.output[0] == 0 and ok.output[1] == {"Error": "Odd", "Cause": "1"}
    over = run(one(_map_state(ToleratedFailureCount=4)), items, tasks=registry(f=_fail_odd))
    assert (over.status, over.error) == ("FAILED", "States.ExceedToleratedFailureThreshold")
    ok = run(one(_map_state(ToleratedFailurePercentage=50)), items, tasks=registry(f=_fail_odd))
    assert ok.status == "SUCCEEDED"
    over = run(one(_map_state(ToleratedFailurePercentage=49.9)), items, tasks=registry(f=_fail_odd))
    assert over.error == "States.ExceedToleratedFailureThreshold"


# ---- history -------------------------------------------------------------------------------
def test_history_event_sequence() -> None:
    definition = machine(
        ("P", {"Type": "Pass", "Next": "T"}),
        ("T", {"Type": "Task", "Resource": "f", "Next": "C"}),
        ("C", {"Type": "Choice", "Choices": [{"Variable": "$", "NumericEquals": 2, "Next": "W"}]}),
        ("W", {"Type": "Wait", "Seconds": 1, "Next": "S"}),
        ("S", {"Type": "Succeed"}),
    )
    ex = run(definition, 1, tasks=registry(f=lambda p: p + 1))
    assert [e["type"] for e in ex.history] == [
        "ExecutionStarted",
        "PassStateEntered", "PassStateExited",
        "TaskStateEntered", "TaskScheduled", "TaskStarted", "TaskSucceeded", "TaskStateExited",
        "ChoiceStateEntered", "ChoiceStateExited",
        "WaitStateEntered", "WaitStateExited",
        "SucceedStateEntered", "SucceedStateExited",
        "ExecutionSucceeded",
    ]  # fmt: skip
    assert [e["id"] for e in ex.history] == list(range(1, 16))
    assert [e["previousEventId"] for e in ex.history] == list(range(0, 15))
    assert ex.history[0]["executionStartedEventDetails"]["input"] == "1"
    assert ex.history[1]["stateEnteredEventDetails"] == {
        "name": "P",
        "input": "1",
        "inputDetails": {"truncated": False},
    }
    assert ex.history[6]["taskSucceededEventDetails"]["output"] == "2"
    assert ex.history[-1]["executionSucceededEventDetails"]["output"] == "2"
    failed = run(one({"Type": "Task", "Resource": "f", "End": True}), "x", tasks=registry(f=_fail_odd))
    assert [e["type"] for e in failed.history][-2:] == ["TaskFailed", "ExecutionFailed"]


# ---- persistence ---------------------------------------------------------------------------
def _store(tmp_path: Path) -> SqliteStateStore:
    return SqliteStateStore(Database(tmp_path / "state.db", SCHEMA))


def test_persistence_round_trip(tmp_path: Path) -> None:
    store = _store(tmp_path)
    definition = machine(("T", {"Type": "Task", "Resource": "f", "End": True}))
    ex = run(definition, {"a": 1}, tasks=registry(f=lambda p: {"got": p}), store=store, name="first")
    loaded = load_execution(store, ex.execution_arn)
    assert loaded is not None
    assert (loaded.status, loaded.output, loaded.input, loaded.name) == (
        "SUCCEEDED",
        {"got": {"a": 1}},
        {"a": 1},
        "first",
    )
    assert loaded.definition == definition
    assert loaded.start_date == ex.start_date.replace(microsecond=ex.start_date.microsecond // 1000 * 1000)
    assert [e["type"] for e in loaded.history] == [e["type"] for e in ex.history]
    assert loaded.history[-1]["timestamp"].tzinfo is not None
    failed = run(one({"Type": "Fail", "Error": "E", "Cause": "C"}), store=store, name="second")
    assert [e.name for e in list_executions(store, 10)] == ["second", "first"]
    assert list_executions(store, 1)[0].execution_arn == failed.execution_arn
    assert load_execution(store, "arn:nope") is None
    with pytest.raises(UsageError):
        run(definition, store=store, name="first", tasks=registry(f=lambda p: p))


def test_crashed_execution_is_inspectable_and_resumable(tmp_path: Path) -> None:
    store = _store(tmp_path)
    state = {"crash": True}

    def step(p: Any) -> Any:
        if state["crash"]:
            raise KeyboardInterrupt  # the process dies mid-task
        return p + 1

    definition = machine(
        ("A", {"Type": "Pass", "Result": 1, "Next": "B"}),
        ("B", {"Type": "Task", "Resource": "step", "End": True}),
    )
    with pytest.raises(KeyboardInterrupt):
        run(definition, {}, tasks=registry(step=step), store=store, name="crashy")
    arn = list_executions(store, 5)[0].execution_arn
    seen = load_execution(store, arn)
    assert seen is not None and seen.status == "RUNNING"
    assert seen.history[-1]["type"] == "TaskStarted"

    state["crash"] = False
    resumed = resume_execution(store, arn, tasks=registry(step=step))
    assert (resumed.status, resumed.output) == ("SUCCEEDED", 2)
    ids = [e["id"] for e in resumed.history]
    assert ids == list(range(1, len(ids) + 1))

    state["crash"] = True
    with pytest.raises(KeyboardInterrupt):
        run(definition, {}, tasks=registry(step=step), store=store, name="crashy2")
    arn2 = f"{arn.rsplit(':', 1)[0]}:crashy2"
    failed = resume_or_fail(store, arn2, "worker process died")
    assert (failed.status, failed.error, failed.cause) == ("FAILED", "States.Runtime", "worker process died")
    again = load_execution(store, arn2)
    assert again is not None and again.status == "FAILED" and again.history[-1]["type"] == "ExecutionFailed"
    assert resume_or_fail(store, arn2, "again").cause == "worker process died"


# ---- validation ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("definition", "fragment"),
    [
        ({"StartAt": "X", "States": {"A": {"Type": "Succeed"}}}, "StartAt 'X'"),
        (machine(("A", {"Type": "Pass", "Next": "Nope"})), "state 'A'"),
        (machine(("A", {"Type": "Pass"})), "state 'A': needs exactly one of Next or End"),
        (machine(("A", {"Type": "Pass", "Next": "A", "End": True})), "state 'A'"),
        (machine(("A", {"Type": "Bogus", "End": True})), "unknown Type"),
        (machine(("A", {"Type": "Succeed", "Next": "A"})), "cannot have Next"),
        (machine(("A", {"Type": "Task", "End": True})), "needs a Resource"),
        (machine(("A", {"Type": "Wait", "End": True})), "exactly one of Seconds"),
        (machine(("C", {"Type": "Choice", "Choices": [{"Variable": "$.x", "BooleanEquals": True, "Next": "Z"}]})), "state 'C'"),
        (machine(("C", {"Type": "Choice", "Choices": []})), "non-empty"),
        (machine(("C", {"Type": "Choice", "Choices": [{"Variable": "$.x", "Next": "C"}]})), "comparison operator"),
        (machine(("T", {"Type": "Task", "Resource": "f", "End": True, "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Q"}]})), "Catch[0]"),
        (machine(("T", {"Type": "Task", "Resource": "f", "End": True, "Retry": [{"ErrorEquals": ["States.ALL", "X"]}]})), "States.ALL"),
        (machine(("T", {"Type": "Task", "Resource": "f", "End": True, "ResultPath": "$[*]"})), "reference path"),
        (machine(("M", {"Type": "Map", "End": True, "ItemProcessor": {"StartAt": "Q", "States": {"P": {"Type": "Succeed"}}}})), "state 'M' ItemProcessor"),
        (machine(("P", {"Type": "Parallel", "End": True, "Branches": [{"StartAt": "B", "States": {"B": {"Type": "Pass"}}}]})), "state 'B'"),
    ],
)  # fmt: skip
def test_validation_errors(definition: dict[str, Any], fragment: str) -> None:
    with pytest.raises(UsageError, match=None) as exc:
        run_definition(definition)
    assert fragment in str(exc.value)


def test_definition_as_json_string() -> None:
    assert run('{"StartAt": "A", "States": {"A": {"Type": "Pass", "Result": 1, "End": true}}}').output == 1
    with pytest.raises(UsageError):
        run("{not json")
