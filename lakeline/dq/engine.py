"""Evaluate a ruleset on a table in DuckDB: one aggregate pass, examples only for failures.

Every aggregate rule (and, with ``profile``, every per-column count / distinct / min / max /
mean) is compiled into ONE ``SELECT`` over the relation, so the data is scanned once. Then only
the rules that failed get a ``LIMIT 20`` query for examples, and the profile's top values of
string columns come from one ``GROUPING SETS`` query. Rule values (bounds, sets, patterns) are
bound as parameters; column names are quoted identifiers.

Counting follows Great Expectations: ``not_null`` counts null rows against all rows; the other
column rules ignore nulls (``unexpected_percent`` is of the non-null rows, as GE reports it,
and ``mostly`` applies to them). ``unique`` counts the duplicate rows beyond each value's first
occurrence (``count(c) - count(DISTINCT c)``, carbon.md's "duplicate values"); GE counts every
row of a repeated value.
"""

from __future__ import annotations

import math
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lakeline.dq.rules import Rule, Ruleset, parse_age
from lakeline.duck import duckdb_connection
from lakeline.errors import DataError, NotFoundError, UsageError
from lakeline.reasons import SCHEMA_ERROR
from lakeline.sqltext import lit, quote

if TYPE_CHECKING:
    import duckdb

EXAMPLES = 20
TOP_VALUES = 10
_NUMERIC = re.compile(r"^(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT|"
                      r"UHUGEINT|FLOAT|DOUBLE|REAL|DECIMAL.*)$")
_IDENT_PATH = re.compile(r'^(?:[A-Za-z_][\w$]*|"[^"]+")(?:\.(?:[A-Za-z_][\w$]*|"[^"]+")){0,2}$')
#: type spellings users write -> DuckDB's name
_TYPE_ALIASES = {
    "STRING": "VARCHAR", "TEXT": "VARCHAR", "STR": "VARCHAR", "INT64": "BIGINT", "LONG": "BIGINT",
    "INT": "INTEGER", "INT32": "INTEGER", "INT4": "INTEGER", "INT8": "BIGINT", "INT16": "SMALLINT",
    "FLOAT64": "DOUBLE", "FLOAT8": "DOUBLE", "FLOAT32": "FLOAT", "FLOAT4": "FLOAT", "REAL": "FLOAT",
    "BOOL": "BOOLEAN", "DATETIME": "TIMESTAMP", "TIMESTAMP WITHOUT TIME ZONE": "TIMESTAMP",
    "TIMESTAMPTZ": "TIMESTAMP WITH TIME ZONE",
}
_FORMATS = {".csv": "csv", ".tsv": "csv", ".txt": "csv", ".json": "json", ".jsonl": "json", ".ndjson": "json",
            ".parquet": "parquet", ".pq": "parquet"}


@dataclass
class DqResult:
    """The outcome of one evaluation (``to_dict`` is the result JSON)."""

    success: bool
    ruleset: str
    source: str
    run_id: str
    generated_at: str
    statistics: dict[str, Any]
    results: list[dict[str, Any]]
    profile: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The result JSON: ``{success, ruleset, source, run_id, generated_at, statistics, results,
        profile}``."""
        return {"success": self.success, "ruleset": self.ruleset, "source": self.source,
                "run_id": self.run_id, "generated_at": self.generated_at, "statistics": self.statistics,
                "results": self.results, "profile": self.profile}


def jsonable(value: Any) -> Any:
    """A DuckDB value as a JSON-friendly one (dates/times ISO, decimals as numbers, NaN as None)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    return str(value)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _norm_type(name: str) -> str:
    up = " ".join(name.strip().upper().split())
    return _TYPE_ALIASES.get(up, up)


def _is_number(type_: str) -> bool:
    return bool(_NUMERIC.match(type_))


def _pct(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 6) if whole else 0.0


class _Query:
    """Builds the single aggregate SELECT: expressions and their parameters, in order."""

    def __init__(self) -> None:
        self.exprs: list[str] = []
        self.params: list[Any] = []

    def add(self, expr: str, params: list[Any] | None = None) -> int:
        self.exprs.append(expr)
        self.params.extend(params or [])
        return len(self.exprs) - 1


