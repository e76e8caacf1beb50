"""JSONPath subset and input/output processing (InputPath → Parameters → ResultSelector →
ResultPath → OutputPath), with the AWS docs' worked examples."""

from __future__ import annotations

from typing import Any

import pytest

from lakeline.workflow.engine import TaskRegistry, run_definition
from lakeline.workflow.errors import StatesError
from lakeline.workflow.paths import (
    PathError,
    apply_template,
    get_path,
    make_context,
    parse_path,
    set_path,
)

DOC = {
    "store": {
        "book": [
            {"category": "reference", "author": "Nigel Rees", "price": 8.95},
            {"category": "fiction", "author": "Evelyn Waugh", "price": 12.99},
            {"category": "fiction", "author": "Herman Melville", "isbn": "0-553", "price": 8.99},
        ],
        "bicycle": {"color": "red", "price": 19.95},
    },
    "odd key": {"a.b": 1},
}


def test_definite_paths() -> None:
    assert get_path(DOC, "$") is DOC
    assert get_path(DOC, "$.store.bicycle.color") == "red"
    assert get_path(DOC, "$.store.book[1].author") == "Evelyn Waugh"
    assert get_path(DOC, "$.store.book[-1].price") == 8.99
    assert get_path(DOC, "$['odd key']['a.b']") == 1
    assert get_path(DOC, '$["store"]["bicycle"]') == {"color": "red", "price": 19.95}
    with pytest.raises(PathError):
        get_path(DOC, "$.store.car")
    with pytest.raises(PathError):
        get_path(DOC, "$.store.book[7]")
    with pytest.raises(PathError):
        get_path(DOC, "store")


def test_indefinite_paths() -> None:
    assert get_path(DOC, "$.store.book[*].author") == ["Nigel Rees", "Evelyn Waugh", "Herman Melville"]
    assert get_path(DOC, "$..price") == [8.95, 12.99, 8.99, 19.95]
    assert get_path(DOC, "$.store.book[0:2].price") == [8.95, 12.99]
    assert get_path(DOC, "$.store.book[0,2].price") == [8.95, 8.99]
    assert get_path(DOC, "$.store.book[?(@.price < 10)].author") == ["Nigel Rees", "Herman Melville"]
    assert get_path(DOC, "$.store.book[?(@.category == 'fiction')].price") == [12.99, 8.99]
    assert get_path(DOC, "$.store.book[?(@.isbn)].author") == ["Herman Melville"]
    assert get_path(DOC, "$.store.nothing[*]") == []
    assert get_path({"a": {"x": 1, "y": 2}}, "$.a.*") == [1, 2]


def test_context_paths() -> None:
    ctx = {"Execution": {"Id": "arn:e"}}
    assert get_path({}, "$$.Execution.Id", ctx) == "arn:e"
    assert get_path({}, "$$", ctx) == ctx


def test_set_path() -> None:
    data = {"a": {"b": 1}, "l": [1, 2]}
    assert set_path(data, "$", 5) == 5
    assert set_path(data, "$.a.c", 2) == {"a": {"b": 1, "c": 2}, "l": [1, 2]}
    assert set_path(data, "$.x.y.z", 1)["x"] == {"y": {"z": 1}}
    assert set_path(data, "$.l[1]", 9)["l"] == [1, 9]
    assert data == {"a": {"b": 1}, "l": [1, 2]}  # not mutated
    for bad in ("$.a.b.c", "$.l[5]", "$.l[*]", "$..a"):
        with pytest.raises(PathError):
            set_path(data, bad, 0)
    with pytest.raises(PathError):
        set_path("a string", "$.x", 1)


def test_parse_errors() -> None:
    for bad in ("$.", "$[", "$.a[x]", "$[1:2:3:4]"):
        with pytest.raises(PathError):
            parse_path(bad)


