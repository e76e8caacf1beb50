"""One DuckDB pass that turns a chunk of JSON lines into typed rows or rejects.

The chunk's bytes become a single Arrow string (zero copy); DuckDB splits it into lines,
parses each line once with ``TRY(from_json(...))`` into VARCHAR fields (so a number where a
string is expected, or a string where a number is expected, never aborts the chunk), casts
every field to its silver type with ``TRY_CAST``, and classifies each line: a reason code for
rejects, NULL for rows that load. No Python runs per record on this path.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import numpy as np
import orjson
import pyarrow as pa

from lakeline import reasons
from lakeline.pipelines.base import SILVER_TYPES, Field, RecordType, StreamPipeline
from lakeline.sqltext import lit, quote

BOM = b"\xef\xbb\xbf"


def typed_column(field: Field, raw: str) -> str:
    """SQL giving ``field``'s silver-typed value from ``raw``, its text as parsed (NULL if
    it does not convert)."""
    if field.type == "int64":
        # TRY_CAST('2.5' AS BIGINT) rounds to 3, so only integral values are accepted: integer
        # text exactly (no trip through DOUBLE, which would round above 2**53), else an
        # integral number such as 2.0 or 1e3.
        d = f"TRY_CAST({raw} AS DOUBLE)"
        return (f"CASE WHEN regexp_full_match({raw}, '-?[0-9]+') THEN TRY_CAST({raw} AS BIGINT) "
                f"WHEN {d} = trunc({d}) THEN TRY_CAST({d} AS BIGINT) END")
    if field.type == "string":
        return raw
    if field.type == "timestamp":
        # Only years 0001-9999 (ISO 8601; Hive/Athena dt partitions): 'infinity' and year
        # 10000 cast in DuckDB, but they name no day.
        ts = f"TRY_CAST({raw} AS TIMESTAMPTZ)"
        return f"CASE WHEN {ts} BETWEEN {_TS_MIN} AND {_TS_MAX} THEN {ts} END"
    return f"TRY_CAST({raw} AS {SILVER_TYPES[field.type]})"


_TS_MIN = "TIMESTAMPTZ '0001-01-01 00:00:00+00'"
_TS_MAX = "TIMESTAMPTZ '9999-12-31 23:59:59.999999+00'"


Expr = Callable[[Field], str]


def _field_checks(
    pipeline: StreamPipeline, rt: RecordType, raw: Expr, typed: Expr, line: str | None = None
) -> list[tuple[str, str, Field]]:
    """``(condition, what is wrong, field)`` of each TYPE_ERROR check of ``rt``'s fields.

    ``line``: SQL of the line's JSON text, which tells a nested value from a string holding
    JSON text; without it such a string counts as wrong too (the fast path then falls back)."""
    out: list[tuple[str, str, Field]] = []
    for f in rt.fields:
        if f.name in {pipeline.time_field, "record_type"}:
            continue
        if f.type == "string":
            # from_json renders a nested object/array as JSON text, as it renders a string
            # holding such text: only the line itself tells them apart (checked only then).
            bad = f"left({raw(f)}, 1) IN ('{{', '[') AND json_valid({raw(f)})"
            if line is not None:
                path = lit("$." + orjson.dumps(f.name).decode())
                bad += f" AND json_type({line}, {path}) IN ('OBJECT', 'ARRAY')"
            out.append((f"({bad})", " is an object or array, not a string", f))
        else:
            out.append((f"({raw(f)} IS NOT NULL AND {typed(f)} IS NULL)", " is not " + f.type, f))
    return out


def type_error(
    pipeline: StreamPipeline, rt: RecordType, raw: Expr, typed: Expr, line: str | None = None
) -> str:
    """SQL that is true when a row of ``rt`` has a field of the wrong type."""
    return " OR ".join(c for c, _, _ in _field_checks(pipeline, rt, raw, typed, line)) or "FALSE"


def _checks(pipeline: StreamPipeline, raw: Expr, typed: Expr, line: str | None) -> tuple[str, str]:
    """SQL condition for a TYPE_ERROR, and the SQL that explains it; ``raw(f)`` is the SQL of
    a field as parsed, ``typed(f)`` of its silver-typed value, ``line`` of the line's text."""
    type_checks: list[str] = []
    type_messages: list[str] = []
    for rt in pipeline.record_types:
        checks = _field_checks(pipeline, rt, raw, typed, line)
        for bad, what, f in checks:
            type_messages.append(
                f"CASE WHEN {raw(_RT)} = {lit(rt.name)} AND {bad} THEN "
                f"{lit(f.name + ': ')} || {raw(f)} || {lit(what)} END"
            )
        if checks:
            type_checks.append(
                f"({raw(_RT)} = {lit(rt.name)} AND ({type_error(pipeline, rt, raw, typed, line)}))"
            )
    cond = " OR ".join(type_checks) or "FALSE"
    message = "concat_ws('; ', " + ", ".join(type_messages) + ")" if type_messages else "''"
    return cond, message