def _between_cond(rule: Rule, col: str, type_: str, params: list[Any]) -> str:
    """SQL that is true for unexpected non-null values; appends its parameters to ``params``."""
    lo, hi = rule.params.get("min"), rule.params.get("max")
    numeric_bounds = all(v is None or isinstance(v, int | float) for v in (lo, hi))
    value = col
    parts: list[str] = []
    if numeric_bounds and not _is_number(type_):
        # text that is not a number is out of any numeric range
        value = f"TRY_CAST({col} AS DOUBLE)"
        parts.append(f"{value} IS NULL")
    if lo is not None:
        parts.append(f"{value} {'<=' if rule.params.get('strict_min') else '<'} ?")
        params.append(lo)
    if hi is not None:
        parts.append(f"{value} {'>=' if rule.params.get('strict_max') else '>'} ?")
        params.append(hi)
    return f"({col} IS NOT NULL AND ({' OR '.join(parts)}))"


def _unexpected_cond(rule: Rule, col: str, type_: str, params: list[Any]) -> str | None:
    """Row condition of unexpected rows for row-wise rules (None for the others)."""
    if rule.kind == "not_null":
        return f"{col} IS NULL"
    if rule.kind == "between":
        return _between_cond(rule, col, type_, params)
    if rule.kind == "in_set":
        values = list(rule.params["values"])
        numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
        strings = all(isinstance(v, str) for v in values)
        if (numbers and _is_number(type_)) or (strings and type_ == "VARCHAR"):
            target = col
        else:  # compare as text: a numeric set on a text column, booleans, mixed sets
            target = f"CAST({col} AS VARCHAR)"
            values = [str(v).lower() if isinstance(v, bool) else str(v) for v in values]
        params.extend(values)
        return f"({col} IS NOT NULL AND {target} NOT IN ({', '.join('?' * len(values))}))"
    if rule.kind == "regex":
        params.append(rule.params["pattern"])
        return f"({col} IS NOT NULL AND NOT regexp_matches(CAST({col} AS VARCHAR), ?))"
    if rule.kind == "sql":
        return f"NOT coalesce(({rule.params['sql']}), false)"
    return None


def _describe(con: duckdb.DuckDBPyConnection, relation: str) -> dict[str, str]:
    import duckdb  # heavy: imported when used, not by importing lakeline
    try:
        rows = con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()
    except duckdb.CatalogException as exc:
        raise NotFoundError(f"no table {relation}: {str(exc).splitlines()[0]}") from None
    return {str(r[0]): str(r[1]) for r in rows}


def _check_relation(relation: str) -> str:
    rel = relation.strip()
    if rel.startswith("(") and rel.endswith(")"):
        return rel
    if _IDENT_PATH.match(rel):
        return rel
    raise UsageError(f"relation {relation!r} is neither a table name (schema.table) "
                     "nor a parenthesised SELECT")


_Plan = list[tuple[Rule, dict[str, int], str | None]]  # rule, aggregate slots, missing-column message


def _plan(ruleset: Ruleset, columns: dict[str, str]) -> tuple[_Query, _Plan]:
    """The aggregate expressions that evaluate ``ruleset`` in one pass, and where each rule's
    figures land in the result row (slot 0 is the row count)."""
    q = _Query()
    q.add("count(*)")
    plan: _Plan = []
    for rule in ruleset.rules:
        slots: dict[str, int] = {}
        missing = _missing_columns(rule, columns)
        if missing:
            plan.append((rule, slots, missing))
            continue
        col = quote(rule.column) if rule.column else ""
        type_ = columns.get(rule.column or "", "")
        params: list[Any] = []
        cond = _unexpected_cond(rule, col, type_, params)
        if cond is not None:
            slots["unexpected"] = q.add(f"count(*) FILTER (WHERE {cond})", params)
        if rule.kind == "unique":
            slots["unexpected"] = q.add(f"count({col}) - count(DISTINCT {col})")
        if rule.kind == "freshness":
            slots["max"] = q.add(f"max(TRY_CAST({col} AS TIMESTAMPTZ))")
        if rule.column and rule.kind != "column_types":
            slots["nonnull"] = q.add(f"count({col})")
        plan.append((rule, slots, None))
    return q, plan


