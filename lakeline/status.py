"""What the lake is doing: ``lakeline status`` and ``runs``, the DLQs, when a ``run`` failed;
one run (found by id, its lineage root, its rejects), promoting a batch run (``lakeline
promote``) and running a failed file again.

Shared by the CLI and ``lakeline ui`` (the same data in a terminal table or on a page).

Runs come in one shape (:class:`~lakeline.pipelines.base.RunEntry`) whatever the pipeline:
the object run log of the state store, each pipeline's own :meth:`Pipeline.run_log` (which
replaces the generic entries of that pipeline), and the batch runs of promoted tables.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from lakeline import transient
from lakeline.config import Settings
from lakeline.duck import duckdb_connection
from lakeline.errors import LakelineError, NotFoundError, UsageError
from lakeline.lake import Lake
from lakeline.lineage.hooks import object_root
from lakeline.pipelines.base import RunEntry
from lakeline.pipelines.registry import Registry
from lakeline.ports.lineage_model import derived_id
from lakeline.ports.objectstore import ObjectInfo
from lakeline.ports.queue import DEAD_LETTER_REASON
from lakeline.ports.state import RUNS
from lakeline.promotion.gate import read_run_summary
from lakeline.promotion.promote import promote
from lakeline.promotion.runs import list_runs
from lakeline.sqltext import quote
from lakeline.stages.messages import idempotency_key
from lakeline.stages.supersede import replay_root

REJECTS_QUERY = 'lakeline sql "SELECT reason_code, count(*) FROM quarantine.rejects GROUP BY ALL"'
_COMMON = {"pipeline", "status", "started_at", "finished_at", "key", "records", "loaded", "rejected",
           "error", "run_key"}


def _object_entry(item: dict[str, Any]) -> RunEntry:
    detail = {k: v for k, v in item.items() if k not in _COMMON}
    return RunEntry(
        pipeline=str(item.get("pipeline") or "?"), kind="object" if item.get("key") else "job",
        run_id=str(item["run_key"]), status=str(item.get("status") or "?"),
        started_at=item.get("started_at"), finished_at=item.get("finished_at"), key=item.get("key"),
        records=item.get("records"), loaded=item.get("loaded"), rejected=item.get("rejected"),
        error=item.get("error"), detail=detail)


def _batch_entry(pipeline: str, table: str, run: dict[str, Any]) -> RunEntry:
    quarantined = run.get("quarantined_rows")
    condemned = run.get("condemned_rows")
    rejected = None if quarantined is None and condemned is None else (quarantined or 0) + (condemned or 0)
    detail = {k: v for k, v in run.items() if k not in ("run_id", "status", "problem", "completed_at")}
    return RunEntry(pipeline=pipeline, kind="batch", run_id=str(run["run_id"]), status=str(run["status"]),
                    finished_at=run.get("completed_at"), key=table, records=run.get("input_rows"),
                    loaded=run.get("valid_rows"), rejected=rejected, error=run.get("problem"),
                    detail=dict(detail, table=table))


def run_entries(lake: Lake, reg: Registry, limit: int, only: str | None = None) -> list[RunEntry]:
    """The newest ``limit`` runs of every pipeline (or of ``only``), newest first."""
    own = {p.name: p.run_log(lake, limit) for p in reg if only in (None, p.name)}
    entries = [e for found in own.values() for e in found]
    scan = limit * 4 if only else limit  # the generic log holds every pipeline's entries
    for item in lake.state.runs(limit=scan):
        pipeline = item.get("pipeline")
        if (only is None or pipeline == only) and not own.get(str(pipeline)):
            entries.append(_object_entry(item))
    for p, t in reg.tables():
        if t.layout == "runs" and only in (None, p.name):
            entries += [_batch_entry(p.name, t.name, r.to_dict()) for r in list_runs(lake, t.prefix)][-limit:]
    entries.sort(key=lambda e: e.started_at or e.finished_at or "", reverse=True)
    return entries[:limit]


def run_failures(summary: dict[str, Any], max_reject_rate: float | None = None) -> list[dict[str, Any]]:
    """Everything that failed during a ``run`` (its summary): each with ``what``, ``error``
    and the ``command`` that shows more. Empty when the run succeeded."""
    out: list[dict[str, Any]] = []
    if summary.get("failures"):
        first = (summary.get("errors") or ["see the log"])[0]
        out.append({"what": f"{summary['failures']} message failure(s)", "error": first,
                    "command": "lakeline status"})
    if summary.get("waiting"):
        why = summary.get("transient_error") or "not loaded yet"
        out.append({"what": f"{summary['waiting']} message(s) waiting", "error": f"transient fault: {why}; "
                    "they load by themselves once it is fixed (the next `lakeline run`, or `serve`)",
                    "command": "lakeline status"})
    if summary.get("dead_lettered"):
        out.append({"what": f"{summary['dead_lettered']} message(s) dead-lettered", "error": "moved to a DLQ",
                    "command": "lakeline dlq list"})
    for d in summary.get("dropped_objects", []):  # stream objects dropped whole at ingest
        out.append({"what": str(d["pipeline"]), "error": str(d["error"]),
                    "command": f"lakeline runs --pipeline {d['pipeline']}"})
    # a report may name its own command (Report.data["command"]); else the kind's
    for kind, command in (("batch_runs", "lakeline runs --pipeline {p}"), ("quality", "lakeline status"),
                          ("models", "lakeline models list")):
        for r in summary.get(kind, []):
            if r.get("status") == "FAILED":
                who = r.get("pipeline") or (f"model {r['name']}" if r.get("name") else "models")
                out.append({"what": str(who), "error": str(r.get("summary") or r.get("error")),
                            "command": str(r.get("command") or command.format(p=r.get("pipeline")))})
    seen = int(summary.get("loaded", 0)) + int(summary.get("rejected", 0))
    rate = summary.get("rejected", 0) / seen if seen else 0.0
    if max_reject_rate is not None and rate > max_reject_rate:
        out.append({"what": "reject rate", "error": f"{rate:.2%} of {seen} records rejected, above "
                    f"{max_reject_rate:.2%} (--fail-on-rejects)",
                    "command": REJECTS_QUERY})
    return out


def waiting_failures(settings: Settings) -> list[dict[str, Any]]:
    """What ``lakeline status`` lists while messages wait on a transient fault (the runner's
    health record, :mod:`lakeline.transient`): one entry, or none."""
    health = transient.read_health(settings.state_dir)
    if not health:
        return []
    count = health.get("waiting")
    what = f"{count} message(s) waiting" if count else "messages waiting"
    return [{"pipeline": None, "what": f"{what} on a transient fault since {health.get('since')}",
             "error": str(health.get("error") or "?"),
             "command": "fix the fault; the next `lakeline run` (or `serve` by itself) loads them"}]


def verdict(failed: list[dict[str, Any]]) -> dict[str, Any]:
    """The run's ``status`` (and, failed, ``code``, ``reason`` and ``failed``) for its summary."""
    if not failed:
        return {"status": "success"}
    code = "REJECT_RATE_EXCEEDED" if [f["what"] for f in failed] == ["reject rate"] else "RUN_FAILED"
    reason = "; ".join(f"{f['what']}: {f['error']}" for f in failed)
    return {"status": "error", "code": code, "reason": reason, "failed": failed}


