"""``lakeline``: land files, run the pipelines, query the lake.

Exit codes: 0 success, 1 failure, 2 usage or configuration error.
"""

from __future__ import annotations

import signal
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from lakeline import __version__, log
from lakeline.cli.output import emit_json, emit_kv, emit_table, err_console, progress_enabled
from lakeline.config import Settings, load_settings, resolve_home
from lakeline.errors import ConfigError, LakelineError, UsageError

_STATE: dict[str, Any] = {}


def _settings(ctx: click.Context, **overrides: Any) -> Settings:
    root = ctx.find_root().params
    home = root.get("home")
    clean = {k: v for k, v in overrides.items() if v is not None}
    profile = ctx.params.get("profile") or root.get("profile")
    if profile:
        clean.setdefault("lake.profile", profile)
    return load_settings(home, clean)


def _lake(ctx: click.Context, **overrides: Any) -> Any:
    from lakeline.lake import Lake

    settings = _settings(ctx, **overrides)
    if settings.lake.profile == "local" and not (settings.home / "lakeline.toml").exists() \
            and not (settings.home / "zones").exists():
        raise ConfigError(
            f"{settings.home} is not a lakeline home; run `lakeline init {settings.home}` "
            "or pass --home / set LAKELINE_HOME"
        )
    return Lake.open(settings)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--home", envvar="LAKELINE_HOME", type=click.Path(file_okay=False),
              help="Lake home directory (default: $LAKELINE_HOME, else the current directory).")
@click.option("--profile", type=click.Choice(["local", "aws"]),
              help="Backend: local (embedded, default) or aws (S3, SQS, DynamoDB, SSM, SNS).")
@click.version_option(__version__, prog_name="lakeline")
def cli(home: str | None, profile: str | None) -> None:
    """lakeline — an event-driven medallion lakehouse on your laptop.

    \b
    Typical session:
      lakeline init ./lake && export LAKELINE_HOME=./lake
      lakeline gen shipments --count 100000 --out shipments.jsonl
      lakeline put shipments.jsonl --pipeline shipments
      lakeline run
      lakeline sql "SELECT dt, count(*) FROM silver.shipments GROUP BY dt ORDER BY dt"

    Settings come from HOME/lakeline.toml, overridden by LAKELINE__SECTION__KEY environment
    variables, overridden by command-line flags.
    """
    log.setup()


@cli.command()
@click.argument("directory", type=click.Path(file_okay=False), required=False)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def init(directory: str | None, as_json: bool) -> None:
    """Create a lake in DIRECTORY (default: --home): lakeline.toml and the zones."""
    from lakeline.lake import init_home

    home = resolve_home(directory or click.get_current_context().find_root().params.get("home"))
    created = init_home(home)
    load_settings(home)  # validates the (possibly pre-existing) config
    if as_json:
        emit_json({"home": str(home), "created": [str(p) for p in created]})
    else:
        click.echo(f"lake ready in {home} ({len(created)} paths created)")
        click.echo(f"next: export LAKELINE_HOME={home}  then  lakeline put FILE --pipeline shipments")


@cli.command()
@click.argument("record_type", type=click.Choice(
    ["shipments", "tracking_events", "invoice_lines", "transactions", "retail", "totesys", "carbon"]))
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
def gen(record_type: str, count: int | None, out: str | None, fmt: str, seed: int, days: int,
        dirty_rate: float, first_id: int, db: str, scale: int, mutate: bool) -> None:
    """Generate fake RECORD_TYPE data.

    shipments, tracking_events, invoice_lines: JSON with the value domains of the shipments
    seed. transactions: mortgage-transactions CSV (TransactionID, CustomerID,
    TransactionAmount, Currency, TransactionTimestamp); --dirty-rate adds defects of every
    reject reason. retail: orders (8,800), customers (500) and products (200) CSVs in the
    seed's formats (quoted fields, dd/MM/yyyy, decimal commas) into the --out directory.
    totesys: create and fill a totesys OLTP database (--db, --scale), or --mutate it.
    carbon: activity CSV of carbon.md over the packaged factor table's categories and
    activities (units spelled several known ways; --dirty-rate adds rows to reject).
    """
    if record_type == "totesys":
        _gen_totesys(db, scale, seed, mutate)
        return
    if out is None:
        raise UsageError("--out is required")
    if record_type == "retail":
        from lakeline.gen.retail import write as write_retail

        paths = write_retail(Path(out), seed=seed, orders=8800 if count is None else count)
        for source, path in paths.items():
            click.echo(f"wrote {source} to {path}", err=True)
        return
    if count is None:
        raise UsageError("--count is required")
    if record_type == "carbon":
        from lakeline.gen.carbon import write as write_carbon

        n = write_carbon(count, Path(out), seed=seed, dirty_rate=dirty_rate)
    elif record_type == "transactions":
        from lakeline.gen.transactions import write as write_csv

        n = write_csv(count, Path(out), seed=seed, dirty_rate=dirty_rate, first_id=first_id)
    else:
        from lakeline.gen.shipments import write

        n = write(record_type, count, Path(out), fmt=fmt, seed=seed, days=days)  # type: ignore[arg-type]
    click.echo(f"wrote {n} {record_type} records to {out}", err=True)


