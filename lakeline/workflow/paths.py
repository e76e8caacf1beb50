"""JSONPath (the subset States Language uses) and input/output processing.

Supported path syntax: ``$``, ``.name``, ``['name']``/``["name"]``, ``[n]`` (negative counts
from the end), ``[*]``/``.*``, ``[a:b:c]`` slices, ``[a,b]`` unions, ``..name`` recursive
descent and ``[?(@.field op literal)]`` filters (``==  != < <= > >=``, or bare existence).
A *definite* path (names and indexes only) yields one value; any other path yields the list
of matches. A *reference path* (``ResultPath``, ``ItemsPath``, Choice ``Variable`` …) must
be definite. ``$$`` addresses the context object instead of the state's input.

Order of processing (spec, "Input and Output Processing"): ``InputPath`` → ``Parameters`` /
``ItemSelector`` → (the state's work) → ``ResultSelector`` → ``ResultPath`` → ``OutputPath``.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from typing import Any

from lakeline.workflow import errors as E
from lakeline.workflow import intrinsics
from lakeline.workflow.errors import StatesError
from lakeline.workflow.variables import split_reference

_MISSING: Any = object()


class Context(dict[str, Any]):
    """The ``$$`` context object of a state, carrying the variables (``$name``) it can read."""

    def __init__(self, data: dict[str, Any], variables: dict[str, Any] | None = None) -> None:
        super().__init__(data)
        self.variables: dict[str, Any] = variables if variables is not None else {}

    def __deepcopy__(self, memo: dict[int, Any]) -> dict[str, Any]:
        return copy.deepcopy(dict(self), memo)  # a value taken from $$ is plain JSON


class PathError(Exception):
    """A path is malformed or does not match the data."""


@dataclass(frozen=True)
class _Seg:
    kind: str  # child | index | wild | slice | union | filter
    value: Any = None
    deep: bool = False  # recursive descent (..)


_NAME = re.compile(r"[^.\[\]\s]+")


def _parse_literal(text: str) -> Any:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    try:
        return json.loads(text)
    except ValueError as exc:
        raise PathError(f"bad literal {text!r}") from exc


_FILTER = re.compile(r"^\?\(\s*@((?:\.[^\s=!<>]+)*)\s*(?:(==|!=|<=|>=|<|>)\s*(.+?))?\s*\)$")


def _parse_bracket(body: str, deep: bool) -> _Seg:
    body = body.strip()
    if body == "*":
        return _Seg("wild", deep=deep)
    m = _FILTER.match(body)
    if m:
        sub = parse_path("$" + m.group(1)) if m.group(1) else []
        lit = _parse_literal(m.group(3)) if m.group(2) else None
        return _Seg("filter", (sub, m.group(2), lit), deep=deep)
    parts = _split_union(body)
    if len(parts) > 1:
        return _Seg("union", [_bracket_key(p) for p in parts], deep=deep)
    if ":" in body and not body.startswith(("'", '"')):
        nums = body.split(":")
        if len(nums) > 3:
            raise PathError(f"bad slice [{body}]")
        try:
            vals = [int(n) if n.strip() else None for n in nums] + [None] * (3 - len(nums))
        except ValueError as exc:
            raise PathError(f"bad slice [{body}]") from exc
        return _Seg("slice", tuple(vals), deep=deep)
    key = _bracket_key(body)
    return _Seg("index" if isinstance(key, int) else "child", key, deep=deep)


def _split_union(body: str) -> list[str]:
    parts, cur, quote = [], "", ""
    for ch in body:
        if quote:
            cur += ch
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
            cur += ch
        elif ch == ",":
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return [p.strip() for p in parts]


def _bracket_key(text: str) -> str | int:
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    try:
        return int(text)
    except ValueError as exc:
        raise PathError(f"bad subscript [{text}]") from exc


_CACHE: dict[str, list[_Seg]] = {}


def parse_path(path: str) -> list[_Seg]:
    """Parse a JSONPath starting with ``$`` (or ``$$``; the caller picks the root)."""
    if not isinstance(path, str) or not path.startswith("$"):
        raise PathError(f"path must start with '$': {path!r}")
    cached = _CACHE.get(path)
    if cached is not None:
        return cached
    i = 2 if path.startswith("$$") else 1
    segs: list[_Seg] = []
    n = len(path)
    while i < n:
        deep = False
        if path.startswith("..", i):
            deep = True
            i += 2
            if i < n and path[i] == "[":
                pass  # ..[...]
            elif i < n and path[i] == "*":
                segs.append(_Seg("wild", deep=True))
                i += 1
                continue
            else:
                m = _NAME.match(path, i)
                if not m:
                    raise PathError(f"bad path {path!r}")
                segs.append(_Seg("child", m.group(0), deep=True))
                i = m.end()
                continue
        ch = path[i]
        if ch == "." and not deep:
            i += 1
            if i < n and path[i] == "*":
                segs.append(_Seg("wild"))
                i += 1
                continue
            m = _NAME.match(path, i)
            if not m:
                raise PathError(f"bad path {path!r}")
            segs.append(_Seg("child", m.group(0)))
            i = m.end()
        elif ch == "[":
            j = _bracket_end(path, i)
            segs.append(_parse_bracket(path[i + 1 : j], deep))
            i = j + 1
        else:
            raise PathError(f"bad path {path!r} at {i}")
    if len(_CACHE) < 4096:
        _CACHE[path] = segs
    return segs


def _bracket_end(path: str, start: int) -> int:
    quote = ""
    depth = 0
    for j in range(start, len(path)):
        ch = path[j]
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch in "[(":
            depth += 1
        elif ch in "])":
            depth -= 1
            if depth == 0 and ch == "]":
                return j
    raise PathError(f"unclosed bracket in {path!r}")


def is_definite(segs: list[_Seg]) -> bool:
    return all(s.kind in ("child", "index") and not s.deep for s in segs)


def _children(node: Any) -> list[Any]:
    if isinstance(node, dict):
        return list(node.values())
    if isinstance(node, list):
        return list(node)
    return []


def _descendants(node: Any) -> list[Any]:
    out = [node]
    for child in _children(node):
        out.extend(_descendants(child))
    return out


def _compare(a: Any, op: str, b: Any) -> bool:
    if op == "==":
        return bool(a == b)
    if op == "!=":
        return bool(a != b)
    num = (int, float)
    ok_types = (isinstance(a, num) and isinstance(b, num) and not isinstance(a, bool)) or (
        isinstance(a, str) and isinstance(b, str)
    )
    if not ok_types:
        return False
    return bool({"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op])


def _apply(seg: _Seg, node: Any) -> list[Any]:
    if seg.kind == "child":
        if isinstance(node, dict) and seg.value in node:
            return [node[seg.value]]
        return []
    if seg.kind == "index":
        if isinstance(node, list) and -len(node) <= seg.value < len(node):
            return [node[seg.value]]
        return []
    if seg.kind == "wild":
        return _children(node)
    if seg.kind == "slice":
        if isinstance(node, list):
            a, b, c = seg.value
            return list(node[slice(a, b, c)])
        return []
    if seg.kind == "union":
        out: list[Any] = []
        for key in seg.value:
            out.extend(_apply(_Seg("index" if isinstance(key, int) else "child", key), node))
        return out
    if seg.kind == "filter":
        sub, op, lit = seg.value
        out = []
        for child in _children(node):
            found = _select(sub, child)
            if not found:
                continue
            if op is None or _compare(found[0], op, lit):
                out.append(child)
        return out
    raise PathError(f"unknown segment {seg.kind}")


def _select(segs: list[_Seg], root: Any) -> list[Any]:
    nodes = [root]
    for seg in segs:
        nxt: list[Any] = []
        for node in nodes:
            targets = _descendants(node) if seg.deep else [node]
            for t in targets:
                nxt.extend(_apply(seg, t))
        nodes = nxt
    return nodes


def get_path(data: Any, path: str, context: Any = _MISSING) -> Any:
    """The value at ``path``: one value for a definite path (PathError when absent), the
    list of matches otherwise. ``$$…`` paths read ``context``."""
    ref = split_reference(path)
    if ref is not None:
        name, rest = ref
        variables: dict[str, Any] = getattr(context, "variables", {})
        if name not in variables:
            raise PathError(f"the variable '${name}' is not assigned")
        data, path = variables[name], rest
    segs = parse_path(path)
    root = data
    if path.startswith("$$"):
        if context is _MISSING:
            raise PathError(f"no context object for {path!r}")
        root = context
    found = _select(segs, root)
    if is_definite(segs):
        if not found:
            raise PathError(f"No results for path: {normalized(segs)}")
        return dict(found[0]) if isinstance(found[0], Context) else found[0]
    return found


def normalized(segs: list[_Seg]) -> str:
    """A definite path spelled as Step Functions' JSONPath library reports it: ``$['a'][0]``."""
    parts = ["$"]
    for seg in segs:
        parts.append(f"['{seg.value}']" if seg.kind == "child" else f"[{seg.value}]")
    return "".join(parts)


