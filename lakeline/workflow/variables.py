"""Workflow variables (``Assign``) as Step Functions defines them.

A :class:`Scope` holds the variables of one thread of control: the top level, or one Map
iteration / Parallel branch. An inner scope reads the variables of the scopes around it as they
were when it started (read-only) and keeps its own assignments to itself; what a state assigns
takes effect after the state (every expression of the state sees the values from before it).

Limits (AWS quotas): one variable's value at most 256 KiB, one state's assignments together at
most 256 KiB, all the variables of an execution at most 10 MiB — over them the state fails with
``States.DataLimitExceeded``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import orjson

from lakeline.workflow import errors as E
from lakeline.workflow.errors import StatesError

#: a variable name as Step Functions accepts it (JSONata identifier rules, ASCII)
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
#: a variable reference in a JSONPath field: ``$name`` then an optional path
REFERENCE = re.compile(r"^\$([A-Za-z_][A-Za-z0-9_]*)(.*)$", re.S)
#: names Step Functions reserves (``$states`` is the JSONata state binding)
RESERVED = frozenset({"states"})
MAX_VALUE_BYTES = 256 * 1024
MAX_ASSIGN_BYTES = 256 * 1024
MAX_TOTAL_BYTES = 10 * 1024 * 1024


def _size(value: Any) -> int:
    return len(orjson.dumps(value))


class Scope:
    """The variables one flow reads: its own over a frozen view of the enclosing scopes'."""

    def __init__(self, outer: Mapping[str, Any] | None = None) -> None:
        self._outer: dict[str, Any] = dict(outer or {})
        self._own: dict[str, Any] = {}
        self._assigned: dict[str, Any] = {}

    def view(self) -> dict[str, Any]:
        """Every variable this scope can read (inner assignments win)."""
        return {**self._outer, **self._own}

    def child(self) -> Scope:
        """The scope of a Map iteration or Parallel branch started now."""
        return Scope(self.view())

    def assign(self, values: Mapping[str, Any], state: str) -> None:
        """Apply one state's assignments after checking AWS's size limits."""
        total = 0
        for name, value in values.items():
            size = _size(value)
            if size > MAX_VALUE_BYTES:
                raise StatesError(
                    E.DATA_LIMIT_EXCEEDED,
                    f"The variable '{name}' assigned in the state '{state}' has a size of {size} "
                    f"bytes, which exceeds the maximum of {MAX_VALUE_BYTES} bytes.",
                )
            total += size
        if total > MAX_ASSIGN_BYTES:
            raise StatesError(
                E.DATA_LIMIT_EXCEEDED,
                f"The variables assigned in the state '{state}' have a combined size of {total} "
                f"bytes, which exceeds the maximum of {MAX_ASSIGN_BYTES} bytes.",
            )
        merged = {**self.view(), **values}
        if _size(merged) > MAX_TOTAL_BYTES:
            raise StatesError(
                E.DATA_LIMIT_EXCEEDED,
                f"The variables of the execution exceed the maximum of {MAX_TOTAL_BYTES} bytes "
                f"after the assignments of the state '{state}'.",
            )
        self._own.update(values)
        self._assigned.update(values)

    def take_assigned(self) -> dict[str, Any]:
        """The assignments made since the last call (for the state's exit event)."""
        taken, self._assigned = self._assigned, {}
        return taken


def split_reference(path: str) -> tuple[str, str] | None:
    """``("name", "$.rest")`` for a variable reference ``$name.rest``; None for ``$…``/``$$…``."""
    m = REFERENCE.match(path)
    if m is None:
        return None
    return m.group(1), "$" + m.group(2)