@cli.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--pipeline", required=True, help="Pipeline that will process the files (e.g. shipments).")
@click.option("--key", help="Landing key (one file only); prefixed with PIPELINE/ if it lacks it.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def put(files: tuple[str, ...], pipeline: str, key: str | None, as_json: bool) -> None:
    """Land FILES in the landing zone and emit their object-created events.

    Without --key a file lands at PIPELINE/<UTC date>/<file name>. Landing the same bytes
    under the same key again is recognised as a duplicate and loads once.
    """
    from lakeline.landing import SEEN, announce
    from lakeline.pipelines import check_pipeline

    lake = _lake(click.get_current_context())
    check_pipeline(pipeline)
    if key and len(files) > 1:
        raise UsageError("--key names one object; land several files without --key")
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    landed = []
    for f in files:
        path = Path(f)
        if pipeline == "retail":
            from lakeline.retail.job import land_retail
            from lakeline.retail.runlog import landing_key, source_of

            rk = key if key is None or key.startswith("retail/") else f"retail/{key}"
            if rk is not None:
                source_of(rk)  # validates retail/<source>/…
            landed_key = land_retail(lake, path, rk)
            final = landed_key or rk or landing_key(_retail_source(path), path.name)
            info = lake.store.head("landing", final)
            announce(lake, final, force=True)
            landed.append({"key": final, "size": info.size, "etag": info.etag, "announced": True,
                           "duplicate": landed_key is None})
            continue
        k = key or f"{pipeline}/{today}/{path.name}"
        if not k.startswith(f"{pipeline}/"):
            k = f"{pipeline}/{k}"
        info = lake.store.put_file("landing", k, path)
        duplicate = lake.state.get(SEEN, f"{k}#{info.etag}") is not None
        announced = announce(lake, k, force=True)
        landed.append({"key": k, "size": info.size, "etag": info.etag, "announced": announced,
                       "duplicate": duplicate})
    if as_json:
        emit_json({"landed": landed})
    else:
        for item in landed:
            note = " (already landed: duplicate)" if item["duplicate"] else ""
            click.echo(f"landed {item['key']} ({item['size']} bytes, etag {item['etag']}){note}")


def _gen_totesys(db: str, scale: int, seed: int, mutate: bool) -> None:
    from lakeline.gen import totesys as gen_totesys
    from lakeline.totesys.source import mask

    if mutate:
        result = gen_totesys.mutate(db, seed=seed)
        changed = ", ".join(f"{t} {n}" for t, n in result["changed"].items() if n)
        click.echo(f"mutated {mask(db)} at {result['round_start']}: {changed}", err=True)
        return
    counts = gen_totesys.create(db, scale=scale, seed=seed)
    click.echo(f"created {mask(db)}: " + ", ".join(f"{t} {n}" for t, n in counts.items()), err=True)


def _retail_source(path: Path) -> str:
    from lakeline.retail.runlog import SOURCES

    for source in SOURCES:
        if path.name.startswith(source):
            return str(source)
    raise UsageError(f"cannot tell the retail source of {path.name}; name it orders*|customers*|products*")


def _progress_tick() -> Any:
    if not progress_enabled():
        return None
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    prog = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed} chunks"),
                    TimeElapsedColumn(), console=err_console, transient=True)
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
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def run(workers: int | None, profile: str | None, as_json: bool) -> None:
    """Process everything pending until the queues are idle, then exit.

    Landing objects not yet announced are picked up first. On the local profile, work a
    killed worker left behind (in-flight messages, claims) is recovered before anything
    else. With --profile aws the same stages run from this machine against S3, SQS,
    DynamoDB and SNS (no Lambda needed): objects listed in the landing bucket and events in
    the ingest queue are ingested, chunk messages are transformed from the transform queue.
    """
    from lakeline import runner

    settings = _lake(click.get_current_context()).settings
    tick = _progress_tick()
    try:
        summary = runner.run(settings, workers=workers, on_tick=tick)
    finally:
        if "progress" in _STATE:
            _STATE.pop("progress").stop()
    _print_run(summary, as_json)


