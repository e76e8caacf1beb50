"""Athena (Trino) SQL in ``lakeline sql`` and ``explain``: translated to DuckDB with sqlglot.

``lakeline sql --dialect athena "…"`` (or ``sql.dialect = "athena"``) runs an Athena engine v3
query unchanged: sqlglot rewrites its functions and types (``approx_distinct`` →
``approx_count_distinct``, ``date_format`` → ``strftime`` with the format translated,
``from_iso8601_timestamp``, ``regexp_like``, ``cardinality``, ``element_at``, ``CAST(… AS
varchar)``, …). On top of sqlglot:

- **time travel** on Iceberg tables, ``FOR VERSION AS OF n`` and ``FOR TIMESTAMP AS OF
  TIMESTAMP '2026-01-05 10:00:00 UTC'`` (a time without a zone is UTC, Athena's session zone),
  becomes lakeline's own form (``FOR TIMESTAMP AS OF '<ISO 8601>'``, see
  :mod:`lakeline.sql_iceberg`);
- **Glue names**: ``<db>.<table>``, where ``<db>`` is the Glue database ``lakeline deploy sam``
  creates for the lake (the lake name with ``-`` as ``_``: ``lakeline``), reads
  ``silver.<table>``; ``<db>.silver`` is the table a Glue crawler makes of the whole ``silver/``
  prefix (seed 002): every silver Parquet table of the pipelines, unioned by column name, with
  ``record_type`` (the route field, else the table's name); ``<db>.transactions`` reads the
  promoted runs and ``<db>.gold_<name>`` reads ``gold.<name>`` (the names ``lakeline catalog
  sync`` gives them in Glue). Iceberg tables keep their catalog names
  (``retail_silver.orders_silver``) — the same in Glue;
- a **function DuckDB does not have** after translation fails with the function's name, before
  anything runs; a statement sqlglot cannot parse fails with its line and column.

``EXPLAIN …`` (any dialect) is split off by :func:`lakeline.sql_names.split_explain` (importable
from here too): ``lakeline sql "EXPLAIN SELECT …"`` shows what ``lakeline explain`` shows.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from lakeline.errors import UsageError
from lakeline.sql_names import split_explain as split_explain  # its first home: still importable here

if TYPE_CHECKING:
    import duckdb

    from lakeline.tables.schema import TableSpec

DIALECTS = ("duckdb", "athena")
#: sqlglot's name of the dialect each lakeline dialect reads
_READ = {"athena": "athena"}
#: sqlglot's repr of a token in its parse errors
_TOKEN = re.compile(r"<Token token_type: TokenType\.(?P<kind>\w+), text: (?P<text>.*?), line: .*?>")
_ZONE = re.compile(r"^(?P<time>\d{4}-\d\d-\d\d(?:[ T]\d\d:\d\d(?::\d\d(?:\.\d+)?)?)?)\s*(?P<zone>.*)$")


def glue_database(lake_name: str) -> str:
    """The Glue database of a lake's silver tables (what ``lakeline deploy sam`` names it)."""
    return lake_name.replace("-", "_").lower()


def athena_aliases(lake_name: str, tables: Sequence[TableSpec], existing: Iterable[str]) -> dict[
        tuple[str, str], str]:
    """``{(glue database, table): DuckDB SQL}``: the Glue names of the lake's tables — silver
    Parquet and promoted-run tables by name, gold tables as ``gold_<name>`` (what ``lakeline
    catalog sync`` registers) — (``tables``: the pipelines' specs; ``existing``: the table
    names present, see :func:`lakeline.sql.discover`)."""
    db = glue_database(lake_name)
    present = set(existing)
    out: dict[tuple[str, str], str] = {}
    parts = []
    for name in sorted(present):  # gold tables (pipelines' and models'): gold_<name> in Glue
        if name.startswith("gold.") and name.count(".") == 1:
            table = name.split(".", 1)[1]
            out[(db, f"gold_{table}".lower())] = f'gold."{table}"'
    for t in tables:
        if t.zone == "silver" and t.layout == "runs":  # the promoted runs, as `catalog sync` names them
            out[(db, t.table.lower())] = f'silver."{t.table}"'
        if t.layout != "parquet" or t.zone != "silver":
            continue
        out[(db, t.table.lower())] = f'silver."{t.table}"'
        if t.name in present:
            fields = {f.name for f in t.fields}
            tag = "" if "record_type" in fields else f", '{t.table}' AS record_type"
            parts.append(f'SELECT *{tag} FROM silver."{t.table}"')
    if parts and (db, "silver") not in out:
        out[(db, "silver")] = "(" + " UNION ALL BY NAME ".join(parts) + ")"
    return out


