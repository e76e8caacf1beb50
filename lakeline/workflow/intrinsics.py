"""Intrinsic functions (``States.Format(...)`` …) in ``.$`` fields.

Arguments are string literals in single quotes (escapes ``\\'``, ``\\\\``, ``\\{``, ``\\}``),
numbers, ``true``/``false``/``null``, paths (``$.x``, ``$$.Execution.Id``) and nested
intrinsic calls. Any failure raises :class:`StatesError` ``States.IntrinsicFailure``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import random
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lakeline.workflow import errors as E
from lakeline.workflow import paths  # paths uses intrinsics too: names are read at call time
from lakeline.workflow.errors import StatesError

_CALL = re.compile(r"^\s*States\.[A-Za-z0-9]+\(")
MAX_NESTING = 10


def is_intrinsic(expr: str) -> bool:
    return bool(_CALL.match(expr))


def _fail(msg: str) -> StatesError:
    return StatesError(E.INTRINSIC_FAILURE, msg)


@dataclass
class _Lit:
    """A string literal: ``value`` unescaped, ``raw`` with ``\\{``/``\\}`` kept (for Format)."""

    value: str
    raw: str


@dataclass
class _Path:
    path: str


@dataclass
class _Call:
    name: str
    args: list[Any]


class _Parser:
    def __init__(self, text: str) -> None:
        self.s = text
        self.i = 0

    def error(self, msg: str) -> StatesError:
        return _fail(f"{msg} at position {self.i} in {self.s!r}")

    def ws(self) -> None:
        while self.i < len(self.s) and self.s[self.i].isspace():
            self.i += 1

    def parse(self) -> _Call:
        self.ws()
        node = self.call(0)
        self.ws()
        if self.i != len(self.s):
            raise self.error("unexpected trailing text")
        return node

    def call(self, depth: int) -> _Call:
        if depth >= MAX_NESTING:
            raise self.error(f"more than {MAX_NESTING} nested intrinsic functions")
        m = re.compile(r"States\.([A-Za-z0-9]+)\(").match(self.s, self.i)
        if not m:
            raise self.error("expected an intrinsic function")
        self.i = m.end()
        args: list[Any] = []
        self.ws()
        if self.peek() == ")":
            self.i += 1
            return _Call(m.group(1), args)
        while True:
            self.ws()
            args.append(self.arg(depth))
            self.ws()
            ch = self.peek()
            if ch == ",":
                self.i += 1
            elif ch == ")":
                self.i += 1
                return _Call(m.group(1), args)
            else:
                raise self.error("expected ',' or ')'")

    def peek(self) -> str:
        return self.s[self.i] if self.i < len(self.s) else ""

    def arg(self, depth: int) -> Any:
        ch = self.peek()
        if ch == "'":
            return self.string()
        if ch == "$":
            return self.path()
        if self.s.startswith("States.", self.i):
            return self.call(depth + 1)
        m = re.compile(r"-?\d+(\.\d+)?([eE][+-]?\d+)?").match(self.s, self.i)
        if m:
            self.i = m.end()
            return json.loads(m.group(0))
        for word, val in (("true", True), ("false", False), ("null", None)):
            if self.s.startswith(word, self.i):
                self.i += len(word)
                return val
        raise self.error("bad argument")

    def string(self) -> _Lit:
        self.i += 1
        value, raw = [], []
        while self.i < len(self.s):
            ch = self.s[self.i]
            if ch == "\\" and self.i + 1 < len(self.s):
                nxt = self.s[self.i + 1]
                self.i += 2
                value.append(nxt)
                raw.append("\\" + nxt if nxt in "{}\\" else nxt)
                continue
            if ch == "'":
                self.i += 1
                return _Lit("".join(value), "".join(raw))
            value.append(ch)
            raw.append(ch)
            self.i += 1
        raise self.error("unterminated string literal")

    def path(self) -> _Path:
        start = self.i
        depth = 0
        quote = ""
        while self.i < len(self.s):
            ch = self.s[self.i]
            if quote:
                if ch == quote:
                    quote = ""
            elif ch in "'\"":
                quote = ch
            elif ch in "[(":
                depth += 1
            elif ch in "])":
                if depth == 0:
                    break
                depth -= 1
            elif ch == "," and depth == 0:
                break
            self.i += 1
        return _Path(self.s[start : self.i].strip())


def parse(expr: str) -> _Call:
    return _Parser(expr).parse()


def evaluate(expr: str, data: Any, context: Any) -> Any:
    """Evaluate an intrinsic function call against the data (``$``) and context (``$$``)."""
    return _eval_call(parse(expr), data, context)


def _eval_arg(node: Any, data: Any, context: Any) -> Any:
    if isinstance(node, _Lit):
        return node.value
    if isinstance(node, _Path):
        try:
            return paths.get_path(data, node.path, context)
        except paths.PathError as exc:
            raise _fail(f"Invalid path '{node.path}': {exc}") from exc
    if isinstance(node, _Call):
        return _eval_call(node, data, context)
    return node


def _eval_call(call: _Call, data: Any, context: Any) -> Any:
    fn = _FUNCTIONS.get(call.name)
    if fn is None:
        raise _fail(f"unknown intrinsic function States.{call.name}")
    if call.name == "Format":
        return _format(call, data, context)
    args = [_eval_arg(a, data, context) for a in call.args]
    try:
        return fn(*args)
    except StatesError:
        raise
    except (TypeError, ValueError, KeyError, IndexError, binascii.Error) as exc:
        raise _fail(f"States.{call.name}: {exc}") from exc


# ---- the functions ---------------------------------------------------------------------------
def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _need(cond: bool, msg: str) -> None:
    if not cond:
        raise _fail(msg)


def _to_text(v: Any) -> str:
    if isinstance(v, str):
        return v
    return json.dumps(v, separators=(",", ":"), ensure_ascii=False)


def _format(call: _Call, data: Any, context: Any) -> str:
    _need(len(call.args) >= 1, "States.Format needs a template")
    first = call.args[0]
    template = first.raw if isinstance(first, _Lit) else _eval_arg(first, data, context)
    _need(isinstance(template, str), "States.Format template must be a string")
    values = [_eval_arg(a, data, context) for a in call.args[1:]]
    out: list[str] = []
    k = 0
    i = 0
    while i < len(template):
        ch = template[i]
        if ch == "\\" and i + 1 < len(template) and template[i + 1] in "{}\\":
            out.append(template[i + 1])
            i += 2
            continue
        if template.startswith("{}", i):
            _need(k < len(values), "States.Format has more placeholders than arguments")
            out.append(_format_text(values[k]))
            k += 1
            i += 2
            continue
        out.append(ch)
        i += 1
    _need(k == len(values), "States.Format has more arguments than placeholders")
    return "".join(out)


def _format_text(v: Any) -> str:
    """A States.Format argument as Step Functions prints it: objects and arrays the way Java
    prints its maps and lists (``{Arg1=1, Arg2=[]}``), strings unquoted inside them."""
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}={_format_text(x)}" for k, x in v.items()) + "}"
    if isinstance(v, list):
        return "[" + ", ".join(_format_text(x) for x in v) + "]"
    return _to_text(v)


def _string_to_json(s: Any) -> Any:
    _need(isinstance(s, str), "States.StringToJson needs a string")
    if not s.strip():
        return None  # Step Functions parses an empty or blank string as null
    return json.loads(s)


def _json_to_string(v: Any) -> str:
    return json.dumps(v, separators=(",", ":"), ensure_ascii=False)


def _array(*args: Any) -> list[Any]:
    return list(args)


def _array_partition(arr: Any, size: Any) -> list[Any]:
    _need(isinstance(arr, list), "States.ArrayPartition needs an array")
    _need(_is_int(size) and size > 0, "States.ArrayPartition chunk size must be a positive int")
    return [arr[i : i + size] for i in range(0, len(arr), size)]


def _array_contains(arr: Any, value: Any) -> bool:
    _need(isinstance(arr, list), "States.ArrayContains needs an array")
    return any(_json_equal(x, value) for x in arr)


def _json_equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) != isinstance(b, bool):
        return False
    return bool(a == b)


def _array_range(start: Any, end: Any, step: Any) -> list[int]:
    for v in (start, end, step):
        _need(_is_int(v), "States.ArrayRange arguments must be integers")
    _need(step != 0, "States.ArrayRange step must not be 0")
    out = list(range(start, end + (1 if step > 0 else -1), step))
    _need(len(out) <= 1000, "States.ArrayRange result has more than 1000 items")
    return out


def _array_get_item(arr: Any, index: Any) -> Any:
    _need(isinstance(arr, list), "States.ArrayGetItem needs an array")
    _need(_is_int(index) and 0 <= index < len(arr), f"States.ArrayGetItem: bad index {index}")
    return arr[index]


def _array_length(arr: Any) -> int:
    _need(isinstance(arr, list), "States.ArrayLength needs an array")
    return len(arr)


def _array_unique(arr: Any) -> list[Any]:
    _need(isinstance(arr, list), "States.ArrayUnique needs an array")
    out: list[Any] = []
    for x in arr:
        if not any(_json_equal(x, y) for y in out):
            out.append(x)
    return out


def _b64encode(s: Any) -> str:
    _need(isinstance(s, str), "States.Base64Encode needs a string")
    _need(len(s) <= 10000, "States.Base64Encode input is longer than 10000 characters")
    return base64.b64encode(s.encode()).decode()


def _b64decode(s: Any) -> str:
    _need(isinstance(s, str), "States.Base64Decode needs a string")
    _need(len(s) <= 10000, "States.Base64Decode input is longer than 10000 characters")
    return base64.b64decode(s.encode(), validate=True).decode()


_HASHES = {"MD5": "md5", "SHA-1": "sha1", "SHA-256": "sha256", "SHA-384": "sha384",
           "SHA-512": "sha512"}  # fmt: skip


def _hash(value: Any, algorithm: Any) -> str:
    _need(value is not None, "States.Hash data must not be null")
    _need(algorithm in _HASHES, f"States.Hash: unsupported algorithm {algorithm!r}")
    text = _to_text(value)
    _need(len(text) <= 10000, "States.Hash input is longer than 10000 characters")
    return hashlib.new(_HASHES[algorithm], text.encode()).hexdigest()


def _json_merge(a: Any, b: Any, deep: Any) -> dict[str, Any]:
    _need(isinstance(a, dict) and isinstance(b, dict), "States.JsonMerge needs two objects")
    _need(isinstance(deep, bool), "States.JsonMerge third argument must be a boolean")
    if not deep:
        return {**a, **b}
    out = dict(a)
    for k, v in b.items():
        if isinstance(out.get(k), dict) and isinstance(v, dict):
            out[k] = _json_merge(out[k], v, True)
        else:
            out[k] = v
    return out


def _rounded(v: Any) -> int:
    """A number argument as Step Functions reads it: rounded half up to an integer
    (``1.5`` → 2, ``-1.5`` → -1, ``1.49`` → 1), as Java's ``Math.round``."""
    return int(v) if _is_int(v) else math.floor(v + 0.5)


