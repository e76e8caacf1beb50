"""Reading a chunk by its source format into the relation :mod:`lakeline.stages.classify` types.

Each format gives SQL for a relation ``(_idx, _pre, _pre_msg, _r[, _line][, _unknown])`` over a
chunk registered with DuckDB (``_pre``: a reason code when the record cannot be read at all,
``_pre_msg`` why):

* JSON lines (``jsonl``; a JSON array is turned into lines first): one record per non-blank
  line, parsed once with ``TRY(from_json(...))`` into text fields, so a number where a string
  is expected never aborts the chunk; ``MALFORMED_JSON`` / ``NOT_AN_OBJECT`` otherwise, and
  ``DUPLICATE_FIELD`` for an object that repeats a key its table reads (``{"a": 1, "a": 2}``).
* CSV: records found with numpy (quote-aware line ends), fields split by one regular
  expression per record in DuckDB; a record with the wrong number of fields is a
  ``SCHEMA_ERROR``.
* Parquet: the row groups of the chunk, every column as text.

``_unknown`` lists the fields a record has that its table does not declare (only when the
pipeline's ``on_unknown_field`` is not ``ignore``).
"""

from __future__ import annotations

import re

import orjson

from lakeline import reasons
from lakeline.sqltext import lit, quote
from lakeline.stages.spec import CsvOptions, StreamSpec

_WS = "E' \\t\\r'"
# Blank lines are not records. trim() on every line costs more than parsing it, so only lines
# that start with whitespace are trimmed.
NOT_BLANK = (
    "_line <> '' AND (NOT (starts_with(_line, ' ') OR starts_with(_line, E'\\t') "
    f"OR starts_with(_line, E'\\r')) OR trim(_line, {_WS}) <> '')"
)


def declared_sources(spec: StreamSpec) -> str:
    """SQL of the list of source names a record's table declares (by the route field)."""
    def names(fields: list[str]) -> str:
        return "[" + ", ".join(lit(n) for n in fields) + "]"

    if spec.route_field is None:
        return names([f.source for f in spec.tables[0].columns])
    route = f"json_extract_string(_line, {lit('$.' + orjson.dumps(spec.route_field).decode())})"
    whens = " ".join(f"WHEN {lit(t.route_value)} THEN {names([f.source for f in t.columns])}"
                     for t in spec.tables)
    return f"CASE {route} {whens} ELSE [] END"


def json_struct(spec: StreamSpec) -> str:
    """The ``from_json`` type of every declared field as text: ``{"a": "VARCHAR", …}``."""
    return lit(orjson.dumps({f.source: "VARCHAR" for f in spec.all_fields()}).decode())


def json_parsed(spec: StreamSpec, chunk: str = "chunk") -> str:
    """The parsed relation of a JSON-lines chunk registered as ``chunk(content, base)``
    (:func:`lakeline.stages.lines.chunk_table`)."""
    lines = f"""(WITH src AS (SELECT base, string_split(content, E'\\n') AS s FROM {chunk})
SELECT base + unnest(range(1, len(s) + 1)) AS _idx, unnest(s) AS _line FROM src)"""
    return json_parsed_lines(spec, lines)


def json_parsed_lines(spec: StreamSpec, lines: str) -> str:
    """The parsed relation of a relation ``lines(_idx, _line)`` of JSON lines."""
    unknown = ""
    if spec.on_unknown_field != "ignore":
        keep = f"lambda k: NOT list_contains({declared_sources(spec)}, k)"
        unknown = (f", CASE WHEN _r IS NOT NULL AND json_type(_line) = 'OBJECT' THEN "
                   f"list_filter(json_keys(_line), {keep}) END AS _unknown")
    # from_json keeps the first of two equal keys: a repeated key the record's table reads
    # is a DUPLICATE_FIELD (the fast path's read_json refuses such a line, so both agree)
    repeated = "list_sort(list_distinct(list_filter(_read, lambda k, i: list_position(_read, k) < i)))"
    return f"""(
WITH parsed AS (
  SELECT _idx, _line, TRY(from_json(_line, {json_struct(spec)})) AS _r FROM {lines} WHERE {NOT_BLANK}
),
checked AS (
  SELECT *,
    CASE WHEN _r IS NULL THEN '{reasons.MALFORMED_JSON}'
         WHEN NOT (starts_with(_line, '{{') OR starts_with(ltrim(_line, {_WS}), '{{'))
         THEN '{reasons.NOT_AN_OBJECT}'
    END AS _pre0
  FROM parsed
),
keyed AS (
  SELECT *, CASE WHEN _pre0 IS NULL THEN json_keys(_line) END AS _keys FROM checked
),
repeats AS (
  -- only an object that repeats some key is checked for the keys its table reads (rare)
  SELECT *, CASE WHEN len(_keys) <> list_unique(_keys)
    THEN list_filter(_keys, lambda k: list_contains({read_keys(spec)}, k)) END AS _read
  FROM keyed
)
SELECT _idx, _line, _r, _pre,
  CASE _pre WHEN '{reasons.MALFORMED_JSON}' THEN 'line is not valid JSON'
            WHEN '{reasons.NOT_AN_OBJECT}' THEN 'line is JSON but not an object'
            WHEN '{reasons.DUPLICATE_FIELD}'
            THEN 'the object repeats key(s): ' || array_to_string({repeated}, ', ')
  END AS _pre_msg{unknown}
FROM (SELECT *,
  coalesce(_pre0, CASE WHEN len(_read) <> list_unique(_read) THEN '{reasons.DUPLICATE_FIELD}' END) AS _pre
  FROM repeats))"""


