"""``lakeline sql``, ``explain`` and ``tables``: query the lake with DuckDB."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click

from lakeline.cli import context
from lakeline.config import SQL_DIALECTS
from lakeline.console import emit_json, emit_table
from lakeline.errors import UsageError
from lakeline.lake import Lake
from lakeline.sql import Query as LakeQuery
from lakeline.sql import bind_query, head

if TYPE_CHECKING:
    import duckdb

    from lakeline.sql import Scope

#: rows `sql` prints in table mode without --limit
TABLE_ROWS = 1000

dialect_option = click.option(
    "--dialect", type=click.Choice(SQL_DIALECTS),
    help="SQL dialect of QUERY: duckdb, or athena (Athena/Trino SQL, translated; default sql.dialect).")


def table_specs(lake: Lake) -> list[Any]:
    """The pipelines' table specs of ``lake`` (loads the pipelines)."""
    return [t for _, t in context.pipelines(lake).tables()]


class Query(LakeQuery):
    """:class:`lakeline.sql.Query` with the pipelines' table specs of the command's lake."""

    def __init__(self, lake: Lake, body: str, dialect: str | None,
                 con: duckdb.DuckDBPyConnection | None = None, sc: Scope | None = None) -> None:
        super().__init__(lake, body, dialect, lambda: table_specs(lake), con, sc)


def run_query(lake: Lake, query: str, *, fmt: str = "table", limit: int | None = None,
              max_bytes: int | None = None, dialect: str | None = None) -> None:
    """Run one DuckDB (or Athena-dialect) ``query`` over the lake and print its rows as ``fmt``
    (``table``, ``json`` or ``csv``): what ``lakeline sql QUERY`` does."""
    from lakeline.sql_names import split_explain

    prefix, body = split_explain(query)
    if prefix == "EXPLAIN":
        if fmt == "csv":
            raise UsageError("EXPLAIN prints a plan, not rows: drop --csv (--json gives it as JSON)")
        explain_query(lake, Query(lake, body, dialect), fmt == "json")
        return
    q, rel = bind_query(lake, body, lambda: table_specs(lake), prefix=prefix, dialect=dialect,
                        max_bytes=max_bytes)
    print_result(lake, q.con, rel, fmt, limit)


def print_result(lake: Lake, con: duckdb.DuckDBPyConnection, rel: duckdb.DuckDBPyRelation | None, fmt: str,
                 limit: int | None) -> None:
    """Print the rows of ``rel`` (None: a statement without rows) as ``fmt``: a table of at most
    ``limit`` rows (:data:`TABLE_ROWS` unless given; "more exist" on stderr), or every row (unless
    ``limit``) as ``json`` or ``csv``."""
    import duckdb  # heavy: DuckDB (already loaded by the query; named for its error type)

    if rel is None:
        return
    if fmt in ("csv", "json"):
        try:
            _write(lake, con, rel, fmt, limit)
        except duckdb.Error as exc:
            raise UsageError(f"SQL error: {exc}") from None
        return
    shown = TABLE_ROWS if limit is None else limit
    rows, more = head(rel, shown)
    emit_table(list(rel.columns), [list(r) for r in rows])
    if more:
        _more(shown)


@click.command()
@click.argument("query", required=False)
@click.option("--json", "as_json", is_flag=True, help="Rows as a JSON array of objects.")
@click.option("--csv", "as_csv", is_flag=True, help="Rows as CSV with a header.")
@click.option("--limit", type=click.IntRange(min=0),
              help=f"At most N rows (table mode: {TABLE_ROWS} unless given; --json/--csv: all unless given).")
@click.option("--max-bytes", type=click.IntRange(min=0),
              help="Refuse the query if it would scan more bytes (default sql.max_bytes; 0 = no limit).")
@dialect_option
@click.option("--engine", type=click.Choice(["duckdb", "athena"]), default="duckdb", show_default=True,
              help="duckdb reads the lake's files here (S3 too); athena runs QUERY (Athena SQL) in the "
                   "lake's Athena workgroup over its Glue tables (--profile aws), printing bytes scanned "
                   "and cost.")
