"""The steps of the ``carbon`` workflow (CarbonLake, seed 003) and the driver that runs it.

``carbon.asl.json`` (beside this module) chains the steps below, each a Lambda-style task the
pipeline provides (``lakeline-carbon-<step>``, :meth:`CarbonPipeline.tasks`), so the same definition deploys
to Step Functions::

    Kickoff ──► DataQuality ──► Passed? ──no──► DataQualityFailed (Fail)
                                   │ yes
                                   ▼
                                 Split ──► CalculateBatches (Map, MaxConcurrency) ──► Publish ──► Done

* kickoff: ``root_id`` (new unless given), lineage ``RAW_DATA_INPUT`` for the landed file;
* data_quality: profile + carbon rules (:mod:`lakeline.dq`), lineage ``PROFILE_COMPLETE``, then
  the file gate moves the object landing → raw (``DQ_CHECK_PASS``) or → error with the
  notification "Data Quality check failed" (``DQ_CHECK_FAIL``), keeping the full key. Gzip
  (``.gz`` or the gzip magic bytes) is decompressed first (here and in split), so it loads like
  its plain twin; a file that is not readable text (truncated gzip, UTF-16, binary) fails the
  rule "readable CSV" with the reason (:mod:`lakeline.stages.textinput`) and is gated to error
  like any failing file — the failed report names the reason;
* split: batches of ``carbon.batch_size`` records as Parquet under
  ``silver/transformed/<root_id>/part_<n>.parquet``, one ``GLUE_BATCH_SPLIT`` node each; the Map
  state passes each batch only ``{storage_location, data_lineage: {root_id, parent_id}}``;
* calculate_batch: :func:`lakeline.pipelines.carbon.calculator.calculate`; results staged as Parquet in
  ``tmp/carbon/staged/<root_id>/``, rejects in ``error/rejects/carbon/<root_id>/``, one
  ``CALCULATION_COMPLETE`` / ``CALCULATION_FAILED`` node per record (node id =
  ``activity_event_id``, bulk path), results in the state store table ``carbon_results``;
* publish: merges the staged results into ``gold.emissions`` keyed by ``activity_event_id``
  (16 shards by the first hex digit of its MD5; each shard file is replaced atomically, so a
  repeated id overwrites and never duplicates), then removes the staged files.

Every step is idempotent, so a retried task or a resumed execution does not duplicate.

No file is stranded: every execution is logged (``carbon_runs``, :func:`run_log`), and the
latest execution of each landed key is tracked (``carbon_open``) until it succeeds or its file
is gated to error. An execution that failed otherwise (a bad factor table, a crash inside the
Map) comes back as a failed report naming the file and ``lakeline workflow redrive
<execution>``, is notified, and is listed by :func:`failures` until a redrive (which reruns
only the failed state and the Map iterations that did not succeed) or a new landing of the same
key finishes it.
"""

from __future__ import annotations

import copy
import hashlib
import os
import shutil
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from lakeline import log
from lakeline.dq.engine import evaluate_path, unreadable_result
from lakeline.dq.gate import file_gate, result_keys
from lakeline.dq.rules import Ruleset, parse_rule, ruleset_for
from lakeline.duck import duckdb_connection
from lakeline.errors import DataError, NotFoundError, UsageError
from lakeline.faults import crash_point
from lakeline.lake import Lake
from lakeline.lineage.hooks import location, maybe_export
from lakeline.pipelines.carbon.calculator import INPUT_COLUMNS, calculate, register
from lakeline.pipelines.carbon.factors import load_factors
from lakeline.pipelines.carbon.rules import RULES
from lakeline.pipelines.carbon.settings import carbon_settings
from lakeline.ports.lineage_model import new_id
from lakeline.sqltext import lit
from lakeline.stages.textinput import text_path
from lakeline.workflow.engine import (
    ACCOUNT,
    EXECUTIONS_TABLE,
    REDRIVABLE,
    REGION,
    STATE_MACHINE_NAME,
    TaskRegistry,
    load_execution,
    resume_execution,
    run_definition,
)