def lake_status(lake: Lake, reg: Registry, runs: int = 5) -> dict[str, Any]:
    """What ``lakeline status`` shows: ``home``, ``failures`` needing attention (each with
    ``pipeline``, ``what``, ``error`` and the ``command`` that shows more), ``queues`` (visible,
    in flight, delayed), the ``last_runs`` and each pipeline's own ``pipelines`` status."""
    queues = {}
    for name, q in lake.queues().items():
        c = q.counts()
        queues[name] = {"visible": c.visible, "in_flight": c.in_flight, "delayed": c.delayed}
    failures = [f.to_dict() for p in reg for f in p.failures(lake)]
    failures += [{"pipeline": None, "what": f"{n} message(s) in {name}", "error": "dead-lettered",
                  "command": "lakeline dlq list"} for name, n in dlq_depths(lake).items() if n]
    failures += waiting_failures(lake.settings)  # messages waiting on a transient fault
    last = [e.to_dict() for e in run_entries(lake, reg, runs)]
    pipes = {p.name: found for p in reg if (found := p.status(lake))}
    return {"home": str(lake.settings.home), "failures": failures, "queues": queues, "last_runs": last,
            "pipelines": pipes}


def dlq_depths(lake: Lake) -> dict[str, int]:
    """DLQ name → messages in it."""
    return {q.dlq.name: q.dlq.counts().total for q in (lake.ingest_queue, lake.transform_queue)
            if q.dlq is not None}


