"""``lakeline sql --csv | --json``: query results written by DuckDB itself.

DuckDB's ``COPY … TO`` writes the result to a temporary file, which is then streamed to the
output. (Not ``TO '/dev/stdout'``: reopening stdout truncates a file it is redirected to and
bypasses whatever Python already buffered.) Every DuckDB type is written, nested ones
included:

- **CSV**: a header line; struct, list, array, map and union values as JSON text
  (``{"key":"a.jsonl","line_no":1}``), so one cell is one parseable value; DECIMAL values
  with their scale (``1.50``); NULL as an empty field.
- **JSON**: one array of objects; nested values as JSON objects and arrays; DECIMAL and
  HUGEINT as JSON numbers; NaN and ±infinity (not JSON) as ``null`` (in CSV's JSON cells too;
  a top-level CSV float stays ``nan`` / ``inf``).
- **both**: TIMESTAMP as ISO 8601 ``2026-01-05T10:00:00`` (``.ffffff`` only when there are
  fractional seconds), TIMESTAMPTZ in UTC with its offset ``2026-01-05T10:00:00+00:00`` — the
  form Python's ``isoformat`` gives — at any depth; DATE as ``2026-01-05``.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    import duckdb

FORMATS = ("csv", "json")
_VIEW = "__lakeline_result"
_TIMESTAMPS = {"timestamp", "timestamp_s", "timestamp_ms", "timestamp_ns", "timestamp with time zone"}
_FLOATS = {"float", "double"}
_NESTED = {"struct", "list", "array", "map", "union"}


def quote(name: str) -> str:
    """``name`` as a DuckDB identifier."""
    return '"' + name.replace('"', '""') + '"'


def _iso(expr: str, tz: bool) -> str:
    # the session time zone is UTC (lakeline.duck), so strftime renders a TIMESTAMPTZ in UTC
    suffix = " || '+00:00'" if tz else ""
    whole = f"strftime({expr}, '%Y-%m-%dT%H:%M:%S')"
    frac = f"strftime({expr}, '%Y-%m-%dT%H:%M:%S.%f')"
    return f"(CASE WHEN microsecond({expr}) % 1000000 = 0 THEN {whole} ELSE {frac} END){suffix}"


def _render(expr: str, dtype: Any, fmt: str, depth: int = 0) -> str | None:
    """The SQL that renders ``expr`` of DuckDB type ``dtype`` for ``fmt``, or None when DuckDB's
    own rendering is already the one documented above."""
    kind = str(dtype.id)
    if kind in _TIMESTAMPS:
        return _iso(expr, kind == "timestamp with time zone")
    if kind in _FLOATS and (fmt == "json" or depth > 0):  # nested CSV cells are JSON too
        return f"(CASE WHEN isfinite({expr}) THEN {expr} END)"
    if kind == "struct":
        parts = [(name, child, _render(f"{expr}[{_literal(name)}]", child, fmt, depth + 1))
                 for name, child in dtype.children]
        if all(r is None for _, _, r in parts):
            return None
        fields = ", ".join(f"{quote(n)} := {r or expr + '[' + _literal(n) + ']'}" for n, _, r in parts)
        return f"(CASE WHEN {expr} IS NOT NULL THEN struct_pack({fields}) END)"
    if kind in ("list", "array"):
        child = dtype.child if kind == "list" else dict(dtype.children)["child"]
        var = f"x{depth}"
        inner = _render(var, child, fmt, depth + 1)
        return None if inner is None else f"list_transform({expr}, lambda {var}: {inner})"
    if kind == "map":
        _key, value = (c for _, c in dtype.children)
        var = f"e{depth}"
        inner = _render(f"{var}.value", value, fmt, depth + 1)
        if inner is None:
            return None
        return (f"map_from_entries(list_transform(map_entries({expr}), lambda {var}: "
                f"{{'key': {var}.key, 'value': {inner}}}))")
    return None


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def select_sql(columns: list[str], types: list[Any], fmt: str, source: str) -> str:
    """``SELECT`` over ``source`` rendering each column for ``fmt`` (see the module doc)."""
    exprs = []
    for name, dtype in zip(columns, types, strict=True):
        col = quote(name)
        rendered = _render(col, dtype, fmt)
        if fmt == "csv" and str(dtype.id) in _NESTED:
            rendered = f"to_json({rendered or col})"
        exprs.append(f"{rendered} AS {col}" if rendered else col)
    return f"SELECT {', '.join(exprs) or '*'} FROM {source}"


def write_result(con: duckdb.DuckDBPyConnection, rel: duckdb.DuckDBPyRelation, fmt: str, out: IO[bytes],
          work_dir: Path | None = None) -> None:
    """Write relation ``rel`` as ``fmt`` (``csv`` or ``json``) to the binary stream ``out``."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {fmt!r}")
    con.register(_VIEW, rel)
    try:
        query = select_sql(list(rel.columns), list(rel.types), fmt, _VIEW)
        options = "FORMAT csv, HEADER true" if fmt == "csv" else "FORMAT json, ARRAY true"
        with tempfile.TemporaryDirectory(prefix="sql-", dir=work_dir) as tmp:
            path = Path(tmp) / f"result.{fmt}"
            target = str(path).replace("'", "''")
            con.execute(f"COPY ({query}) TO '{target}' ({options})")
            with path.open("rb") as f:
                shutil.copyfileobj(f, out)
            out.flush()
    finally:
        con.unregister(_VIEW)
