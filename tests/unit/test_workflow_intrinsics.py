"""States.* intrinsic functions: every function, argument parsing and escapes."""

from __future__ import annotations

import base64
import hashlib
import uuid

import pytest

from lakeline.workflow.errors import StatesError
from lakeline.workflow.intrinsics import evaluate, is_intrinsic

CTX = {"Execution": {"Id": "arn:x", "Name": "n1"}}


def ev(expr: str, data: object = None) -> object:
    return evaluate(expr, data if data is not None else {}, CTX)


def test_format_with_paths_and_literals() -> None:
    assert ev("States.Format('Hello, my name is {}.', $.name)", {"name": "Arnav"}) == (
        "Hello, my name is Arnav."
    )
    assert ev("States.Format('{} {} {} {}', 1, 2.5, true, null)") == "1 2.5 true null"
    assert ev("States.Format('run {}', $$.Execution.Name)") == "run n1"


def test_format_escapes() -> None:
    # definition text: States.Format('it\'s \{not\} {} \\ end', $.x)
    assert ev(r"States.Format('it\'s \{not\} {} \\ end', $.x)", {"x": "v"}) == ("it's {not} v \\ end")
    assert ev("States.Format('{}', 'c')") == "c"


def test_format_argument_count_mismatch_fails() -> None:
    with pytest.raises(StatesError) as exc:
        ev("States.Format('{} {}', 1)")
    assert exc.value.error == "States.IntrinsicFailure"
    with pytest.raises(StatesError):
        ev("States.Format('{}', 1, 2)")
    # objects and arrays are printed the way Step Functions (Java) prints maps and lists
    assert ev("States.Format('{}', $.o)", {"o": {"a": 1, "b": ["x", None, True]}}) == "{a=1, b=[x, null, true]}"


def test_json_functions() -> None:
    assert ev("States.StringToJson($.s)", {"s": '{"number": 20}'}) == {"number": 20}
    assert ev("States.JsonToString($.o)", {"o": {"a": 1, "b": [1, 2]}}) == '{"a":1,"b":[1,2]}'
    assert ev("States.JsonMerge($.a, $.b, false)", {"a": {"x": 1, "y": {"p": 1}}, "b": {"y": {"q": 2}}}) == {
        "x": 1,
        "y": {"q": 2},
    }


def test_array_functions() -> None:
    assert ev("States.Array('Foo', 2020, $.x, null)", {"x": {"a": 1}}) == ["Foo", 2020, {"a": 1}, None]
    assert ev("States.Array()") == []
    assert ev("States.ArrayPartition($.a, 4)", {"a": [1, 2, 3, 4, 5, 6, 7, 8, 9]}) == [
        [1, 2, 3, 4],
        [5, 6, 7, 8],
        [9],
    ]
    assert ev("States.ArrayContains($.a, $.v)", {"a": [1, 2, 3, 4, 5, 6, 7, 8, 9], "v": 5}) is True
    assert ev("States.ArrayContains($.a, 10)", {"a": [1, 2]}) is False
    assert ev("States.ArrayContains($.a, true)", {"a": [1]}) is False  # 1 is not true
    assert ev("States.ArrayRange(1, 9, 2)") == [1, 3, 5, 7, 9]
    assert ev("States.ArrayRange(10, 0, -5)") == [10, 5, 0]
    assert ev("States.ArrayGetItem($.a, 5)", {"a": [1, 2, 3, 4, 5, 6, 7, 8, 9]}) == 6
    assert ev("States.ArrayLength($.a)", {"a": [1, 2, 3]}) == 3
    assert ev("States.ArrayUnique($.a)", {"a": [1, 2, 3, 3, 3, 3, 3, 3, 4]}) == [1, 2, 3, 4]


def test_array_range_limits() -> None:
    with pytest.raises(StatesError):
        ev("States.ArrayRange(1, 2000, 1)")
    with pytest.raises(StatesError):
        ev("States.ArrayRange(1, 5, 0)")
    with pytest.raises(StatesError):
        ev("States.ArrayGetItem($.a, 3)", {"a": [1]})


def test_encoding_and_hash() -> None:
    assert ev("States.Base64Encode($.s)", {"s": "Data to encode"}) == "RGF0YSB0byBlbmNvZGU="
    assert ev("States.Base64Decode('RGF0YSB0byBlbmNvZGU=')") == "Data to encode"
    assert ev("States.Base64Decode(States.Base64Encode('héllo'))") == "héllo"
    for name, algo in [("MD5", "md5"), ("SHA-1", "sha1"), ("SHA-256", "sha256"),
                       ("SHA-384", "sha384"), ("SHA-512", "sha512")]:  # fmt: skip
        assert ev(f"States.Hash($.d, '{name}')", {"d": "input data"}) == (
            hashlib.new(algo, b"input data").hexdigest()
        )
    assert ev("States.Hash('input data', 'SHA-1')") == "aaff4a450a104cd177d28d18d74485e8cae074b7"
    with pytest.raises(StatesError):
        ev("States.Hash('x', 'SHA-3')")
    with pytest.raises(StatesError):
        ev("States.Base64Decode('***')")
    assert base64.b64decode(str(ev("States.Base64Encode('a')"))) == b"a"


def test_math_and_uuid() -> None:
    assert ev("States.MathAdd($.v, -1)", {"v": 111}) == 110
    assert ev("States.MathAdd(1, 2)") == 3
    seeded = ev("States.MathRandom(1, 999, 7)")
    assert seeded == ev("States.MathRandom(1, 999, 7)")
    for _ in range(50):
        n = ev("States.MathRandom($.s, $.e)", {"s": 1, "e": 3})
        assert isinstance(n, int) and 1 <= n <= 3
    u = ev("States.UUID()")
    assert uuid.UUID(str(u)).version == 4


def test_string_split() -> None:
    assert ev("States.StringSplit($.s, $.d)", {"s": "1,2,3,4,5", "d": ","}) == ["1", "2", "3", "4", "5"]
    assert ev("States.StringSplit('This.is+a,test=string', '.+,=')") == [
        "This",
        "is",
        "a",
        "test",
        "string",
    ]


def test_nesting_and_parsing() -> None:
    arn = "arn:aws:imagebuilder:us-east-1:123:image-recipe/my.recipe.name/1.0.0"
    expr = (
        "States.Format('{}.{}', States.ArrayGetItem(States.StringSplit(States.ArrayGetItem("
        "States.StringSplit($.Arn, '/'), 1), '.'), 0), States.ArrayGetItem(States.StringSplit("
        "States.ArrayGetItem(States.StringSplit($.Arn, '/'), 1), '.'), 1))"
    )
    assert ev(expr, {"Arn": arn}) == "my.recipe"
    assert ev("States.Array( 'a, b' ,  $.x[0] )", {"x": [7]}) == ["a, b", 7]
    assert ev("States.Array('(paren)', $['k,1'])", {"k,1": 2}) == ["(paren)", 2]
    assert is_intrinsic("States.UUID()") and not is_intrinsic("$.x")


def test_failures_are_intrinsic_failure() -> None:
    for bad in ["States.Nope()", "States.Array('unterminated)", "States.ArrayLength($.missing)",
                "States.MathAdd('a', 1)", "States.StringToJson('{bad')"]:  # fmt: skip
        with pytest.raises(StatesError) as exc:
            ev(bad)
        assert exc.value.error == "States.IntrinsicFailure", bad
    deep = "States.Array(" * 11 + ")" * 11
    with pytest.raises(StatesError):
        ev(deep)