def _print_run(summary: dict[str, Any], as_json: bool) -> None:
    if as_json:
        emit_json(summary)
        return
    click.echo(
        f"ingested {summary['ingested_objects']} objects ({summary['skipped_objects']} duplicates skipped), "
        f"{summary['chunks']} chunks: {summary['loaded']} rows loaded, {summary['rejected']} rejected "
        f"in {summary['elapsed_s']} s"
    )
    quality = summary.get("quality")
    if quality:
        bad = ", ".join(f"{f['record_type']} dt={f['dt']}" for f in quality["failed"]) or "none failed"
        click.echo(f"quality: {quality['partitions']} shipments partition(s) checked against the "
                   f"expectations, {len(quality['failed'])} quarantined ({bad})")
    for b in summary.get("batch_runs", []):
        if b.get("pipeline") == "totesys":
            click.echo(f"totesys: {b['packets']} packets, {b['rows_read']} rows into the star schema "
                       f"(facts {b['facts']}, dimensions rebuilt {sorted(b['dimensions'])})")
            continue
        if b.get("pipeline") == "carbon":
            if b["status"] == "SUCCEEDED":
                click.echo(f"carbon {b['key']}: {b['records']} records in {b['batches']} batches, "
                           f"{b['calculated']} calculated into {b['table']}, {b['failed']} rejected "
                           f"(root_id {b['root_id']})")
            else:
                click.echo(f"carbon {b['key']}: workflow {b['status']}: {b.get('error')}: {b.get('cause')} "
                           f"(execution {b['execution']})")
            continue
        if "batches" in b:  # the retail job
            click.echo(f"retail job: {len(b['batches'])} orders batch(es), {b['rows']} rows appended to "
                       f"{b['table']} ({b['status']})")
            continue
        click.echo(
            f"batch run {b['run_id']} of {b['table']}: {b['input_rows']} rows, {b['valid_rows']} valid, "
            f"{b['quarantined_rows']} quarantined, {b['condemned_rows']} condemned ({b['status']})"
        )
    if summary["failures"]:
        click.echo(f"{summary['failures']} message failures (retried; see `lakeline dlq list`):", err=True)
        for e in summary["errors"][:5]:
            click.echo(f"  {e}", err=True)


@cli.command()
@click.option("--workers", type=click.IntRange(1, 64), help="Worker processes.")
def serve(workers: int | None) -> None:
    """Watch the landing zone and process continuously until Ctrl-C.

    Ctrl-C (or SIGTERM) stops taking new messages and lets in-flight work finish.
    """
    from lakeline import runner

    settings = _lake(click.get_current_context()).settings
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

    from lakeline.sql import connect, plan_query

    lake = _lake(click.get_current_context())
    con = connect(lake)
    limit_bytes = lake.settings.sql.max_bytes if max_bytes is None else max_bytes
    query, _ = plan_query(lake, con, query, max_bytes=limit_bytes or None)
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