def _query_failed(ruleset: Ruleset, source: str, exc: duckdb.Error) -> DataError:
    bad = [r.label for r in ruleset.rules if r.kind == "sql"]
    hint = f" (custom sql rules: {', '.join(bad)})" if bad else ""
    return DataError(f"data quality query on {source} failed{hint}: {str(exc).splitlines()[0]}")


def _outcome(
    con: duckdb.DuckDBPyConnection, rel: str, ruleset: Ruleset, plan: _Plan, row: tuple[Any, ...],
    columns: dict[str, str], *, source: str, run_id: str,
) -> DqResult:
    rows = int(row[0])
    results = [_result(con, rel, rule, slots, missing, row, rows, columns) for rule, slots, missing in plan]
    ok = sum(1 for r in results if r["success"])
    stats = {"evaluated": len(results), "successful": ok, "unsuccessful": len(results) - ok,
             "success_percent": _pct(ok, len(results)) if results else 100.0, "rows": rows}
    return DqResult(success=ok == len(results), ruleset=ruleset.name, source=source, run_id=run_id,
                    generated_at=_now(), statistics=stats, results=results)


def _new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:6]


def evaluate(con: duckdb.DuckDBPyConnection, relation: str, ruleset: Ruleset, *, source: str,
             run_id: str | None = None, profile: bool = False) -> DqResult:
    """Evaluate ``ruleset`` on ``relation`` (a table/view name or ``(SELECT …)``) in one pass.

    A rule naming a column the relation lacks fails with ``exception_info`` (it does not raise);
    a custom ``sql`` rule that DuckDB cannot run raises :class:`DataError` naming the rule.
    """
    import duckdb  # heavy: imported when used, not by importing lakeline
    rel = _check_relation(relation)
    run_id = run_id or _new_run_id()
    columns = _describe(con, rel)
    q, plan = _plan(ruleset, columns)
    prof_slots = _profile_exprs(q, columns) if profile else {}
    try:
        row = con.execute(f"SELECT {', '.join(q.exprs)} FROM {rel}", q.params).fetchone()
    except duckdb.Error as exc:
        raise _query_failed(ruleset, source, exc) from None
    assert row is not None
    result = _outcome(con, rel, ruleset, plan, row, columns, source=source, run_id=run_id)
    if profile:
        result.profile = _profile(con, rel, columns, prof_slots, row, int(row[0]))
    return result


def evaluate_groups(
    con: duckdb.DuckDBPyConnection, relation: str, ruleset: Ruleset, *, column: str,
    groups: list[str], sources: dict[str, str], run_id: str | None = None,
    files: dict[str, list[str]] | None = None,
) -> dict[str, DqResult]:
    """:func:`evaluate` on each group ``CAST(column AS VARCHAR) = g`` of ``relation`` (say
    each ``dt`` partition of a table), all in one pass; ``sources[g]`` names each group in its
    result. Same results as one :func:`evaluate` per group, for the cost of about one.

    ``files``: the Parquet files of each group, when the caller knows them (a partition's
    files). Then the figures their footers already hold (the statistics the writer computed
    in its own pass: rows, nulls, minimum and maximum of each column) are taken from there —
    row counts, ``not_null``, and ``between`` when every value is provably inside the bounds
    — and the data pass computes only the rest, reading only the columns it needs; ``unique``
    first compares hashes (distinct hashes prove distinct values) and counts exactly only
    where hashes repeat. The results are the same figures."""
    import duckdb  # heavy: imported when used, not by importing lakeline
    rel = _check_relation(relation)
    run_id = run_id or _new_run_id()
    columns = _describe(con, rel)
    q, plan = _plan(ruleset, columns)
    key = f"CAST({quote(column)} AS VARCHAR)"
    found: dict[str, tuple[Any, ...]] = {}
    if groups:
        try:
            # the footers are used when each expression's parameters can be told apart
            split = sum(e.count("?") for e in q.exprs) == len(q.params)
            if files is not None and split and all(files.get(g) for g in groups):
                found = _footer_pass(con, rel, q, plan, columns, key, groups, files)
            else:
                marks = ", ".join("?" * len(groups))
                for g, *row in con.execute(
                    f"SELECT {key}, {', '.join(q.exprs)} FROM {rel} WHERE {key} IN ({marks}) GROUP BY 1",
                    [*q.params, *groups],
                ).fetchall():
                    found[str(g)] = tuple(row)
        except duckdb.Error as exc:
            raise _query_failed(ruleset, relation, exc) from None
    out: dict[str, DqResult] = {}
    for g in groups:
        part = f"(SELECT * FROM {rel} WHERE {key} = {lit(g)})"
        if g not in found:  # no rows: the aggregates of an empty relation
            out[g] = evaluate(con, part, ruleset, source=sources[g], run_id=run_id)
            continue
        out[g] = _outcome(con, part, ruleset, plan, found[g], columns, source=sources[g], run_id=run_id)
    return out


