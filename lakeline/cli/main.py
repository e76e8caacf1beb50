"""``lakeline``: land files, run the pipelines, query the lake.

Exit codes: 0 success, 1 failure, 2 usage or configuration error.
"""

from __future__ import annotations

import importlib
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from lakeline import log
from lakeline.cli import context
from lakeline.cli.globals import json_requested, with_global_options
from lakeline.cli.query import explain, sql, tables
from lakeline.config import load_settings, resolve_home
from lakeline.console import emit_json, emit_table, err_console, progress_enabled
from lakeline.errors import ConfigError, LakelineError, UsageError, error_code
from lakeline.lake import Lake, init_home
from lakeline.landing import SEEN, announce
from lakeline.version import __version__

if TYPE_CHECKING:
    from lakeline.pipelines.registry import Registry

#: The pipelines (and the workflow engine, quality rules, … they import) load when a command
#: needs them, imported in that command: `lakeline sql "SELECT 1"` never loads them.

_STATE: dict[str, Any] = {}


def _lake(ctx: click.Context | None = None, **overrides: Any) -> Lake:
    return context.open_lake(ctx, **overrides)


#: commands whose modules load only when the command runs (or --help lists them): the
#: deployment generators, the workflow engine, … are not paid for by `lakeline sql "select 1"`
LAZY = {
    "catalog": "lakeline.cli.catalog:catalog", "compact": "lakeline.cli.maintenance:compact",
    "deploy": "lakeline.cli.deploy:deploy", "dq": "lakeline.cli.dq:dq",
    "expire-snapshots": "lakeline.cli.maintenance:expire_snapshots",
    "lineage": "lakeline.cli.lineage:lineage", "load": "lakeline.cli.load:load",
    "models": "lakeline.cli.models:models",
    "pipeline": "lakeline.cli.pipeline:pipeline_group", "promote": "lakeline.cli.promote:promote",
    "remove-orphans": "lakeline.cli.maintenance:remove_orphans", "replay": "lakeline.cli.maintenance:replay",
    "run-summary": "lakeline.cli.promote:run_summary", "ui": "lakeline.cli.ui:ui",
    "workflow": "lakeline.cli.workflow:workflow",
}


def lazy_command(name: str) -> click.Command:
    """The command ``name`` of :data:`LAZY`, imported now."""
    module, _, attr = LAZY[name].partition(":")
    command: click.Command = getattr(importlib.import_module(module), attr)
    return command


class LakelineGroup(click.Group):
    """The root command: lakeline's commands (those of :data:`LAZY` imported when used), then
    those pipelines add (``Pipeline.commands``, e.g. ``extract`` of totesys), found in the
    registry of the lake named by ``--home``."""

    def _pipeline_commands(self, ctx: click.Context) -> dict[str, click.Command]:
        from lakeline.pipelines.registry import registry  # loads the pipelines (see above)

        try:
            reg = registry(load_settings(ctx.params.get("home")))
        except LakelineError:  # a broken lake still lists lakeline's own commands
            return {}
        return {c.name: c for p in reg for c in p.commands() if c.name}

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        found = super().get_command(ctx, cmd_name)
        if found is None and cmd_name in LAZY:
            found = lazy_command(cmd_name)
        if found is None:
            found = self._pipeline_commands(ctx).get(cmd_name)
        return None if found is None else with_global_options(found)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *LAZY, *self._pipeline_commands(ctx)})


@click.group(cls=LakelineGroup,
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--home", envvar="LAKELINE_HOME", type=click.Path(file_okay=False),
              help="Lake home directory (default: $LAKELINE_HOME, else the current directory).")
@click.option("--profile", type=click.Choice(["local", "aws"]),
              help="Backend: local (embedded, default) or aws (S3, SQS, DynamoDB, SSM, SNS).")
@click.option("--json", "json_output", is_flag=True,
              help="JSON on stdout, failures included ({\"status\": \"error\", \"code\", \"reason\"}).")
