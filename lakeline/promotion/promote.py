"""Promotion of a complete silver run into ``current/`` (specs §1, seed 000).

Layout of one partition (``<prefix>/year=YYYY/month=MM/schema_v=<v>``)::

    run_id=<run_id>/part-00000.parquet, _SUCCESS      immutable run folders
    current/part-00000-<run_id>.parquet               the promoted run's files
    _LATEST.json                                      the pointer: which run is current

**Why a pointer.** Object stores cannot rename a directory, so ``current/`` cannot be swapped
atomically. Promotion therefore never overwrites a file a reader may be using:

1. copy the run's Parquet files into ``current/`` under names that carry the run id;
2. write ``_LATEST.json`` (one atomic PUT) naming the run and listing exactly its files in
   ``current/`` — this is the commit point;
3. delete the previous run's files from ``current/``, so it again holds exactly one run.

A run that fills several partitions makes step 1 for all of them (holding every partition's
lease, taken in partition order) before any step 2: a copy that fails moves no pointer, and
the copies it left in ``current/`` (named by the run id, listed by no pointer) are replaced or
deleted by the next promotion.

Readers resolve ``current/`` *through* the pointer (:func:`current_files`): read
``_LATEST.json``, then read only the files it lists. They never see two runs mixed, and never
an empty ``current/`` — before step 2 they read the old run, after it the new one. (A reader
that resolved the old pointer just before a flip may find its files deleted by step 3: it
resolves again.) A glob over ``current/*.parquet`` does not have this guarantee.

**Concurrency.** Each partition is promoted under a lease: a state item in table
``promotion_locks`` taken with a conditional put (``if_absent``, with a TTL so a crashed
promoter's lease expires). A second promoter waits for the lease, then finds the partition
already moved on. Before the pointer flips, the holder renews its lease and advances the
partition's record in table ``promotions`` by compare-and-swap (``expected_version``); if
either condition fails (its lease expired and someone else took over) it stops without
writing the pointer. Without ``run_key`` a promotion never replaces a newer run it did not
see at discovery time (it reports ``superseded``).

Output on success: the specs' fields for the newest partition the run wrote, the caller's
``glue_job_run_id``, ``execution_arn`` and ``execution_start_time`` (null when not given), plus
``partitions`` (one entry per partition, each with ``action`` = ``promoted`` | ``noop`` |
``superseded``) and ``noop`` (true when nothing changed: the run was already current).
Errors: ``{"status": "error", "code": ..., "reason": ...}`` — codes ``INVALID_EVENT``,
``BUCKET_MISMATCH``, ``RUN_NOT_FOUND``, ``RUN_INCOMPLETE``, ``INVALID_MARKER``,
``NO_COMPLETED_RUN``, ``NO_PARQUET_FILES``, ``INVALID_PARQUET``, ``LOCKED``, ``LOST_LOCK``,
``CONFLICT``.

Runs lakeline did not write (Glue / Spark, empty ``_SUCCESS``) promote the same way; their
row counts in ``_LATEST.json`` come from the Parquet footers (``metrics_source: "files"``,
quarantined / condemned ``null``).
"""

from __future__ import annotations

import contextlib
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from lakeline.errors import ConditionFailed, NotFoundError, error_code
from lakeline.lake import Lake
from lakeline.log import get
from lakeline.promotion.parquet_rows import ParquetFooterError
from lakeline.promotion.runs import SUCCESS, RunFolder, RunInfo, iso, list_runs, measure
from lakeline.promotion.selection import PromotionError, select_run

LATEST = "_LATEST.json"
CURRENT = "current"
PROMOTIONS = "promotions"
LOCKS = "promotion_locks"
_log = get(__name__)


#: the caller's trace ids (seed 000: logged and written into _LATEST.json, and echoed in the output)
_TRACE = ("glue_job_run_id", "execution_arn", "execution_start_time")
__all__ = ["PromotionError", "current_files", "promote", "read_latest"]