def record_reasons(pipeline: StreamPipeline, raw: Expr, typed: Expr, line: str | None = None) -> str:
    """The ``WHEN … THEN reason`` clauses for a line that parsed as a JSON object: unknown or
    missing record type, missing or unparseable time, a field of the wrong type. Shared by the
    exact path and the fast path (:mod:`lakeline.stages.fastparse`), so both classify alike."""
    tf = Field(pipeline.time_field, "timestamp")
    known = ", ".join(lit(rt.name) for rt in pipeline.record_types)
    cond, _ = _checks(pipeline, raw, typed, line)
    return f"""WHEN {raw(_RT)} IS NULL THEN '{reasons.SCHEMA_ERROR}'
    WHEN {raw(_RT)} NOT IN ({known}) THEN '{reasons.SCHEMA_ERROR}'
    WHEN {raw(tf)} IS NULL THEN '{reasons.NULL_VALUE_ERROR}'
    WHEN {typed(tf)} IS NULL THEN '{reasons.TIMESTAMP_ERROR}'
    WHEN {cond} THEN '{reasons.TYPE_ERROR}'"""


def _raw(f: Field) -> str:
    return f"r.{quote(f.name)}"


def _typed(f: Field) -> str:
    return f"t.{quote(f.name)}"


_RT = Field("record_type")
_WS = "E' \\t\\r'"
# Blank lines are not records. trim() on every line costs more than parsing it, so only lines
# that start with whitespace are trimmed.
_NOT_BLANK = (
    "line <> '' AND (NOT (starts_with(line, ' ') OR starts_with(line, E'\\t') "
    f"OR starts_with(line, E'\\r')) OR trim(line, {_WS}) <> '')"
)


def _typed_cte(pipeline: StreamPipeline, source: str) -> str:
    fields = pipeline.all_fields()
    struct = lit(orjson.dumps({f.name: "VARCHAR" for f in fields}).decode())
    typed = ",\n  ".join(
        f"{typed_column(f, _raw(f))} AS {quote(f.name)}" for f in fields if f.name != "record_type"
    )
    return f"""parsed AS (
  SELECT idx, line, TRY(from_json(line, {struct})) AS r FROM {source} WHERE {_NOT_BLANK}
),
typed AS (
  SELECT idx, line, r,
  starts_with(line, '{{') OR starts_with(ltrim(line, {_WS}), '{{') AS is_obj,
  {typed}
  FROM parsed
)"""


def classify_sql(pipeline: StreamPipeline) -> str:
    """SQL over relation ``chunk(content, base)``: one row per non-blank line.

    Columns: ``idx`` (1-based line index in the chunk), ``reason`` (NULL when the row
    loads), ``record_type``, ``dt`` (UTC date of the time field) and one typed column per
    field of any record type. Messages are left to :func:`explain_sql` (rejects only).
    """
    tf = quote(pipeline.time_field)
    return f"""
WITH src AS (SELECT base, string_split(content, E'\\n') AS s FROM chunk),
lines AS (SELECT base + unnest(range(1, len(s) + 1)) AS idx, unnest(s) AS line FROM src),
{_typed_cte(pipeline, "lines")}
SELECT
  idx,
  CASE
    WHEN r IS NULL THEN '{reasons.MALFORMED_JSON}'
    WHEN NOT is_obj THEN '{reasons.NOT_AN_OBJECT}'
    {record_reasons(pipeline, _raw, _typed, "t.line")}
  END AS reason,
  r.record_type AS record_type,
  CAST(t.{tf} AS DATE) AS dt,
  t.* EXCLUDE (idx, line, r, is_obj)
FROM typed AS t
"""