PIPELINE = "carbon"
WORKFLOW = "carbon"
RESULTS_TABLE = "carbon_results"
JOBS_TABLE = "carbon_jobs"
#: every execution, keyed ``<started_at>#<execution name>`` (newest last): ``lakeline runs``
RUNS_TABLE = "carbon_runs"
#: the latest execution of each landed key until it succeeds or its file is gated to error
OPEN_TABLE = "carbon_open"
#: the Fail state of a file that failed its quality rules (already gated and notified)
DQ_FAILED = "DataQualityCheckFailed"
NOTIFY_SUBJECT = "carbon workflow failed"
GOLD_TABLE = "emissions"
TRANSFORMED = "transformed"
STAGED = "carbon/staged"
REJECTS = "rejects/carbon"
SHARDS = "0123456789abcdef"
#: DuckDB memory bound of the whole-file steps (profile, publish); beyond it they spill.
MEMORY_LIMIT = "512MB"
#: DuckDB memory bound of each Map iteration's connection (a batch is at most a few hundred MB
#: at the largest batch_size; beyond it DuckDB fails the iteration rather than the machine).
CALC_MEMORY_LIMIT = "256MB"

_log = log.get("carbon")


@contextmanager
def _work(lake: Lake, name: str) -> Iterator[Path]:
    d = lake.work_dir / f"carbon-{name}-{time.monotonic_ns()}"
    d.mkdir(parents=True)
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def _readable(lake: Lake, zone: str, key: str, work: Path) -> Path:
    """A local path of an object (the object itself locally, a downloaded copy on S3)."""
    path = lake.store.local_path(zone, key)
    if path is not None:
        return path
    local = work / Path(key).name
    local.write_bytes(lake.store.get(zone, key))
    return local


def _factors(lake: Lake) -> Any:

    chosen = carbon_settings(lake.settings).factors
    if chosen and not Path(chosen).is_absolute():
        chosen = str(lake.settings.home / chosen)
    return load_factors(chosen or None)


# ------------------------------------------------------------------ steps


def kickoff(lake: Lake, payload: dict[str, Any]) -> dict[str, Any]:
    """Start a run for a landed file: ``{key, root_id?}`` → the job document."""

    key = str(payload.get("key") or "")
    if not key:
        raise UsageError("the carbon workflow needs {\"key\": <landing key>} as input")
    info = lake.store.head("landing", key)
    root_id = str(payload.get("root_id") or new_id())
    node = lake.lineage.record(root_id, root_id, "RAW_DATA_INPUT", location(lake, "landing", key),
                               attrs={"etag": info.etag, "size": info.size})
    return {"root_id": root_id, "key": key, "etag": info.etag, "parent_id": node.node_id,
            "started_at": datetime.now(UTC).isoformat()}


def data_quality(lake: Lake, job: dict[str, Any]) -> dict[str, Any]:
    """Profile and check the landed CSV, then gate it (landing → raw or → error)."""

    root_id, key = job["root_id"], job["key"]
    configured = ruleset_for(lake.settings, PIPELINE, defaults={"": RULES})
    # whatever the configured rules, the calculator needs its input columns
    ruleset = Ruleset(configured.name, (parse_rule({"kind": "columns", "columns": list(INPUT_COLUMNS)}),
                                        *configured.rules))
    with _work(lake, "dq") as work:
        if not lake.store.exists("landing", key):
            raise NotFoundError(f"landing/{key} is gone: it was gated before "
                                f"(see `lakeline lineage show {root_id}`)")
        path = _readable(lake, "landing", key, work)
        try:
            path = text_path(path, key, work)  # gzip decompressed; UnreadableInput: not text
            result = evaluate_path(str(path), ruleset, fmt="csv", profile=True, run_id=root_id,
                                   threads=lake.settings.runner.duckdb_threads, memory_limit=MEMORY_LIMIT,
                                   spill_dir=work / "spill")
        except DataError as exc:  # not a readable CSV at all: a failed check, gated like any other
            result = unreadable_result(ruleset, "", root_id, "csv", str(exc))
    result.source = location(lake, "landing", key)
    profile = lake.lineage.record(
        root_id, job["parent_id"], "PROFILE_COMPLETE", location(lake, "landing", key),
        attrs={"rows": result.statistics.get("rows"), "success": result.success})
    outcome = file_gate(lake, key, result)
    gate = lake.lineage.record(
        root_id, profile.node_id, outcome.action, location(lake, outcome.dest_zone, outcome.dest_key),
        attrs={"result_key": outcome.result_key})
    return {**job, "parent_id": gate.node_id, "dq": {
        "passed": outcome.passed, "action": outcome.action, "result_key": outcome.result_key,
        "zone": outcome.dest_zone, "key": outcome.dest_key, "rows": result.statistics.get("rows"),
        "failed_rules": [r.get("expectation_type") for r in result.results if not r.get("success")],
    }}


