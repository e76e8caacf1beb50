"""What a copy-mode replay supersedes: the copy's batches take the original object's batch ids.

A copy-mode replay lands ``<pipeline>/replay/<name>/<original key>``, a new object key, so
ingest gives it an object id of its own. Published under that id its rows would be added a
second time. Instead, before copying, the replay records ``copy key → original object`` in
the state table :data:`REPLAYS`; when the transform publishes a chunk of the copy, the batch id
is the *original* object's (:func:`batch_object_id`). Publishing is then a redelivery of the
original's batch: the Parquet sink writes the same file names and deletes any other file of
that batch in the partitions it writes (the original's files are replaced, not doubled); the
Iceberg sink finds the batch in the table's history and does not append it again.

Exactly once and crash safe: the record is written before the copy exists, so no copy is ever
published under its own id; a redelivered or re-sent chunk of the copy publishes the same
batch id again; a replay run twice under one name copies the same keys and records the same
mapping. The mapping holds the etag: a different object later stored under the copy key is
not taken for the copy.
"""

from __future__ import annotations

import time
from typing import Any

from lakeline.lake import Lake

#: state table: key = the copy's landing key; data = the original ``key``, ``etag``,
#: ``object_id``, the replay ``name`` and ``at``.
REPLAYS = "replays"


def replay_root(pipeline: str) -> str:
    """Where a pipeline's copy-mode replays land (``<pipeline>/replay/``)."""
    return f"{pipeline}/replay/"


def record(lake: Lake, copy_key: str, *, original_key: str, etag: str, original_id: str, name: str) -> None:
    """Record that ``copy_key`` (a copy of ``original_key`` at ``etag``) supersedes ``original_id``."""
    lake.state.put(REPLAYS, copy_key, {"key": original_key, "etag": etag, "object_id": original_id,
                                       "name": name, "at": time.time()})


def lookup(lake: Lake, copy_key: str) -> dict[str, Any] | None:
    """The recorded original of a replayed copy, or None."""
    found = lake.state.get(REPLAYS, copy_key)
    return dict(found.data) if found is not None else None


def batch_object_id(lake: Lake, pipeline: str, key: str, etag: str, own_id: str) -> str:
    """The object id a chunk of ``key`` publishes its batches under: the original object's for
    a recorded copy of the same bytes (same etag), ``own_id`` otherwise."""
    if not key.startswith(replay_root(pipeline)):
        return own_id
    found = lookup(lake, key)
    if found is None or found.get("etag") != etag:
        return own_id
    return str(found["object_id"])


__all__ = ["REPLAYS", "batch_object_id", "lookup", "record", "replay_root"]