_EXACT_NUMBERS = re.compile(r"^(TINYINT|SMALLINT|INTEGER|BIGINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT|"
                            r"FLOAT|DOUBLE|REAL)$")


def _footers(con: duckdb.DuckDBPyConnection, files: dict[str, list[str]]) -> dict[str, dict[str, Any]]:
    """Per group: ``rows`` and, per top-level column, ``(rows, nulls, min, max)`` summed over
    the row groups of the group's files (nulls/min/max None when a row group lacks them)."""
    listed = [(g, f) for g, fs in files.items() for f in fs]
    values = ", ".join(f"({lit(f)}, {lit(g)})" for g, f in listed)
    paths = ", ".join(lit(f) for _, f in listed)
    rows = con.execute(
        f"WITH m AS (SELECT * FROM parquet_metadata([{paths}])), "
        f"g(file_name, grp) AS (VALUES {values}) "
        "SELECT grp, path_in_schema, sum(row_group_num_rows), "
        "CASE WHEN count(*) = count(stats_null_count) THEN sum(stats_null_count) END, "
        "CASE WHEN count(*) = count(stats_min_value) THEN min(TRY_CAST(stats_min_value AS DOUBLE)) END, "
        "CASE WHEN count(*) = count(stats_max_value) THEN max(TRY_CAST(stats_max_value AS DOUBLE)) END, "
        "count(*) FILTER (WHERE stats_min_value IS NOT NULL "
        "AND TRY_CAST(stats_min_value AS DOUBLE) IS NULL), "
        "sum(row_group_num_rows) FILTER (WHERE column_id = 0) "
        "FROM m JOIN g USING (file_name) GROUP BY ALL").fetchall()
    out: dict[str, dict[str, Any]] = {}
    for grp, col, n, nulls, lo, hi, not_numbers, first in rows:
        entry = out.setdefault(str(grp), {"rows": 0, "columns": {}})
        entry["rows"] += int(first or 0)
        entry["columns"][str(col)] = (int(n), None if nulls is None else int(nulls),
                                      None if not_numbers else lo, None if not_numbers else hi)
    return out


def _derived(rule: Rule, name: str, footer: dict[str, Any], columns: dict[str, str]) -> int | None:
    """The figure of ``rule``'s slot ``name`` from a group's footers, None when they cannot
    prove it."""
    rows = int(footer["rows"])
    col = footer["columns"].get(rule.column or "")
    if col is None or col[0] != rows or col[1] is None:  # a file lacks the column, or its counts
        return None
    _, nulls, lo, hi = col
    if name == "nonnull":
        return rows - int(nulls)
    if name != "unexpected":
        return None
    if rule.kind == "not_null":
        return int(nulls)
    if rule.kind == "between" and _EXACT_NUMBERS.match(columns.get(rule.column or "", "")):
        if rows == nulls:
            return 0
        bounds = (rule.params.get("min"), rule.params.get("max"))
        if lo is None or hi is None or not all(v is None or isinstance(v, int | float) for v in bounds):
            return None
        low, high = bounds
        inside_low = low is None or (lo > low if rule.params.get("strict_min") else lo >= low)
        inside_high = high is None or (hi < high if rule.params.get("strict_max") else hi <= high)
        return 0 if inside_low and inside_high else None
    return None