def split(lake: Lake, job: dict[str, Any]) -> dict[str, Any]:
    """Split the gated raw CSV into Parquet batches of ``carbon.batch_size`` records.

    The CSV is streamed (pyarrow, every input column as text, empty = null): memory holds one
    read block plus one batch, whatever the file's size. ``_line_no`` is the record's line
    (header = line 1)."""
    import numpy as np
    import pyarrow.csv as pacsv


    root_id, raw_key = job["root_id"], job["dq"]["key"]
    size = int(job.get("batch_size") or carbon_settings(lake.settings).batch_size)
    prefix = f"{TRANSFORMED}/{root_id}/"
    for old in list(lake.store.list("silver", prefix)):  # a retried split starts clean
        lake.store.delete("silver", old.key)
    batches: list[dict[str, Any]] = []
    ids: list[str] = []
    records = 0
    with _work(lake, "split") as work:
        reader = pacsv.open_csv(
            text_path(_readable(lake, "raw", raw_key, work), raw_key, work),
            read_options=pacsv.ReadOptions(block_size=8 << 20),
            convert_options=pacsv.ConvertOptions(
                column_types={c: pa.string() for c in INPUT_COLUMNS}, include_columns=list(INPUT_COLUMNS),
                strings_can_be_null=True, quoted_strings_can_be_null=False,
                null_values=[""]))  # only empty: pyarrow's defaults would turn "NaN", "NA" into null
        pending: list[pa.RecordBatch] = []
        held = 0

        def emit(table: pa.Table) -> None:
            n = len(batches)
            key = f"{prefix}part_{n}.parquet"
            out = work / f"part_{n}.parquet"
            pq.write_table(table, out, compression="zstd")
            lake.store.put_file("silver", key, out, move=True)
            node_id = new_id()
            ids.append(node_id)
            batches.append({"storage_location": key,
                            "data_lineage": {"root_id": root_id, "parent_id": node_id}})

        for block in reader:
            rows = block.num_rows
            block = block.append_column("_line_no", pa.array(np.arange(records + 2, records + 2 + rows)))
            block = block.append_column("_source_key", pa.array([raw_key] * rows, pa.string()))
            records += rows
            pending.append(block)
            held += rows
            while held >= size:
                table = pa.Table.from_batches(pending)
                emit(table.slice(0, size))
                rest = table.slice(size).combine_chunks()
                pending, held = rest.to_batches(), rest.num_rows
        if held:
            emit(pa.Table.from_batches(pending))
    if batches:
        lake.lineage.record_many(root_id, "GLUE_BATCH_SPLIT", pa.table({
            "node_id": ids,
            "parent_id": [job["parent_id"]] * len(ids),
            "storage_location": [location(lake, "silver", b["storage_location"]) for b in batches],
        }))
    return {**job, "records": records, "batch_size": size, "batch_count": len(batches), "batches": batches}


_threads = threading.local()


def _calculator_connection(lake: Lake, factors: Any) -> Any:
    """This thread's DuckDB connection with ``factors`` loaded (Map iterations run on a pool
    of threads; a connection per thread avoids rebuilding it for every batch)."""

    cached = getattr(_threads, "calculator", None)
    if cached is not None and cached[0] == factors.sha256:
        return cached[1]
    if cached is not None:
        cached[1].close()
    con = duckdb_connection(1, memory_limit=CALC_MEMORY_LIMIT)
    register(con, factors)
    _threads.calculator = (factors.sha256, con)
    return con


