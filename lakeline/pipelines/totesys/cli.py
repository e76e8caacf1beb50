"""``lakeline extract`` and ``lakeline load``: the totesys pipeline's extraction and warehouse load.

``lakeline run`` processes the packets an extraction landed into the gold star schema.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import click

from lakeline.console import emit_json, emit_table
from lakeline.errors import UsageError
from lakeline.lake import Lake
from lakeline.pipelines.totesys.extract import extract as do_extract
from lakeline.pipelines.totesys.warehouse import load as do_load


def _lake() -> Lake:
    """The lake of the command line (``lakeline``'s root command puts its opener in ``obj``)."""
    opener: Callable[[], Lake] = click.get_current_context().obj
    return opener()


@click.command()
@click.option("--pipeline", required=True, help="The pipeline to extract for (totesys).")
@click.option("--source", "source_url",
              help="Source database URL (postgresql://… or a SQLite file; default: totesys.source_url, "
                   "then totesys.source_url_parameter, then totesys.source_secret_id).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def extract(pipeline: str, source_url: str | None, as_json: bool) -> None:
    """Run one incremental extraction: changed rows of every source table become JSON-lines
    packets in the raw zone; watermarks and packet ids move only after a packet is stored.

    Exit 1 when the run failed (watermarks unchanged; the notifier alerts after
    totesys.alert_after_failures consecutive failures). Then `lakeline run` processes the packets.
    """
    if pipeline != "totesys":
        raise UsageError(f"extract supports --pipeline totesys, not {pipeline!r}")

    report = do_extract(_lake(), source_url).to_dict()
    if as_json:
        emit_json(report)
    else:
        emit_table(["table", "rows", "duplicates dropped", "packet", "watermark", "attempts"], [
            (t["table"], t["rows"], t["duplicates_dropped"], t["packet_id"] or "-", t["watermark"] or "-",
             t["attempts"]) for t in report["tables"]], f"totesys extraction from {report['source']}")
        click.echo(f"{report['status']}: {report['rows']} rows in {report['packets']} packets "
                   f"in {report['elapsed_s']} s")
        if report["error"]:
            click.echo(f"error: {report['error']} ({report['consecutive_failures']} consecutive failed runs"
                       f"{'; administrators alerted' if report['alerted'] else ''})", err=True)
    if report["status"] != "SUCCEEDED":
        sys.exit(1)


@click.command()
@click.option("--target", default="duckdb", show_default=True,
              help="duckdb (the gold zone itself, embedded) or a PostgreSQL URL.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def load(target: str, as_json: bool) -> None:
    """Load the gold star schema into a warehouse (idempotent: a re-run changes nothing).

    PostgreSQL: creates the tables with primary keys, natural-key uniqueness for facts and
    foreign keys to the dimensions and dim_date; upserts dimensions, inserts new fact files.
    """

    report = do_load(_lake(), target)
    if as_json:
        emit_json(report)
        return
    emit_table(["table", "rows", "written", "files loaded", "files skipped"], [
        (name, t.get("rows"), t.get("written", "-"), t.get("files_loaded", "-"), t.get("files_skipped", "-"))
        for name, t in report["tables"].items()], f"load into {report['target']}")