def path_exists(data: Any, path: str, context: Any = _MISSING) -> bool:
    try:
        get_path(data, path, context)
    except PathError:
        return False
    return True


def set_path(data: Any, path: str, value: Any) -> Any:
    """A copy of ``data`` with ``value`` placed at reference path ``path`` (missing object
    fields are created); PathError when the path cannot be applied."""
    segs = parse_path(path)
    if not is_definite(segs) or path.startswith("$$"):
        raise PathError(f"{path!r} is not a reference path")
    if not segs:
        return value
    root = copy.deepcopy(data)
    node = root
    for k, seg in enumerate(segs):
        last = k == len(segs) - 1
        if seg.kind == "child":
            if not isinstance(node, dict):
                raise PathError(f"cannot set {path!r}: not an object at {seg.value!r}")
            if last:
                node[seg.value] = value
            else:
                if seg.value not in node:
                    node[seg.value] = {}
                node = node[seg.value]
        else:
            if not isinstance(node, list) or not -len(node) <= seg.value < len(node):
                raise PathError(f"cannot set {path!r}: no index {seg.value}")
            if last:
                node[seg.value] = value
            else:
                node = node[seg.value]
    return root


# ---- payload templates (Parameters, ItemSelector, ResultSelector) ----------------------------
def evaluate_value(expr: str, data: Any, context: Any, field: str = "") -> Any:
    """The value of a ``"key.$"`` field: a path, a ``$$`` context path or an intrinsic."""

    if expr.startswith("$"):
        try:
            return get_path(data, expr, context)
        except PathError as exc:
            # AWS fails the execution with States.Runtime here (ParameterPathFailure is
            # named by the spec but Step Functions reports the path failure as Runtime).
            where = "context object" if expr.startswith("$$") else "input"
            shown = context if expr.startswith("$$") else data
            raise StatesError(
                E.RUNTIME,
                f"The JSONPath '{expr}' specified for the field '{field}' could not be found "
                f"in the {where} '{json.dumps(shown, default=str, separators=(',', ':'))}'",
            ) from exc
    if intrinsics.is_intrinsic(expr):
        return intrinsics.evaluate(expr, data, context)
    raise StatesError(E.PARAMETER_PATH_FAILURE, f"'{expr}' is neither a path nor an intrinsic function")


