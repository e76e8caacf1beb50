"""Compaction of the plain Parquet layout: ``silver/<table>/dt=<dt>/*.parquet``.

:func:`compact_partition` merges the partition's files into one
``part-compact-<hash>.parquet`` (``<hash>`` is fixed by the set of input names, so a rerun
writes the same name) with an added ``_ingested_at`` column (the input object's
last-modified time; rows already compacted keep theirs). The names of everything it
merged are stored in the new file's Parquet key-value metadata (``lakeline.compacted_from``).

Order and visibility window
    1. the new file is written to scratch space and put into the partition atomically;
    2. the merged inputs are deleted.
    Readers glob ``*.parquet`` in the partition, so they never see *neither* (the rows are
    always in at least one listed file), but between steps 1 and 2 a reader that lists the
    partition can see *both* the compacted file and (some of) its inputs, i.e. duplicate
    rows. The window is a few milliseconds locally (one unlink per input) and one
    ``DeleteObject`` per input on S3. A plain object-store layout cannot swap several files
    atomically; tables that need snapshot isolation belong in Iceberg
    (:mod:`lakeline.tables.iceberg`). A crash between 1 and 2 leaves the duplicates in place
    until the next :func:`compact_partition`, which repairs them (below).

Deterministic transform names and redelivery
    The transform stage writes ``part-<object_id>-c<chunk>[-i].parquet``: a redelivered chunk
    rewrites the same names. If that happens *after* the chunk's file was compacted, the
    re-created file duplicates rows already inside the compacted file. Two defences:

    - files younger than ``min_age_seconds`` (default: the queue visibility timeout) are not
      compacted, so a chunk still in flight is left alone;
    - any file whose name is listed in ``lakeline.compacted_from`` of a compacted file in the
      same partition is a known duplicate (a redelivered chunk, or a leftover of a crash
      between steps 1 and 2) and the next compaction deletes it without merging it again
      (reported as ``duplicates_dropped``). Until that compaction runs, readers see the
      duplicates.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from lakeline.errors import ConfigError
from lakeline.faults import crash_point
from lakeline.lake import Lake
from lakeline.ports.objectstore import ObjectInfo

ZONE = "silver"
INGESTED_AT = "_ingested_at"
META_KEY = b"lakeline.compacted_from"
COMPACT_PREFIX = "part-compact-"


def _name(key: str) -> str:
    return key.rsplit("/", 1)[-1]


def _compacted_from(data: bytes) -> list[str]:
    meta = pq.read_metadata(io.BytesIO(data)).metadata or {}
    raw = meta.get(META_KEY)
    return list(orjson.loads(raw)) if raw else []


def compact_partition(
    lake: Lake, table_dir: str, dt: str, *, min_age_seconds: float | None = None,
) -> dict[str, Any]:
    """Merge ``silver/<table_dir>/dt=<dt>/*.parquet`` into one file; see the module docstring.

    Returns ``{"partition", "files_before", "files_after", "merged", "duplicates_dropped",
    "skipped_young", "rows", "file"}``.
    """
    table_dir = table_dir.strip("/")
    if not table_dir or not dt or "/" in dt:
        raise ConfigError(f"bad partition {table_dir!r} dt={dt!r}")
    if min_age_seconds is None:
        min_age_seconds = float(lake.settings.queue.visibility_timeout)
    store = lake.store
    prefix = f"{table_dir}/dt={dt}/"
    infos = [i for i in store.list(ZONE, prefix)
             if i.key.endswith(".parquet") and "/" not in i.key[len(prefix):]]
    now = datetime.now(UTC)
    report: dict[str, Any] = {"partition": prefix, "files_before": len(infos), "files_after": len(infos),
                              "merged": 0, "duplicates_dropped": 0, "skipped_young": 0, "rows": 0,
                              "file": None}
    blobs: dict[str, bytes] = {}
    covered: set[str] = set()  # names some compacted file already holds
    for info in infos:
        if _name(info.key).startswith(COMPACT_PREFIX):
            blobs[info.key] = store.get(ZONE, info.key)
            covered.update(_compacted_from(blobs[info.key]))
    duplicates = [i for i in infos if _name(i.key) in covered]
    live = [i for i in infos if _name(i.key) not in covered]
    young = [i for i in live if (now - i.last_modified).total_seconds() < min_age_seconds]
    inputs = [i for i in live if i not in young]
    report["skipped_young"] = len(young)
    for info in duplicates:  # safe: their rows are in a compacted file that stays
        store.delete(ZONE, info.key)
    report["duplicates_dropped"] = len(duplicates)
    if len(inputs) < 2:
        report["files_after"] = len(infos) - len(duplicates)
        report["rows"] = sum(_rows(blobs.get(i.key) or store.get(ZONE, i.key)) for i in inputs + young)
        return report
    tables: list[pa.Table] = []
    sources: set[str] = set()
    for info in inputs:
        data = blobs.get(info.key) or store.get(ZONE, info.key)
        t = pq.read_table(io.BytesIO(data))
        if _name(info.key).startswith(COMPACT_PREFIX):
            sources.update(_compacted_from(data))
        elif INGESTED_AT not in t.column_names:
            t = t.append_column(INGESTED_AT, pa.array([_ts(info)] * t.num_rows, pa.timestamp("us", tz="UTC")))
        sources.add(_name(info.key))
        tables.append(t)
    merged = pa.concat_tables(tables, promote_options="permissive")
    digest = hashlib.sha256("\n".join(sorted(sources)).encode()).hexdigest()[:20]
    key = f"{prefix}{COMPACT_PREFIX}{digest}.parquet"
    meta = dict(merged.schema.metadata or {})
    meta[META_KEY] = orjson.dumps(sorted(sources))
    merged = merged.replace_schema_metadata(meta)
    fd, tmp = tempfile.mkstemp(suffix=".parquet", dir=lake.work_dir)
    os.close(fd)
    try:
        pq.write_table(merged, tmp, compression="zstd")
        store.put_file(ZONE, key, Path(tmp), move=True)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    crash_point("parquet_compact.after_put")
    for info in inputs:
        if info.key != key:
            store.delete(ZONE, info.key)
    report.update({"merged": len(inputs), "rows": merged.num_rows + sum(
        _rows(store.get(ZONE, i.key)) for i in young), "file": key,
        "files_after": 1 + len(young)})
    return report


def _ts(info: ObjectInfo) -> datetime:
    return info.last_modified.astimezone(UTC)


def _rows(data: bytes) -> int:
    return int(pq.read_metadata(io.BytesIO(data)).num_rows)


__all__ = ["COMPACT_PREFIX", "INGESTED_AT", "compact_partition"]
