"""``lakeline sql``, ``explain`` and ``tables``: query the lake with DuckDB."""

from __future__ import annotations

import sys
from typing import Any

import click

from lakeline.cli import context
from lakeline.console import emit_json, emit_table
from lakeline.errors import UsageError
from lakeline.lake import Lake


def _table_specs(lake: Lake) -> list[Any]:
    return [t for _, t in context.pipelines(lake).tables()]


@click.command()
@click.argument("query")
@click.option("--json", "as_json", is_flag=True, help="Rows as a JSON array of objects.")
@click.option("--csv", "as_csv", is_flag=True, help="Rows as CSV with a header.")
@click.option("--limit", type=int, default=1000, show_default=True, help="Rows shown in table mode.")
@click.option("--max-bytes", type=click.IntRange(min=0),
              help="Refuse the query if it would scan more bytes (default sql.max_bytes; 0 = no limit).")
def sql(query: str, as_json: bool, as_csv: bool, limit: int, max_bytes: int | None) -> None:
    """Run a DuckDB QUERY over the lake.

    \b
    Tables: silver.<record_type> (silver.shipments, …), silver.transactions (promoted runs),
    silver.transactions__runs, gold.*, quarantine.rejects (pipeline, key, line_no,
    byte_offset, reason_code, message, raw, …), and Iceberg tables by their catalog name
    (retail_silver.orders_silver). `lakeline tables` lists them.
    \b
    Iceberg: filters on columns are pushed into scan planning (see `lakeline explain`);
    time travel:  SELECT … FROM ns.tbl FOR VERSION AS OF <snapshot id>
                  SELECT … FROM ns.tbl FOR TIMESTAMP AS OF '2026-01-05T10:00:00Z'
    metadata:     ns."tbl$snapshots", "tbl$history", "tbl$files", "tbl$partitions"
    """
    import duckdb

    from lakeline.sql import connect, plan_query  # heavy: loads DuckDB


    lake = context.open_lake()
    specs = _table_specs(lake)
    con = connect(lake, specs)
    limit_bytes = lake.settings.sql.max_bytes if max_bytes is None else max_bytes
    query, _ = plan_query(lake, con, query, max_bytes=limit_bytes or None, tables=specs)
    try:
        rel = con.sql(query)
    except duckdb.Error as exc:
        raise UsageError(f"SQL error: {exc}") from None
    if rel is None:
        return
    table = rel.to_arrow_table()
    if as_csv:
        import pyarrow.csv as pacsv

        sink = sys.stdout.buffer
        pacsv.write_csv(table, sink)
        return
    rows = table.to_pylist()
    if as_json:
        emit_json(rows)
        return
    emit_table(table.column_names, [list(r.values()) for r in rows[:limit]])
    if len(rows) > limit:
        click.echo(f"({len(rows)} rows, {limit} shown)", err=True)


@click.command()
@click.argument("query")
@click.option("--json", "as_json", is_flag=True, help="Print the plans as JSON.")
def explain(query: str, as_json: bool) -> None:
    """Show what QUERY would read: per table the files and bytes planned vs the table's
    total (partition pruning evidence for Iceberg tables), then DuckDB's plan."""
    import duckdb

    from lakeline.sql import connect, plan_query  # heavy: loads DuckDB


    lake = context.open_lake()
    specs = _table_specs(lake)
    con = connect(lake, specs)
    rewritten, plans = plan_query(lake, con, query, tables=specs)
    try:
        text = "\n".join(str(r[1]) for r in con.execute(f"EXPLAIN {rewritten}").fetchall())
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
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def tables(as_json: bool) -> None:
    """List the tables `lakeline sql` can query."""
    from lakeline.sql import discover, iceberg_tables  # heavy: loads DuckDB


    lake = context.open_lake()
    found = discover(lake, _table_specs(lake)) + iceberg_tables(lake)
    if as_json:
        emit_json([t.__dict__ for t in found])
    else:
        rows = [(t.name, t.files, t.bytes, t.location) for t in found]
        emit_table(["table", "files", "bytes", "location"], rows)