def test_template() -> None:
    ctx = make_context(
        execution_id="arn:e", execution_name="n", execution_input={}, start_time="t",
        state_machine_id="arn:sm", state_machine_name="sm", state_name="S", entered_time="t2",
    )  # fmt: skip
    template = {
        "flagged": True,
        "parts": {"first.$": "$.vals[0]", "last3.$": "$.vals[-3:]"},
        "list": [{"n.$": "$.vals[1]"}, "plain"],
        "name.$": "$$.State.Name",
        "fmt.$": "States.Format('{}-{}', $.vals[0], $$.Execution.Name)",
    }
    data = {"vals": [0, 10, 20, 30, 40, 50]}
    assert apply_template(template, data, ctx) == {
        "flagged": True,
        "parts": {"first": 0, "last3": [30, 40, 50]},
        "list": [{"n": 10}, "plain"],
        "name": "S",
        "fmt": "0-n",
    }
    with pytest.raises(StatesError) as exc:
        apply_template({"x.$": "$.missing"}, data, ctx)
    assert exc.value.error == "States.Runtime"  # as AWS reports it
    assert "'$.missing' specified for the field 'x.$'" in str(exc.value.cause)


def _task(state: dict[str, Any], data: Any, result: Any) -> Any:
    tasks = TaskRegistry()
    seen: list[Any] = []

    def fn(payload: Any) -> Any:
        seen.append(payload)
        return result

    tasks.register("fn", fn)
    definition = {"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "fn", "End": True, **state}}}
    ex = run_definition(definition, data, tasks=tasks)
    assert ex.status == "SUCCEEDED", (ex.error, ex.cause)
    return seen[0], ex.output


def test_aws_docs_result_path_example() -> None:
    data = {
        "comment": "This is a test of the input and output of a Task state.",
        "details": "Default example",
        "who": "AWS Step Functions",
    }
    _, out = _task({"ResultPath": "$.taskresult"}, data, "Hello, AWS Step Functions!")
    assert out == {**data, "taskresult": "Hello, AWS Step Functions!"}
    _, out = _task({}, data, "Hello")
    assert out == "Hello"
    _, out = _task({"ResultPath": None}, data, "Hello")
    assert out == data


def test_aws_docs_processing_order() -> None:
    """InputPath → Parameters → task → ResultSelector → ResultPath (on the raw input) →
    OutputPath, as in the Step Functions developer guide's example."""
    data = {
        "comment": "Example for InputPath.",
        "dataset1": {"val1": 1, "val2": 2, "val3": 3},
        "dataset2": {"val1": "a", "val2": "b", "val3": "c"},
    }
    result = {
        "resourceType": "elasticmapreduce",
        "resource": "createCluster.sync",
        "output": {"SdkHttpMetadata": {"HttpStatusCode": 200}, "ClusterId": "AKIAIOSFODNN7EXAMPLE"},
    }
    state = {
        "InputPath": "$.dataset2",
        "Parameters": {"first.$": "$.val1", "static": "x"},
        "ResultSelector": {"ClusterId.$": "$.output.ClusterId", "ResourceType.$": "$.resourceType"},
        "ResultPath": "$.EMROutput",
        "OutputPath": "$.EMROutput",
    }
    payload, out = _task(state, data, result)
    assert payload == {"first": "a", "static": "x"}
    assert out == {"ClusterId": "AKIAIOSFODNN7EXAMPLE", "ResourceType": "elasticmapreduce"}

    state["OutputPath"] = "$"
    _, out = _task(state, data, result)
    assert out == {
        **data,
        "EMROutput": {"ClusterId": "AKIAIOSFODNN7EXAMPLE", "ResourceType": "elasticmapreduce"},
    }


def test_null_input_and_output_paths() -> None:
    payload, out = _task({"InputPath": None, "OutputPath": None}, {"a": 1}, 5)
    assert payload == {} and out == {}


def test_context_object_in_parameters() -> None:
    tasks = TaskRegistry()
    tasks.register("fn", lambda p: p)
    definition = {
        "StartAt": "T",
        "States": {
            "T": {
                "Type": "Task",
                "Resource": "fn",
                "Parameters": {
                    "id.$": "$$.Execution.Id",
                    "name.$": "$$.Execution.Name",
                    "input.$": "$$.Execution.Input",
                    "state.$": "$$.State.Name",
                    "entered.$": "$$.State.EnteredTime",
                    "start.$": "$$.Execution.StartTime",
                },
                "End": True,
            }
        },
    }
    ex = run_definition(definition, {"k": 1}, tasks=tasks, name="ctx-test")
    out = ex.output
    assert out["id"] == ex.execution_arn and out["id"].endswith(":ctx-test")
    assert out["name"] == "ctx-test" and out["input"] == {"k": 1} and out["state"] == "T"
    assert out["entered"].endswith("Z") and out["start"].endswith("Z")