def promote(
    lake: Lake, event: dict[str, Any], *, lock_seconds: float = 300.0, wait_seconds: float = 60.0
) -> dict[str, Any]:
    """Promote one complete run (``event["run_key"]``, else the newest) into ``current/``.

    ``event``: ``silver_prefix`` and ``schema_version`` (required); ``run_key``,
    ``glue_job_run_id``, ``execution_arn``, ``execution_start_time`` and ``silver_bucket``
    (checked against the lake's silver bucket) are optional.
    """
    promoted: list[dict[str, Any]] = []
    try:
        prefix, version = _check_event(lake, event)
        runs = list_runs(lake, prefix, schema_version=version)
        run = select_run(runs, prefix, version, event.get("run_key"), promotable=True)
        empty = [f.partition for f in run.folders if not f.parquet]
        if empty:
            raise PromotionError("NO_PARQUET_FILES",
                                 f"run {run.run_id} has no Parquet files in " + ", ".join(empty))
        run = measure(lake, run)
        staged: list[_Staged] = []
        try:
            # every partition's copies first, then the pointers: a copy that fails (a full
            # disk, a throttled store) leaves every _LATEST.json of the run where it was
            for folder in sorted(run.folders, key=lambda f: f.partition):
                staged.append(_stage_partition(lake, run, folder, event, lock_seconds, wait_seconds))
            for step in staged:
                promoted.append(_flip_partition(lake, run, step, event, lock_seconds))
        finally:
            for step in staged:
                _release(lake, step.partition, step.lease)
    except (PromotionError, NotFoundError, ParquetFooterError) as exc:
        # expected refusals (selection, leases, unreadable files): the error status of specs §1
        code, reason = error_code(exc), str(exc)
        _log.warning("promotion failed: %s", reason, extra={"data": {"code": code}})
        out: dict[str, Any] = {"status": "error", "code": code, "reason": reason}
        if promoted:
            out["partitions"] = promoted
        return out
    top = dict(promoted[-1])
    for name in ("action", "partition", "partition_rows", "current_run_id"):
        top.pop(name, None)
    result = {"status": "success", **top, "noop": all(p["action"] != "promoted" for p in promoted),
              **{k: event.get(k) for k in _TRACE}, "partitions": promoted}
    _log.info("promoted run %s", run.run_id, extra={"data": {
        "run_id": run.run_id, "glue_job_run_id": event.get("glue_job_run_id"),
        "execution_arn": event.get("execution_arn"), "noop": result["noop"]}})
    return result


def current_files(
    lake: Lake, table_prefix: str, schema_version: str = "v1"
) -> list[str]:
    """Silver keys of the promoted files of every partition of ``table_prefix``, resolved
    through each partition's ``_LATEST.json`` (so one run per partition, never a mix)."""
    out: list[str] = []
    suffix = f"/schema_v={schema_version}/{LATEST}"
    for info in lake.store.list("silver", table_prefix.strip("/") + "/"):
        if info.key.endswith(suffix) and "/run_id=" not in info.key:
            pointer = read_latest(lake, info.key.removesuffix("/" + LATEST))
            if pointer is not None:
                out.extend(str(k) for k in pointer.get("files", []))
    return sorted(out)


def read_latest(lake: Lake, partition: str) -> dict[str, Any] | None:
    """The ``_LATEST.json`` of ``partition`` (``<prefix>/year=/month=/schema_v=``), or None."""
    try:
        data: dict[str, Any] = orjson.loads(lake.store.get("silver", f"{partition}/{LATEST}"))
    except (NotFoundError, orjson.JSONDecodeError):
        return None
    return data


# ---- selection ----------------------------------------------------------------------------