def explain_sql(pipeline: StreamPipeline) -> str:
    """SQL over relation ``bad(idx, line)`` (rejected lines only): ``idx, message``."""
    tf = quote(pipeline.time_field)
    known = ", ".join(lit(rt.name) for rt in pipeline.record_types)
    _, message = _checks(pipeline, _raw, _typed, "t.line")
    return f"""
WITH {_typed_cte(pipeline, "bad")}
SELECT idx,
  CASE
    WHEN r IS NULL THEN 'line is not valid JSON'
    WHEN NOT is_obj THEN 'line is JSON but not an object'
    WHEN r.record_type IS NULL THEN 'record_type is missing'
    WHEN r.record_type NOT IN ({known}) THEN 'unknown record_type ' || r.record_type
    WHEN r.{tf} IS NULL THEN '{pipeline.time_field} is missing'
    WHEN t.{tf} IS NULL THEN '{pipeline.time_field} ' || r.{tf} || ' is not a timestamp in years 0001-9999'
    ELSE {message}
  END AS message
FROM typed AS t
"""


def chunk_table(data: bytes, pieces: int = 8) -> tuple[pa.Table, list[tuple[int, str]]]:
    """Wrap chunk bytes as Arrow rows ``(content, base)`` without copying the bytes.

    The chunk is cut at line ends into ``pieces`` rows (one record batch each) so DuckDB can
    split and parse them on several threads; ``base`` is the number of lines before each
    piece. Lines that are not valid UTF-8 are blanked (keeping line numbering) and returned
    as ``(idx, message)`` so the caller rejects them with ``ENCODING_ERROR``.
    """
    bad: list[tuple[int, str]] = []
    try:
        as_string(data).validate(full=True)
    except pa.ArrowInvalid:
        # Rare path: find the offending lines one by one.
        lines = data.split(b"\n")
        for i, raw in enumerate(lines):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                bad.append((i + 1, f"invalid UTF-8 at byte {exc.start} of the line"))
                lines[i] = b""
        data = b"\n".join(lines)
    view = memoryview(data)
    cuts = [0]
    for i in range(1, max(1, pieces)):
        cut = data.find(b"\n", max(cuts[-1], len(data) * i // pieces))
        if cut < 0:
            break
        cuts.append(cut + 1)
    cuts.append(len(data))
    batches: list[pa.RecordBatch] = []
    base = 0
    for a, b in itertools.pairwise(cuts):
        if b <= a and batches:
            continue
        batches.append(pa.record_batch({
            "content": as_string(view[a:b]), "base": pa.array([base], pa.int64()),
        }))
        base += data.count(b"\n", a, b)
    return pa.Table.from_batches(batches), bad


def as_string(data: bytes | memoryview) -> pa.Array[Any]:
    """``data`` as a one-element Arrow large string, without copying (not validated)."""
    offsets = np.array([0, len(data)], dtype=np.int64)
    return pa.LargeStringArray.from_buffers(1, pa.py_buffer(offsets.tobytes()), pa.py_buffer(data))


def line_count(data: bytes) -> int:
    """Lines in ``data``, blank ones included (a last line without a newline counts)."""
    if not data:
        return 0
    return data.count(b"\n") + (0 if data.endswith(b"\n") else 1)


def line_spans(data: bytes, indexes: list[int]) -> dict[int, tuple[int, int]]:
    """``(start, end)`` byte span within ``data`` of each 1-based line index (rejects only)."""
    if not indexes:
        return {}
    newlines = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == 10)
    starts = np.concatenate(([0], newlines + 1))
    ends = np.concatenate((newlines, [len(data)]))
    return {i: (int(starts[i - 1]), int(ends[i - 1])) for i in indexes if 0 < i <= len(starts)}


def json_error(line: str) -> str:
    """A precise parse error for one rejected line (rejects only, so per-line is fine)."""
    try:
        orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        return f"line is not valid JSON: {exc}"
    return "line is not valid JSON"


def reject_row(**values: Any) -> dict[str, Any]:
    """A reject row with every column of the rejects table present."""
    row = dict.fromkeys(REJECT_COLUMNS)
    row.update(values)
    return row


REJECT_COLUMNS = (
    "pipeline", "bucket", "key", "etag", "chunk", "line_no", "byte_offset",
    "record_type", "reason_code", "message", "raw", "rejected_at",
)
