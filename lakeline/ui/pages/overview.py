"""The overview: what needs attention first, then each pipeline's last run, the queues and DLQs
(with their redrive action), and recent workflow executions."""

from __future__ import annotations

from typing import Any

from lakeline.status import dlq_messages, dlq_redrive, lake_status, run_entries
from lakeline.ui.render import Rendered, View, action, page
from lakeline.workflow.engine import list_executions

#: how many runs the overview reads to find each pipeline's last one
_SCAN = 200


@page("overview", "/", title="Overview")
def overview(view: View) -> Rendered:
    """Failures first (DLQ, failed workflows, stranded files, refused promotions), then the
    pipelines with their last run and their reject rate over their recent runs (up to 200 runs
    of the lake), queue/in-flight/DLQ depths."""
    lake, reg = view.lake, view.registry
    status = lake_status(lake, reg, runs=5)
    executions = list_executions(lake.state, 20)
    failures = list(status["failures"])
    failures += [{"pipeline": None, "what": f"workflow execution {e.name}", "error": f"{e.status}: {e.error}",
                  "command": f"lakeline workflow history {e.name}", "execution": e.execution_arn}
                 for e in executions if e.status in ("FAILED", "TIMED_OUT", "ABORTED")]
    recent: dict[str, list[dict[str, Any]]] = {}
    for entry in run_entries(lake, reg, _SCAN):
        recent.setdefault(entry.pipeline, []).append(entry.to_dict())
    pipelines = []
    for p in reg:
        runs = recent.get(p.name, [])
        loaded = sum(r.get("loaded") or 0 for r in runs)
        rejected = sum(r.get("rejected") or 0 for r in runs)
        kind = "stream" if p.stream(lake.settings) is not None else "job"
        pipelines.append({"name": p.name, "kind": kind, "description": _first_line(p.description),
                          "run": runs[0] if runs else None, "runs": len(runs), "loaded": loaded,
                          "rejected": rejected,
                          "reject_rate": rejected / (loaded + rejected) if loaded + rejected else None})
    dlq = dlq_messages(lake, 20)
    return "overview.html", {"title": "Overview", "status": status, "failures": failures,
                             "pipelines": pipelines, "dlq": dlq,
                             "executions": [_execution(e) for e in executions[:8]]}


def _first_line(text: str | None) -> str:
    return (text or "").strip().splitlines()[0] if (text or "").strip() else ""


def _execution(e: Any) -> dict[str, Any]:
    return {"arn": e.execution_arn, "name": e.name, "status": e.status,
            "start": e.start_date.isoformat(timespec="seconds"), "error": e.error}


@action("dlq-redrive", "/actions/dlq-redrive")
def redrive(view: View, form: dict[str, str]) -> tuple[str, str]:
    """Move a DLQ's messages back to their queue (``queue``: ingest, transform or all)."""
    moved = dlq_redrive(view.lake, form.get("queue", "all"))
    text = ", ".join(f"{name}: {n} redriven" for name, n in moved.items())
    return f"{text} — run `lakeline run` (or `serve`) to process them", view.links.url("overview")
