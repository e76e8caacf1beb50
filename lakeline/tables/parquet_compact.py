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

    Every file left alone is listed in the report's ``skipped`` with its reason (``too
    young: modified 12 s ago, min age 300 s``), and ``reason`` says why nothing was merged.

Output prefix (the seed's "safe outputs to a separate prefix")
    ``output_prefix="silver_compacted"`` writes the merged file to
    ``silver/silver_compacted/<table>/dt=<dt>/`` and deletes nothing: the table is untouched,
    so there is no window at all; the output is a recompute to inspect or swap in by hand.
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

from lakeline.errors import ConfigError, InvalidKeyError, NotFoundError, UsageError
from lakeline.faults import crash_point
from lakeline.lake import Lake
from lakeline.ports.objectstore import ObjectInfo, validate_key

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
    output_prefix: str | None = None,
) -> dict[str, Any]:
    """Merge ``silver/<table_dir>/dt=<dt>/*.parquet`` into one file; see the module docstring.

    With ``output_prefix`` (the seed's ``GLUE_OUTPUT_PREFIX``, e.g. ``silver_compacted``) the
    merged file goes to ``silver/<output_prefix>/<table_dir>/dt=<dt>/`` and the partition is
    left exactly as it was (nothing deleted: a safe recompute beside the table).

    Returns ``{"partition", "files_before", "files_after", "merged", "duplicates_dropped",
    "skipped_young", "skipped", "rows", "file", "reason"}``: ``skipped`` names each file left
    alone and why (``too young: modified 12 s ago, min age 300 s``); ``reason`` says why
    nothing was merged (None when something was). :class:`NotFoundError` when the partition
    holds no Parquet file.
    """
    table_dir = table_dir.strip("/")
    if not table_dir or not dt or "/" in dt:
        raise ConfigError(f"bad partition {table_dir!r} dt={dt!r}")
    out_dir = _output_dir(table_dir, dt, output_prefix)
    if min_age_seconds is None:
        min_age_seconds = float(lake.settings.queue.visibility_timeout)
    store = lake.store
    prefix = f"{table_dir}/dt={dt}/"
    infos = [i for i in store.list(ZONE, prefix)
             if i.key.endswith(".parquet") and "/" not in i.key[len(prefix):]]
    if not infos:
        raise NotFoundError(f"silver/{prefix} holds no Parquet files; partitions of {table_dir}: "
                            f"{_partitions(lake, table_dir) or 'none'}")
    now = datetime.now(UTC)
    report: dict[str, Any] = {"partition": prefix, "files_before": len(infos), "files_after": len(infos),
                              "merged": 0, "duplicates_dropped": 0, "skipped_young": 0, "skipped": [],
                              "rows": 0, "file": None, "reason": None}
    if out_dir is not None:
        report["output_prefix"] = out_dir
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
    report["skipped"] = [{"file": _name(i.key), "reason": (
        f"too young: modified {(now - i.last_modified).total_seconds():.0f} s ago, "
        f"min age {min_age_seconds:.0f} s")} for i in young]
    if out_dir is None:
        for info in duplicates:  # safe: their rows are in a compacted file that stays
            store.delete(ZONE, info.key)
        report["duplicates_dropped"] = len(duplicates)
    needed = 1 if out_dir is not None else 2  # in place, one file is compacted already
    if len(inputs) < needed:
        report["files_after"] = len(infos) - report["duplicates_dropped"]
        report["rows"] = sum(_rows(blobs.get(i.key) or store.get(ZONE, i.key)) for i in inputs + young)
        report["reason"] = _why_nothing(len(inputs), needed, len(young), min_age_seconds)
        if len(inputs) == 1 and _name(inputs[0].key).startswith(COMPACT_PREFIX):
            report["skipped"].append({"file": _name(inputs[0].key), "reason": "already compacted"})
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
    key = f"{out_dir or prefix}{COMPACT_PREFIX}{digest}.parquet"
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
    if out_dir is not None:  # the partition stays as it was
        report.update({"merged": len(inputs), "rows": merged.num_rows, "file": key})
        return report
    crash_point("parquet_compact.after_put")
    for info in inputs:
        if info.key != key:
            store.delete(ZONE, info.key)
    report.update({"merged": len(inputs), "rows": merged.num_rows + sum(
        _rows(store.get(ZONE, i.key)) for i in young), "file": key,
        "files_after": 1 + len(young)})
    return report


def _output_dir(table_dir: str, dt: str, output_prefix: str | None) -> str | None:
    """``<output_prefix>/<table_dir>/dt=<dt>/``; :class:`UsageError` for a prefix that escapes
    the silver zone or lies inside the table (its readers would see the merged rows twice)."""
    if output_prefix is None:
        return None
    text = output_prefix.rstrip("/")
    try:
        validate_key(text)
    except InvalidKeyError as exc:
        raise UsageError(f"output prefix {output_prefix!r} escapes the silver zone: {exc}") from None
    if text == table_dir or text.startswith(f"{table_dir}/"):
        raise UsageError(f"output prefix {output_prefix!r} is inside table {table_dir}: its readers would "
                         "see the compacted rows beside the originals; use a prefix of its own "
                         "(e.g. silver_compacted)")
    return f"{text}/{table_dir}/dt={dt}/"


def _partitions(lake: Lake, table_dir: str) -> str:
    """The table's ``dt`` partitions that hold Parquet files (at most 10 shown)."""
    listed = lake.store.list(ZONE, f"{table_dir}/dt=")
    skip = len(table_dir) + 1
    found = sorted({i.key[skip:].split("/", 1)[0] for i in listed if i.key.endswith(".parquet")})
    shown = ", ".join(found[:10])
    return shown + (f" … ({len(found)} in all)" if len(found) > 10 else "")


def _why_nothing(ready: int, needed: int, young: int, min_age: float) -> str:
    """Why a compaction merged nothing, in words."""
    parts = [f"{ready} file(s) old enough to merge, {needed} needed"]
    if young:
        parts.append(f"{young} too young (min age {min_age:.0f} s; see skipped)")
    return "nothing merged: " + "; ".join(parts)


def _ts(info: ObjectInfo) -> datetime:
    return info.last_modified.astimezone(UTC)


def _rows(data: bytes) -> int:
    return int(pq.read_metadata(io.BytesIO(data)).num_rows)


__all__ = ["COMPACT_PREFIX", "INGESTED_AT", "compact_partition"]