def dlq_messages(lake: Lake, limit: int) -> list[dict[str, Any]]:
    """Up to ``limit`` messages of each DLQ: ``queue``, ``message_id``, ``sent_at``, ``body``
    (its first 500 characters), ``attributes`` and ``why`` it was dead-lettered."""
    out: list[dict[str, Any]] = []
    for q in (lake.ingest_queue, lake.transform_queue):
        if q.dlq is None:
            continue
        for m in q.dlq.peek(limit):
            out.append({"queue": q.dlq.name, "message_id": m.message_id, "sent_at": m.sent_at,
                        "body": m.body[:500], "attributes": m.attributes,
                        "why": dead_letter_reason(m.attributes)})
    return out


def dead_letter_reason(attributes: dict[str, Any]) -> str:
    """Why a message is in a DLQ: the terminal error that sent it, or the receive limit."""
    return str(attributes.get(DEAD_LETTER_REASON) or "receive limit reached (maxReceiveCount)")


def dlq_redrive(lake: Lake, which: str = "all") -> dict[str, int]:
    """Move dead-lettered messages back to their source queue (``ingest``, ``transform`` or
    ``all``); source queue name → messages moved."""
    if which not in ("all", "ingest", "transform"):
        raise UsageError(f"no queue {which!r}; use ingest, transform or all")
    return {q.name: q.dlq.redrive() for q in (lake.ingest_queue, lake.transform_queue)
            if which in ("all", q.name) and q.dlq is not None}


# ---- one run: find it, its lineage root, its rejects, promote it, rerun its file -----------------

#: the statuses of runs (landed objects, batch runs, pipelines' units of work, workflow executions)
RUN_STATUSES = ("LANDED", "INGESTED", "EMPTY", "COMPLETE", "INCOMPLETE", "INVALID", "PENDING", "RUNNING",
                "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED", "UNKNOWN")
#: how far a pipeline's own run log is read, at most, to find one run
_FIND_MAX = 100_000


def promoted_tables(reg: Registry) -> dict[str, str]:
    """Tables of promoted runs (``runs`` layout): SQL name → silver prefix."""
    return {t.name: t.prefix for _, t in reg.tables() if t.layout == "runs"}


def find_run(lake: Lake, reg: Registry, pipeline: str, run_id: str) -> RunEntry:
    """The run ``run_id`` of ``pipeline`` as ``lakeline runs`` lists it (its own run log, the
    object run log, or a batch run of a promoted table); :class:`NotFoundError` naming it."""
    if pipeline in reg:
        p = reg.get(pipeline)
        limit = 64
        while limit <= _FIND_MAX:  # the pipeline's own log, newest first, read further each time
            found = p.run_log(lake, limit)
            match = next((e for e in found if e.run_id == run_id), None)
            if match is not None:
                return match
            if len(found) < limit:
                break
            limit *= 4
        for t_pipeline, t in reg.tables():
            if t_pipeline.name == pipeline and t.layout == "runs":
                for r in list_runs(lake, t.prefix):
                    if r.run_id == run_id:
                        return _batch_entry(pipeline, t.name, r.to_dict())
    item = lake.state.get(RUNS, run_id)
    if item is not None and str(item.data.get("pipeline") or "?") == pipeline:
        return _object_entry(dict(item.data, run_key=run_id))
    raise NotFoundError(f"no run {run_id!r} of pipeline {pipeline!r} "
                        f"(see `lakeline runs --pipeline {pipeline}`)")


def batch_run_of(lake: Lake, reg: Registry, entry: RunEntry) -> RunEntry | None:
    """The batch run that loaded the landed object of ``entry`` (a job pipeline's ``LANDED``
    object, e.g. a transactions file), or None."""
    oid = entry.detail.get("object_id")
    if entry.kind != "object" or not oid:
        return None
    for p, t in reg.tables():
        if p.name != entry.pipeline or t.layout != "runs":
            continue
        for r in reversed(list_runs(lake, t.prefix)):
            sources = (r.metrics or {}).get("sources") or r.record.get("sources") or []
            if any(s.get("object_id") == oid for s in sources):
                return _batch_entry(p.name, t.name, r.to_dict())
    return None