def read_keys(spec: StreamSpec) -> str:
    """SQL (over a parsed record ``_r``) of the source names its table reads: the table's
    declared fields, the route field and the time field (what the fast path's ``read_json``
    reads, so a repeated key is found alike on both paths)."""
    extra = [n for n in (spec.route_field, _time_source(spec)) if n is not None]

    def names(fields: list[str]) -> str:
        return "[" + ", ".join(lit(n) for n in dict.fromkeys(fields)) + "]"

    if spec.route_field is None:
        return names([f.source for f in spec.tables[0].columns] + extra)
    route = f"_r.{quote(spec.route_field)}"
    whens = " ".join(f"WHEN {lit(t.route_value)} THEN {names([f.source for f in t.columns] + extra)}"
                     for t in spec.tables)
    return f"CASE {route} {whens} ELSE {names(extra)} END"


def _time_source(spec: StreamSpec) -> str | None:
    if spec.time_field is None:
        return None
    f = spec.tables[0].field(spec.time_field)
    return f.source if f is not None else spec.time_field


def json_keys_sql(spec: StreamSpec, chunk: str = "chunk") -> str:
    """SQL of the distinct ``(route value, key)`` pairs of the chunk's JSON objects (the route
    value is NULL when not routed): what schema evolution compares with the declared fields."""
    route = (f"json_extract_string(_line, {lit('$.' + orjson.dumps(spec.route_field).decode())})"
             if spec.route_field else "NULL")
    return f"""
WITH src AS (SELECT string_split(content, E'\\n') AS s FROM {chunk}),
lines AS (SELECT unnest(s) AS _line FROM src)
SELECT DISTINCT {route} AS route, unnest(json_keys(_line)) AS key
FROM lines WHERE {NOT_BLANK} AND json_valid(_line) AND json_type(_line) = 'OBJECT'
"""


def _csv_pattern(opts: CsvOptions) -> str:
    """RE2 pattern of one field preceded by the delimiter: a quoted field (quotes doubled or
    escaped inside) or an unquoted one (no delimiter, no quote)."""
    d, q, e = (re.escape(c) for c in (opts.delimiter, opts.quote, opts.escape))
    inner = f"(?:[^{q}]|{q}{q})*" if opts.escape == opts.quote else f"(?:[^{q}{e}]|{e}.)*"
    return f"{d}({q}{inner}{q}|[^{d}{q}]*)"


def _unquote(value: str, opts: CsvOptions) -> str:
    """SQL of a field's value from its text: quotes removed, escapes undone, empty = NULL."""
    q, e = lit(opts.quote), lit(opts.escape)
    body = f"replace({value}[2:-2], {lit(opts.quote * 2)}, {q})" if opts.escape == opts.quote else \
        f"replace(replace({value}[2:-2], {e} || {q}, {q}), {e} || {e}, {e})"
    return (f"CASE WHEN {value} = '' THEN NULL WHEN starts_with({value}, {q}) THEN nullif({body}, '') "
            f"ELSE {value} END")


def csv_parsed(spec: StreamSpec, columns: list[str], records: str = "csv_records") -> str:
    """The parsed relation of CSV records registered as ``records(_idx, _raw)`` (a record's text
    with its line end). ``columns`` are the header's names (or the declared fields in order
    when the file has no header). A record whose fields cannot be split (a quote left open,
    a stray quote in an unquoted field) or whose field count differs from the header's is a
    ``SCHEMA_ERROR``."""
    opts = spec.csv
    pat = lit(_csv_pattern(opts))
    d = lit(opts.delimiter)
    n = len(columns)
    position = {c: i + 1 for i, c in enumerate(columns)}
    fields = ", ".join(
        f"{quote(f.source)} := " + (_unquote(f"_vals[{position[f.source]}]", opts) if f.source in position
                                    else "CAST(NULL AS VARCHAR)")
        for f in spec.all_fields())
    unknown = ", CAST([] AS VARCHAR[]) AS _unknown" if spec.on_unknown_field != "ignore" else ""
    return f"""(
WITH texts AS (
  SELECT _idx, regexp_replace(_raw, '\r?\n$', '') AS _text FROM {records}
  WHERE trim(_raw, E' \t\r\n') <> ''
),
split AS (
  SELECT _idx, _text, regexp_extract_all({d} || _text, {pat}, 1) AS _vals,
    list_sum(list_transform(regexp_extract_all({d} || _text, {pat}, 0), lambda x: strlen(x)))
      = strlen(_text) + {len(opts.delimiter.encode())} AS _whole
  FROM texts
)
SELECT _idx,
  CASE WHEN NOT _whole OR len(_vals) <> {n} THEN '{reasons.SCHEMA_ERROR}' END AS _pre,
  CASE WHEN NOT _whole
       THEN 'the record is not valid CSV: a quote is left open or stands inside an unquoted field'
       WHEN len(_vals) <> {n} THEN 'expected {n} fields, found ' || len(_vals) END AS _pre_msg,
  struct_pack({fields}) AS _r{unknown}
FROM split)"""


def unknown_column(spec: StreamSpec) -> str | None:
    """The classifier's ``unknown`` expression (reject policy only)."""
    return "_unknown" if spec.on_unknown_field == "reject" else None


__all__ = [
    "NOT_BLANK",
    "csv_parsed",
    "declared_sources",
    "json_keys_sql",
    "json_parsed",
    "json_parsed_lines",
    "json_struct",
    "read_keys",
    "unknown_column",
]