def calculate_batch(lake: Lake, payload: dict[str, Any]) -> dict[str, Any]:
    """Calculate one batch: ``{storage_location, data_lineage: {root_id, parent_id}}``."""

    key = str(payload["storage_location"])
    lineage = payload["data_lineage"]
    root_id, parent_id = str(lineage["root_id"]), str(lineage["parent_id"])
    name = Path(key).stem
    factors = _factors(lake)
    con = _calculator_connection(lake, factors)
    with _work(lake, "calc") as work:
        batch = pq.read_table(_readable(lake, "silver", key, work))
        source = batch.column("_source_key")[0].as_py() if batch.num_rows else ""
        con.register("carbon_batch", batch)
        try:
            result = calculate(con, "carbon_batch", factors, root_id=root_id, parent_id=parent_id,
                               source_key=str(source or ""), calculated_at=datetime.now(UTC))
        finally:
            con.unregister("carbon_batch")
        out = work / "calculated.parquet"
        _stage(result.calculated, out)
        lake.store.put_file("tmp", f"{STAGED}/{root_id}/{name}.parquet", out, move=True)
        rejects_key = f"{REJECTS}/{root_id}/{name}.parquet"
        if result.rejects.num_rows:
            rej = work / "rejects.parquet"
            pq.write_table(result.rejects.drop_columns(["activity_event_id"]), rej, compression="zstd")
            lake.store.put_file("error", rejects_key, rej, move=True)
        elif lake.store.exists("error", rejects_key):
            lake.store.delete("error", rejects_key)  # a retry that now succeeds
    crash_point("carbon.after_calculate")
    _record_lineage(lake, result, root_id, parent_id, name, str(source or ""))
    if carbon_settings(lake.settings).store_results and result.calculated.num_rows:
        lake.state.put_many(RESULTS_TABLE, _results(con, result.calculated))
    return {"batch": key, "records": result.calculated.num_rows + result.rejects.num_rows,
            "calculated": result.calculated.num_rows, "failed": result.rejects.num_rows}


def _stage(calculated: pa.Table, out: Path) -> None:
    """Write calculated rows (sorted by ``_shard``) with one row group per shard, so publish
    reads each shard's rows alone (see :func:`_merge`)."""
    column = calculated.column("_shard").combine_chunks()
    ends = [int(i or 0) + 1 for i in pc.indices_nonzero(pc.not_equal(column[1:], column[:-1])).to_pylist()]
    with pq.ParquetWriter(out, calculated.schema, compression="snappy") as writer:
        start = 0
        for end in [*ends, calculated.num_rows]:
            if end > start:
                writer.write_table(calculated.slice(start, end - start), row_group_size=end - start)
            start = end


#: The fields of a stored result (``result_of``): what the seed's GraphQL lookups return.
RESULT_FIELDS = ("activity_event_id", "emissions_output", "_factors", "_lineage", "_source")
_RESULT_JSON = "to_json({" + ", ".join(f"'{f}': {f}" for f in RESULT_FIELDS) + "})::VARCHAR"


def _results(con: Any, calculated: pa.Table) -> list[tuple[str, str]]:
    """``(activity_event_id, result JSON)`` of calculated rows, rendered by DuckDB in bulk."""
    con.register("carbon_calculated", calculated)
    try:
        rows = con.execute(f"SELECT activity_event_id, {_RESULT_JSON} FROM carbon_calculated").fetchall()
    finally:
        con.unregister("carbon_calculated")
    return [(str(k), str(v)) for k, v in rows]


def _record_lineage(lake: Lake, result: Any, root_id: str, parent_id: str, batch: str,
                    source_key: str) -> None:
    """Record-level lineage as data: one node per record in the batch's lineage file
    (:meth:`~lakeline.adapters.record_lineage.RecordLedger.write_records`) —
    CALCULATION_COMPLETE at the gold table, or CALCULATION_FAILED at the batch's rejects with
    the reason — with the record's source key and line."""
    nodes = result.nodes
    n = nodes.num_rows
    done = pc.equal(nodes.column("action_taken"), pa.scalar("CALCULATION_COMPLETE"))
    where = pc.if_else(done, location(lake, "gold", GOLD_TABLE),
                       location(lake, "error", f"{REJECTS}/{root_id}/"))
    lake.lineage.write_records(root_id, batch, nodes.append_column(
        "parent_id", pa.repeat(pa.scalar(parent_id, pa.string()), n)).append_column(
        "storage_location", where).append_column(
        "source_key", pa.repeat(pa.scalar(source_key, pa.string()), n)))