def run_root(lake: Lake, reg: Registry, entry: RunEntry) -> str | None:
    """The lineage root of a run, if the ledger has it: a carbon execution's ``root_id``, a
    landed object's root (derived from ``s3://<bucket>/<key>#<etag>``), a batch run's (derived
    from the pipeline, table prefix and run id, or the pipeline and run id)."""
    d = entry.detail
    candidates = [str(d["root_id"])] if d.get("root_id") else []
    if entry.kind == "object" and d.get("bucket") and d.get("etag") and entry.key:
        candidates.append(object_root(idempotency_key(str(d["bucket"]), entry.key, str(d["etag"]))))
    if entry.kind == "batch":
        prefix = promoted_tables(reg).get(str(d.get("table")))
        if prefix is not None:
            candidates.append(derived_id(entry.pipeline, prefix, entry.run_id))
        candidates.append(derived_id(entry.pipeline, entry.run_id))
    try:
        return next((c for c in candidates if lake.lineage.counts(c)), None)
    except LakelineError:  # no ledger (lineage off, or no table deployed)
        return None


def run_rejects(lake: Lake, entry: RunEntry, *, ids: Iterable[str] = (), samples: int = 5) -> dict[str, Any]:
    """The rejects of one run, grouped by reason: ``{"total", "files", "reasons": [{"reason",
    "count", "samples": [{key, line_no, byte_offset, chunk, record_type, message, raw}]}]}``
    (the first ``samples`` lines of each reason, in line order).

    Only the run's own rejects files are read: those under ``rejects/<pipeline>/`` whose name
    holds one of the run's ids (``ids``: its object id, run id, lineage root, …). A landed
    object's rows are those of its key and etag; if fewer are found than the run rejected, every
    rejects file of the pipeline is searched for them."""
    listed = [i.key for i in lake.store.list("error", f"rejects/{entry.pipeline}/")
              if i.key.endswith(".parquet")]
    names = {i for i in (*ids, entry.run_id, str(entry.detail.get("object_id") or "")) if len(i) >= 8}
    own = [k for k in listed if any(i in k for i in names)]
    match: dict[str, str] = {}
    if entry.kind == "object" and entry.key:
        match["key"] = entry.key
        if entry.detail.get("etag"):
            match["etag"] = str(entry.detail["etag"])
    found = _read_rejects(lake, own, match, samples)
    if match and entry.rejected and found["total"] < entry.rejected and len(own) < len(listed):
        found = _read_rejects(lake, listed, match, samples)
    return found


def _read_rejects(lake: Lake, keys: list[str], match: dict[str, str], samples: int) -> dict[str, Any]:
    out: dict[str, Any] = {"total": 0, "files": keys, "reasons": []}
    if not keys:
        return out
    con = duckdb_connection(1)
    try:
        con.register("run_rejects", lake.store.parquet_dataset("error", keys))
        where = " AND ".join(f"{quote(c)} = ?" for c in match) or "true"
        params = list(match.values())
        counts = con.execute(f"SELECT reason_code, count(*) AS n FROM run_rejects WHERE {where} "
                             "GROUP BY ALL ORDER BY n DESC, reason_code", params).fetchall()
        rows = con.execute(
            "SELECT reason_code, key, line_no, byte_offset, chunk, record_type, message, left(raw, 2000) "
            "FROM (SELECT *, row_number() OVER (PARTITION BY reason_code ORDER BY line_no NULLS LAST, "
            f"byte_offset NULLS LAST, chunk) AS rn FROM run_rejects WHERE {where}) WHERE rn <= ? "
            "ORDER BY reason_code, rn", [*params, samples]).fetchall()
    finally:
        con.close()
    by_reason: dict[Any, list[dict[str, Any]]] = {}
    for reason, key, line_no, offset, chunk, record_type, message, raw in rows:
        by_reason.setdefault(reason, []).append({
            "key": key, "line_no": line_no, "byte_offset": offset, "chunk": chunk,
            "record_type": record_type, "message": message, "raw": raw})
    out["reasons"] = [{"reason": r, "count": int(n), "samples": by_reason.get(r, [])} for r, n in counts]
    out["total"] = sum(int(n) for _, n in counts)
    return out


def gate_refusal(gate: dict[str, Any], override: str = "use --force to override") -> str:
    """Why the promotion gate said no, in its own figures (``override``: how to promote anyway)."""
    if gate.get("metrics_source") == "files":
        return (f"run {gate['run_id']} fails the promotion gate: its Parquet files hold no row (its _SUCCESS "
                f"is empty, so the row count comes from the files); {override}")
    return (f"run {gate['run_id']} fails the promotion gate: quarantine rate {gate['quarantine_rate']:.2%}, "
            f"{gate['condemned_rows']} condemned, critical errors: {gate['has_critical_errors']} "
            f"({override})")


