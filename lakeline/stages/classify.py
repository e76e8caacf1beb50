"""One DuckDB pass that turns a chunk of records into typed rows or rejects.

A chunk is first *parsed* by its format (:mod:`lakeline.stages.formats`) into rows
``(_idx, _pre, _r, …)``: ``_idx`` the record's 1-based index in the chunk, ``_pre`` a reason code
when the record cannot even be read (malformed JSON, a CSV row with the wrong number of
fields), ``_r`` a struct holding every declared field *as text*, keyed by its source name.
Internal columns start with ``_``; declared fields may not.
Then the same SQL, whatever the format, routes each record to its table, casts every field to
its silver type with ``TRY_CAST`` and gives each record a reason code, or NULL when it loads::

    SCHEMA_ERROR       route field missing or naming no table; an undeclared field (reject)
    NULL_VALUE_ERROR   the time field, a required field or a key field is empty
    TIMESTAMP_ERROR    the time field is not a time in years 0001-9999
    TYPE_ERROR         a field that does not convert to its type (NaN, Infinity, 1e400 included)
    DUPLICATE_FAILURE  a key seen before in the load (:func:`dedupe_sql`)

No Python runs per record on this path.
"""

from __future__ import annotations

from collections.abc import Callable

import orjson

from lakeline import reasons
from lakeline.sqltext import lit, quote
from lakeline.stages.spec import CsvOptions, StreamSpec, StreamTable
from lakeline.tables.schema import Field, decimal_parts, sql_type

#: the reason of a record dropped because a later record with its key superseded it
#: (``on_duplicate = "latest"``): not a reject, counted as deduplicated.
SUPERSEDED = "SUPERSEDED"

Expr = Callable[[Field], str]

_TS_MIN = "TIMESTAMPTZ '0001-01-01 00:00:00+00'"
_TS_MAX = "TIMESTAMPTZ '9999-12-31 23:59:59.999999+00'"


def typed_column(field: Field, raw: str, csv: CsvOptions | None = None) -> str:
    """SQL giving ``field``'s silver-typed value from ``raw``, its text as parsed (NULL if it
    does not convert). ``csv``: the source's decimal comma and date/time formats."""
    t = field.type
    if t == "string":
        return raw
    number = f"replace({raw}, ',', '.')" if csv is not None and csv.decimal == "," else raw
    if t == "int64":
        # TRY_CAST('2.5' AS BIGINT) rounds to 3, so only integral values are accepted: integer
        # text exactly (no trip through DOUBLE, which would round above 2**53), else an
        # integral number such as 2.0 or 1e3.
        d = f"TRY_CAST({number} AS DOUBLE)"
        return (f"CASE WHEN regexp_full_match({raw}, '-?[0-9]+') THEN TRY_CAST({raw} AS BIGINT) "
                f"WHEN {d} = trunc({d}) THEN TRY_CAST({d} AS BIGINT) END")
    if t == "float64":
        # NaN, Infinity and 1e400 cast to a DOUBLE but are no measurement: a TYPE_ERROR
        d = f"TRY_CAST({number} AS DOUBLE)"
        return f"CASE WHEN isfinite({d}) THEN {d} END"
    if t == "bool":
        return f"TRY_CAST({raw} AS BOOLEAN)"
    if t == "date":
        if csv is not None and csv.date_format:
            return f"CAST(TRY_STRPTIME({raw}, {lit(csv.date_format)}) AS DATE)"
        # a date, not a time: TRY_CAST('2026-01-05T10:00' AS DATE) would drop the time silently
        return f"CASE WHEN NOT contains({raw}, ':') THEN TRY_CAST({raw} AS DATE) END"
    if t == "timestamp":
        if csv is not None and csv.timestamp_format:
            ts = f"TRY_CAST(TRY_STRPTIME({raw}, {lit(csv.timestamp_format)}) AS TIMESTAMPTZ)"
        else:
            ts = f"TRY_CAST({raw} AS TIMESTAMPTZ)"
        # Only years 0001-9999 (ISO 8601; Hive/Athena dt partitions): 'infinity' and year
        # 10000 cast in DuckDB, but they name no day.
        return f"CASE WHEN {ts} BETWEEN {_TS_MIN} AND {_TS_MAX} THEN {ts} END"
    dec = decimal_parts(t)
    if dec is not None:
        p, s = dec
        value = f"TRY_CAST({number} AS {sql_type(t)})"
        # the cast rounds extra digits away: accept it only when a cast keeping more digits
        # gives the same number (no digit was lost)
        wide = min(38 - (p - s), s + 9)
        if wide <= s:
            return value
        return f"CASE WHEN TRY_CAST({number} AS DECIMAL(38,{wide})) = {value} THEN {value} END"
    raise ValueError(f"no SQL for type {t!r}")  # pragma: no cover - Field validates its type