def _check_event(lake: Lake, event: dict[str, Any]) -> tuple[str, str]:
    if not isinstance(event, dict):
        raise PromotionError("INVALID_EVENT", "the event must be a JSON object")
    prefix, version = event.get("silver_prefix"), event.get("schema_version")
    if not isinstance(prefix, str) or not prefix.strip("/"):
        raise PromotionError("INVALID_EVENT", "silver_prefix is required")
    if not isinstance(version, str) or not version or "/" in version:
        raise PromotionError("INVALID_EVENT", "schema_version is required (e.g. v1)")
    for name in ("run_key", "glue_job_run_id", "execution_arn", "execution_start_time", "silver_bucket"):
        if event.get(name) is not None and not isinstance(event[name], str):
            raise PromotionError("INVALID_EVENT", f"{name} must be a string")
    bucket = event.get("silver_bucket")
    if bucket and bucket != lake.store.bucket("silver"):
        ours = lake.store.bucket("silver")
        raise PromotionError("BUCKET_MISMATCH",
                             f"silver_bucket {bucket} is not this lake's silver bucket {ours}")
    return prefix.strip("/"), version


# ---- one partition ------------------------------------------------------------------------


@dataclass
class _Staged:
    """A partition whose lease is held and whose files are copied into ``current/``, waiting
    for its pointer flip (``outcome`` is set instead when there is nothing to flip)."""

    partition: str
    lease: tuple[str, int]
    base: dict[str, Any]
    files: list[str] = field(default_factory=list)
    outcome: dict[str, Any] | None = None


def _stage_partition(
    lake: Lake, run: RunInfo, folder: RunFolder, event: dict[str, Any], lock_seconds: float,
    wait_seconds: float,
) -> _Staged:
    """Take the partition's lease and copy the run's files into ``current/`` (step 1)."""
    partition, store = folder.partition, lake.store
    current = f"{partition}/{CURRENT}"
    lease = _acquire(lake, partition, lock_seconds, wait_seconds)
    try:
        latest = read_latest(lake, partition)
        base = {"run_id": run.run_id, "output_prefix": folder.prefix, "current_prefix": current,
                "latest_json": f"{partition}/{LATEST}", "partition": partition,
                "partition_rows": _partition_rows(lake, run, folder)}
        staged = _Staged(partition, lease, base)
        if latest is not None and latest.get("run_id") == run.run_id and all(
                store.exists("silver", k) for k in latest.get("files", [])):
            staged.outcome = dict(base, promoted_at=latest.get("promoted_at"), files_copied=0, action="noop",
                                  current_run_id=run.run_id)
            return staged
        if latest is not None and not event.get("run_key") and _newer(latest, run):
            staged.outcome = dict(base, promoted_at=latest.get("promoted_at"), files_copied=0,
                                  action="superseded", current_run_id=latest.get("run_id"))
            return staged
        for src in folder.parquet:
            name = src.rsplit("/", 1)[-1].removesuffix(".parquet")
            dst = f"{current}/{name}-{run.run_id}.parquet"
            store.copy("silver", src, "silver", dst)
            staged.files.append(dst)
        return staged
    except BaseException:
        _release(lake, partition, lease)
        raise


def _flip_partition(
    lake: Lake, run: RunInfo, staged: _Staged, event: dict[str, Any], lock_seconds: float,
) -> dict[str, Any]:
    """Write the partition's ``_LATEST.json`` (step 2, the commit point), then drop the
    previous run's files from ``current/`` (step 3)."""
    if staged.outcome is not None:
        return staged.outcome
    partition, store, files = staged.partition, lake.store, staged.files
    current = f"{partition}/{CURRENT}"
    promoted_at = iso(datetime.now(UTC))
    metrics = run.metrics or {}
    pointer = {
        "run_id": run.run_id, "promoted_at": promoted_at, "output_prefix": staged.base["output_prefix"],
        "current_prefix": current, "files_copied": len(files), "files": files,
        "glue_job_run_id": event.get("glue_job_run_id"), "execution_arn": event.get("execution_arn"),
        "execution_start_time": event.get("execution_start_time"),
        **{k: metrics.get(k) for k in ("input_rows", "valid_rows", "quarantined_rows", "condemned_rows")},
        "metrics_source": run.metrics_source,
        "schema_version": partition.rsplit("schema_v=", 1)[-1],
        "run_completed_at": None if run.completed_at is None else iso(run.completed_at),
    }
    staged.lease = _renew(lake, partition, staged.lease, lock_seconds)
    _advance(lake, partition, pointer)
    store.put("silver", f"{partition}/{LATEST}", orjson.dumps(pointer, option=orjson.OPT_INDENT_2))
    keep = set(files)
    for info in list(store.list("silver", current + "/")):
        if info.key not in keep:
            store.delete("silver", info.key)
    return dict(staged.base, promoted_at=promoted_at, files_copied=len(files), action="promoted",
                current_run_id=run.run_id)