def _footer_pass(
    con: duckdb.DuckDBPyConnection, rel: str, q: _Query, plan: _Plan, columns: dict[str, str], key: str,
    groups: list[str], files: dict[str, list[str]],
) -> dict[str, tuple[Any, ...]]:
    """The aggregate row of each group, footers first, then one data pass for the rest."""
    footers = _footers(con, {g: files[g] for g in groups})
    values: dict[str, list[Any]] = {
        g: [None] * len(q.exprs) for g in groups if footers.get(g, {}).get("rows")}
    for g, row in values.items():
        row[0] = footers[g]["rows"]
    hashed: dict[int, str] = {}  # slot -> column of a unique rule, first counted by hashes
    for rule, slots, missing in plan:
        if missing:
            continue
        for name, i in slots.items():
            if rule.kind == "unique" and name == "unexpected":
                hashed[i] = quote(rule.column or "")
                continue
            for g, row in values.items():
                row[i] = _derived(rule, name, footers[g], columns)
    # the expressions still unknown for some group, each with its own parameters
    offsets, at = [], 0
    for expr in q.exprs:
        offsets.append(at)
        at += expr.count("?")
    todo = [i for i in range(len(q.exprs))
            if i in hashed or any(row[i] is None for row in values.values())]
    if todo and values:
        exprs, params = [], []
        for i in todo:
            if i in hashed:
                c = hashed[i]
                exprs.append(f"count({c}) - count(DISTINCT hash({c})) FILTER (WHERE {c} IS NOT NULL)")
                continue
            exprs.append(q.exprs[i])
            params.extend(q.params[offsets[i]: offsets[i] + q.exprs[i].count("?")])
        marks = ", ".join("?" * len(values))
        for g, *got in con.execute(
            f"SELECT {key}, {', '.join(exprs)} FROM {rel} WHERE {key} IN ({marks}) GROUP BY 1",
            [*params, *values],
        ).fetchall():
            if str(g) in values:
                for i, v in zip(todo, got, strict=True):
                    values[str(g)][i] = v
        for i, c in hashed.items():  # repeated hashes: count the repeated values exactly
            again = [g for g, row in values.items() if row[i] != 0]
            if again:
                marks = ", ".join("?" * len(again))
                for g, v in con.execute(
                    f"SELECT {key}, count({c}) - count(DISTINCT {c}) FROM {rel} WHERE {key} IN ({marks}) "
                    "GROUP BY 1", again).fetchall():
                    values[str(g)][i] = v
    return {g: tuple(row) for g, row in values.items() if all(v is not None for v in row)}


def _missing_columns(rule: Rule, columns: dict[str, str]) -> str | None:
    if rule.kind == "column_types" and rule.column is None:
        return None  # reported per column in the result
    if rule.column is not None and rule.column not in columns:
        return f"column {rule.column!r} does not exist; columns are {', '.join(columns)}"
    return None


def _kwargs(rule: Rule) -> dict[str, Any]:
    p = rule.params
    kw: dict[str, Any] = {"column": rule.column} if rule.column else {}
    if rule.kind in {"between", "row_count"}:
        kw.update(min_value=p.get("min"), max_value=p.get("max"))
        if rule.kind == "between" and (p.get("strict_min") or p.get("strict_max")):
            kw.update(strict_min=bool(p.get("strict_min")), strict_max=bool(p.get("strict_max")))
    elif rule.kind == "in_set":
        kw["value_set"] = list(p["values"])
    elif rule.kind == "regex":
        kw["regex"] = p["pattern"]
    elif rule.kind == "columns":
        kw.update(column_set=list(p["columns"]), exact_match=bool(p.get("exact", False)))
    elif rule.kind == "column_types":
        kw.update({"type_": p["type"]} if rule.column else {"types": dict(p["types"])})
    elif rule.kind == "freshness":
        kw["max_age"] = p["max_age"]
    elif rule.kind == "sql":
        kw["sql"] = p["sql"]
    if rule.kind not in {"row_count", "columns", "column_types", "freshness"}:
        kw["mostly"] = rule.mostly
    return kw


