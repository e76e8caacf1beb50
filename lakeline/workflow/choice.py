"""Choice rule evaluation.

A rule is a boolean expression (``And``/``Or``/``Not``) or a data-test expression with a
``Variable`` and one comparison operator. Comparisons between mismatched types are false; a
``Variable`` (or a ``…Path`` operand) that matches nothing is a ``States.Runtime`` error,
except for ``IsPresent``.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from lakeline.workflow import errors as E
from lakeline.workflow.errors import StatesError
from lakeline.workflow.paths import PathError, get_path

_TS = re.compile(
    r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$"
)  # RFC 3339 as Step Functions accepts it


def parse_timestamp(value: Any) -> datetime | None:
    """A timezone-aware datetime for an RFC 3339 timestamp string, else None."""
    if not isinstance(value, str) or not _TS.match(value):
        return None
    text = value.replace("Z", "+00:00")
    m = re.match(r"^(.*?)(\.\d+)?([+-]\d{2}:\d{2})$", text)
    if m and m.group(2) and len(m.group(2)) > 7:  # python takes at most 6 fraction digits
        text = m.group(1) + m.group(2)[:7] + m.group(3)
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def _is_num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def string_matches(value: str, pattern: str) -> bool:
    """``StringMatches``: ``*`` matches any run of characters; ``\\*`` and ``\\\\`` escape."""
    out = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append(".*" if ch == "*" else re.escape(ch))
        i += 1
    return re.fullmatch("".join(out), value, flags=re.DOTALL) is not None


_COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "Equals": operator.eq,
    "LessThan": operator.lt,
    "GreaterThan": operator.gt,
    "LessThanEquals": operator.le,
    "GreaterThanEquals": operator.ge,
}

_FAMILIES = ("String", "Numeric", "Timestamp")

#: every comparison operator a data-test expression may use
OPERATORS: frozenset[str] = frozenset(
    [f"{fam}{op}" for fam in _FAMILIES for op in _COMPARE]
    + [f"{fam}{op}Path" for fam in _FAMILIES for op in _COMPARE]
    + ["BooleanEquals", "BooleanEqualsPath", "StringMatches"]
    + ["IsPresent", "IsNull", "IsString", "IsNumeric", "IsBoolean", "IsTimestamp"]
)


def _runtime(msg: str) -> StatesError:
    return StatesError(E.RUNTIME, msg)


def evaluate_rule(rule: dict[str, Any], data: Any, context: Any = None) -> bool:
    """Whether the Choice rule (or nested boolean expression) matches ``data``."""
    if "And" in rule:
        return all(evaluate_rule(r, data, context) for r in rule["And"])
    if "Or" in rule:
        return any(evaluate_rule(r, data, context) for r in rule["Or"])
    if "Not" in rule:
        return not evaluate_rule(rule["Not"], data, context)
    variable = rule.get("Variable")
    if not isinstance(variable, str):
        raise _runtime(f"Choice rule has no Variable: {rule}")
    ops = [k for k in rule if k in OPERATORS]
    if len(ops) != 1:
        raise _runtime(f"Choice rule needs exactly one comparison operator: {rule}")
    op = ops[0]
    operand = rule[op]
    if op == "IsPresent":
        present = True
        try:
            get_path(data, variable, context)
        except PathError:
            present = False
        return present == bool(operand)
    try:
        value = get_path(data, variable, context)
    except PathError as exc:
        raise _runtime(
            f"Invalid path '{variable}': The choice state's condition path references an invalid value."
        ) from exc
    if op.startswith("Is"):
        test = {
            "IsNull": value is None,
            "IsString": isinstance(value, str),
            "IsNumeric": _is_num(value),
            "IsBoolean": isinstance(value, bool),
            "IsTimestamp": parse_timestamp(value) is not None,
        }[op]
        return test == bool(operand)
    if op.endswith("Path"):
        try:
            operand = get_path(data, operand, context)
        except PathError as exc:
            raise _runtime(f"Invalid path '{operand}' in {op}") from exc
        op = op[: -len("Path")]
    if op == "StringMatches":
        return isinstance(value, str) and isinstance(operand, str) and string_matches(value, operand)
    if op == "BooleanEquals":
        return isinstance(value, bool) and isinstance(operand, bool) and value == operand
    for fam in _FAMILIES:
        if op.startswith(fam):
            cmp = _COMPARE[op[len(fam) :]]
            if fam == "String":
                ok = isinstance(value, str) and isinstance(operand, str)
                return ok and bool(cmp(value, operand))
            if fam == "Numeric":
                return _is_num(value) and _is_num(operand) and bool(cmp(value, operand))
            a, b = parse_timestamp(value), parse_timestamp(operand)
            return a is not None and b is not None and bool(cmp(a, b))
    raise _runtime(f"unknown Choice operator {op}")  # pragma: no cover


def choose(state: dict[str, Any], data: Any, context: Any = None) -> str:
    """The ``Next`` of the first matching rule, else ``Default``; no match and no Default
    raises ``States.NoChoiceMatched``."""
    rule = choose_rule(state, lambda r: evaluate_rule(r, data, context))
    return str(rule["Next"] if rule is not None else state["Default"])


def choose_rule(state: dict[str, Any], matches: Callable[[dict[str, Any]], bool]) -> dict[str, Any] | None:
    """The first rule ``matches`` accepts, or None when the ``Default`` applies; no match and no
    Default raises ``States.NoChoiceMatched``."""
    for rule in state.get("Choices", []):
        if matches(rule):
            return dict(rule)
    if "Default" in state:
        return None
    raise StatesError(E.NO_CHOICE_MATCHED, "No Choice rule matched and no Default is set")