def _promote_partition(
    lake: Lake, run: RunInfo, folder: RunFolder, event: dict[str, Any], lock_seconds: float,
    wait_seconds: float,
) -> dict[str, Any]:
    """Promote one partition on its own (copies, pointer, cleanup, under its lease)."""
    staged = _stage_partition(lake, run, folder, event, lock_seconds, wait_seconds)
    try:
        return _flip_partition(lake, run, staged, event, lock_seconds)
    finally:
        _release(lake, staged.partition, staged.lease)


def _partition_rows(lake: Lake, run: RunInfo, folder: RunFolder) -> int | None:
    """The folder's row count: counted from the files for an empty marker, else the marker's."""
    if run.metrics_source == "files":
        return int((run.metrics or {}).get("rows_by_partition", {}).get(folder.partition, 0))
    try:
        data = orjson.loads(lake.store.get("silver", f"{folder.prefix}/{SUCCESS}"))
    except (NotFoundError, orjson.JSONDecodeError):
        return None
    rows = data.get("partition_rows") if isinstance(data, dict) else None
    return None if rows is None else int(rows)


def _newer(latest: dict[str, Any], run: RunInfo) -> bool:
    """True if the current run completed after ``run`` (ties: the greater run id)."""
    theirs = (str(latest.get("run_completed_at") or ""), str(latest.get("run_id") or ""))
    ours = ("" if run.completed_at is None else iso(run.completed_at), run.run_id)
    return theirs > ours


def _acquire(lake: Lake, partition: str, lock_seconds: float, wait_seconds: float) -> tuple[str, int]:
    """Take the partition's lease (waiting up to ``wait_seconds``); returns (token, version)."""
    token = uuid.uuid4().hex
    deadline = time.monotonic() + wait_seconds
    delay = 0.01
    while True:
        try:
            item = lake.state.put(LOCKS, partition, {"token": token, "at": time.time()},
                                  expires_at=time.time() + lock_seconds, if_absent=True)
            return token, item.version
        except ConditionFailed:
            if time.monotonic() >= deadline:
                raise PromotionError("LOCKED", f"another promotion of {partition} holds its lease") from None
            time.sleep(delay)
            delay = min(delay * 2, 0.2)


def _renew(lake: Lake, partition: str, lease: tuple[str, int], lock_seconds: float) -> tuple[str, int]:
    token, version = lease
    try:
        item = lake.state.put(LOCKS, partition, {"token": token, "at": time.time()},
                              expires_at=time.time() + lock_seconds, expected_version=version)
    except ConditionFailed:
        raise PromotionError("LOST_LOCK",
                             f"the lease on {partition} expired before the pointer flip") from None
    return token, item.version


def _advance(lake: Lake, partition: str, pointer: dict[str, Any]) -> None:
    """Compare-and-swap the partition's promotion record to the new run (fencing)."""
    record = {"run_id": pointer["run_id"], "promoted_at": pointer["promoted_at"], "files": pointer["files"]}
    current = lake.state.get(PROMOTIONS, partition)
    try:
        lake.state.replace(PROMOTIONS, partition, record, current)
    except ConditionFailed:
        raise PromotionError("CONFLICT", f"{partition} was promoted concurrently; nothing flipped") from None


def _release(lake: Lake, partition: str, lease: tuple[str, int]) -> None:
    with contextlib.suppress(ConditionFailed):  # expired and taken over: not ours any more
        lake.state.delete(LOCKS, partition, expected_version=lease[1])