def translate(
    query: str, dialect: str, *, aliases: Mapping[tuple[str, str], str] | None = None,
    con: duckdb.DuckDBPyConnection | None = None,
) -> str:
    """``query`` in DuckDB SQL. ``dialect`` ``duckdb`` returns it unchanged; ``athena`` parses
    it as Athena SQL and translates it (see the module doc). ``con``: the connection whose
    functions the translation may call (checked when given). Raises :class:`UsageError`
    naming what cannot be translated."""
    if dialect not in DIALECTS:
        raise UsageError(f"unknown SQL dialect {dialect!r}; dialects: {', '.join(DIALECTS)}")
    if dialect == "duckdb":
        return query
    import sqlglot  # heavy: sqlglot's dialects load on first use
    from sqlglot import exp
    from sqlglot.errors import ErrorLevel, ParseError, UnsupportedError

    quiet = logging.getLogger("sqlglot")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # its "falling back to a Command" warning: refused below instead
    try:
        statements = [s for s in sqlglot.parse(query, read=_READ[dialect]) if s is not None]
    except ParseError as exc:
        raise UsageError(f"Athena SQL: {_parse_error(exc)}") from None
    finally:
        quiet.setLevel(level)
    if len(statements) != 1:
        raise UsageError(f"Athena SQL: give one statement, got {len(statements)}")
    tree = statements[0]
    if isinstance(tree, exp.Command):  # sqlglot could not parse it beyond its first keyword
        raise UsageError(f"Athena SQL: `{tree.name}` statements have no DuckDB translation")
    for table in list(tree.find_all(exp.Table)):
        _time_travel(table)
        _alias(table, aliases or {})
    try:
        out = tree.sql(dialect="duckdb", unsupported_level=ErrorLevel.RAISE)
    except UnsupportedError as exc:
        raise UsageError(f"Athena SQL: {exc} (no DuckDB translation)") from None
    if con is not None:
        _check_functions(sqlglot.parse_one(out, read="duckdb"), con)
    return out


def _parse_error(exc: Any) -> str:
    errors = getattr(exc, "errors", None) or []
    if not errors:
        return str(exc)
    e = errors[0]
    near = f" near `{e['highlight']}`" if e.get("highlight") else ""
    description = _TOKEN.sub(lambda m: "the end of the query" if m.group("kind") == "SENTINEL"
                             else f"`{m.group('text')}`", str(e.get("description")))
    return f"line {e.get('line')}, column {e.get('col')}: {description}{near}"


def _time_travel(table: Any) -> None:
    """``FOR TIMESTAMP AS OF <literal>`` with an ISO-8601 string, ``FOR VERSION AS OF`` with a
    number: the forms :mod:`lakeline.sql_iceberg` plans."""
    from sqlglot import exp

    version = table.args.get("version")
    if version is None:
        return
    kind = str(version.name).upper()
    value = version.expression
    while isinstance(value, exp.Cast):
        value = value.this
    if not isinstance(value, exp.Literal):
        raise UsageError(f"Athena SQL: FOR {kind} AS OF needs a literal, got `{version.expression.sql()}`")
    if kind == "VERSION":
        if value.is_string or not str(value.this).isdigit():
            raise UsageError(f"Athena SQL: FOR VERSION AS OF needs a snapshot id, got {value.sql()}")
        version.set("expression", exp.Literal.number(str(value.this)))
        return
    version.set("expression", exp.Literal.string(athena_timestamp(str(value.this))))


def athena_timestamp(text: str) -> str:
    """An Athena timestamp literal's text (``2026-01-05 10:00:00[.fff] [UTC | +02:00 |
    Europe/Berlin]``, or ISO 8601) as ISO 8601 in UTC; a time without a zone is UTC."""
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        m = _ZONE.match(text.strip())
        if m is None:
            raise UsageError(f"Athena SQL: not a timestamp: {text!r}") from None
        when = datetime.fromisoformat(m.group("time"))
        zone = m.group("zone").strip()
        if zone:
            try:
                when = when.replace(tzinfo=ZoneInfo(zone))
            except (ZoneInfoNotFoundError, ValueError):
                raise UsageError(f"Athena SQL: unknown time zone {zone!r} in {text!r}") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).isoformat()


def _alias(table: Any, aliases: Mapping[tuple[str, str], str]) -> None:
    """Replace a Glue name (``db.table``) by the lakeline table or query it reads."""
    import sqlglot
    from sqlglot import exp

    key = (str(table.db).lower(), str(table.name).lower())
    target = aliases.get(key) if table.db and not table.catalog else None
    if target is None:
        return
    if target.startswith("("):
        sub = sqlglot.parse_one(target[1:-1], read="duckdb")
        alias = table.alias or table.name
        table.replace(exp.Subquery(this=sub, alias=exp.TableAlias(this=exp.to_identifier(alias))))
        return
    schema, _, name = target.partition(".")
    table.set("db", exp.to_identifier(schema))
    table.set("this", exp.to_identifier(name.strip('"'), quoted=True))


def _check_functions(tree: Any, con: duckdb.DuckDBPyConnection | None) -> None:
    """Functions sqlglot does not know are passed through as they are: refuse those DuckDB
    does not have either, naming them (instead of DuckDB's "Catalog Error")."""
    from sqlglot import exp

    calls = {str(f.name) for f in tree.find_all(exp.Anonymous)}
    if not calls or con is None:
        return
    known = {str(r[0]).lower() for r in con.execute(
        "SELECT DISTINCT function_name FROM duckdb_functions()").fetchall()}
    for name in sorted(calls):
        if name.lower() not in known:
            raise UsageError(f"Athena SQL: `{name.upper()}(...)` has no DuckDB translation")
