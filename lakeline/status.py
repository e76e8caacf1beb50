"""What the lake is doing: ``lakeline status`` and ``runs``, the DLQs, when a ``run`` failed.

Shared by the CLI and ``lakeline ui`` (the same data in a terminal table or on a page).

Runs come in one shape (:class:`~lakeline.pipelines.base.RunEntry`) whatever the pipeline:
the object run log of the state store, each pipeline's own :meth:`Pipeline.run_log` (which
replaces the generic entries of that pipeline), and the batch runs of promoted tables.
"""

from __future__ import annotations

from typing import Any

from lakeline import transient
from lakeline.config import Settings
from lakeline.errors import UsageError
from lakeline.lake import Lake
from lakeline.pipelines.base import RunEntry
from lakeline.pipelines.registry import Registry
from lakeline.ports.queue import DEAD_LETTER_REASON
from lakeline.promotion.runs import list_runs

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
