"""Iceberg table maintenance: compaction, snapshot expiry, orphan file removal.

All three are safe to run while writers append:

- :func:`compact` commits one snapshot (operation ``overwrite``, summary
  ``lakeline.operation=compact``) that removes small data files and adds their rows as
  larger files. The commit asserts the table did not move since planning; a concurrent append
  makes it fail and the compaction is re-planned (bounded attempts).
- :func:`expire_snapshots` removes snapshots older than a timestamp; branch and tag heads (the
  current snapshot included) are never removed. **Batch ids** used by
  :func:`lakeline.tables.iceberg.append_batch` for exactly-once live in snapshot summaries:
  expiring a snapshot forgets its batch id, so keep snapshots longer than a batch can be
  redelivered. Expiry does not delete files; run :func:`remove_orphan_files` afterwards.
- :func:`remove_orphan_files` deletes files under the table location that no metadata file,
  snapshot, manifest or statistics file of the table references and whose modification time
  is older than ``older_than``. The age is the safety margin for writers in flight: a writer
  writes data and manifests before it commits, so those files are unreferenced until then.
  Use at least the longest plausible write (hours, not seconds) in production.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from lakeline.errors import ConfigError, TransientError
from lakeline.lake import Lake
from lakeline.tables.iceberg import backoff, load_table

if TYPE_CHECKING:
    from pyiceberg.table import Table

DEFAULT_TARGET_FILE_BYTES = 128 * 1024 * 1024
MAX_ATTEMPTS = 10


# ---- compaction ---------------------------------------------------------------------------

def _partition_key(data_file: Any) -> tuple[Any, ...]:
    part = data_file.partition
    return (data_file.spec_id, *(part[i] for i in range(len(part))))


def _plan(table: Table, target_file_bytes: int) -> tuple[int, list[list[Any]]]:
    """(data files in the current snapshot, bins of small files to merge, ≥ 2 files each)."""
    groups: dict[tuple[Any, ...], list[Any]] = {}
    total = 0
    for task in table.scan().plan_files():
        total += 1
        if task.delete_files:  # merge-on-read deletes apply to this file: leave it alone
            continue
        f = task.file
        if f.file_size_in_bytes >= target_file_bytes:
            continue
        groups.setdefault(_partition_key(f), []).append(f)
    bins: list[list[Any]] = []
    for files in groups.values():
        current: list[Any] = []
        size = 0
        for f in sorted(files, key=lambda d: d.file_path):
            if current and size + f.file_size_in_bytes > target_file_bytes:
                bins.append(current)
                current, size = [], 0
            current.append(f)
            size += f.file_size_in_bytes
        bins.append(current)
    return total, [b for b in bins if len(b) >= 2]


def _rewrite(table: Table, bins: list[list[Any]]) -> None:
    from pyiceberg.expressions import AlwaysTrue
    from pyiceberg.io.pyarrow import ArrowScan, _dataframe_to_data_files
    from pyiceberg.table import FileScanTask

    with table.transaction() as tx:
        meta = tx.table_metadata
        # one output file per bin: a bin is already at most the target size on disk, and
        # pyiceberg's size property counts uncompressed Arrow bytes (several times larger)
        big = meta.model_copy(update={"properties": {
            **meta.properties, "write.target-file-size-bytes": str(2 ** 62)}})
        update = tx.update_snapshot(snapshot_properties={"lakeline.operation": "compact"})
        with update.overwrite() as producer:
            for files in bins:
                rows = ArrowScan(meta, table.io, meta.schema(), AlwaysTrue()).to_table(
                    [FileScanTask(f) for f in files])
                for f in files:
                    producer.delete_data_file(f)
                for new in _dataframe_to_data_files(big, rows, table.io, write_uuid=producer.commit_uuid):
                    producer.append_data_file(new)


def compact(
    lake: Lake, identifier: str, target_file_bytes: int = DEFAULT_TARGET_FILE_BYTES,
) -> dict[str, Any]:
    """Merge small data files (per partition) into files of about ``target_file_bytes``.

    Returns ``{"files_before", "files_after", "rewritten", "bins", "snapshot_id", "rows"}``
    (``rows`` = rows in the table after, which compaction never changes).
    """
    from pyiceberg.exceptions import CommitFailedException

    if target_file_bytes < 1:
        raise ConfigError("target_file_bytes must be >= 1")
    table = load_table(lake, identifier)
    for attempt in range(MAX_ATTEMPTS):
        if attempt:
            time.sleep(backoff(attempt - 1))
            table.refresh()
        before, bins = _plan(table, target_file_bytes)
        if not bins:
            snap = table.current_snapshot()
            return {"files_before": before, "files_after": before, "rewritten": 0, "bins": 0,
                    "snapshot_id": snap.snapshot_id if snap else None, "rows": _rows(table)}
        try:
            _rewrite(table, bins)
        except CommitFailedException:
            continue
        table.refresh()
        after = sum(1 for _ in table.scan().plan_files())
        snap = table.current_snapshot()
        return {"files_before": before, "files_after": after, "rewritten": sum(len(b) for b in bins),
                "bins": len(bins), "snapshot_id": snap.snapshot_id if snap else None, "rows": _rows(table)}
    raise TransientError(f"{identifier}: compaction lost to concurrent commits {MAX_ATTEMPTS} times")


def _rows(table: Table) -> int:
    snap = table.current_snapshot()
    if snap is None or snap.summary is None:
        return 0
    return int(snap.summary.additional_properties.get("total-records", 0))


# ---- snapshot expiry -------------------------------------------------------------------------

def expire_snapshots(lake: Lake, identifier: str, older_than: datetime) -> int:
    """Remove snapshots older than ``older_than`` (never a branch/tag head); return how many."""
    from pyiceberg.exceptions import CommitFailedException

    if older_than.tzinfo is None:
        older_than = older_than.replace(tzinfo=UTC)
    table = load_table(lake, identifier)
    for attempt in range(MAX_ATTEMPTS):
        if attempt:
            time.sleep(backoff(attempt - 1))
            table.refresh()
        before = {s.snapshot_id for s in table.snapshots()}
        expire = table.maintenance.expire_snapshots().older_than(older_than)
        if not expire._snapshot_ids_to_expire:
            return 0
        try:
            expire.commit()
        except CommitFailedException:
            continue
        table.refresh()
        return len(before - {s.snapshot_id for s in table.snapshots()})
    raise TransientError(f"{identifier}: snapshot expiry lost to concurrent commits {MAX_ATTEMPTS} times")


# ---- orphan files ----------------------------------------------------------------------------

def _norm(location: str) -> str:
    """A location without its scheme, as the filesystem lists it (``/abs/path``, ``bucket/key``)."""
    from pyiceberg.io.pyarrow import PyArrowFileIO

    return PyArrowFileIO.parse_location(location)[2]


def referenced_files(table: Table) -> set[str]:
    """Every file the table's metadata reaches (normalised with :func:`_norm`)."""
    meta = table.metadata
    io = table.io
    refs: set[str] = {table.metadata_location}
    refs.update(entry.metadata_file for entry in meta.metadata_log)
    refs.update(s.statistics_path for s in meta.statistics)
    refs.update(s.statistics_path for s in meta.partition_statistics)
    seen_manifests: set[str] = set()
    for snap in meta.snapshots:
        refs.add(snap.manifest_list)
        for manifest in snap.manifests(io):
            if manifest.manifest_path in seen_manifests:
                continue
            seen_manifests.add(manifest.manifest_path)
            refs.add(manifest.manifest_path)
            # DELETED entries name files that this snapshot no longer reads (only an expired
            # ancestor did), so they do not keep a file alive
            for entry in manifest.fetch_manifest_entry(io, discard_deleted=True):
                refs.add(entry.data_file.file_path)
    return {_norm(r) for r in refs}