@cli.command()
@click.argument("query")
@click.option("--json", "as_json", is_flag=True, help="Print the plans as JSON.")
def explain(query: str, as_json: bool) -> None:
    """Show what QUERY would read: per table the files and bytes planned vs the table's
    total (partition pruning evidence for Iceberg tables), then DuckDB's plan."""
    import duckdb

    from lakeline.sql import connect, plan_query

    lake = _lake(click.get_current_context())
    con = connect(lake)
    rewritten, plans = plan_query(lake, con, query)
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


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def tables(as_json: bool) -> None:
    """List the tables `lakeline sql` can query."""
    from lakeline.sql import discover, iceberg_tables

    lake = _lake(click.get_current_context())
    found = discover(lake) + iceberg_tables(lake)
    if as_json:
        emit_json([t.__dict__ for t in found])
    else:
        rows = [(t.name, t.files, t.bytes, t.location) for t in found]
        emit_table(["table", "files", "bytes", "location"], rows)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def status(as_json: bool) -> None:
    """Queue depths, in-flight and DLQ messages, and the last runs."""
    lake = _lake(click.get_current_context())
    queues = {}
    for name, q in lake.queues().items():
        c = q.counts()
        queues[name] = {"visible": c.visible, "in_flight": c.in_flight, "delayed": c.delayed}
    runs = lake.state.runs(limit=5)
    data = {"home": str(lake.settings.home), "queues": queues, "last_runs": runs}
    from lakeline import totesys
    from lakeline.carbon.job import waiting

    data["totesys_missing_packets"] = {}
    if totesys.in_use(lake.params):
        from lakeline.totesys.extract import missing_packets

        data["totesys_missing_packets"] = missing_packets(lake)
    data["carbon"] = waiting(lake)
    if as_json:
        emit_json(data)
        return
    emit_table(["queue", "visible", "in flight", "delayed"],
               [(n, v["visible"], v["in_flight"], v["delayed"]) for n, v in queues.items()], "queues")
    _runs_table(runs, "last runs")
    for table, ids in data["totesys_missing_packets"].items():
        click.echo(f"warning: totesys {table}: packet ids missing from the raw zone: {ids}")
    carbon = data["carbon"]
    if carbon["files"] or carbon["interrupted"]:
        click.echo(f"carbon: {len(carbon['files'])} file(s) waiting in landing, "
                   f"{len(carbon['interrupted'])} interrupted execution(s); "
                   "`lakeline run` starts or resumes them")


def _runs_table(runs: list[dict[str, Any]], title: str) -> None:
    emit_table(
        ["started", "pipeline", "key", "status", "records", "loaded", "rejected", "chunks"],
        [(r.get("started_at"), r.get("pipeline"), r.get("key"), r.get("status"), r.get("records"),
          r.get("loaded"), r.get("rejected"), r.get("chunks")) for r in runs],
        title,
    )