def apply_template(template: Any, data: Any, context: Any) -> Any:
    """Build a payload from a template: keys ending in ``.$`` take the value of their
    path/intrinsic (and lose the suffix); nested objects and arrays are processed too."""
    if isinstance(template, dict):
        out: dict[str, Any] = {}
        for key, val in template.items():
            if key.endswith(".$") and isinstance(val, str):
                out[key[:-2]] = evaluate_value(val, data, context, key)
            else:
                out[key] = apply_template(val, data, context)
        return out
    if isinstance(template, list):
        return [apply_template(v, data, context) for v in template]
    return copy.deepcopy(template)


# ---- state-level processing ------------------------------------------------------------------
def _filter_path(field: str, state: dict[str, Any], data: Any, context: Any) -> Any:
    """``InputPath`` / ``OutputPath``: default ``$``; null gives ``{}``."""
    if field in state and state[field] is None:
        return {}
    path = state.get(field, "$")
    try:
        return get_path(data, path, context)
    except PathError as exc:
        raise StatesError(E.RUNTIME, f"Invalid path '{path}' : {exc}") from exc


def apply_input_path(state: dict[str, Any], raw: Any, context: Any) -> Any:
    """``InputPath`` (default ``$``; null gives ``{}``)."""
    return _filter_path("InputPath", state, raw, context)