def publish(lake: Lake, job: dict[str, Any]) -> dict[str, Any]:
    """Merge the staged results of a run into ``gold.emissions`` and summarise the run."""

    root_id = job["root_id"]
    pa.default_memory_pool().release_unused()  # what the Map's batches left cached, before the merge
    staged = [i.key for i in lake.store.list("tmp", f"{STAGED}/{root_id}/") if i.key.endswith(".parquet")]
    rejects = [i.key for i in lake.store.list("error", f"{REJECTS}/{root_id}/") if i.key.endswith(".parquet")]
    written: list[str] = []
    calculated = failed = 0
    with _work(lake, "publish") as work:
        con = duckdb_connection(lake.settings.runner.duckdb_threads, memory_limit=MEMORY_LIMIT,
                                spill_dir=work / "spill")
        try:
            if rejects:
                paths = [str(_readable(lake, "error", k, work)) for k in rejects]
                failed = int(con.execute("SELECT count(*) FROM read_parquet(?)", [paths]).fetchall()[0][0])
            if staged:
                paths = [str(_readable(lake, "tmp", k, work)) for k in staged]
                calculated = _merge(lake, con, paths, work, written)
        finally:
            con.close()
    crash_point("carbon.after_merge")  # gold rewritten, staged results not yet removed
    for key in staged:
        lake.store.delete("tmp", key)
    summary = {
        "root_id": root_id, "key": job.get("key"), "records": job.get("records"),
        "batches": job.get("batch_count"), "calculated": calculated, "failed": failed,
        "table": f"gold.{GOLD_TABLE}", "shards_written": len(written),
        "rejects_prefix": f"{REJECTS}/{root_id}/" if rejects else None,
        "dq_result_key": job.get("dq", {}).get("result_key"),
        "finished_at": datetime.now(UTC).isoformat(),
    }
    lake.state.log_run(f"{job.get('started_at', summary['finished_at'])}#{PIPELINE}#{root_id}", {
        "pipeline": PIPELINE, "key": job.get("key"), "status": "SUCCEEDED" if not failed else "PARTIAL",
        "records": job.get("records"), "loaded": calculated, "rejected": failed, "root_id": root_id,
        "started_at": job.get("started_at")})
    lake.state.emit_event("carbon_emissions_published", summary)
    lake.lineage.seal_records(root_id)  # the batches' record lineage, one file sorted by node id

    maybe_export(lake, root_id)  # OpenLineage run events, when [lineage] names a sink
    return summary


def _merge(lake: Lake, con: Any, staged: list[str], work: Path, written: list[str]) -> int:
    """Merge staged results into the gold shards they touch: a touched shard becomes its old
    rows whose ids are not new, plus the new rows. Each shard is one file replaced atomically,
    so readers never see an id twice. A staged file holds one row group per shard (the
    calculator's ``_shard``), so each shard is read on its own from every staged file (memory
    holds two shards, not the run) and written with Arrow, two at once. A repeated id (the
    last line wins) takes one DuckDB pass over the run. Returns new rows."""
    listed = ", ".join(lit(path) for path in staged)
    repeats = con.execute("SELECT count(*) - count(DISTINCT activity_event_id) "
                          f"FROM read_parquet([{listed}], union_by_name = true)").fetchall()[0][0]
    if repeats:
        dedup = work / "deduped.parquet"
        latest = "row_number() OVER (PARTITION BY activity_event_id ORDER BY _source.line_no DESC) = 1"
        con.execute(f"COPY (SELECT * FROM read_parquet([{listed}], union_by_name = true) "
                    f"QUALIFY {latest} ORDER BY _shard) "
                    f"TO {lit(str(dedup))} (FORMAT parquet)")
        _stage(pq.read_table(dedup), work / "deduped-by-shard.parquet")
        staged = [str(work / "deduped-by-shard.parquet")]
    # which row groups of which staged file hold each shard, from the footers' statistics
    where: dict[str, list[tuple[str, Any, list[int]]]] = {}
    mixed: set[str] = set()  # shards with a row group that may hold other shards' rows too
    for path in staged:
        f = pq.ParquetFile(path)
        for shard, (groups, exact) in _shard_groups(f).items():
            where.setdefault(shard, []).append((path, f.metadata, groups))
            if not exact:
                mixed.add(shard)

    def write(shard: str) -> int:
        key = _shard_key(shard)
        # a ParquetFile per read (one is not safe to read from two threads), given the footer
        # read above (parsing a nested schema's footer again per shard costs more than the rows)
        table = pa.concat_tables([pq.ParquetFile(path, metadata=meta).read_row_groups(groups)
                                  for path, meta, groups in where[shard]], promote_options="permissive")
        if shard in mixed:  # _stage writes one shard per row group: no filter needed otherwise
            table = table.filter(pc.equal(table.column("_shard"), pa.scalar(shard)))
        table = table.drop_columns(["_shard"])
        new = table.num_rows
        if lake.store.exists("gold", key):
            old = pq.read_table(_readable(lake, "gold", key, work))
            ids = table.column("activity_event_id")
            keep = pc.invert(pc.is_in(old.column("activity_event_id"), value_set=ids))
            table = pa.concat_tables([old.filter(keep), table], promote_options="permissive")
        out = work / f"shard-{shard}.parquet"
        pq.write_table(table, out, compression="zstd")
        lake.store.put_file("gold", key, out, move=True)
        return int(new)

    shards = sorted(where)
    workers = max(1, lake.settings.runner.duckdb_threads or os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=min(workers, 2)) as pool:  # 2: memory holds 2 shards
        rows = sum(pool.map(write, shards))
    written.extend(_shard_key(shard) for shard in shards)
    return rows