def sql(query: str | None, as_json: bool, as_csv: bool, limit: int | None, max_bytes: int | None,
        dialect: str | None, engine: str) -> None:
    """Run a DuckDB QUERY over the lake (or an Athena one: --dialect athena).

    \b
    Without QUERY: on a terminal, an interactive SQL shell over the lake's tables
    (statements end with `;`, history in HOME/.lakeline_sql_history, Tab completes table and
    column names and keywords, .tables, .schema TABLE, .help, .quit or Ctrl-D);
    otherwise the SQL is read from standard input:  echo "SELECT 1" | lakeline sql
    \b
    Only the tables QUERY names are opened (`SELECT 1` reads no table and no Iceberg catalog).
    \b
    Tables: silver.<record_type> (silver.shipments, …), silver.transactions (promoted runs),
    silver.transactions__runs, gold.*, quarantine.rejects (pipeline, key, line_no,
    byte_offset, reason_code, message, raw, …), and Iceberg tables by their catalog name
    (retail_silver.orders_silver). `lakeline tables` lists them.
    \b
    Iceberg: filters on columns are pushed into scan planning (see `lakeline explain`;
    `EXPLAIN SELECT …` here shows the same);
    time travel:  SELECT … FROM ns.tbl FOR VERSION AS OF <snapshot id>
                  SELECT … FROM ns.tbl FOR TIMESTAMP AS OF '2026-01-05T10:00:00Z'
    metadata:     ns."tbl$snapshots", "tbl$history", "tbl$files", "tbl$partitions"
    \b
    Output: a table of at most --limit rows (default 1000; "more exist" on stderr), or with
    --json / --csv every row (unless --limit) written by DuckDB: nested columns as JSON,
    timestamps as ISO 8601 (TIMESTAMPTZ in UTC, +00:00).
    """
    if as_json and as_csv:
        raise UsageError("--json and --csv exclude each other: choose one")
    lake = context.open_lake()
    if query is None:
        if sys.stdin.isatty():
            from lakeline.cli.shell import shell  # heavy: readline and DuckDB, for the shell only

            shell(lake, dialect=dialect, max_bytes=max_bytes)
            return
        try:
            query = sys.stdin.read()
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"no query: standard input cannot be read ({exc}); give QUERY") from None
        if not query.strip():
            raise UsageError("no query: give QUERY, pipe SQL on standard input, or run `lakeline sql` "
                             "on a terminal for the interactive shell")
    if engine == "athena":
        _athena(lake, query, as_json, as_csv, limit, dialect)
        return
    fmt = "csv" if as_csv else "json" if as_json else "table"
    run_query(lake, query, fmt=fmt, limit=limit, max_bytes=max_bytes, dialect=dialect)


def _athena(lake: Lake, query: str, as_json: bool, as_csv: bool, limit: int | None,
            dialect: str | None) -> None:
    """``sql --engine athena``: the query runs on Athena; rows printed as for DuckDB."""
    from lakeline.adapters.aws.session import clients  # heavy: boto3
    from lakeline.aws.athena import run_query

    if lake.is_local:
        raise UsageError("--engine athena queries the lake's Glue tables on AWS: add --profile aws "
                         "(or set lake.profile = \"aws\")")
    if dialect == "duckdb":
        raise UsageError("--engine athena runs Athena SQL: drop --dialect duckdb")
    aws = lake.settings.aws
    shown = TABLE_ROWS if limit is None and not (as_json or as_csv) else limit
    result = run_query(clients(aws), query, workgroup=aws.workgroup(lake.settings.lake.name),
                       database=aws.database(lake.settings.lake.name), limit=shown,
                       progress=lambda line: click.echo(line, err=True))
    if as_json:
        emit_json([dict(zip(result.columns, row, strict=True)) for row in result.rows])
    elif as_csv:
        import csv  # only for --csv of an Athena result

        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(result.columns)
        writer.writerows(result.rows)
    else:
        emit_table(result.columns, result.rows)
    if result.more and shown is not None:
        _more(shown)
    click.echo(f"athena: query {result.query_id} scanned {result.bytes_scanned:,} bytes in "
               f"{result.elapsed_ms} ms, about ${result.cost_usd:.6f}", err=True)