def apply_parameters(state: dict[str, Any], effective: Any, context: Any, key: str) -> Any:
    if key not in state:
        return effective
    return apply_template(state[key], effective, context)


def apply_result_selector(state: dict[str, Any], result: Any, context: Any) -> Any:
    if "ResultSelector" not in state:
        return result
    return apply_template(state["ResultSelector"], result, context)


def apply_result_path(state: dict[str, Any], raw: Any, result: Any) -> Any:
    """``ResultPath`` (default ``$``: the result replaces the input; null: the raw input
    passes through) — relative to the state's raw input."""
    if "ResultPath" in state and state["ResultPath"] is None:
        return raw
    return place_result(state.get("ResultPath", "$"), raw, result)


def place_result(path: str, raw: Any, result: Any) -> Any:
    try:
        return set_path(raw, path, result)
    except PathError as exc:
        raise StatesError(
            E.RESULT_PATH_MATCH_FAILURE,
            f"Unable to apply ResultPath '{path}' to input {json.dumps(raw, default=str)}: {exc}",
        ) from exc


def apply_output_path(state: dict[str, Any], data: Any, context: Any) -> Any:
    """``OutputPath`` (default ``$``; null gives ``{}``)."""
    return _filter_path("OutputPath", state, data, context)


def make_context(
    *,
    execution_id: str,
    execution_name: str,
    execution_input: Any,
    start_time: str,
    state_machine_id: str,
    state_machine_name: str,
    state_name: str,
    entered_time: str,
    retry_count: int | None = None,
    redrive_count: int | None = 0,
    map_item: tuple[int, Any] | None = None,
    variables: dict[str, Any] | None = None,
) -> Context:
    """The ``$$`` context object as Step Functions builds it: ``Execution.RedriveCount`` for a
    STANDARD execution (None: an EXPRESS one has none), ``State.RetryCount`` only in states that
    retry (Task, Map, Parallel: None elsewhere), ``Map.Item`` inside a Map's ItemSelector."""
    execution: dict[str, Any] = {
        "Id": execution_id,
        "Input": execution_input,
        "Name": execution_name,
        "RoleArn": "arn:aws:iam::000000000000:role/lakeline-local",
        "StartTime": start_time,
    }
    if redrive_count is not None:
        execution["RedriveCount"] = redrive_count
    state: dict[str, Any] = {"Name": state_name, "EnteredTime": entered_time}
    if retry_count is not None:
        state["RetryCount"] = retry_count
    ctx: dict[str, Any] = {
        "Execution": execution,
        "StateMachine": {"Id": state_machine_id, "Name": state_machine_name},
        "State": state,
    }
    if map_item is not None:
        ctx["Map"] = {"Item": {"Index": map_item[0], "Value": map_item[1]}}
    return Context(ctx, variables)