def _shard_leaf(f: Any) -> int:
    """The Parquet leaf column of ``_shard`` (nested columns make it differ from the Arrow
    field index)."""
    paths = [f.schema.column(i).path for i in range(len(f.schema))]
    return paths.index("_shard")


def _shard_groups(f: Any) -> dict[str, tuple[list[int], bool]]:
    """shard → (the row groups of a staged file that may hold it, whether each of them holds
    that shard alone), by the row groups' statistics (min <= shard <= max; every group, not
    alone, when they are missing)."""
    index = _shard_leaf(f)
    out: dict[str, tuple[list[int], bool]] = {}
    for g in range(f.num_row_groups):
        stats = f.metadata.row_group(g).column(index).statistics
        known = stats is not None and stats.has_min_max
        alone = known and str(stats.min) == str(stats.max)
        for shard in SHARDS:
            if not known or str(stats.min) <= shard <= str(stats.max):
                groups, exact = out.get(shard, ([], True))
                out[shard] = ([*groups, g], exact and alone)
    return out


def _shard_key(shard: str) -> str:
    return f"{GOLD_TABLE}/shard={shard}/part-0.parquet"


# ------------------------------------------------------------------ the driver


def pending(lake: Lake) -> list[Any]:
    """Carbon files waiting in the landing zone (the gate moves each one out)."""
    return sorted((i for i in lake.store.list("landing", f"{PIPELINE}/") if not i.key.endswith("/")),
                  key=lambda i: (i.last_modified, i.key))


def run_pending(lake: Lake, tasks: TaskRegistry, machine: dict[str, Any]) -> list[dict[str, Any]]:
    """Drive the carbon workflow: first resume executions a crash left RUNNING (their file may
    already be past the gate), then start one execution per file waiting in landing. Each is
    driven to its end; returns one report per execution.

    A claim per landed object version (``carbon_jobs``: key, etag, landing time) names its
    execution while it runs, so a file is started once; one that failed before its gate stays
    in landing, keeps its claim and is not retried until it is landed again. ``tasks`` binds
    the workflow's steps; ``machine`` is its definition."""
    reports: list[dict[str, Any]] = []
    workers = carbon_settings(lake.settings).max_concurrency
    machine = copy.deepcopy(machine)
    machine["States"]["CalculateBatches"]["MaxConcurrency"] = workers
    for item in lake.state.query(JOBS_TABLE):
        if item.data.get("status") != "RUNNING":
            continue
        ex = load_execution(lake.state, str(item.data["execution_arn"]))
        if ex is not None and ex.status == "RUNNING":
            _log.info("resuming carbon execution %s", ex.execution_arn)
            ex = resume_execution(lake.state, ex.execution_arn, tasks=tasks, max_workers=workers)
        if ex is not None:
            reports.append(_finished(lake, item.key, item.data, ex))
    for info in pending(lake):
        claim = f"{info.key}#{info.etag}#{info.last_modified.isoformat()}"
        if lake.state.get(JOBS_TABLE, claim) is not None:
            continue  # started before (and failed before its gate): land it again to retry

        root_id = new_id()
        name = f"carbon-{root_id}"
        job = {"execution_name": name, "execution_arn": _arn(name), "root_id": root_id, "key": info.key,
               "status": "RUNNING"}
        lake.state.put(JOBS_TABLE, claim, job)
        started = {"execution_name": name, "execution_arn": job["execution_arn"], "root_id": root_id,
                   "key": info.key, "etag": info.etag, "started_at": datetime.now(UTC).isoformat()}
        lake.state.put(RUNS_TABLE, f"{started['started_at']}#{name}", started)
        lake.state.put(OPEN_TABLE, info.key, started)  # a newer landing of the key supersedes
        ex = run_definition(machine, {"key": info.key, "root_id": root_id}, tasks=tasks,
                            name=name, store=lake.state, max_workers=workers)
        reports.append(_finished(lake, claim, job, ex))
    return reports