def promote_run(lake: Lake, silver_prefix: str, run_key: str | None = None, *, schema_version: str = "v1",
                force: bool = False, override: str = "use --force to override",
                trace: dict[str, str | None] | None = None) -> dict[str, Any]:
    """What ``lakeline promote`` does: check the promotion gate on the run that would be
    promoted (unless ``force``), then publish it to ``current/`` and ``_LATEST.json``.
    The promotion's result, or ``{"status": "error", "code": "GATE_REFUSED", "reason",
    "summary"}`` when the gate refuses (``reason``: :func:`gate_refusal`). ``trace``: the
    caller's ``glue_job_run_id``, ``execution_arn``, ``execution_start_time``."""
    if not force:
        gate = read_run_summary(lake, silver_prefix, run_key, schema_version=schema_version, promotable=True)
        if not gate["promotion_allowed"]:
            return {"status": "error", "code": "GATE_REFUSED", "reason": gate_refusal(gate, override),
                    "summary": gate}
    event: dict[str, Any] = {"silver_bucket": lake.store.bucket("silver"), "silver_prefix": silver_prefix,
                             "schema_version": schema_version}
    optional = {"run_key": run_key, **(trace or {})}
    event.update({k: v for k, v in optional.items() if v})
    return promote(lake, event)


def promotion_summary(result: dict[str, Any]) -> str:
    """One line on a successful promotion: the run, its partitions and the files copied."""
    parts = result.get("partitions", [])
    files = sum(int(p.get("files_copied", 0)) for p in parts)
    note = " (already current: nothing changed)" if result.get("noop") else ""
    return (f"promoted run {result['run_id']}: {len(parts)} partition(s), {files} file(s) copied into "
            f"current/{note}")


def rerun_target(lake: Lake, reg: Registry, entry: RunEntry) -> ObjectInfo:
    """The landed object a failed run would run again (:func:`rerun_object`);
    :class:`UsageError` saying why when it cannot: not a failed object of a streaming
    pipeline, a replayed copy, or no longer landed as it was."""
    if entry.kind != "object" or entry.status != "FAILED" or not entry.key:
        raise UsageError(f"run {entry.run_id} is not a failed landed object ({entry.kind}, {entry.status})")
    if entry.key.startswith(replay_root(entry.pipeline)):
        raise UsageError(f"{entry.key} is a replayed copy (replays are never replayed): rerun the run of "
                         "its original")
    if entry.pipeline not in reg or reg.get(entry.pipeline).stream(lake.settings) is None:
        error_key = entry.detail.get("error_key")
        moved = f"; it was moved to error/{error_key}" if error_key else ""
        raise UsageError(f"{entry.key} is not an object of a streaming pipeline{moved}: land it again, "
                         f"fixed (`lakeline put FILE --pipeline {entry.pipeline}`)")
    try:
        info = lake.store.head("landing", entry.key)
    except NotFoundError:
        raise UsageError(f"landing/{entry.key} is gone: land it again (`lakeline put`)") from None
    if entry.detail.get("etag") and info.etag != entry.detail["etag"]:
        raise UsageError(f"landing/{entry.key} changed since this run (etag {info.etag}, the run's "
                         f"{entry.detail['etag']}): the new version has its own run")
    return info


def rerun_object(lake: Lake, reg: Registry, entry: RunEntry) -> dict[str, Any]:
    """Run a failed landed object of a streaming pipeline again: a copy-mode replay of exactly
    that object (``lakeline replay`` with its key as the source prefix and its LastModified as
    the window), which the next ``lakeline run`` (or ``serve``) loads. The replay's result;
    :class:`UsageError` as :func:`rerun_target` says."""
    from lakeline.stages.replay import replay  # heavy: ingest and chunking (numpy), only to rerun

    info = rerun_target(lake, reg, entry)
    start, end = info.last_modified, info.last_modified + timedelta(microseconds=1)
    others = [i.key for i in lake.store.list("landing", info.key)
              if i.key != info.key and start <= i.last_modified < end]
    if others:
        raise UsageError(f"{', '.join(others)} landed at the same instant under the prefix {info.key}: "
                         "rerun them with `lakeline replay`")
    name = "rerun-" + datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    return replay(lake, reg.route, entry.pipeline, start, end, name=name, src_prefix=info.key)
