"""Replay: run landed objects of a time window through the pipeline again (specs §3).

``copy`` mode copies each object whose LastModified is in ``[start, end)`` to
``<pipeline>/replay/<name>/<original key>``; the normal path ingests the copies as new objects.
``queue`` mode re-plans the original objects and sends their chunk messages straight to the
transform queue, bypassing ingest idempotency; deterministic output names mean the silver
files are rewritten, not duplicated.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from lakeline.errors import UsageError
from lakeline.events import ObjectCreated
from lakeline.lake import Lake
from lakeline.landing import announce
from lakeline.stages.ingest import Ingester, IngestResult
from lakeline.stages.spec import Router


def parse_instant(text: str) -> datetime:
    """Parse an ISO-8601 instant; a naive value is UTC."""
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"not an ISO-8601 time: {text!r}") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def replay(
    lake: Lake, router: Router, pipeline: str, start: datetime, end: datetime, *, mode: str = "copy",
    name: str | None = None,
) -> dict[str, Any]:
    """Replay the pipeline's landed objects modified in ``[start, end)`` (``router``: the
    pipeline registry's, which the queue mode's ingest uses)."""
    if end <= start:
        raise UsageError("replay window is empty: --end must be after --start")
    if mode not in {"copy", "queue"}:
        raise UsageError(f"unknown replay mode {mode!r}; use copy or queue")
    label = name or datetime.now(UTC).strftime("%Y-%m-%dT%H-%M-%SZ")
    replay_root = f"{pipeline}/replay/"
    dest_prefix = f"{replay_root}{label}/"
    scanned = copied = enqueued = 0
    targets = []
    for info in lake.store.list("landing", f"{pipeline}/"):
        if info.key.startswith(replay_root):
            continue  # never replay replays
        scanned += 1
        if start <= info.last_modified < end:
            targets.append(info)
    ingester = Ingester(lake, router)
    for info in targets:
        if mode == "copy":
            lake.store.copy("landing", info.key, "landing", dest_prefix + info.key)
            announce(lake, dest_prefix + info.key, force=True)  # S3 notifies a CopyObject too
            copied += 1
        else:
            result = IngestResult()
            ev = ObjectCreated(lake.store.bucket("landing"), info.key, info.size, info.etag, "", "")
            ingester.ingest_object(ev, result, force=True)
            enqueued += result.enqueued
            copied += 1
    out: dict[str, Any] = {
        "scanned": scanned, "copied": copied, "dest_prefix": dest_prefix if mode == "copy" else None,
        "start": start.isoformat().replace("+00:00", "Z"), "end": end.isoformat().replace("+00:00", "Z"),
        "mode": mode,
    }
    if mode == "queue":
        out["enqueued"] = enqueued
    return out