def waiting(lake: Lake) -> dict[str, Any]:
    """What the next `run` will do for carbon: files waiting in landing (not yet started) and
    executions a crash interrupted (to resume)."""
    started = {i.key for i in lake.state.query(JOBS_TABLE)}
    files = [i.key for i in pending(lake)
             if f"{i.key}#{i.etag}#{i.last_modified.isoformat()}" not in started]
    interrupted = [{"key": i.data.get("key"), "execution": i.data.get("execution_arn")}
                   for i in lake.state.query(JOBS_TABLE) if i.data.get("status") == "RUNNING"]
    return {"files": files, "interrupted": interrupted}


def _finished(lake: Lake, claim: str, job: dict[str, Any], ex: Any) -> dict[str, Any]:
    """Record an execution's end and build its report. A claim is only needed while its file is
    in landing (so a file that failed before its gate is not started again); once the gate
    moved the file it is dropped, which keeps the claims every `run` reads few."""
    if lake.store.exists("landing", str(job["key"])):
        lake.state.put(JOBS_TABLE, claim, dict(job, status=ex.status))
    else:
        lake.state.delete(JOBS_TABLE, claim)
    report: dict[str, Any] = {"pipeline": PIPELINE, "key": job["key"], "execution": ex.execution_arn,
                              "execution_name": ex.name, "status": ex.status}
    if ex.status == "SUCCEEDED" and isinstance(ex.output, dict):
        report.update(ex.output)
    elif ex.status != "SUCCEEDED":
        report.update({"error": ex.error, "cause": ex.cause, "state": _failed_state(lake, ex.execution_arn)})
        if ex.error == DQ_FAILED:
            report["reason"] = _dq_reason(lake, str(job["key"]), str(job["root_id"]))
        else:  # the gate already moved the file to error and notified
            report["command"] = redrive_command(ex.name)
            lake.notifier.notify(
                NOTIFY_SUBJECT,
                f"carbon file {job['key']}: execution {ex.name} {ex.status} in state {report['state']}: "
                f"{ex.error}: {ex.cause}. Fix the cause, then run `{report['command']}` to finish it "
                "(or land the file again).",
                {"pipeline": PIPELINE, "key": job["key"], "execution": ex.execution_arn,
                 "state": report["state"], "error": ex.error})
    _close(lake, str(job["key"]), ex)
    return report


def _dq_reason(lake: Lake, key: str, root_id: str) -> str | None:
    """The rules a gated file failed, with why (``readable CSV: <key>: the object is UTF-16LE
    text …``), from the result the gate stored; None when it cannot be read."""
    try:
        stored = orjson.loads(lake.store.get("gold", result_keys(key, root_id)[0]))
    except (NotFoundError, orjson.JSONDecodeError):
        return None
    why = []
    for r in stored.get("results") or []:
        if r.get("success"):
            continue
        res, info = r.get("result") or {}, r.get("exception_info") or {}
        detail = (info.get("exception_message") if info.get("raised_exception")
                  else f"{res['unexpected_count']} unexpected" if "unexpected_count" in res else None)
        why.append(f"{r.get('rule') or r.get('expectation_type')}" + (f": {detail}" if detail else ""))
    return "; ".join(why) or None


def redrive_command(execution_name: str) -> str:
    """The command that finishes a failed carbon execution once its cause is fixed."""
    return f"lakeline workflow redrive {execution_name}"


def _failed_state(lake: Lake, arn: str) -> str | None:
    """The top-level state an ended execution stopped in (where a redrive restarts)."""
    item = lake.state.get(EXECUTIONS_TABLE, arn)
    return None if item is None else item.data.get("currentState")