@cli.command()
@click.option("--limit", type=int, default=20, show_default=True, help="How many runs.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def runs(limit: int, as_json: bool) -> None:
    """The run log (one entry per ingested object) and the batch runs (complete or not)."""
    from lakeline.batch.runs import list_runs
    from lakeline.pipelines import BATCH_TABLES

    lake = _lake(click.get_current_context())
    entries = lake.state.runs(limit=limit)
    batch = {f"silver.{name}": [r.to_dict() for r in list_runs(lake, prefix)][-limit:]
             for name, prefix in BATCH_TABLES.items()}
    if as_json:
        emit_json(entries if not any(batch.values()) else {"objects": entries, "batch_runs": batch})
        return
    _runs_table(entries, "runs")
    for name, items in batch.items():
        if items:
            emit_table(["run_id", "status", "input", "valid", "quarantined", "condemned"], [
                (r["run_id"], r["status"], r.get("input_rows"), r.get("valid_rows"),
                 r.get("quarantined_rows"), r.get("condemned_rows")) for r in items], f"batch runs of {name}")


def _batch_table(table: str) -> str:
    from lakeline.pipelines import BATCH_TABLES

    name = table.removeprefix("silver.")
    if name not in BATCH_TABLES:
        raise UsageError(f"{table!r} is not a batch table; batch tables: "
                         + ", ".join(f"silver.{t}" for t in BATCH_TABLES))
    return BATCH_TABLES[name]


@cli.command("run-summary")
@click.option("--table", default="silver.transactions", show_default=True, help="Batch table.")
@click.option("--run-key", help="A run id (default: the latest complete run).")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def run_summary(table: str, run_key: str | None, as_json: bool) -> None:
    """The promotion gate: a run's quality figures and whether it may be promoted.

    Promotion is allowed when the quarantine rate is below 5 %, fewer than 100 rows are
    condemned and no critical error (SCHEMA_ERROR) occurred.
    """
    from lakeline.batch.gate import read_run_summary

    lake = _lake(click.get_current_context())
    summary = read_run_summary(lake, _batch_table(table), run_key)
    if as_json:
        emit_json(summary)
    else:
        emit_kv(summary, f"run summary of {table}")
    if not summary["promotion_allowed"]:
        sys.exit(1)


@cli.command()
@click.option("--table", default="silver.transactions", show_default=True, help="Batch table.")
@click.option("--run-key", help="Promote exactly this run (default: the newest complete run).")
@click.option("--force", is_flag=True, help="Promote even when the gate says no.")
@click.option("--json", "as_json", is_flag=True, help="Print the specs §1 result as JSON.")
def promote(table: str, run_key: str | None, force: bool, as_json: bool) -> None:
    """Publish a complete run to current/ and _LATEST.json (readers switch atomically).

    The gate (`lakeline run-summary`) is checked first; exit 1 when it refuses or when
    promotion reports an error status.
    """
    from lakeline.batch.gate import read_run_summary
    from lakeline.batch.promote import promote as do_promote

    lake = _lake(click.get_current_context())
    prefix = _batch_table(table)
    if not force:
        gate = read_run_summary(lake, prefix, run_key)
        if not gate["promotion_allowed"]:
            result: dict[str, Any] = {"status": "error", "code": "GATE_REFUSED", "reason": (
                f"run {gate['run_id']} fails the promotion gate: quarantine rate "
                f"{gate['quarantine_rate']:.2%}, {gate['condemned_rows']} condemned, critical errors: "
                f"{gate['has_critical_errors']} (use --force to override)"), "summary": gate}
            emit_json(result) if as_json else click.echo(f"error: {result['reason']}", err=True)
            sys.exit(1)
    event: dict[str, Any] = {"silver_bucket": lake.store.bucket("silver"), "silver_prefix": prefix,
                             "schema_version": "v1"}
    if run_key:
        event["run_key"] = run_key
    result = do_promote(lake, event)
    if as_json:
        emit_json(result)
    elif result.get("status") == "success":
        parts = result.get("partitions", [])
        files = sum(int(p.get("files_copied", 0)) for p in parts)
        note = " (already current: nothing changed)" if result.get("noop") else ""
        click.echo(f"promoted run {result['run_id']}: {len(parts)} partition(s), {files} file(s) "
                   f"copied into current/{note}")
        for p in parts:
            click.echo(f"  {p.get('current_prefix')}: {p.get('action')}")
    else:
        click.echo(f"error: {result.get('reason')}", err=True)
    if result.get("status") != "success":
        sys.exit(1)


@cli.command()
@click.option("--table", required=True, help="Iceberg table (retail_silver.orders_silver) or silver.<table>.")
@click.option("--dt", help="Parquet tables: the dt partition to compact (YYYY-MM-DD).")
@click.option("--target-mb", type=click.IntRange(min=1), default=128, show_default=True,
              help="Iceberg: target data file size.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def compact(table: str, dt: str | None, target_mb: int, as_json: bool) -> None:
    """Rewrite small files into few large ones.

    Iceberg tables: a replace snapshot (readers see the old or the new files, never both).
    Parquet tables (silver.<table> --dt D): one dt partition into one file (see README for
    the short window in which readers can see both)."""
    lake = _lake(click.get_current_context())
    if table.startswith("silver.") or dt:
        if not dt:
            raise UsageError("Parquet tables are compacted one partition at a time: pass --dt")
        from lakeline.tables.parquet_compact import compact_partition

        result = compact_partition(lake, table.removeprefix("silver."), dt)
    else:
        from lakeline.tables.maintenance import compact as compact_iceberg

        result = compact_iceberg(lake, table, target_mb * 1024 * 1024)
    emit_json(result) if as_json else emit_kv(result, f"compact {table}")


@cli.command("expire-snapshots")
@click.option("--table", required=True, help="Iceberg table.")
@click.option("--older-than", required=True, help="ISO-8601 instant; the current snapshot is always kept.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def expire_snapshots(table: str, older_than: str, as_json: bool) -> None:
    """Expire Iceberg snapshots older than the given time (time travel to them ends)."""
    from lakeline.stages.replay import parse_instant
    from lakeline.tables.maintenance import expire_snapshots as expire

    lake = _lake(click.get_current_context())
    n = expire(lake, table, parse_instant(older_than))
    emit_json({"table": table, "expired": n}) if as_json else click.echo(f"{table}: {n} snapshots expired")


@cli.command("remove-orphans")
@click.option("--table", required=True, help="Iceberg table.")
@click.option("--older-than-hours", type=click.FloatRange(min=1), default=72, show_default=True,
              help="Safety age: files younger than this are kept (a writer may be about to commit them).")
@click.option("--dry-run", is_flag=True, help="List what would be deleted.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def remove_orphans(table: str, older_than_hours: float, dry_run: bool, as_json: bool) -> None:
    """Delete files in the table's location that no snapshot references."""
    from datetime import timedelta

    from lakeline.tables.maintenance import remove_orphan_files

    lake = _lake(click.get_current_context())
    cutoff = datetime.now(UTC) - timedelta(hours=older_than_hours)
    files = remove_orphan_files(lake, table, cutoff, dry_run=dry_run)
    if as_json:
        emit_json({"table": table, "dry_run": dry_run, "files": files})
    else:
        verb = "would delete" if dry_run else "deleted"
        click.echo(f"{table}: {verb} {len(files)} orphan file(s)")


@cli.group()
def dlq() -> None:
    """Inspect and redrive dead-lettered messages."""


@dlq.command("list")
@click.option("--limit", type=int, default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def dlq_list(limit: int, as_json: bool) -> None:
    """Messages in every DLQ."""
    lake = _lake(click.get_current_context())
    out = []
    for q in (lake.ingest_queue, lake.transform_queue):
        assert q.dlq is not None
        for m in q.dlq.peek(limit):
            out.append({"queue": q.dlq.name, "message_id": m.message_id, "sent_at": m.sent_at,
                        "body": m.body[:500], "attributes": m.attributes})
    if as_json:
        emit_json(out)
    else:
        emit_table(["queue", "message id", "sent", "body"],
                   [(m["queue"], m["message_id"], m["sent_at"], m["body"][:80]) for m in out])


@dlq.command("redrive")
@click.option("--queue", "which", type=click.Choice(["ingest", "transform", "all"]), default="all",
              show_default=True, help="Which DLQ to move back.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def dlq_redrive(which: str, as_json: bool) -> None:
    """Move dead-lettered messages back to their source queue (then `lakeline run`)."""
    lake = _lake(click.get_current_context())
    moved = {}
    for q in (lake.ingest_queue, lake.transform_queue):
        if which in ("all", q.name) and q.dlq is not None:
            moved[q.name] = q.dlq.redrive()
    if as_json:
        emit_json({"redriven": moved})
    else:
        click.echo(", ".join(f"{n}: {c} redriven" for n, c in moved.items()))


@cli.command()
@click.option("--pipeline", required=True, help="Pipeline whose landed objects to replay.")
@click.option("--start", required=True, help="Window start (ISO-8601, inclusive; naive = UTC).")
@click.option("--end", required=True, help="Window end (ISO-8601, exclusive).")
@click.option("--mode", type=click.Choice(["copy", "queue"]), default="copy", show_default=True,
              help="copy: re-land copies under PIPELINE/replay/NAME/; queue: re-send chunks directly.")
@click.option("--name", help="Replay name (default: the current UTC time).")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def replay(pipeline: str, start: str, end: str, mode: str, name: str | None, as_json: bool) -> None:
    """Replay landed objects whose LastModified is in [START, END), then `lakeline run`."""
    from lakeline.stages.replay import parse_instant
    from lakeline.stages.replay import replay as do_replay

    lake = _lake(click.get_current_context())
    result = do_replay(lake, pipeline, parse_instant(start), parse_instant(end), mode=mode, name=name)
    if as_json:
        emit_json(result)
    else:
        emit_kv(result, "replay")


def _register() -> None:
    from lakeline.cli.deploy import deploy
    from lakeline.cli.dq import dq
    from lakeline.cli.lineage import lineage
    from lakeline.cli.totesys import extract, load
    from lakeline.cli.workflow import workflow

    cli.add_command(deploy)
    cli.add_command(dq)
    cli.add_command(extract)
    cli.add_command(load)
    cli.add_command(workflow)
    cli.add_command(lineage)


_register()


def main() -> None:
    """Console entry point with lakeline's exit codes."""
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(2 if isinstance(exc, click.UsageError) else exc.exit_code)
    except (UsageError, ConfigError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except LakelineError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    sys.exit(0)


if __name__ == "__main__":
    main()