def _result(con: duckdb.DuckDBPyConnection, rel: str, rule: Rule, slots: dict[str, int], missing: str | None,
            row: tuple[Any, ...], rows: int, columns: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {"expectation_type": rule.expectation_type, "rule": rule.label,
                           "kwargs": _kwargs(rule)}
    if missing:
        out.update(success=False, result={"element_count": rows},
                   exception_info={"raised_exception": True, "exception_message": missing})
        return out
    if "unexpected" in slots:
        unexpected = int(row[slots["unexpected"]])
        nonnull = int(row[slots["nonnull"]]) if "nonnull" in slots else rows
        base = rows if rule.kind in {"not_null", "sql"} else nonnull
        success = base == 0 or (base - unexpected) / base >= rule.mostly - 1e-12
        res: dict[str, Any] = {"element_count": rows, "unexpected_count": unexpected,
                               "unexpected_percent": _pct(unexpected, base)}
        if rule.kind not in {"not_null", "sql"}:
            res.update(missing_count=rows - nonnull, missing_percent=_pct(rows - nonnull, rows),
                       unexpected_percent_total=_pct(unexpected, rows))
        res["partial_unexpected_list"] = _examples(con, rel, rule, columns) if unexpected else []
        out.update(success=success, result=res)
    elif rule.kind == "row_count":
        lo, hi = rule.params.get("min"), rule.params.get("max")
        out.update(success=(lo is None or rows >= lo) and (hi is None or rows <= hi),
                   result={"observed_value": rows})
    elif rule.kind == "columns":
        want = list(rule.params["columns"])
        absent = [c for c in want if c not in columns]
        extra = [c for c in columns if c not in want]
        ok = not absent and not (rule.params.get("exact") and extra)
        out.update(success=ok, result={"observed_value": list(columns),
                                       "details": {"mismatched": {"missing": absent, "unexpected": extra}}})
    elif rule.kind == "column_types":
        wanted = {rule.column: rule.params["type"]} if rule.column else dict(rule.params["types"])
        bad = {c: {"expected": t, "observed": columns.get(c)} for c, t in wanted.items()
               if c not in columns or _norm_type(columns[c]) != _norm_type(t)}
        observed = {c: columns.get(c) for c in wanted}
        out.update(success=not bad, result={"observed_value": observed, "details": {"mismatched": bad}})
    elif rule.kind == "freshness":
        newest = row[slots["max"]]
        now = _parse_now(rule.params.get("now"))
        limit = parse_age(rule.params["max_age"])
        age = (now - newest).total_seconds() if isinstance(newest, datetime) else None
        out.update(success=age is not None and age <= limit,
                   result={"observed_value": jsonable(newest), "age_seconds": age, "max_age_seconds": limit,
                           "element_count": rows, "missing_count": rows - int(row[slots["nonnull"]])})
    return out


def _parse_now(value: Any) -> datetime:
    if value is None:
        return datetime.now(UTC)
    parsed = value if isinstance(value, datetime) else datetime.fromisoformat(
        str(value).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _examples(con: duckdb.DuckDBPyConnection, rel: str, rule: Rule, columns: dict[str, str]) -> list[Any]:
    """Up to 20 failing values (``sql``: failing rows as objects), in a stable order."""
    col = quote(rule.column) if rule.column else ""
    params: list[Any] = []
    if rule.kind == "unique":
        sql = (f"SELECT {col} FROM {rel} WHERE {col} IS NOT NULL GROUP BY ALL HAVING count(*) > 1 "
               f"ORDER BY 1 LIMIT {EXAMPLES}")
    elif rule.kind == "sql":
        cond = _unexpected_cond(rule, col, "", params)
        cur = con.execute(f"SELECT * FROM {rel} WHERE {cond} LIMIT {EXAMPLES}", params)
        names = [d[0] for d in cur.description or []]
        return [{n: jsonable(v) for n, v in zip(names, r, strict=True)} for r in cur.fetchall()]
    else:
        cond = _unexpected_cond(rule, col, columns.get(rule.column or "", ""), params)
        sql = f"SELECT {col} FROM {rel} WHERE {cond} ORDER BY 1 NULLS LAST LIMIT {EXAMPLES}"
    return [jsonable(r[0]) for r in con.execute(sql, params).fetchall()]


def _profile_exprs(q: _Query, columns: dict[str, str]) -> dict[str, dict[str, int]]:
    slots: dict[str, dict[str, int]] = {}
    for name, type_ in columns.items():
        c = quote(name)
        s = {"count": q.add(f"count({c})"), "distinct": q.add(f"count(DISTINCT {c})")}
        if _is_number(type_):
            s.update(min=q.add(f"min({c})"), max=q.add(f"max({c})"), mean=q.add(f"avg({c})"))
        elif not type_.endswith("[]") and not type_.startswith(("STRUCT", "MAP", "UNION")):
            s.update(min=q.add(f"min({c})"), max=q.add(f"max({c})"))
        slots[name] = s
    return slots


def _profile(con: duckdb.DuckDBPyConnection, rel: str, columns: dict[str, str],
             slots: dict[str, dict[str, int]], row: tuple[Any, ...], rows: int) -> dict[str, Any]:
    """Per column: type, count (non-null), missing, distinct, duplicates, min/max(/mean), top values."""
    prof: dict[str, Any] = {}
    for name, type_ in columns.items():
        s = slots[name]
        count, distinct = int(row[s["count"]]), int(row[s["distinct"]])
        entry: dict[str, Any] = {"type": type_, "count": count, "missing": rows - count, "distinct": distinct,
                                 "duplicates": count - distinct}
        for k in ("min", "max", "mean"):
            if k in s:
                entry[k] = jsonable(row[s[k]])
        prof[name] = entry
    strings = [n for n, t in columns.items() if t == "VARCHAR" or t.startswith("ENUM") or t == "BOOLEAN"]
    # a column whose values are all distinct (an id) has its smallest values as its top values,
    # each once: a top-N, instead of grouping a million one-row groups
    unique = [n for n in strings if prof[n]["count"] and prof[n]["duplicates"] == 0]
    for n in unique:
        sql = (f"SELECT CAST({quote(n)} AS VARCHAR) AS v FROM {rel} WHERE {quote(n)} IS NOT NULL "
               f"ORDER BY v LIMIT {TOP_VALUES}")
        prof[n]["top_values"] = [{"value": v, "count": 1} for (v,) in con.execute(sql).fetchall()]
    strings = [n for n in strings if n not in unique]
    if strings and rows:
        sets = ", ".join(f"({quote(n)})" for n in strings)
        picks = ", ".join(f"CASE WHEN GROUPING({quote(n)}) = 0 THEN {i} END" for i, n in enumerate(strings))
        values = ", ".join(f"CAST({quote(n)} AS VARCHAR)" for n in strings)
        sql = (f"WITH g AS (SELECT coalesce({picks}) AS __dq_col, coalesce({values}) AS __dq_value, "
               f"count(*) AS __dq_n FROM {rel} GROUP BY GROUPING SETS ({sets})) "
               "SELECT __dq_col, __dq_value, __dq_n FROM g WHERE __dq_value IS NOT NULL "
               "QUALIFY row_number() OVER (PARTITION BY __dq_col ORDER BY __dq_n DESC, __dq_value) "
               f"<= {TOP_VALUES} "
               "ORDER BY 1, 3 DESC, 2")
        for i, value, n in con.execute(sql).fetchall():
            prof[strings[int(i)]].setdefault("top_values", []).append({"value": value, "count": int(n)})
    for n in strings:
        prof[n].setdefault("top_values", [])
    return prof


def detect_format(path: Path) -> str:
    """``csv``, ``json`` or ``parquet`` from the suffix (a directory: from the files in it)."""
    if path.is_dir():
        found = {_FORMATS.get(_suffix(p)) for p in path.rglob("*")
                 if p.is_file() and not p.name.startswith(".")}
        found.discard(None)
        if len(found) != 1:
            raise UsageError(f"{path}: cannot tell the format of the files in it "
                             f"(found {sorted(str(f) for f in found) or 'none'}); pass fmt")
        return str(found.pop())
    fmt = _FORMATS.get(_suffix(path))
    if fmt is None:
        raise UsageError(f"{path}: unknown format {_suffix(path) or '(no suffix)'}; "
                         "use .csv, .jsonl, .json or .parquet, or pass fmt")
    return fmt


def _suffix(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in {".gz", ".zst"}:
        suffixes = suffixes[:-1]
    return suffixes[-1] if suffixes else ""


def _escape(text: str) -> str:
    return text.replace("'", "''")


def read_sql(path: Path, fmt: str) -> str:
    """The DuckDB table function that reads ``path`` (a file or a directory) as ``fmt``."""
    target = str(path)
    if path.is_dir():
        files = sorted(str(p) for p in path.rglob("*")
                       if p.is_file() and not p.name.startswith(".") and _FORMATS.get(_suffix(p)) == fmt)
        if not files:
            raise UsageError(f"{path}: no {fmt} files in it")
        target = "[" + ", ".join(f"'{_escape(f)}'" for f in files) + "]"
    else:
        target = f"'{_escape(target)}'"
    if fmt == "csv":
        return f"read_csv({target}, header = true, all_varchar = false, auto_detect = true)"
    if fmt == "json":
        return f"read_json({target}, format = 'auto')"
    if fmt == "parquet":
        return f"read_parquet({target}, hive_partitioning = true, union_by_name = true)"
    raise UsageError(f"unknown format {fmt!r}; use csv, json or parquet")


def unreadable_result(ruleset: Ruleset, source: str, run_id: str, fmt: str, reason: str) -> DqResult:
    """The failed result of a file that cannot be read as ``fmt`` at all, so that a gate can
    still route it (to the error zone) like any other failing file."""
    return DqResult(
        success=False, ruleset=ruleset.name, source=source, run_id=run_id, generated_at=_now(),
        statistics={"evaluated": 1, "successful": 0, "unsuccessful": 1, "success_percent": 0.0, "rows": 0},
        results=[{"expectation_type": f"expect_file_to_be_readable_{fmt}", "rule": f"readable {fmt.upper()}",
                  "kwargs": {}, "success": False, "result": {},
                  "exception_info": {"raised_exception": True, "exception_message": reason}}])


def evaluate_path(path: str, ruleset: Ruleset, *, fmt: str | None = None, profile: bool = False,
                  run_id: str | None = None, threads: int = 0, memory_limit: str | None = None,
                  spill_dir: Path | None = None) -> DqResult:
    """Evaluate ``ruleset`` on a local CSV, JSON (lines or array) or Parquet file or directory.

    CSV and JSON are parsed once into a temporary DuckDB table (the rule pass, the examples and
    the profile then read columns, not text); Parquet is scanned where it lies. ``memory_limit``
    and ``spill_dir`` bound DuckDB's memory (see ``duckdb_connection``).
    """
    import duckdb  # heavy: imported when used, not by importing lakeline


    p = Path(path)
    if not p.exists():
        raise NotFoundError(f"{path}: no such file or directory")
    chosen = fmt or detect_format(p)
    con = duckdb_connection(threads, memory_limit=memory_limit, spill_dir=spill_dir)
    try:
        reader = read_sql(p, chosen)
        kind = "VIEW" if chosen == "parquet" else "TEMP TABLE"
        try:
            con.execute(f"CREATE {kind} __dq_input AS SELECT * FROM {reader}")
        except duckdb.Error as exc:
            raise DataError(f"{path}: cannot read as {chosen}: {str(exc).splitlines()[0]}",
                            SCHEMA_ERROR) from None
        return evaluate(con, "__dq_input", ruleset, source=str(p), run_id=run_id, profile=profile)
    finally:
        con.close()


__all__ = ["DqResult", "detect_format", "evaluate", "evaluate_path", "jsonable", "quote", "read_sql",
           "unreadable_result"]
