"""SQL text for identifiers and literals that cannot be bound as parameters (table function
arguments, DDL, COPY targets). Values that can be parameters are always parameters."""

from __future__ import annotations


def quote(name: str) -> str:
    """``name`` as a quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def lit(value: str) -> str:
    """``value`` as a SQL string literal."""
    return "'" + value.replace("'", "''") + "'"
