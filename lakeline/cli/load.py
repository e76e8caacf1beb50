"""``lakeline load FILE… --pipeline P``: ``put`` and ``run`` in one command, durable at each step.

The files are landed first, exactly as ``lakeline put`` lands them (each landing copy is
synced and its event sent before anything reads it); then everything pending is processed,
exactly as ``lakeline run`` does, with the same summary and exit codes. A crash between the two
leaves the files landed and announced: the next ``run`` (or ``load`` again, which finds the
same bytes already landed) loads them exactly once.

What one command saves over two: one interpreter start; the run's start — importing DuckDB
and Arrow, the stages and the pipelines — happens while the landing copy is being written and
synced (a disk wait), instead of after it. (As with ``put``, a streaming pipeline's JSON-lines
file is cut into chunks from the local file while it lands, so ingest does not read the landed
copy again: :meth:`~lakeline.pipelines.stream.StreamPipeline.land`.)

Without FILE, ``lakeline load [--target …]`` is the totesys pipeline's warehouse load.
"""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import click

from lakeline.cli import context
from lakeline.console import emit_json
from lakeline.errors import UsageError
from lakeline.faults import crash_point
from lakeline.lake import Lake
from lakeline.landing import SEEN, announce
from lakeline.pipelines.base import Pipeline
from lakeline.status import run_failures, verdict

#: the crash point between the landing (durable, announced) and the run
AFTER_PUT = "load.after_put"


@click.command()
@click.argument("files", nargs=-1, type=click.Path(exists=True, dir_okay=False))
@click.option("--pipeline", help="Pipeline that processes the files (e.g. shipments).")
@click.option("--key", help="Landing key (one file only); prefixed with PIPELINE/ if it lacks it.")
@click.option("--workers", type=click.IntRange(1, 64), help="Worker processes (default: runner.workers).")
@click.option("--fail-on-rejects", "max_reject_rate", type=click.FloatRange(0, 1), metavar="RATE",
              help="Also fail (exit 1) when the share of rejected records is above RATE (0.01 = 1%).")
@click.option("--target", help="Without FILE only: the totesys warehouse load's target (duckdb, "
                               "or a PostgreSQL URL or libpq keyword string).")
@click.option("--json", "as_json", is_flag=True, help="Print the landed files and the run summary as JSON.")
@click.pass_context
def load(ctx: click.Context, files: tuple[str, ...], pipeline: str | None, key: str | None,
         workers: int | None, max_reject_rate: float | None, target: str | None, as_json: bool) -> None:
    """Land FILES for PIPELINE and process them: `put` + `run` in one command.

    \b
      lakeline load shipments.jsonl --pipeline shipments
      lakeline load orders-*.csv --pipeline orders --fail-on-rejects 0.01 --json

    Each file is landed as `lakeline put` lands it (durable, announced) before the run starts;
    then everything pending is processed as `lakeline run` does (same summary, same exit
    codes: 1 when anything failed). If the command dies between the two, the files stay landed
    and the next `lakeline run` loads them exactly once. Landing the same bytes again is a
    duplicate and loads once.

    Without FILE, `lakeline load [--target duckdb|postgresql://…]` is the totesys pipeline's
    warehouse load (see `lakeline pipeline show totesys`).
    """
    if not files:
        _warehouse_load(ctx, pipeline, key, workers, max_reject_rate, target, as_json)
        return
    if target is not None:
        raise UsageError("--target belongs to the warehouse load (`lakeline load --target …`, "
                         "without FILE); `lakeline load FILE` takes --pipeline")
    if not pipeline:
        raise UsageError("lakeline load FILE… needs --pipeline (e.g. --pipeline shipments)")
    if key and len(files) > 1:
        raise UsageError("--key names one object; land several files without --key")
    lake = context.open_lake(ctx)
    chosen = context.pipelines(lake).get(pipeline)
    if chosen.landing_prefix is None:
        raise UsageError(f"pipeline {pipeline!r} takes no landed files")
    with ThreadPoolExecutor(1, thread_name_prefix="lakeline-land") as pool:
        landing = pool.submit(land_files, lake, chosen, [Path(f) for f in files], key)
        from lakeline import runner  # heavy: DuckDB and Arrow load while the copy is written and synced

        landed = landing.result()
    crash_point(AFTER_PUT)
    if not as_json:
        for item in landed:
            note = " (already landed: duplicate)" if item["duplicate"] else ""
            click.echo(f"landed {item['key']} ({item['size']} bytes, etag {item['etag']}){note}")
    from lakeline.cli.main import _STATE, _print_run, _progress_tick  # the `run` command's output

    tick = _progress_tick()
    try:
        summary = runner.run(lake.settings, workers=workers, on_tick=tick)
    finally:
        if "progress" in _STATE:
            _STATE.pop("progress").stop()
    failed = run_failures(summary, max_reject_rate)
    summary.update(verdict(failed))
    if as_json:
        emit_json({"landed": landed, **summary})
    else:
        _print_run(summary, False)
    if failed:
        sys.exit(1)


def land_files(lake: Lake, pipeline: Pipeline, files: list[Path], key: str | None) -> list[dict[str, Any]]:
    """Land and announce each file as ``lakeline put`` does: ``[{key, size, etag, duplicate,
    announced}]``."""
    landed = []
    for f in files:
        result = pipeline.land(lake, f, key)
        if result["duplicate"] is None:  # the same bytes under the same key were announced before
            result["duplicate"] = lake.state.get(SEEN, f"{result['key']}#{result['etag']}") is not None
        result["announced"] = announce(lake, result["key"], force=True)
        landed.append(result)
    return landed


def _warehouse_load(ctx: click.Context, pipeline: str | None, key: str | None, workers: int | None,
                    max_reject_rate: float | None, target: str | None, as_json: bool) -> None:
    """``lakeline load`` without FILE: the ``load`` command a pipeline adds (totesys's
    warehouse load), given ``--target`` and ``--json``."""
    given = [name for name, value in (("--pipeline", pipeline), ("--key", key), ("--workers", workers),
                                      ("--fail-on-rejects", max_reject_rate)) if value is not None]
    if given:
        raise UsageError(f"{', '.join(given)} need FILE: `lakeline load FILE --pipeline P` lands and "
                         "processes files")
    from lakeline.pipelines.registry import registry

    found = [c for p in registry(context.settings(ctx)) for c in p.commands() if c.name == "load"]
    if not found:
        raise UsageError("lakeline load needs FILE and --pipeline (e.g. `lakeline load "
                         "shipments.jsonl --pipeline shipments`)")
    ctx.invoke(found[0], target=target or "duckdb", as_json=as_json)