def _raw(f: Field) -> str:
    return f"_r.{quote(f.source)}"


def _typed(f: Field) -> str:
    return f"t.{quote(f.name)}"


class Classifier:
    """The classification SQL of one stream spec (built once per spec, reused per chunk).

    ``raw(f)`` is the SQL of a field's text, ``typed(f)`` of its silver-typed value; the
    defaults fit :meth:`classify_sql`, the fast path passes its own."""

    def __init__(self, spec: StreamSpec, raw: Expr = _raw, typed: Expr = _typed, *,
                 json_line: str | None = None, unknown: str | None = None) -> None:
        self.spec = spec
        self.raw = raw
        self.typed = typed
        self.json_line = json_line  # SQL of the line's JSON text (tells a nested value from a string)
        self.unknown = unknown  # SQL of the list of the record's undeclared fields (reject policy)
        self.route = Field(spec.route_field) if spec.route_field else None
        self.time = self._time_field()

    def _time_field(self) -> Field | None:
        name = self.spec.time_field
        if name is None:
            return None
        f = self.spec.tables[0].field(name)
        return f if f is not None else Field(name, "timestamp")

    # ---- per table conditions --------------------------------------------------------------
    def in_table(self, t: StreamTable) -> str:
        """SQL true for records routed to ``t``."""
        if self.route is None:
            return "TRUE"
        return f"{self.raw(self.route)} = {lit(t.route_value)}"

    def type_checks(self, t: StreamTable) -> list[tuple[str, str, Field]]:
        """``(condition, what is wrong, field)`` of each TYPE_ERROR check of ``t``'s fields.

        With ``json_line``, a string field holding an object or array is wrong; without it such
        a string counts as wrong too (the fast path then falls back to the exact path). ``what``
        is SQL of the words after the value in the reject's message."""
        out: list[tuple[str, str, Field]] = []
        csv = self.spec.csv if self.spec.format == "csv" else None
        skip = {self.spec.time_field, self.spec.route_field}
        for f in t.columns:
            if f.name in skip:
                continue
            raw = self.raw(f)
            if f.type == "string":
                if self.spec.format not in ("jsonl", "json"):
                    continue
                # from_json renders a nested object/array as JSON text, as it renders a string
                # holding such text: only the line itself tells them apart (checked only then).
                bad = f"left({raw}, 1) IN ('{{', '[') AND json_valid({raw})"
                if self.json_line is not None:
                    path = lit("$." + orjson.dumps(f.source).decode())
                    bad += f" AND json_type({self.json_line}, {path}) IN ('OBJECT', 'ARRAY')"
                out.append((f"({bad})", lit(" is an object or array, not a string"), f))
            elif f.type == "float64":
                # a number that is not finite gets its own words (the reason is the same)
                number = f"replace({raw}, ',', '.')" if csv is not None and csv.decimal == "," else raw
                what = (f"CASE WHEN TRY_CAST({number} AS DOUBLE) IS NULL THEN ' is not float64' "
                        "ELSE ' is not a finite float64' END")
                out.append((f"({raw} IS NOT NULL AND {self.typed(f)} IS NULL)", what, f))
            else:
                out.append((f"({raw} IS NOT NULL AND {self.typed(f)} IS NULL)", lit(" is not " + f.type), f))
        return out

    def type_error(self, t: StreamTable) -> str:
        """SQL true when a record of ``t`` has a field of the wrong type."""
        return " OR ".join(c for c, _, _ in self.type_checks(t)) or "FALSE"

    def required(self, t: StreamTable) -> list[Field]:
        """Fields of ``t`` a record must have: the required ones and the key."""
        skip = {self.spec.time_field, self.spec.route_field}
        return [f for f in t.columns if (f.required or f.name in t.key) and f.name not in skip]

    def missing(self, t: StreamTable) -> str:
        """SQL true when a record of ``t`` lacks a required field."""
        return " OR ".join(f"{self.raw(f)} IS NULL" for f in self.required(t)) or "FALSE"

    def _per_table(self, cond: Callable[[StreamTable], str]) -> str:
        parts = [f"({self.in_table(t)} AND ({c}))" for t in self.spec.tables if (c := cond(t)) != "FALSE"]
        return " OR ".join(parts) or "FALSE"

    # ---- reasons -----------------------------------------------------------------------------
    def reasons(self) -> str:
        """``WHEN … THEN reason`` clauses for a record that was read (shared by the exact
        path and the fast path, so both classify alike)."""
        out: list[str] = []
        if self.route is not None:
            known = ", ".join(lit(t.route_value) for t in self.spec.tables)
            out += [f"WHEN {self.raw(self.route)} IS NULL THEN '{reasons.SCHEMA_ERROR}'",
                    f"WHEN {self.raw(self.route)} NOT IN ({known}) THEN '{reasons.SCHEMA_ERROR}'"]
        if self.time is not None:
            out += [f"WHEN {self.raw(self.time)} IS NULL THEN '{reasons.NULL_VALUE_ERROR}'",
                    f"WHEN {self.typed(self.time)} IS NULL THEN '{reasons.TIMESTAMP_ERROR}'"]
        out.append(f"WHEN {self._per_table(self.missing)} THEN '{reasons.NULL_VALUE_ERROR}'")
        out.append(f"WHEN {self._per_table(self.type_error)} THEN '{reasons.TYPE_ERROR}'")
        if self.unknown is not None:
            out.append(f"WHEN len({self.unknown}) > 0 THEN '{reasons.SCHEMA_ERROR}'")
        return "\n    ".join(out)

    def reason(self) -> str:
        """The reason code of a read record (NULL: it loads)."""
        return f"CASE {self.reasons()} END"

    def explain(self) -> str:
        """SQL of a person-readable message for a rejected read record."""
        route, time = self.route, self.time
        parts: list[str] = ["WHEN _pre IS NOT NULL THEN _pre_msg"]
        if route is not None:
            known = ", ".join(lit(t.route_value) for t in self.spec.tables)
            name = route.name
            parts += [f"WHEN {self.raw(route)} IS NULL THEN {lit(name + ' is missing')}",
                      f"WHEN {self.raw(route)} NOT IN ({known}) THEN 'unknown {name} ' || {self.raw(route)}"]
        if time is not None:
            parts += [f"WHEN {self.raw(time)} IS NULL THEN {lit(time.name + ' is missing')}",
                      f"WHEN {self.typed(time)} IS NULL THEN {lit(time.name + ' ')} || {self.raw(time)} || "
                      f"{lit(' is not a ' + _time_what(time))}"]
        missing = []
        for t in self.spec.tables:
            for f in self.required(t):
                missing.append(f"CASE WHEN {self.in_table(t)} AND {self.raw(f)} IS NULL THEN "
                               f"{lit(f.name + ' is missing')} END")
        if missing:
            parts.append(f"WHEN {self._per_table(self.missing)} THEN concat_ws('; ', {', '.join(missing)})")
        wrong = []
        for t in self.spec.tables:
            for bad, what, f in self.type_checks(t):
                wrong.append(f"CASE WHEN {self.in_table(t)} AND {bad} THEN "
                             f"{lit(f.name + ': ')} || {self.raw(f)} || {what} END")
        if wrong:
            parts.append(f"WHEN {self._per_table(self.type_error)} THEN concat_ws('; ', {', '.join(wrong)})")
        if self.unknown is not None:
            parts.append(f"WHEN len({self.unknown}) > 0 THEN 'undeclared field(s): ' || "
                         f"array_to_string({self.unknown}, ', ')")
        return "CASE " + "\n    ".join(parts) + " END"

    # ---- whole statements --------------------------------------------------------------------
    def route_expr(self) -> str:
        """SQL of the name of the record's table (NULL when it routes nowhere)."""
        if self.route is None:
            return lit(self.spec.tables[0].name)
        whens = " ".join(f"WHEN {lit(t.route_value)} THEN {lit(t.name)}" for t in self.spec.tables)
        return f"CASE {self.raw(self.route)} {whens} END"

    def typed_select(self) -> str:
        """The typed columns of every field (``<typed> AS "<name>"``)."""
        csv = self.spec.csv if self.spec.format == "csv" else None
        return ",\n  ".join(
            f"{typed_column(f, _raw(f), csv)} AS {quote(f.name)}" for f in self.spec.all_fields())

    def classify_sql(self, parsed: str) -> str:
        """SQL over ``parsed`` (a relation of ``_idx, _pre, _r`` and, for JSON, ``_line``):
        one row per record with ``_idx``, ``_reason``, ``_table`` (the table's name), ``_dt``
        (UTC date of the time field; NULL without one) and every field's typed column."""
        dt = f"CAST(t.{quote(self.time.name)} AS DATE)" if self.time is not None else "CAST(NULL AS DATE)"
        return f"""
WITH typed AS (
  SELECT p.*, {self.typed_select()}
  FROM {parsed} AS p
)
SELECT
  _idx,
  CASE WHEN _pre IS NOT NULL THEN _pre
    {self.reasons()}
  END AS _reason,
  {self.route_expr()} AS _table,
  {dt} AS _dt,
  t.* EXCLUDE ({_parsed_columns(self.spec)})
FROM typed AS t
"""

    def explain_sql(self, parsed: str) -> str:
        """SQL over ``parsed`` (rejected records only): ``_idx, message``."""
        return f"""
WITH typed AS (SELECT p.*, {self.typed_select()} FROM {parsed} AS p)
SELECT _idx, {self.explain()} AS message FROM typed AS t
"""