def _close(lake: Lake, key: str, ex: Any) -> None:
    """Stop tracking ``key`` once its latest execution succeeded or its file was gated to
    error; a failed one stays open (see :func:`failures`)."""
    if ex.status == "SUCCEEDED" or ex.error == DQ_FAILED:
        item = lake.state.get(OPEN_TABLE, key)
        if item is not None and item.data.get("execution_arn") == ex.execution_arn:
            lake.state.delete(OPEN_TABLE, key)


def failures(lake: Lake) -> list[dict[str, Any]]:
    """Files whose latest execution ended FAILED, TIMED_OUT or ABORTED other than by failing
    their quality rules, oldest first: ``{key, execution_name, execution_arn, root_id,
    started_at, status, state, error, cause, command}``. Finished ones (by a redrive, through
    ``lakeline workflow redrive``) are dropped from the tracking table as they are found."""
    out = []
    for item in lake.state.query(OPEN_TABLE):
        ex = lake.state.get(EXECUTIONS_TABLE, str(item.data["execution_arn"]))
        if ex is None:
            continue
        status, error = ex.data.get("status"), ex.data.get("error")
        if status == "SUCCEEDED" or error == DQ_FAILED:
            lake.state.delete(OPEN_TABLE, item.key)
            continue
        if status not in REDRIVABLE:
            continue  # running: `lakeline run` resumes it
        out.append({**item.data, "status": status, "state": ex.data.get("currentState"), "error": error,
                    "cause": ex.data.get("cause"),
                    "command": redrive_command(str(item.data["execution_name"]))})
    out.sort(key=lambda f: str(f.get("started_at")))
    return out


def run_log(lake: Lake, limit: int) -> list[dict[str, Any]]:
    """The carbon executions, newest first, at most ``limit``: each run's item with the
    execution's ``status``, ``stopped_at``, ``error``, ``cause``, ``state`` (where it stopped),
    ``redrive_count`` and, once published, ``output`` (records, calculated, failed…)."""
    out = []
    for item in lake.state.query(RUNS_TABLE, reverse=True, limit=limit):
        ex = lake.state.get(EXECUTIONS_TABLE, str(item.data["execution_arn"]))
        data = {} if ex is None else ex.data
        out.append({**item.data, "status": data.get("status", "UNKNOWN"), "stopped_at": data.get("stopDate"),
                    "error": data.get("error"), "cause": data.get("cause"), "state": data.get("currentState"),
                    "redrive_count": data.get("redriveCount", 0),
                    "output": data.get("output") if isinstance(data.get("output"), dict) else None})
    return out


def _arn(name: str) -> str:

    return f"arn:aws:states:{REGION}:{ACCOUNT}:execution:{STATE_MACHINE_NAME}:{name}"


def result_of(lake: Lake, activity_event_id: str) -> dict[str, Any]:
    """The published result of one activity (:data:`RESULT_FIELDS`): a lookup over
    ``gold.emissions`` (one shard file, read by DuckDB), else the state store copy kept when
    ``store_results`` is on (a result calculated but not yet published)."""
    # the shard is md5 by the gold layout, not for security
    key = _shard_key(hashlib.md5(activity_event_id.encode(), usedforsecurity=False).hexdigest()[0])
    if lake.store.exists("gold", key):
        con = duckdb_connection(1)
        try:
            path = lake.store.local_path("gold", key)
            if path is not None:
                source = f"read_parquet({lit(str(path))})"
            else:
                con.register("carbon_gold_shard", lake.store.parquet_dataset("gold", [key]))
                source = "carbon_gold_shard"
            rows = con.execute(f"SELECT {_RESULT_JSON} FROM {source} WHERE activity_event_id = ?",
                               [activity_event_id]).fetchall()
        finally:
            con.close()
        if rows:
            found: dict[str, Any] = orjson.loads(rows[0][0])
            return found
    item = lake.state.get(RESULTS_TABLE, activity_event_id)
    if item is None:
        raise NotFoundError(f"no carbon result for activity_event_id {activity_event_id!r}")
    return item.data


__all__ = ["calculate_batch", "data_quality", "failures", "kickoff", "publish", "redrive_command",
           "result_of", "run_log", "run_pending", "split"]
