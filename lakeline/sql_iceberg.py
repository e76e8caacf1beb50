"""Iceberg tables in ``lakeline sql``: scan planning with pushed-down filters, time travel,
metadata tables and a bytes-scanned limit.

For every Iceberg table a query names, lakeline asks pyiceberg to plan the scan and gives
DuckDB exactly the planned data files:

- **filters**: top-level ``AND``-ed comparisons of a column with a constant in the query's
  WHERE clause (``=, <>, <, <=, >, >=``, ``IN``, ``BETWEEN``, ``IS [NOT] NULL``) become an
  Iceberg row filter, so partition and column-statistics pruning happen before any file is
  opened. Anything else is left to DuckDB (correct, just not pruned).
- **time travel** (Athena / Trino syntax): ``tbl FOR VERSION AS OF <snapshot id>`` and
  ``tbl FOR TIMESTAMP AS OF '<ISO-8601>'`` (or ``TIMESTAMP '2026-01-05 10:00:00 UTC'``).
- **metadata tables**: ``"<table>$snapshots"``, ``$history``, ``$files``, ``$partitions``.
- **bytes limit**: the planned files' total size is checked against ``max_bytes`` before
  anything runs, like an Athena workgroup's bytes-scanned cutoff.

Tables are named ``<namespace>.<table>`` exactly as in the catalog
(``retail_silver.orders_silver``). Delete files are not supported (lakeline's tables are
append / overwrite only); a table with delete files is refused with a clear error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from lakeline.errors import UsageError
from lakeline.sql_dialect import athena_timestamp
from lakeline.sql_names import TIME_TRAVEL, parse_tree, referenced_tables

if TYPE_CHECKING:
    import duckdb

_META = ("snapshots", "history", "files", "partitions")
_OPS = {
    "COMPARE_EQUAL": "EqualTo", "COMPARE_NOTEQUAL": "NotEqualTo", "COMPARE_LESSTHAN": "LessThan",
    "COMPARE_LESSTHANOREQUALTO": "LessThanOrEqual", "COMPARE_GREATERTHAN": "GreaterThan",
    "COMPARE_GREATERTHANOREQUALTO": "GreaterThanOrEqual",
}
_FLIP = {"LessThan": "GreaterThan", "GreaterThan": "LessThan", "LessThanOrEqual": "GreaterThanOrEqual",
         "GreaterThanOrEqual": "LessThanOrEqual", "EqualTo": "EqualTo", "NotEqualTo": "NotEqualTo"}


@dataclass
class ScanPlan:
    """What one table reference will read."""

    table: str
    snapshot_id: int | None
    files: list[str] = field(default_factory=list)
    bytes: int = 0
    total_files: int = 0
    total_bytes: int = 0
    row_filter: str = "AlwaysTrue()"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (for ``lakeline explain``)."""
        return {"table": self.table, "snapshot_id": self.snapshot_id, "row_filter": self.row_filter,
                "planned_files": len(self.files), "planned_bytes": self.bytes,
                "total_files": self.total_files, "total_bytes": self.total_bytes}


def prepare(
    catalog: Any, con: duckdb.DuckDBPyConnection, sql: str, *, max_bytes: int | None = None
) -> tuple[str, list[ScanPlan]]:
    """Plan every Iceberg table ``sql`` reads, register its files with DuckDB, and return
    the rewritten SQL with the plans. Raises :class:`UsageError` over ``max_bytes``."""
    tables = catalog_tables(catalog)
    if not tables:
        return sql, []
    sql, travels = _rewrite_time_travel(sql, tables)
    refs = referenced_tables(con, sql)
    filters = _where_filters(con, sql)
    plans: list[ScanPlan] = []
    for schema, name in refs:
        ident = f"{schema}.{name}"
        view = f'"{schema}"."{name}"'
        if "$" in name:
            base, _, kind = name.partition("$")
            if f"{schema}.{base}" in tables and kind in _META:
                _register_meta(catalog, con, schema, base, kind, view)
            continue
        travel = travels.get(ident)
        base_ident = ident.split("@", 1)[0]
        if base_ident not in tables:
            continue
        table = catalog.load_table(base_ident)
        snapshot_id = _snapshot_for(table, travel) if travel else None
        plan = _plan(table, ident, snapshot_id, filters if len(refs) == 1 else [])
        plans.append(plan)
        con.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        if plan.files and plan.files[0].startswith("s3://"):
            # DuckDB would need its httpfs extension (a download) for s3://: an Arrow dataset
            # over pyarrow's S3 filesystem is scanned lazily instead, as the other S3 tables are
            source = f"__iceberg_{schema}_{name}".replace("@", "_")
            con.register(source, _s3_files(table, plan.files))
            con.execute(f'CREATE OR REPLACE VIEW {view} AS SELECT * FROM "{source}"')
        else:
            con.execute(f"CREATE OR REPLACE VIEW {view} AS {_source(table, plan)}")
    total = sum(p.bytes for p in plans)
    if max_bytes is not None and total > max_bytes:
        detail = ", ".join(f"{p.table}: {p.bytes} bytes in {len(p.files)} files" for p in plans)
        raise UsageError(
            f"query would scan {total} bytes, over the limit of {max_bytes} ({detail}); add a "
            "filter on a partition column, or raise --max-bytes / sql.max_bytes"
        )
    return sql, plans