def _time_what(f: Field) -> str:
    return "date" if f.type == "date" else "timestamp in years 0001-9999"


def _parsed_columns(spec: StreamSpec) -> str:
    cols = ["_idx", "_pre", "_pre_msg", "_r"]
    if spec.format in ("jsonl", "json"):
        cols.append("_line")
    if spec.on_unknown_field != "ignore":
        cols.append("_unknown")
    return ", ".join(cols)


def dedupe_sql(spec: StreamSpec, source: str) -> str | None:
    """SQL over ``source`` (classified rows) that marks duplicates of a key within the load:
    ``DUPLICATE_FAILURE`` for every record after the first (``on_duplicate = "reject"``), or
    :data:`SUPERSEDED` for every record but the latest (``"latest"``: greatest time field,
    then last in the file). None when no table has a key."""
    windows = []
    for t in spec.tables:
        if not t.key:
            continue
        keys = ", ".join(quote(k) for k in t.key)
        if spec.on_duplicate == "latest":
            latest = f"{quote(spec.time_field)} DESC, " if spec.time_field else ""
            order = f"{latest}_idx DESC"
        else:
            order = "_idx"
        # rejected records are in partitions of their own: they are no key's first occurrence
        windows.append(f"WHEN _table = {lit(t.name)} THEN row_number() OVER "
                       f"(PARTITION BY _table, _reason IS NULL, {keys} ORDER BY {order})")
    if not windows:
        return None
    mark = lit(SUPERSEDED if spec.on_duplicate == "latest" else reasons.DUPLICATE_FAILURE)
    rank = "CASE " + " ".join(windows) + " END"
    return f"""
SELECT * EXCLUDE (_rank)
  REPLACE (CASE WHEN _reason IS NULL AND _rank > 1 THEN {mark} ELSE _reason END AS _reason)
FROM (SELECT *, CASE WHEN _reason IS NULL THEN {rank} END AS _rank FROM {source})
"""
