"""Announcing landed objects: the object-created events of the landing zone.

Kept free of heavy imports (no DuckDB, no Arrow) so ``lakeline put`` starts fast.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import orjson

from lakeline.events import s3_event
from lakeline.lake import Lake

SEEN = "seen"


def announce(lake: Lake, key: str, *, force: bool = False) -> bool:
    """Emit the object-created event for a landing object, once per (key, etag) unless
    ``force``.

    Returns True if an event was sent. ``put`` forces it (S3 notifies every PUT, and ingest
    idempotency then counts a re-landed duplicate as skipped); the watcher announces each
    object version once, so a file copied straight into ``zones/landing`` is picked up too.
    """
    info = lake.store.head("landing", key)
    seen_key = f"{key}#{info.etag}"
    if not force and lake.state.get(SEEN, seen_key) is not None:
        return False
    event = s3_event(lake.store.bucket("landing"), key, info.size, info.etag)
    lake.ingest_queue.send(orjson.dumps(event).decode())
    lake.state.put(SEEN, seen_key, {"at": time.time()})
    return True


def scan_landing(lake: Lake, *, settle_seconds: float | None = None) -> int:
    """Announce every landing object not announced before; returns how many.

    An object modified less than ``settle_seconds`` ago (default ``runner.settle_seconds``)
    may still be being copied in, so it waits for a later scan.
    """
    settle = lake.settings.runner.settle_seconds if settle_seconds is None else settle_seconds
    cutoff = datetime.now(UTC) - timedelta(seconds=settle)
    return sum(
        1 for info in lake.store.list("landing")
        if info.last_modified <= cutoff and announce(lake, info.key)
    )