def catalog_tables(catalog: Any) -> set[str]:
    """``namespace.table`` of every table of an Iceberg ``catalog``."""
    out: set[str] = set()
    for ns in catalog.list_namespaces():
        for ident in catalog.list_tables(ns):
            out.add(".".join(ident))
    return out


def _rewrite_time_travel(sql: str, tables: set[str]) -> tuple[str, dict[str, tuple[str, str]]]:
    travels: dict[str, tuple[str, str]] = {}

    def sub(m: re.Match[str]) -> str:
        ident = m.group("table").replace('"', "")
        if ident not in tables:
            return m.group(0)
        kind = m.group("kind").upper()
        value = m.group("value")
        value = value.split("'", 1)[1].rstrip("'") if "'" in value else value
        key = f"{ident}@{'v' if kind == 'VERSION' else 't'}{abs(hash(value)) % 10**10}"
        travels[key] = (kind, value)
        schema, name = key.split(".", 1)
        return f'"{schema}"."{name}"'

    return TIME_TRAVEL.sub(sub, sql), travels


def _snapshot_for(table: Any, travel: tuple[str, str]) -> int:
    kind, value = travel
    if kind == "VERSION":
        snap = table.snapshot_by_id(int(value))
        if snap is None:
            raise UsageError(f"table {'.'.join(table.name())} has no snapshot {value}")
        return int(snap.snapshot_id)
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        try:  # Trino's form: '2026-01-05 10:00:00 UTC', '… Europe/Berlin'
            when = datetime.fromisoformat(athena_timestamp(value))
        except UsageError:
            raise UsageError(f"FOR TIMESTAMP AS OF needs an ISO-8601 time, got {value!r}") from None
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    snap = table.snapshot_as_of_timestamp(int(when.timestamp() * 1000))
    if snap is None:
        raise UsageError(f"table {'.'.join(table.name())} has no snapshot at or before {value}")
    return int(snap.snapshot_id)


def _plan(
    table: Any, ident: str, snapshot_id: int | None, filters: list[tuple[str, Any]]
) -> ScanPlan:
    from pyiceberg.expressions import AlwaysTrue, And
    from pyiceberg.expressions.visitors import bind

    names = {f.name for f in table.schema().fields}
    usable = []
    for column, expr in filters:
        if column not in names:
            continue
        try:  # a literal pyiceberg cannot convert is left to DuckDB: pushdown never breaks a query
            bind(table.schema(), expr, case_sensitive=True)
        except (ValueError, TypeError):
            continue
        usable.append(expr)
    row_filter: Any = AlwaysTrue()
    for f in usable:
        row_filter = f if isinstance(row_filter, AlwaysTrue) else And(row_filter, f)
    all_tasks = list(table.scan(snapshot_id=snapshot_id).plan_files())
    tasks = list(table.scan(row_filter=row_filter, snapshot_id=snapshot_id).plan_files())
    if any(t.delete_files for t in tasks):
        raise UsageError(f"{ident} has delete files, which lakeline's SQL does not read")
    return ScanPlan(
        table=ident, snapshot_id=snapshot_id, files=[t.file.file_path for t in tasks],
        bytes=sum(int(t.file.file_size_in_bytes) for t in tasks), total_files=len(all_tasks),
        total_bytes=sum(int(t.file.file_size_in_bytes) for t in all_tasks), row_filter=repr(row_filter),
    )


def _s3_files(table: Any, files: list[str]) -> Any:
    """An Arrow dataset of an Iceberg table's data files on S3 (endpoint and credentials from
    the table's FileIO properties, as pyiceberg reads them)."""
    import pyarrow.dataset as pads
    import pyarrow.fs as pafs

    props = dict(getattr(table.io, "properties", {}) or {})
    options: dict[str, Any] = {}
    if props.get("s3.region") or props.get("client.region"):
        options["region"] = props.get("s3.region") or props.get("client.region")
    if props.get("s3.endpoint"):
        scheme, _, host = str(props["s3.endpoint"]).partition("://")
        options.update(endpoint_override=host or scheme, scheme=scheme if host else "https")
    if props.get("s3.access-key-id") and props.get("s3.secret-access-key"):
        options.update(access_key=props["s3.access-key-id"], secret_key=props["s3.secret-access-key"])
    fs = pafs.S3FileSystem(**options)
    return pads.dataset([f.removeprefix("s3://") for f in files], filesystem=fs, format="parquet",
                        schema=table.schema().as_arrow())