@click.version_option(__version__, prog_name="lakeline")
@click.pass_context
def cli(ctx: click.Context, home: str | None, profile: str | None, json_output: bool) -> None:
    """lakeline — an event-driven medallion lakehouse on your laptop.

    \b
    Typical session:
      lakeline init ./lake && export LAKELINE_HOME=./lake
      lakeline gen shipments --count 100000 --out shipments.jsonl
      lakeline put shipments.jsonl --pipeline shipments
      lakeline run
      lakeline sql "SELECT dt, count(*) FROM silver.shipments GROUP BY dt ORDER BY dt"

    Settings come from HOME/lakeline.toml, overridden by LAKELINE__SECTION__KEY environment
    variables, overridden by command-line flags. --home, --profile and --json go before or
    after the command (`lakeline sql "…" --home ./lake --json`).
    """
    log.setup()
    ctx.obj = lambda: _lake(ctx)  # how pipelines' own commands open the lake


@cli.command()
@click.argument("directory", type=click.Path(file_okay=False), required=False)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def init(directory: str | None, as_json: bool) -> None:
    """Create a lake in DIRECTORY (default: --home): lakeline.toml and the zones."""
    home = resolve_home(directory or click.get_current_context().find_root().params.get("home"))
    created = init_home(home)
    load_settings(home)  # validates the (possibly pre-existing) config
    if as_json:
        emit_json({"home": str(home), "created": [str(p) for p in created]})
    else:
        click.echo(f"lake ready in {home} ({len(created)} paths created)")
        click.echo(f"next: export LAKELINE_HOME={home}  then  lakeline put FILE --pipeline shipments")


def _generators(reg: Registry) -> dict[str, Any]:
    return {t: g for p in reg if (g := p.generator()) is not None for t in g.targets}


@cli.command()
@click.argument("target")
@click.option("--count", type=click.IntRange(min=0),
              help="Records to generate (retail: orders; default 8800).")
@click.option("--out", type=click.Path(), help="Output file (retail: a directory; not for totesys).")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "json"]), default="jsonl",
              show_default=True, help="JSON lines or one JSON array (shipments types).")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed (same seed, same bytes).")
@click.option("--days", type=click.IntRange(min=1), default=7, show_default=True,
              help="Spread event_time over this many days (shipments types).")
@click.option("--dirty-rate", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="transactions: fraction of rows with exactly one defect; carbon: of rows "
                   "without a factor or with irreconcilable units.")
@click.option("--first-id", type=click.IntRange(min=1), default=1, show_default=True,
              help="transactions: first TransactionID number (give each batch its own range).")
@click.option("--db", default="totesys.db", show_default=True,
              help="totesys: the database (a SQLite file or postgresql://…).")
@click.option("--scale", type=click.IntRange(min=1), default=1000, show_default=True,
              help="totesys: number of sales orders (other tables scale with it).")
@click.option("--mutate", is_flag=True, help="totesys: apply one round of inserts and updates instead.")
def gen(target: str, count: int | None, out: str | None, fmt: str, seed: int, days: int,
        dirty_rate: float, first_id: int, db: str, scale: int, mutate: bool) -> None:
    """Generate fake TARGET data with a pipeline's generator.

    \b
    Targets (each pipeline's generator):
      shipments, tracking_events, invoice_lines  JSON with the value domains of seed 002
      transactions   mortgage-transactions CSV; --dirty-rate adds defects of every reject reason
      retail         orders, customers and products CSVs into the --out directory
      totesys        create and fill a totesys OLTP database (--db, --scale), or --mutate it
      carbon         activity CSV of carbon.md (--dirty-rate adds rows to reject)
    `lakeline pipeline show NAME` names a pipeline's targets.
    """
    from lakeline.pipelines.base import GenOptions  # loads the pipelines (see above)
    from lakeline.pipelines.registry import registry

    generators = _generators(registry(context.settings()))
    if target not in generators:
        raise UsageError(f"no generator for {target!r}; targets: {', '.join(sorted(generators))}")
    options = GenOptions(out=Path(out) if out else None, count=count, seed=seed, fmt=fmt, days=days,
                         dirty_rate=dirty_rate, first_id=first_id, db=db, scale=scale, mutate=mutate)
    click.echo(generators[target].generate(target, options), err=True)


