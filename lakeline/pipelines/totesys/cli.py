"""``lakeline extract`` and ``lakeline load``: the totesys pipeline's extraction and warehouse load.

``lakeline run`` processes the packets an extraction landed into the gold star schema.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import UTC, datetime

import click

from lakeline.console import emit_json, emit_table
from lakeline.errors import UsageError
from lakeline.lake import Lake
from lakeline.pipelines.totesys.extract import extract as do_extract
from lakeline.pipelines.totesys.schema import TABLES
from lakeline.pipelines.totesys.warehouse import load as do_load


def _lake() -> Lake:
    """The lake of the command line (``lakeline``'s root command puts its opener in ``obj``)."""
    opener: Callable[[], Lake] = click.get_current_context().obj
    return opener()


#: the pipelines ``lakeline extract`` can extract for.
EXTRACTING_PIPELINES = ("totesys",)


def parse_since(text: str) -> datetime:
    """``--since``: an ISO-8601 date or date-time; with a zone it is converted to UTC (the
    source's ``last_updated`` is UTC without a zone). UsageError (exit 2) otherwise."""
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"--since {text!r} is not an ISO-8601 date or date-time "
                         "(e.g. 2024-05-01, 2024-05-01T12:30:00 or 2024-05-01T12:30:00Z)") from None
    return when if when.tzinfo is None else when.astimezone(UTC).replace(tzinfo=None)


@click.command()
@click.option("--pipeline", required=True, help="The pipeline to extract for (totesys).")
@click.option("--source", "source_url",
              help="Source database: postgresql://… URL, libpq keyword string ('host=… dbname=…') or "
                   "SQLite file (default: pipelines.totesys.source_url, then "
                   "pipelines.totesys.source_url_parameter, then pipelines.totesys.source_secret_id). "
                   "Passwords are masked in every output.")
@click.option("--table", help="Extract only this source table.")
@click.option("--since", help="With --table: re-read the table's rows changed at or after this ISO-8601 "
                              "time into a new packet (recovers a missing packet; the watermark stays).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def extract(pipeline: str, source_url: str | None, table: str | None, since: str | None,
            as_json: bool) -> None:
    """Run one incremental extraction: changed rows of every source table (or of --table) become
    JSON-lines packets in the raw zone; watermarks and packet ids move only after a packet is
    stored. With --since, re-read a window instead: rows of --table changed since then become a
    new packet, the watermark stays, and processing drops the versions the star already has.

    Exit 1 when the run failed (watermarks unchanged; the notifier alerts after
    totesys.alert_after_failures consecutive failures) or another extraction is running; exit 2
    for an unknown pipeline or table or a bad --since. Then `lakeline run` processes the packets.
    """
    if pipeline not in EXTRACTING_PIPELINES:
        raise UsageError(f"extract supports --pipeline {' | '.join(EXTRACTING_PIPELINES)}, not {pipeline!r} "
                         f"(pipelines that can extract: {', '.join(EXTRACTING_PIPELINES)})")
    if table is not None and table not in TABLES:
        raise UsageError(f"--table {table!r} is not a totesys table; tables: {', '.join(TABLES)}")
    when = None if since is None else parse_since(since)
    if when is not None and table is None:
        raise UsageError("--since re-reads one table: name it with --table")

    report = do_extract(_lake(), source_url, tables=TABLES if table is None else (table,),
                        since=when).to_dict()
    if as_json:
        emit_json(report)
    else:
        emit_table(["table", "rows", "duplicates dropped", "packet", "watermark", "attempts"], [
            (t["table"], t["rows"], t["duplicates_dropped"], t["packet_id"] or "-", t["watermark"] or "-",
             t["attempts"]) for t in report["tables"]],
            f"totesys extraction from {report['source']}"
            + (f" (re-read since {report['since']})" if report["since"] else ""))
        click.echo(f"{report['status']}: {report['rows']} rows in {report['packets']} packets "
                   f"in {report['elapsed_s']} s")
        if report["error"]:
            click.echo(f"error: {report['error']} ({report['consecutive_failures']} consecutive failed runs"
                       f"{'; administrators alerted' if report['alerted'] else ''})", err=True)
    if report["status"] != "SUCCEEDED":
        sys.exit(1)


@click.command()
@click.option("--target", default="duckdb", show_default=True,
              help="duckdb (the gold zone itself, embedded), or a PostgreSQL URL or libpq keyword string.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def load(target: str, as_json: bool) -> None:
    """Load the gold star schema into a warehouse (idempotent: a re-run changes nothing).

    PostgreSQL: creates the tables with primary keys, natural-key uniqueness for facts and
    foreign keys to the dimensions and dim_date; upserts dimensions, inserts new fact files.
    Exit 1 when the warehouse cannot be reached (nothing is committed), 2 for a malformed target.
    """

    report = do_load(_lake(), target)
    if as_json:
        emit_json(report)
        return
    emit_table(["table", "rows", "written", "files loaded", "files skipped"], [
        (name, t.get("rows"), t.get("written", "-"), t.get("files_loaded", "-"), t.get("files_skipped", "-"))
        for name, t in report["tables"].items()], f"load into {report['target']}")