def _source(table: Any, plan: ScanPlan) -> str:
    if not plan.files:
        cols = ", ".join(f'NULL::{_duck_type(f)} AS "{f.name}"' for f in table.schema().fields)
        return f"SELECT {cols} WHERE FALSE"
    paths = ", ".join("'" + p.removeprefix("file://").replace("'", "''") + "'" for p in plan.files)
    # Iceberg data files sit in Hive-style folders (order_date_day=…): those are not columns.
    return f"SELECT * FROM read_parquet([{paths}], union_by_name = true, hive_partitioning = false)"


def _duck_type(f: Any) -> str:
    t = str(f.field_type).lower()
    return {"long": "BIGINT", "int": "INTEGER", "double": "DOUBLE", "float": "FLOAT", "date": "DATE",
            "string": "VARCHAR", "boolean": "BOOLEAN", "timestamptz": "TIMESTAMPTZ",
            "timestamp": "TIMESTAMP"}.get(t, "VARCHAR")


def _register_meta(catalog: Any, con: duckdb.DuckDBPyConnection, schema: str, base: str, kind: str,
                   view: str) -> None:
    table = catalog.load_table(f"{schema}.{base}")
    data = getattr(table.inspect, kind)()
    con.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
    con.register(f"__meta_{schema}_{base}_{kind}", data)
    con.execute(f'CREATE OR REPLACE VIEW {view} AS SELECT * FROM "__meta_{schema}_{base}_{kind}"')


def _where_filters(con: duckdb.DuckDBPyConnection, sql: str) -> list[tuple[str, Any]]:
    statements = parse_tree(con, sql).get("statements", [])
    if len(statements) != 1:
        return []
    node = statements[0].get("node", {})
    where = node.get("where_clause") if node.get("type") == "SELECT_NODE" else None
    out: list[tuple[str, Any]] = []
    for conjunct in _conjuncts(where):
        found = _to_iceberg(conjunct)
        if found is not None:
            out.append(found)
    return out


def _conjuncts(node: Any) -> list[Any]:
    if not node:
        return []
    if node.get("type") == "CONJUNCTION_AND":
        return [c for child in node.get("children", []) for c in _conjuncts(child)]
    return [node]


def _column(node: Any) -> str | None:
    if node and node.get("class") == "COLUMN_REF":
        names = node.get("column_names", [])
        return str(names[-1]) if names else None
    return None


def _constant(node: Any) -> Any:
    if not node:
        return None
    if node.get("class") == "CAST" and node.get("child", {}).get("class") == "CONSTANT":
        return _constant(node["child"])
    if node.get("class") != "CONSTANT":
        return None
    literal = node.get("literal")
    if isinstance(literal, dict):  # DuckDB 2.x: {"kind": "INTEGER", "text": "1"}
        kind, text = str(literal.get("kind", "")).upper(), literal.get("text")
        if text is None or kind == "NULL":
            return None
        if kind in {"INTEGER", "BIGINT", "HUGEINT"}:
            return int(text)
        if kind in {"DECIMAL", "DOUBLE", "FLOAT"}:
            return float(text)
        if kind == "BOOLEAN":
            return str(text).lower() == "true"
        return str(text)
    value = node.get("value", {})  # DuckDB 1.x
    if value.get("is_null"):
        return None
    return value.get("value")


def _to_iceberg(node: Any) -> tuple[str, Any] | None:
    """``(column, Iceberg expression)`` for a simple predicate, else None."""
    import pyiceberg.expressions

    ex: Any = pyiceberg.expressions  # positional construction; the stubs only know keywords

    kind = node.get("type", "")
    if kind in _OPS:
        left, right = node.get("left"), node.get("right")
        op = _OPS[kind]
        col, const = _column(left), _constant(right)
        if col is None:
            col, const, op = _column(right), _constant(left), _FLIP[op]
        if col is None or const is None:
            return None
        return col, getattr(ex, op)(col, const)
    if kind == "COMPARE_BETWEEN":
        col = _column(node.get("input"))
        lo, hi = _constant(node.get("lower")), _constant(node.get("upper"))
        if col and lo is not None and hi is not None:
            return col, ex.And(ex.GreaterThanOrEqual(col, lo), ex.LessThanOrEqual(col, hi))
    if kind == "COMPARE_IN":
        children = node.get("children", [])
        col = _column(children[0]) if children else None
        values = [_constant(c) for c in children[1:]]
        if col and values and all(v is not None for v in values):
            return col, ex.In(col, values)
    if kind in ("OPERATOR_IS_NULL", "OPERATOR_IS_NOT_NULL"):
        col = _column((node.get("children") or [None])[0])
        if col:
            return col, ex.IsNull(col) if kind == "OPERATOR_IS_NULL" else ex.NotNull(col)
    return None