@cli.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--pipeline", required=True, help="Pipeline that will process the files (e.g. shipments).")
@click.option("--key", help="Landing key (one file only); prefixed with PIPELINE/ if it lacks it.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def put(files: tuple[str, ...], pipeline: str, key: str | None, as_json: bool) -> None:
    """Land FILES in the landing zone and emit their object-created events.

    Without --key a file lands at PIPELINE/<UTC date>/<file name> (a pipeline may choose its
    own layout: retail lands at retail/<source>/ingest_date=<date>/<file>). Landing the same
    bytes under the same key again is recognised as a duplicate and loads once.
    """
    lake = _lake()
    target = context.pipelines(lake).get(pipeline)
    if target.landing_prefix is None:
        raise UsageError(f"pipeline {pipeline!r} takes no landed files")
    if key and len(files) > 1:
        raise UsageError("--key names one object; land several files without --key")
    landed = []
    for f in files:
        result = target.land(lake, Path(f), key)
        if result["duplicate"] is None:  # the same bytes under the same key were announced before
            result["duplicate"] = lake.state.get(SEEN, f"{result['key']}#{result['etag']}") is not None
        result["announced"] = announce(lake, result["key"], force=True)
        landed.append(result)
    if as_json:
        emit_json({"landed": landed})
    else:
        for item in landed:
            note = " (already landed: duplicate)" if item["duplicate"] else ""
            click.echo(f"landed {item['key']} ({item['size']} bytes, etag {item['etag']}){note}")


def _table_specs(lake: Lake) -> list[Any]:
    return [t for _, t in context.pipelines(lake).tables()]


def _progress_tick() -> Any:
    if not progress_enabled():
        return None
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    prog = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed} chunks"),
                    TimeElapsedColumn(), console=err_console(), transient=True)
    prog.start()
    task = prog.add_task("processing", total=None)
    _STATE["progress"] = prog

    def tick(lake: Any) -> None:
        t = lake.transform_queue.counts()
        i = lake.ingest_queue.counts()
        prog.update(task, description=f"ingest queue {i.total} · transform queue {t.total}")

    return tick


@cli.command()
@click.option("--workers", type=click.IntRange(1, 64), help="Worker processes (default: runner.workers).")
@click.option("--profile", type=click.Choice(["local", "aws"]),
              help="Run against this backend (aws: drive the stages on AWS from this machine).")