def _more(shown: int) -> None:
    click.echo(f"({shown} rows shown, more exist; use --limit)", err=True)


def _write(lake: Lake, con: duckdb.DuckDBPyConnection, rel: duckdb.DuckDBPyRelation, fmt: str,
           limit: int | None) -> None:
    """Rows of ``rel`` as ``fmt`` on stdout, written by DuckDB (lakeline.sql_output)."""
    from lakeline.sql_output import write_result  # heavy: loads DuckDB

    out = sys.stdout.buffer
    if limit is None:
        write_result(con, rel, fmt, out, lake.work_dir)
        return
    # N+1 rows into a table: the query runs once, and the extra row says whether more exist
    con.register("__lakeline_limited", rel.limit(limit + 1))
    try:
        con.execute("CREATE TEMP TABLE __lakeline_rows AS SELECT * FROM __lakeline_limited")
    finally:
        con.unregister("__lakeline_limited")
    kept = con.table("__lakeline_rows")
    more = int(con.execute("SELECT count(*) FROM __lakeline_rows").fetchall()[0][0]) > limit
    write_result(con, kept.limit(limit), fmt, out, lake.work_dir)
    if more:
        _more(limit)


def explain_query(lake: Lake, q: LakeQuery, as_json: bool) -> None:
    """Print what ``q`` would read (scan plans) and DuckDB's plan: ``lakeline explain``."""
    import duckdb  # heavy: DuckDB, loaded by the command that plans, not by the CLI

    from lakeline.sql import plan_query  # heavy: loads DuckDB

    rewritten, plans = plan_query(lake, q.con, q.body, tables=q.scope.specs, scope=q.scope)
    try:
        text = "\n".join(str(r[1]) for r in q.con.execute(f"EXPLAIN {rewritten}").fetchall())
    except duckdb.CatalogException as exc:
        if q.scope.everything:
            raise UsageError(f"SQL error: {exc}") from None
        explain_query(lake, q.widened(), as_json)
        return
    except duckdb.Error as exc:
        raise UsageError(f"SQL error: {exc}") from None
    if as_json:
        emit_json({"plans": plans, "duckdb_plan": text})
        return
    emit_table(["table", "snapshot", "filter", "files planned", "of", "bytes planned", "of"], [
        (p["table"], p["snapshot_id"], p["row_filter"], p["planned_files"], p["total_files"],
         p["planned_bytes"], p["total_bytes"]) for p in plans], "scan plan")
    click.echo(text)


@click.command()
@click.argument("query")
@click.option("--json", "as_json", is_flag=True, help="Print the plans as JSON.")
@dialect_option
def explain(query: str, as_json: bool, dialect: str | None) -> None:
    """Show what QUERY would read: per table the files and bytes planned vs the table's
    total (partition pruning evidence for Iceberg tables), then DuckDB's plan."""
    from lakeline.sql_names import split_explain

    lake = context.open_lake()
    prefix, body = split_explain(query)
    if prefix == "EXPLAIN ANALYZE":
        raise UsageError("explain shows the plan without running the query: drop ANALYZE")
    explain_query(lake, Query(lake, body, dialect), as_json)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def tables(as_json: bool) -> None:
    """List the tables `lakeline sql` can query."""
    from lakeline.sql import discover, iceberg_tables  # heavy: loads DuckDB


    lake = context.open_lake()
    found = discover(lake, table_specs(lake)) + iceberg_tables(lake)
    if as_json:
        emit_json([t.__dict__ for t in found])
    else:
        rows = [(t.name, t.files, t.bytes, t.location) for t in found]
        emit_table(["table", "files", "bytes", "location"], rows)

