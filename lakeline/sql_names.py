"""Which tables a query names, so that ``lakeline sql`` opens only those.

A lake can hold many tables and an Iceberg catalog whose library (pyiceberg) takes a second to
import; ``SELECT 1`` or a query over one Parquet table needs none of that. :func:`named_tables`
reads the qualified table references of a query (``silver.shipments``, ``"gold"."Daily Sales"``,
``retail_silver."orders_silver$snapshots"``) in its joins, subqueries and CTE bodies; a CTE's
own name is never qualified, so it is never taken for a table.

Two parsers, the first that understands the query wins:

1. DuckDB's own parser (``json_serialize_sql``): exact for every SELECT DuckDB runs, and free,
   since DuckDB is loaded anyway;
2. sqlglot (DuckDB dialect) for the statements DuckDB does not serialize (``DESCRIBE``,
   ``CREATE TABLE … AS``, several statements with ``SET`` …).

``None`` means "cannot tell, open every table" (the behaviour before this module): a query
neither parser reads, or one that asks the catalog itself (``SHOW TABLES``,
``information_schema``, ``duckdb_tables()``, ``query_table('…')``). The parsers never make a
query fail: DuckDB reports its own errors when the query runs.

:func:`referenced_tables` is the strict form Iceberg planning and the bytes limit use: DuckDB's
parse tree only, the names as written, and a :class:`~lakeline.errors.UsageError` in DuckDB's
words for SQL that does not parse.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any

import orjson

from lakeline.errors import UsageError

if TYPE_CHECKING:
    import duckdb

#: a time-travel clause after a table name (`ns.tbl FOR VERSION AS OF 12`), Athena / Trino syntax
TIME_TRAVEL = re.compile(
    r"(?P<table>\"?[A-Za-z_][\w]*\"?\.\"?[A-Za-z_][\w$]*\"?)\s+FOR\s+(?P<kind>VERSION|TIMESTAMP|SYSTEM_TIME)"
    r"\s+AS\s+OF\s+(?P<value>'[^']*'|TIMESTAMP\s+'[^']*'|\d+)",
    re.IGNORECASE,
)
#: text that makes a query read the catalog (or name tables in strings): every table is opened
_CATALOG = re.compile(
    r"information_schema|pg_catalog|duckdb_\w+|sqlite_master|\bshow\b|\bpragma\b|\bquery(?:_table)?\s*\(",
    re.IGNORECASE,
)

_EXPLAIN = re.compile(
    r"^(?:\s+|--[^\n]*(?:\n|$)|/\*.*?\*/)*EXPLAIN(?P<analyze>\s+ANALYZE)?(?:\s*\((?P<options>[^)]*)\))?\s+",
    re.IGNORECASE | re.DOTALL,
)


def split_explain(query: str) -> tuple[str | None, str]:
    """``("EXPLAIN" | "EXPLAIN ANALYZE", statement)`` for an ``EXPLAIN`` statement (Trino's
    ``(TYPE …, FORMAT …)`` options dropped), else ``(None, query)``."""
    m = _EXPLAIN.match(query)
    if m is None:
        return None, query
    return ("EXPLAIN ANALYZE" if m.group("analyze") else "EXPLAIN"), query[m.end():]


def named_tables(query: str, con: duckdb.DuckDBPyConnection) -> frozenset[tuple[str, str]] | None:
    """``(schema, table)`` of every qualified table ``query`` names (schema lower-cased, table
    as written), or None when that cannot be known (see the module doc). ``con``: a DuckDB
    connection whose parser reads the query (nothing is run)."""
    if _CATALOG.search(query):
        return None
    travel = {_pair(m.group("table")) for m in TIME_TRAVEL.finditer(query)}
    # DuckDB's parser does not read `FOR VERSION AS OF` (lakeline's Iceberg planning rewrites it)
    plain = TIME_TRAVEL.sub(lambda m: m.group("table"), query)
    found = _duckdb_names(plain, con)
    if found is None:
        found = _sqlglot_names(plain)
    if found is None:
        return None
    return frozenset(found | {p for p in travel if p is not None})


def _pair(text: str) -> tuple[str, str] | None:
    schema, _, table = text.replace('"', "").partition(".")
    return (schema.lower(), table) if schema and table else None


def _duckdb_names(query: str, con: duckdb.DuckDBPyConnection) -> set[tuple[str, str]] | None:
    import duckdb  # heavy: imported when used, not by importing lakeline

    try:
        rows = con.execute("SELECT json_serialize_sql(?)", [query]).fetchall()
    except duckdb.Error:
        return None
    tree: dict[str, Any] = orjson.loads(rows[0][0]) if rows else {}
    if tree.get("error") or not tree.get("statements"):
        return None  # not SELECT statements (or not DuckDB SQL): sqlglot may still read it
    return {(schema.lower(), table) for schema, table in _tables(tree)}


def parse_tree(con: duckdb.DuckDBPyConnection, sql: str) -> dict[str, Any]:
    """DuckDB's parse tree of ``sql`` (``json_serialize_sql``); ``{"statements": []}`` for valid
    SQL that is not SELECT statements (DESCRIBE, SHOW, …). :class:`UsageError` with DuckDB's
    own words for SQL that does not parse."""
    import duckdb  # heavy: imported when used, not by importing lakeline

    rows = con.execute("SELECT json_serialize_sql(?)", [sql]).fetchall()  # fetchall closes it
    tree: dict[str, Any] = orjson.loads(rows[0][0]) if rows else {}
    if tree.get("error"):
        try:  # let DuckDB's parser word the error the way DuckDB users know it
            con.extract_statements(sql)
        except duckdb.Error as exc:
            raise UsageError(f"SQL error: {exc}") from None
        return {"statements": []}
    return tree


def referenced_tables(con: duckdb.DuckDBPyConnection, sql: str) -> list[tuple[str, str]]:
    """``(schema, table)`` of every qualified table the SELECT statements of ``sql`` name, as
    written, in order (see :func:`parse_tree` for errors)."""
    return _tables(parse_tree(con, sql))


def _tables(tree: dict[str, Any]) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "BASE_TABLE" and node.get("schema_name"):
                pair = (str(node["schema_name"]), str(node["table_name"]))
                if pair not in found:
                    found.append(pair)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(tree.get("statements", []))
    return found


def _sqlglot_names(query: str) -> set[tuple[str, str]] | None:
    import sqlglot  # heavy: sqlglot's dialects load on first use
    from sqlglot import exp

    quiet = logging.getLogger("sqlglot")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)  # its "falling back to a Command" warnings: None below instead
    try:
        statements = [s for s in sqlglot.parse(query, read="duckdb") if s is not None]
    except Exception:  # any parser failure means "open every table", never an error
        return None
    finally:
        quiet.setLevel(level)
    if not statements or any(isinstance(s, exp.Command) for s in statements):
        return None
    found: set[tuple[str, str]] = set()
    for statement in statements:
        for table in statement.find_all(exp.Table):
            if table.db and isinstance(table.this, exp.Identifier):
                found.add((str(table.db).lower(), str(table.name)))
    return found