@click.option("--fail-on-rejects", "max_reject_rate", type=click.FloatRange(0, 1), metavar="RATE",
              help="Also fail (exit 1) when the share of rejected records is above RATE (0.01 = 1%).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def run(workers: int | None, profile: str | None, max_reject_rate: float | None, as_json: bool) -> None:
    """Process everything pending until the queues are idle, then exit.

    Landing objects not yet announced are picked up first. On the local profile, work a
    killed worker left behind (in-flight messages, claims) is recovered before anything
    else. With --profile aws the same stages run from this machine against S3, SQS,
    DynamoDB and SNS (no Lambda needed): objects listed in the landing bucket and events in
    the ingest queue are ingested, chunk messages are transformed from the transform queue.

    Exit 1 when anything failed during the run: a message failed or reached a DLQ, a
    pipeline's job or workflow failed, a quality check quarantined partitions, a model failed
    (or, with --fail-on-rejects, too many records were rejected); the summary names each
    failure and the command that shows more.
    """
    from lakeline import runner  # heavy: the stages load DuckDB and Arrow
    from lakeline.status import run_failures, verdict  # loads the pipelines (see above)

    settings = _lake().settings
    tick = _progress_tick()
    try:
        summary = runner.run(settings, workers=workers, on_tick=tick)
    finally:
        if "progress" in _STATE:
            _STATE.pop("progress").stop()
    failed = run_failures(summary, max_reject_rate)
    summary.update(verdict(failed))
    _print_run(summary, as_json)
    if failed:
        sys.exit(1)


def _print_run(summary: dict[str, Any], as_json: bool) -> None:
    if as_json:
        emit_json(summary)
        return
    dedup = f", {summary['deduplicated']} deduplicated" if summary.get("deduplicated") else ""
    click.echo(
        f"ingested {summary['ingested_objects']} objects ({summary['skipped_objects']} duplicates skipped), "
        f"{summary['chunks']} chunks: {summary['loaded']} rows loaded, {summary['rejected']} rejected{dedup} "
        f"in {summary['elapsed_s']} s"
    )
    for report in [*summary.get("quality", []), *summary.get("batch_runs", []), *summary.get("models", [])]:
        click.echo(report["summary"])
    for f in summary.get("failed", []):
        click.echo(f"FAILED {f['what']}: {f['error']} (see `{f['command']}`)", err=True)
    for e in summary["errors"][:5] if summary["failures"] else []:
        click.echo(f"  {e}", err=True)


@cli.command()
@click.option("--workers", type=click.IntRange(1, 64), help="Worker processes.")
def serve(workers: int | None) -> None:
    """Watch the landing zone and process continuously until Ctrl-C.

    Ctrl-C (or SIGTERM) stops taking new messages and lets in-flight work finish.
    """
    from lakeline import runner  # heavy: the stages load DuckDB and Arrow


    settings = _lake().settings
    stop = threading.Event()

    def _stop(signum: int, frame: Any) -> None:
        click.echo("stopping: finishing in-flight work…", err=True)
        stop.set()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    click.echo(f"serving {settings.home} (Ctrl-C to stop)", err=True)
    n = workers or settings.runner.workers
    summary = runner.run(settings, workers=n, forever=True, stop_flag=stop.is_set,
                         on_tick=(lambda lake: None) if n > 1 else None)
    _print_run(summary, False)



@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def status(as_json: bool) -> None:
    """Queue depths, in-flight and DLQ messages, the last runs and what pipelines wait on."""
    from lakeline.status import lake_status  # loads the pipelines (see above)

    lake = _lake()
    data = lake_status(lake, context.pipelines(lake))
    failures, queues, runs, pipes = data["failures"], data["queues"], data["last_runs"], data["pipelines"]
    if as_json:
        emit_json(data)
        return
    if failures:
        emit_table(["pipeline", "what", "error", "next"],
                   [(f["pipeline"], f["what"], f["error"], f["command"]) for f in failures],
                   "needs attention")
    emit_table(["queue", "visible", "in flight", "delayed"],
               [(n, v["visible"], v["in_flight"], v["delayed"]) for n, v in queues.items()], "queues")
    _runs_table(runs, "last runs")
    for found in pipes.values():
        for note in found.get("notes", []):
            click.echo(note)


def _runs_table(runs: list[dict[str, Any]], title: str) -> None:
    emit_table(
        ["started", "pipeline", "kind", "run", "key", "status", "records", "loaded", "rejected", "error"],
        [(r["started_at"], r["pipeline"], r["kind"], r["run_id"], r["key"], r["status"], r["records"],
          r["loaded"], r["rejected"], r["error"]) for r in runs],
        title,
    )


@cli.command()
@click.option("--pipeline", "only", help="Only this pipeline's runs (with its own fields).")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True, help="How many runs.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON: {\"runs\": [entries]}.")
def runs(only: str | None, limit: int, as_json: bool) -> None:
    """Runs of every pipeline, newest first, in one shape: objects ingested by streaming
    pipelines, each job pipeline's units of work (retail batches, carbon files, totesys
    extractions), and the batch runs of promoted tables.

    \b
    Each entry: pipeline, kind (object | job | batch), run_id, status, started_at,
    finished_at, key, records, loaded, rejected, error, and detail (the pipeline's own
    fields: retail's run-log item pk, sk, run_id, dedupe).
    """
    from lakeline.status import run_entries  # loads the pipelines (see above)

    lake = _lake()
    reg = context.pipelines(lake)
    if only is not None:
        reg.get(only)  # an unknown pipeline is a usage error naming the pipelines
    entries = [e.to_dict() for e in run_entries(lake, reg, limit, only)]
    if as_json:
        emit_json({"runs": entries})
        return
    _runs_table(entries, f"runs of {only}" if only else "runs")
    if only is not None and any(e["detail"] for e in entries):
        keys = sorted({k for e in entries for k in e["detail"]})
        emit_table(["run", *keys], [(e["run_id"], *(e["detail"].get(k) for k in keys)) for e in entries],
                   f"{only}: run-log items")


