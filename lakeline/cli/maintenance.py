"""Table maintenance and replays: ``compact``, ``expire-snapshots``, ``remove-orphans``, ``replay``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import click

from lakeline.cli import context
from lakeline.console import emit_json, emit_kv
from lakeline.errors import UsageError
from lakeline.stages.replay import parse_instant
from lakeline.stages.replay import replay as do_replay


@click.command()
@click.option("--table", required=True, help="Iceberg table (retail_silver.orders_silver) or silver.<table>.")
@click.option("--dt", help="Parquet tables: the dt partition to compact (YYYY-MM-DD).")
@click.option("--target-mb", type=click.IntRange(min=1), default=128, show_default=True,
              help="Iceberg: target data file size.")
@click.option("--output-prefix", help="Parquet tables: write the merged file to silver/PREFIX/<table>/dt=D/ "
              "and leave the partition as it is (the seed's safe output, e.g. silver_compacted).")
@click.option("--min-age-seconds", type=click.FloatRange(min=0),
              help="Parquet tables: leave files younger than this (default: the queue visibility timeout).")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def compact(table: str, dt: str | None, target_mb: int, output_prefix: str | None,
            min_age_seconds: float | None, as_json: bool) -> None:
    """Rewrite small files into few large ones.

    Iceberg tables: a replace snapshot (readers see the old or the new files, never both).
    Parquet tables (silver.<table> --dt D): one dt partition into one file (see README for
    the short window in which readers can see both), or with --output-prefix a merged copy
    beside the table. Files left alone are listed with the reason (too young: …)."""
    from lakeline.tables.maintenance import compact as compact_iceberg  # heavy: loads pyiceberg
    from lakeline.tables.parquet_compact import compact_partition  # heavy: loads DuckDB

    lake = context.open_lake()
    if table.startswith("silver.") or dt:
        if not dt:
            raise UsageError("Parquet tables are compacted one partition at a time: pass --dt")
        result = compact_partition(lake, table.removeprefix("silver."), dt, output_prefix=output_prefix,
                                   min_age_seconds=min_age_seconds)
    else:
        if output_prefix is not None or min_age_seconds is not None:
            raise UsageError("--output-prefix and --min-age-seconds are for Parquet tables "
                             "(silver.<table> --dt D)")
        result = compact_iceberg(lake, table, target_mb * 1024 * 1024)
    if as_json:
        emit_json(result)
        return
    shown = {k: v for k, v in result.items() if k != "skipped"}
    emit_kv(shown, f"compact {table}")
    for skipped in result.get("skipped") or []:
        click.echo(f"skipped {skipped['file']}: {skipped['reason']}")


@click.command("expire-snapshots")
@click.option("--table", required=True, help="Iceberg table.")
@click.option("--older-than", required=True, help="ISO-8601 instant; the current snapshot is always kept.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def expire_snapshots(table: str, older_than: str, as_json: bool) -> None:
    """Expire Iceberg snapshots older than the given time (time travel to them ends)."""
    from lakeline.tables.maintenance import expire_snapshots as expire  # heavy: loads pyiceberg


    lake = context.open_lake()
    n = expire(lake, table, parse_instant(older_than))
    emit_json({"table": table, "expired": n}) if as_json else click.echo(f"{table}: {n} snapshots expired")


@click.command("remove-orphans")
@click.option("--table", required=True, help="Iceberg table.")
@click.option("--older-than-hours", type=click.FloatRange(min=1), default=72, show_default=True,
              help="Safety age: files younger than this are kept (a writer may be about to commit them).")
@click.option("--dry-run", is_flag=True, help="List what would be deleted.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def remove_orphans(table: str, older_than_hours: float, dry_run: bool, as_json: bool) -> None:
    """Delete files in the table's location that no snapshot references."""
    from lakeline.tables.maintenance import remove_orphan_files  # heavy: loads pyiceberg


    lake = context.open_lake()
    cutoff = datetime.now(UTC) - timedelta(hours=older_than_hours)
    files = remove_orphan_files(lake, table, cutoff, dry_run=dry_run)
    if as_json:
        emit_json({"table": table, "dry_run": dry_run, "files": files})
    else:
        verb = "would delete" if dry_run else "deleted"
        click.echo(f"{table}: {verb} {len(files)} orphan file(s)")



@click.command()
@click.option("--pipeline", required=True, help="Pipeline whose landed objects to replay.")
@click.option("--start", required=True, help="Window start (ISO-8601, inclusive; naive = UTC).")
@click.option("--end", required=True, help="Window end (ISO-8601, exclusive).")
@click.option("--mode", type=click.Choice(["copy", "queue"]), default="copy", show_default=True,
              help="copy: re-land copies under PIPELINE/replay/NAME/; queue: re-send chunks directly.")
@click.option("--name", help="Replay name (default: the current UTC time).")
@click.option("--src-prefix", help="Replay only objects under this landing prefix "
              "(seed form: bronze/shipments/2026/).")
@click.option("--dest-prefix-base", help="Where copies go, under replay/ (default bronze/replay: "
              "PIPELINE/replay/NAME/).")
@click.option("--bronze-bucket", help="The seed's bronze bucket: must be the lake's landing bucket.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def replay(pipeline: str, start: str, end: str, mode: str, name: str | None, src_prefix: str | None,
           dest_prefix_base: str | None, bronze_bucket: str | None, as_json: bool) -> None:
    """Replay landed objects whose LastModified is in [START, END), then `lakeline run`.

    A copy supersedes the rows of the object it copies: after the run the tables hold the same
    rows, rewritten (counts reconcile)."""
    lake = context.open_lake()
    reg = context.pipelines(lake)
    reg.get(pipeline)
    result = do_replay(lake, reg.route, pipeline, parse_instant(start), parse_instant(end), mode=mode,
                       name=name, src_prefix=src_prefix, dest_prefix_base=dest_prefix_base,
                       bucket=bronze_bucket)
    if not as_json:
        result.pop("copies", None)  # one line per copy is for --json
    if as_json:
        emit_json(result)
    else:
        emit_kv(result, "replay")