def remove_orphan_files(
    lake: Lake, identifier: str, older_than: datetime, *, dry_run: bool = False,
) -> list[str]:
    """Delete unreferenced files under the table location modified before ``older_than``.

    Returns the deleted locations (with their scheme), sorted. ``dry_run`` only lists them.
    """
    from pyarrow.fs import FileSelector, FileType
    from pyiceberg.io.pyarrow import PyArrowFileIO

    if older_than.tzinfo is None:
        older_than = older_than.replace(tzinfo=UTC)
    table = load_table(lake, identifier)
    io = table.io
    if not isinstance(io, PyArrowFileIO):
        raise ConfigError(
            f"{identifier}: orphan removal needs pyiceberg's PyArrowFileIO, not {type(io).__name__}")
    scheme, netloc, root = PyArrowFileIO.parse_location(table.location())
    fs = io.fs_by_scheme(scheme, netloc)
    listed = fs.get_file_info(FileSelector(root.rstrip("/"), recursive=True, allow_not_found=True))
    refs = referenced_files(table)
    out: list[str] = []
    for info in listed:
        if info.type != FileType.File or info.path in refs:
            continue
        mtime = info.mtime
        if mtime is None:
            continue
        if mtime.tzinfo is None:
            mtime = mtime.replace(tzinfo=UTC)
        if mtime >= older_than:
            continue
        location = f"{scheme}://{info.path}" if scheme != "file" else f"file://{info.path}"
        if not dry_run:
            fs.delete_file(info.path)
        out.append(location)
    return sorted(out)


__all__ = ["DEFAULT_TARGET_FILE_BYTES", "compact", "expire_snapshots", "referenced_files",
           "remove_orphan_files"]