@cli.group()
def dlq() -> None:
    """Inspect and redrive dead-lettered messages."""


@dlq.command("list")
@click.option("--limit", type=int, default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def dlq_list(limit: int, as_json: bool) -> None:
    """Messages in every DLQ."""
    from lakeline.status import dlq_messages  # loads the pipelines (see above)

    out = dlq_messages(_lake(), limit)
    why = [m.pop("why") for m in out]  # the table's column (not in the JSON)
    if as_json:
        emit_json(out)
    else:
        emit_table(["queue", "message id", "sent", "why", "body"],
                   [(m["queue"], m["message_id"], m["sent_at"], w, m["body"][:80])
                    for m, w in zip(out, why, strict=True)])


@dlq.command("redrive")
@click.option("--queue", "which", type=click.Choice(["ingest", "transform", "all"]), default="all",
              show_default=True, help="Which DLQ to move back.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def dlq_redrive(which: str, as_json: bool) -> None:
    """Move dead-lettered messages back to their source queue (then `lakeline run`)."""
    from lakeline.status import dlq_redrive  # loads the pipelines (see above)

    moved = dlq_redrive(_lake(), which)
    if as_json:
        emit_json({"redriven": moved})
    else:
        click.echo(", ".join(f"{n}: {c} redriven" for n, c in moved.items()))



for _group in (sql, explain, tables):
    cli.add_command(_group)
for _command in list(cli.commands.values()):
    with_global_options(_command)


def main(argv: list[str] | None = None) -> None:
    """Console entry point with lakeline's exit codes; under ``--json`` a failure is
    ``{"status": "error", "code", "reason"}`` on stdout (as well as the message on stderr)."""
    args = sys.argv[1:] if argv is None else argv
    as_json = json_requested(args)
    try:
        cli.main(args=args, prog_name="lakeline", standalone_mode=False)
    except click.exceptions.Abort:
        _fail("aborted", "ABORTED", 1, as_json)
    except click.ClickException as exc:
        if not as_json:
            exc.show()
        code = 2 if isinstance(exc, click.UsageError) else exc.exit_code
        _fail(exc.format_message(), "USAGE_ERROR", code, as_json, shown=not as_json)
    except (UsageError, ConfigError) as exc:
        _fail(str(exc), error_code(exc), 2, as_json)
    except LakelineError as exc:
        _fail(str(exc), error_code(exc), 1, as_json)
    except KeyboardInterrupt:
        sys.exit(130)
    sys.exit(0)


def _fail(reason: str, code: str, exit_code: int, as_json: bool, *, shown: bool = False) -> None:
    if as_json:
        emit_json({"status": "error", "code": code, "reason": reason})
    if not shown:
        click.echo(f"error: {reason}", err=True)
    sys.exit(exit_code)


if __name__ == "__main__":
    main()
