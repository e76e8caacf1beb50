"""Announcing landed objects: the object-created events of the landing zone.

Kept free of heavy imports (no DuckDB, no Arrow) so ``lakeline put`` starts fast.
"""

from __future__ import annotations

import time

import orjson

from lakeline.events import s3_event
from lakeline.lake import Lake

SEEN = "seen"


def announce(lake: Lake, key: str) -> bool:
    """Emit the object-created event for a landing object once per (key, etag).

    Returns True if an event was sent. ``put`` and the watcher both call this, so a file
    copied straight into ``zones/landing`` is picked up like one landed with ``put``.
    """
    info = lake.store.head("landing", key)
    seen_key = f"{key}#{info.etag}"
    if lake.state.get(SEEN, seen_key) is not None:
        return False
    event = s3_event(lake.store.bucket("landing"), key, info.size, info.etag)
    lake.ingest_queue.send(orjson.dumps(event).decode())
    lake.state.put(SEEN, seen_key, {"at": time.time()})
    return True


def scan_landing(lake: Lake) -> int:
    """Announce every landing object not announced before; returns how many."""
    return sum(1 for info in lake.store.list("landing") if announce(lake, info.key))
