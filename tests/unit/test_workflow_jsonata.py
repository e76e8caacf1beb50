"""JSONata states, workflow variables, Step Functions' limits and the load-time refusals of
constructs a query language does not allow (naming the state and the field)."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest

from lakeline.errors import UsageError
from lakeline.workflow.engine import Execution, TaskRegistry, run_definition
from lakeline.workflow.errors import TaskError


def jsonata(*states: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    return {"QueryLanguage": "JSONata", "StartAt": states[0][0], "States": dict(states)}


def jsonpath(*states: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    return {"StartAt": states[0][0], "States": dict(states)}


def run(definition: Any, data: Any = None, **kw: Any) -> Execution:
    kw.setdefault("sleep", lambda s: None)
    return run_definition(definition, data, **kw)


def tasks(**fns: Any) -> TaskRegistry:
    return TaskRegistry(fns)


# ---- JSONata states --------------------------------------------------------------------------
def test_task_arguments_result_output_and_assign() -> None:
    seen: list[Any] = []

    def double(payload: Any) -> Any:
        seen.append(payload)
        return {"value": payload["n"] * 2}

    ex = run(jsonata(
        ("Call", {"Type": "Task", "Resource": "double", "Next": "Show",
                  "Arguments": {"n": "{% $states.input.n + 1 %}", "fixed": "text"},
                  "Assign": {"last": "{% $states.result.value %}", "input": "{% $states.input %}"},
                  "Output": {"out": "{% $states.result.value %}", "name": "{% $states.context.State.Name %}"}}),
        ("Show", {"Type": "Pass", "End": True,
                  "Output": "{% $merge([$states.input, {'last': $last, 'was': $input}]) %}"}),
    ), {"n": 20}, tasks=tasks(double=double))  # fmt: skip
    assert ex.status == "SUCCEEDED", ex.cause
    assert seen == [{"n": 21, "fixed": "text"}]
    assert ex.output == {"out": 42, "name": "Call", "last": 42, "was": {"n": 20}}


def test_assignments_take_effect_after_the_state() -> None:
    ex = run(jsonata(
        ("A", {"Type": "Pass", "Assign": {"x": 1}, "Next": "B"}),
        ("B", {"Type": "Pass", "Assign": {"x": "{% $x + 1 %}", "before": "{% $x %}"},
               "Output": {"seen": "{% $x %}"}, "Next": "C"}),
        ("C", {"Type": "Pass", "Output": {"x": "{% $x %}", "before": "{% $before %}", "in": "{% $states.input %}"},
               "End": True}),
    ))  # fmt: skip
    assert ex.output == {"x": 2, "before": 1, "in": {"seen": 1}}
    # the exit events carry the assignments as Step Functions records them (values as JSON text)
    exits = [e["stateExitedEventDetails"] for e in ex.history if e["type"] == "PassStateExited"]
    assert [e.get("assignedVariables") for e in exits] == [{"x": "1"}, {"x": "2", "before": "1"}, None]


def test_catch_error_output_assign_and_output() -> None:
    def boom(payload: Any) -> Any:
        raise TaskError("Custom.Boom", "it broke")

    ex = run(jsonata(
        ("T", {"Type": "Task", "Resource": "boom", "Next": "Done",
               "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Handled",
                          "Assign": {"err": "{% $states.errorOutput.Error %}"},
                          "Output": {"cause": "{% $states.errorOutput.Cause %}", "in": "{% $states.input %}"}}]}),
        ("Done", {"Type": "Succeed"}),
        ("Handled", {"Type": "Pass", "Output": {"err": "{% $err %}", "got": "{% $states.input %}"}, "End": True}),
    ), {"k": 1}, tasks=tasks(boom=boom))  # fmt: skip
    assert ex.output == {"err": "Custom.Boom", "got": {"cause": "it broke", "in": {"k": 1}}}
    # without Output, the next state gets the error output
    definition = jsonata(
        ("T", {"Type": "Task", "Resource": "boom", "End": True,
               "Catch": [{"ErrorEquals": ["Custom.Boom"], "Next": "Handled"}]}),
        ("Handled", {"Type": "Succeed"}),
    )  # fmt: skip
    assert run(definition, tasks=tasks(boom=boom)).output == {"Error": "Custom.Boom", "Cause": "it broke"}


def test_map_items_item_selector_and_variables_scope() -> None:
    ex = run(jsonata(
        ("Set", {"Type": "Pass", "Assign": {"factor": 10}, "Next": "Each"}),
        ("Each", {"Type": "Map", "Items": "{% $states.input.values %}", "MaxConcurrency": "{% 1 + 1 %}",
                  "ItemSelector": {"v": "{% $states.context.Map.Item.Value %}",
                                   "i": "{% $states.context.Map.Item.Index %}"},
                  "ItemProcessor": {"StartAt": "Inner", "States": {
                      "Inner": {"Type": "Pass", "Assign": {"inner": "{% $states.input.v %}"}, "Next": "Use"},
                      "Use": {"Type": "Pass", "End": True,
                              "Output": "{% $inner * $factor + $states.input.i %}"}}},
                  "Next": "After"}),
        ("After", {"Type": "Pass", "End": True,
                   "Output": {"r": "{% $states.input %}", "leaked": "{% $exists($inner) %}"}}),
    ), {"values": [1, 2, 3]})  # fmt: skip
    assert ex.status == "SUCCEEDED", ex.cause
    assert ex.output == {"r": [10, 21, 32], "leaked": False}


def test_parallel_arguments_and_default_output() -> None:
    ex = run(jsonata(
        ("P", {"Type": "Parallel", "Arguments": {"a": "{% $states.input.a %}"}, "End": True,
               "Branches": [
                   {"StartAt": "B1", "States": {"B1": {"Type": "Pass", "End": True,
                                                       "Output": "{% $states.input.a + 1 %}"}}},
                   {"StartAt": "B2", "States": {"B2": {"Type": "Pass", "End": True}}}]}),
    ), {"a": 1, "b": 2})  # fmt: skip
    assert ex.output == [2, {"a": 1}]


def test_choice_condition_with_rule_output_and_default() -> None:
    definition = jsonata(
        ("C", {"Type": "Choice", "Default": "No",
               "Choices": [{"Condition": "{% $states.input.n > 5 %}", "Next": "Yes",
                            "Output": {"big": "{% $states.input.n %}"}, "Assign": {"seen": True}}]}),
        ("Yes", {"Type": "Pass", "End": True, "Output": {"in": "{% $states.input %}", "seen": "{% $seen %}"}}),
        ("No", {"Type": "Pass", "End": True}),
    )  # fmt: skip
    assert run(definition, {"n": 9}).output == {"in": {"big": 9}, "seen": True}
    assert run(definition, {"n": 1}).output == {"n": 1}
    ex = run(definition, {"n": "x"})
    assert (ex.status, ex.error) == ("FAILED", "States.QueryEvaluationError")
    definition["States"]["C"]["Choices"][0]["Condition"] = "{% $states.input.n %}"
    ex = run(definition, {"n": 3})
    assert ex.cause == ("An error occurred while executing the state 'C' (entered at the event id #2). The "
                        "JSONata expression '$states.input.n' specified for the field 'Condition' returned an "
                        "unexpected result type. Expected 'boolean', but was 'number' for value: 3")


def test_wait_and_fail_expressions() -> None:
    slept: list[float] = []
    ex = run(jsonata(
        ("W", {"Type": "Wait", "Seconds": "{% $states.input.s * 2 %}", "Next": "F"}),
        ("F", {"Type": "Fail", "Error": "{% 'Err.' & $states.input.kind %}", "Cause": "{% $string($states.input.s) %}"}),
    ), {"s": 3, "kind": "Bad"}, sleep=slept.append)  # fmt: skip
    assert slept == [6.0]
    assert (ex.status, ex.error, ex.cause) == ("FAILED", "Err.Bad", "3")
    ex = run(jsonata(("F", {"Type": "Fail"})))
    assert (ex.status, ex.error, ex.cause) == ("FAILED", None, None)  # AWS records none


def test_undefined_and_failing_expressions_name_the_field() -> None:
    ex = run(jsonata(("S", {"Type": "Pass", "End": True, "Output": {"a": {"b": "{% $nope %}"}}})))
    assert ex.error == "States.QueryEvaluationError"
    assert ex.cause == ("An error occurred while executing the state 'S' (entered at the event id #2). The "
                        "JSONata expression '$nope' specified for the field 'Output/a/b' returned nothing "
                        "(undefined).")
    ex = run(jsonata(("S", {"Type": "Pass", "End": True, "Output": "{% $range('0', 4, 1) %}"})))
    assert ex.cause is not None and ex.cause.endswith(
        "The JSONata expression '$range('0', 4, 1)' specified for the field 'Output' threw an error during "
        'evaluation. T0410: Argument 1 of function "range" does not match function signature')
    ex = run(jsonata(("S", {"Type": "Pass", "End": True, "Output": "{% 1 + %}"})))
    assert ex.error == "States.QueryEvaluationError" and "threw an error during evaluation" in str(ex.cause)


def test_aws_functions() -> None:
    def out(expr: str, data: Any = None) -> Any:
        ex = run(jsonata(("S", {"Type": "Pass", "End": True, "Output": expr})), data)
        assert ex.status == "SUCCEEDED", ex.cause
        return ex.output

    assert out("{% $partition([1,2,3,4,5], 2) %}") == [[1, 2], [3, 4], [5]]
    assert out("{% $range(0, 10, 5) %}") == [0, 5, 10]
    assert out("{% $range(3, 1, -1) %}") == [3, 2, 1]
    assert out("{% $hash('abc', 'SHA-256') %}") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert out("{% $hash('abc', 'MD5') %}") == "900150983cd24fb0d6963f7d28e17f72"
    assert out("{% $parse($states.input.t) %}", {"t": '{"a": [1, null]}'}) == {"a": [1, None]}
    assert uuid.UUID(out("{% $uuid() %}")).version == 4
    assert out("{% $random(7) %}") == out("{% $random(7) %}")
    assert 0 <= out("{% $random() %}") < 1
    assert out("{% $states.input.a %}", {"a": None}) is None  # null is a value, not undefined
    assert out("{% 1.5 * 2 %}") == 3 and isinstance(out("{% 1.5 * 2 %}"), int)


def test_jsonpath_state_in_jsonata_machine_is_refused() -> None:
    with pytest.raises(UsageError, match=r"state 'S': QueryLanguage: a state cannot be JSONPath"):
        run(jsonata(("S", {"Type": "Pass", "QueryLanguage": "JSONPath", "End": True})))


@pytest.mark.parametrize(("state", "message"), [
    ({"Type": "Pass", "InputPath": "$.a", "End": True}, r"state 'S': InputPath is a JSONPath field"),
    ({"Type": "Pass", "Result": 1, "End": True}, r"state 'S': Result is a JSONPath field"),
    ({"Type": "Map", "ItemsPath": "$.a", "End": True,
      "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}},
     r"state 'S': ItemsPath is a JSONPath field"),
    ({"Type": "Wait", "SecondsPath": "$.s", "End": True}, r"state 'S': SecondsPath is a JSONPath field"),
    ({"Type": "Choice", "Choices": [{"Variable": "$.a", "BooleanEquals": True, "Next": "S"}]},
     r"state 'S': Choices\[0\]: Variable is a JSONPath field"),
    ({"Type": "Wait", "Seconds": "5", "End": True}, r"state 'S': Seconds must be a number or a JSONata"),
    ({"Type": "Task", "Resource": "x", "End": True, "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "S",
                                                               "ResultPath": "$.e"}]},
     r"state 'S': Catch\[0\]: ResultPath is a JSONPath field"),
])  # fmt: skip
def test_jsonpath_fields_in_a_jsonata_state_are_refused(state: dict[str, Any], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        run(jsonata(("S", state)))


@pytest.mark.parametrize(("state", "message"), [
    ({"Type": "Pass", "Output": {"a": 1}, "End": True}, r"state 'S': Output is a JSONata field"),
    ({"Type": "Task", "Resource": "x", "Arguments": {}, "End": True}, r"state 'S': Arguments is a JSONata field"),
    ({"Type": "Choice", "Choices": [{"Condition": "{% true %}", "Next": "S"}]},
     r"state 'S': Choices\[0\]: Condition is a JSONata field"),
    ({"Type": "Wait", "Seconds": "{% 1 %}", "End": True}, r"state 'S': Seconds: a JSONata expression in a JSONPath"),
    ({"Type": "Pass", "Assign": {"1x": 1}, "End": True}, r"state 'S': Assign: '1x' is not a valid variable name"),
    ({"Type": "Pass", "Assign": {"states": 1}, "End": True}, r"state 'S': Assign: the variable name 'states'"),
    ({"Type": "Succeed", "Assign": {"a": 1}}, r"state 'S': a Succeed state cannot have Assign"),
    ({"Type": "Pass", "Parameters": {"a.$": "$nowhere"}, "End": True},
     r"state 'S': Parameters/a.\$: the variable '\$nowhere' is not assigned"),
    ({"Type": "Task", "Resource": "x", "TimeoutSeconds": 0.5, "End": True},
     r"state 'S': TimeoutSeconds must be an integer of at least 1"),
    ({"Type": "QueryLanguage", "End": True}, r"state 'S': unknown Type"),
    ({"Type": "Map", "End": True, "ToleratedFailurePercentage": 100.5,
      "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}},
     r"state 'S': ToleratedFailurePercentage must be a number between 0 and 100, not 100.5"),
    ({"Type": "Wait", "Timestamp": "2016-12-05 21:29:29Z", "End": True},
     r"state 'S': Timestamp '2016-12-05 21:29:29Z' is not an ISO-8601 extended offset date-time"),
    ({"Type": "Map", "End": True, "ItemReader": {"Resource": "arn:aws:states:::s3:getObject"},
      "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}},
     r"state 'S': ItemReader: a distributed Map's ItemReader .* is not supported by the local engine"),
    ({"Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken", "End": True},
     r"state 'S': Resource: .waitForTaskToken callbacks are not supported"),
])  # fmt: skip
def test_jsonata_fields_and_bad_variables_in_a_jsonpath_state_are_refused(state: dict[str, Any],
                                                                          message: str) -> None:
    with pytest.raises(UsageError, match=message):
        run(jsonpath(("S", state)))


# ---- variables in JSONPath states --------------------------------------------------------------
def test_jsonpath_variables_in_paths_parameters_intrinsics_and_choice() -> None:
    ex = run(jsonpath(
        ("Set", {"Type": "Pass", "Result": {"items": [1, 2], "limit": 1, "who": "ann"},
                 "Assign": {"cfg.$": "$", "greeting": "hi"}, "Next": "Each"}),
        ("Each", {"Type": "Map", "ItemsPath": "$cfg.items", "MaxConcurrencyPath": "$cfg.limit",
                  "ItemProcessor": {"StartAt": "I", "States": {"I": {
                      "Type": "Pass", "End": True,
                      "Parameters": {"v.$": "$", "msg.$": "States.Format('{} {}', $greeting, $cfg.who)"}}}},
                  "Next": "Pick"}),
        ("Pick", {"Type": "Choice", "Default": "Done",
                  "Choices": [{"Variable": "$cfg.limit", "NumericEquals": 1, "Next": "Done",
                               "Assign": {"picked.$": "$[0].v"}}]}),
        ("Done", {"Type": "Pass", "Parameters": {"picked.$": "$picked", "all.$": "$"}, "End": True}),
    ))  # fmt: skip
    assert ex.status == "SUCCEEDED", ex.cause
    assert ex.output == {"picked": 1, "all": [{"v": 1, "msg": "hi ann"}, {"v": 2, "msg": "hi ann"}]}


def test_jsonpath_assign_reads_the_raw_result_before_result_selector() -> None:
    ex = run(jsonpath(
        ("T", {"Type": "Task", "Resource": "f", "ResultSelector": {"kept.$": "$.a"}, "ResultPath": "$.r",
               "Assign": {"raw.$": "$.b"}, "Next": "S"}),
        ("S", {"Type": "Pass", "Parameters": {"raw.$": "$raw", "r.$": "$.r"}, "End": True}),
    ), {}, tasks=tasks(f=lambda p: {"a": 1, "b": 2}))  # fmt: skip
    assert ex.output == {"raw": 2, "r": {"kept": 1}}


# ---- limits and the context object -------------------------------------------------------------
def test_data_limits() -> None:
    big = "x" * (256 * 1024)
    ex = run(jsonpath(("S", {"Type": "Pass", "Parameters": {"v.$": "$.s"}, "End": True})), {"s": big[:-100]})
    assert ex.status == "SUCCEEDED"
    ex = run(jsonpath(("S", {"Type": "Pass", "Parameters": {"v.$": "States.Format('{}{}', $.s, $.s)"},
                             "End": True})), {"s": big[: 130 * 1024]})  # fmt: skip
    assert (ex.status, ex.error) == ("FAILED", "States.DataLimitExceeded")
    assert ex.cause == ("The state/task 'S' returned a result with a size exceeding the maximum number of "
                        "bytes service limit.")
    ex = run(jsonpath(("S", {"Type": "Pass", "Assign": {"v.$": "States.Format('{}{}', $.s, $.s)"},
                             "End": True})), {"s": big[: 130 * 1024]})  # fmt: skip
    assert (ex.status, ex.error) == ("FAILED", "States.DataLimitExceeded")
    assert re.fullmatch(r"The variable 'v' assigned in the state 'S' has a size of \d+ bytes, which exceeds "
                        r"the maximum of 262144 bytes\.", str(ex.cause))
    with pytest.raises(UsageError, match="execution input is larger than 262144 bytes"):
        run(jsonpath(("S", {"Type": "Pass", "End": True})), {"s": big})


def test_context_object_retry_count_and_redrive_count() -> None:
    attempts: list[int] = []

    def flaky(payload: Any) -> Any:
        attempts.append(payload["retry"])
        if len(attempts) < 3:
            raise TaskError("Flaky")
        return payload

    ex = run(jsonpath(
        ("P", {"Type": "Pass", "Parameters": {"ctx.$": "$$.State", "exec.$": "$$.Execution.RedriveCount"},
               "Next": "T"}),
        ("T", {"Type": "Task", "Resource": "flaky", "Parameters": {"retry.$": "$$.State.RetryCount"},
               "Retry": [{"ErrorEquals": ["Flaky"], "MaxAttempts": 3, "IntervalSeconds": 1}],
               "ResultPath": "$.t", "End": True}),
    ), tasks=tasks(flaky=flaky))  # fmt: skip
    assert attempts == [0, 1, 2]
    assert set(ex.output["ctx"]) == {"Name", "EnteredTime"}  # no RetryCount outside Task/Map/Parallel
    assert ex.output["exec"] == 0
    express = run(jsonpath(("P", {"Type": "Pass", "Parameters": {"e.$": "$$.Execution"}, "End": True})),
                  execution_type="EXPRESS")
    assert "RedriveCount" not in express.output["e"] and ":express:" in express.output["e"]["Id"]


def test_a_state_without_output_passes_its_value_on_untouched() -> None:
    # no JSONata round trip: 1.0 stays a float, a big integer stays exact
    data = {"x": 1.0, "big": 2**60 + 1}
    ex = run(jsonata(("P", {"Type": "Pass", "Next": "T"}),
                     ("T", {"Type": "Task", "Resource": "echo", "End": True})), data, tasks=tasks(echo=lambda p: p))
    assert ex.output == data and isinstance(ex.output["x"], float) and ex.output["big"] == 2**60 + 1