def _math_random(start: Any, end: Any, seed: Any = None) -> int:
    _need(_is_num(start) and _is_num(end), "States.MathRandom bounds must be numbers")
    _need(seed is None or _is_num(seed), "States.MathRandom seed must be a number")
    low, high = _rounded(start), _rounded(end)
    _need(low <= high, "States.MathRandom start must not exceed end")
    rng = random.Random(_rounded(seed)) if seed is not None else random
    return rng.randint(low, high)


def _math_add(a: Any, b: Any) -> int:
    _need(_is_num(a) and _is_num(b), "States.MathAdd arguments must be numbers")
    return _rounded(a) + _rounded(b)


def _string_split(s: Any, delimiters: Any) -> list[str]:
    _need(isinstance(s, str) and isinstance(delimiters, str), "States.StringSplit needs strings")
    if not delimiters:
        return [s]
    parts = re.split("[" + re.escape(delimiters) + "]", s)
    return [p for p in parts if p != ""]


def _uuid() -> str:
    return str(uuid.uuid4())


_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "Format": _format,
    "StringToJson": _string_to_json,
    "JsonToString": _json_to_string,
    "Array": _array,
    "ArrayPartition": _array_partition,
    "ArrayContains": _array_contains,
    "ArrayRange": _array_range,
    "ArrayGetItem": _array_get_item,
    "ArrayLength": _array_length,
    "ArrayUnique": _array_unique,
    "Base64Encode": _b64encode,
    "Base64Decode": _b64decode,
    "Hash": _hash,
    "JsonMerge": _json_merge,
    "MathRandom": _math_random,
    "MathAdd": _math_add,
    "StringSplit": _string_split,
    "UUID": _uuid,
}
