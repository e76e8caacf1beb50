"""The retail job: land files, trigger runs, and append each orders file to Iceberg.

- :func:`land_retail` stores a local CSV under its immutable landing key, writes its run-log
  item (duplicates ignored) and, for an orders file, requests a run.
- :func:`request_run` sets the ``pending`` flag (the "new orders file" trigger; the daily
  01:15 UTC schedule calls :func:`run_retail` directly).
- :func:`run_retail` takes the job lease (put-if-absent with a TTL). When another run holds it
  the call returns ``status = "SKIPPED_ACTIVE"`` and the trigger is *coalesced*: the pending flag
  stays set and the running job re-checks it before it finishes — once before releasing the
  lease and once after, so a trigger that saw the lease held is never lost.

A run processes every orders file in the run log that no earlier run finished (state table
``retail_batches``), oldest first: it reads the file, joins the latest customers and products
files, and appends the rows to ``retail_silver.orders_silver`` (``days(order_date)``) with
``batch_id`` = the orders file's ``run_id`` — exactly once, even if a crash hits between the
Iceberg commit and the batch record. Rejects of ``on_violation="quarantine"`` go to
``error/rejects/retail/part-<run_id>.parquet``; with ``"fail"`` the first violation fails the
batch (:class:`~lakeline.errors.DataError`).

Every file is read as text first: gzip (``.gz`` or the gzip magic bytes) is decompressed, so a
gzip file loads exactly like its plain twin. A file that is not readable text at all (a
truncated gzip, UTF-16, binary) is *quarantined*: moved to ``error/objects/<key>`` with its
reason (:func:`~lakeline.stages.quarantine.quarantine_object`: a reject row, the run-log entry
FAILED, a notification), recorded in ``retail_quarantined`` and never retried; it comes back
under ``quarantined`` and the run goes on. An unreadable customers or products file is
skipped for the newest readable one of its source.

A batch that fails (a violation, a failed load) does not stop the others:
it is recorded in ``retail_failed`` (its error, when it first and last failed), notified once
per distinct error, returned under ``failed`` and stays pending — the next run retries it,
and once it loads its failure record is removed (:func:`failures`, :func:`run_log`).
"""

from __future__ import annotations

import contextlib
import hashlib
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Final

import pyarrow.parquet as pq

from lakeline.errors import ConditionFailed, UsageError
from lakeline.lake import Lake
from lakeline.pipelines.retail import lineage, runlog
from lakeline.pipelines.retail.transform import ORDERS_SCHEMA, PIPELINE, OnViolation, transform_orders
from lakeline.ports.state import Item
from lakeline.stages.quarantine import quarantine_object
from lakeline.stages.textinput import UnreadableInput, text_bytes
from lakeline.tables.iceberg import append_batch, ensure_table

__all__ = [
    "BATCHES_TABLE", "FAILED_TABLE", "JOB_TABLE", "LEASE_SECONDS", "PARTITION_BY", "QUARANTINED_TABLE",
    "TABLE", "ZONE", "failures", "land_retail", "pending_batches", "request_run", "run_log", "run_retail",
]

ZONE: Final = "landing"
TABLE: Final = "retail_silver.orders_silver"
PARTITION_BY: Final = [("order_date", "day")]
JOB_TABLE: Final = "retail_job"
BATCHES_TABLE: Final = "retail_batches"
FAILED_TABLE: Final = "retail_failed"
#: landed files that are not readable text, moved to error/objects/ (keyed by run_id)
QUARANTINED_TABLE: Final = "retail_quarantined"
RETRY_COMMAND: Final = "lakeline run"
NOTIFY_SUBJECT: Final = "retail batch failed"
LEASE_KEY: Final = "lease"
PENDING_KEY: Final = "pending"
LAST_RUN_KEY: Final = "last_run"
LEASE_SECONDS: Final = 900.0
_MAX_PASSES: Final = 100


def land_retail(lake: Lake, path: Path, key: str | None = None, today: date | None = None) -> str | None:
    """Land the local file ``path`` (its name starts with the source: ``orders*.csv``…) and log
    the landing. Returns the key, or None when this exact object was landed before.

    Landing keys are immutable: a different file under an existing key is refused.
    """
    if key is None:
        source = next((s for s in runlog.SOURCES if path.name.startswith(s)), None)
        if source is None:
            raise UsageError(f"cannot tell the source of {path.name!r}; name it "
                             f"{'|'.join(runlog.SOURCES)}*.csv or pass key")
        key = runlog.landing_key(source, path.name, today)
    source = runlog.source_of(key)
    data = path.read_bytes()
    if lake.store.exists(ZONE, key):
        info = lake.store.head(ZONE, key)
        if info.etag != hashlib.md5(data, usedforsecurity=False).hexdigest():
            raise UsageError(f"{key} is already landed with other content; landing keys are immutable")
    else:
        info = lake.store.put(ZONE, key, data)
    item = runlog.log_landing(lake.state, bucket=lake.store.bucket(ZONE), key=key, etag=info.etag,
                              size_bytes=info.size)
    if item is None:
        return None
    if source == "orders":
        request_run(lake)
    return key


def request_run(lake: Lake) -> None:
    """Trigger: a run is wanted (coalesced with a run in progress)."""
    lake.state.put(JOB_TABLE, PENDING_KEY, {"requested_at": time.time()})


def pending_batches(lake: Lake) -> list[dict[str, Any]]:
    """Run-log items of orders files no run has finished (nor quarantined), oldest first."""
    done = {i.key for i in lake.state.query(BATCHES_TABLE)} | _quarantined_ids(lake)
    return [i for i in runlog.landings(lake.state, "orders") if i["run_id"] not in done]


def run_retail(lake: Lake, *, on_violation: OnViolation = "fail",
               lease_seconds: float = LEASE_SECONDS) -> dict[str, Any]:
    """Process every pending orders file (see the module docstring). Returns a summary:
    ``status`` (``COMPLETED`` or ``SKIPPED_ACTIVE``), ``batches`` (one dict per loaded file),
    ``failed`` (one dict per file that failed: ``run_id``, ``key``, ``status``, ``error``),
    ``quarantined`` (one dict per unreadable file moved to error/: ``run_id``, ``key``,
    ``source``, ``reason``, ``error``, ``error_key``), ``rows`` appended by this call,
    ``passes`` (1 + coalesced triggers served)."""
    summary: dict[str, Any] = {"status": "SKIPPED_ACTIVE", "batches": [], "failed": [], "quarantined": [],
                               "rows": 0, "passes": 0}
    started = datetime.now(UTC)
    known = _quarantined_ids(lake)
    while True:
        lease = _take_lease(lake, lease_seconds)
        if lease is None:
            return summary
        try:
            while summary["passes"] < _MAX_PASSES:
                _consume_pending(lake)
                summary["passes"] += 1
                tried = {f["run_id"] for f in summary["failed"]}
                for batch in pending_batches(lake):
                    if batch["run_id"] in tried:
                        continue  # failed earlier in this call: the next run retries it
                    lease = _renew_lease(lake, lease, lease_seconds)
                    try:
                        result = _process(lake, batch, on_violation)
                    except UnreadableInput as exc:  # not text at all: out of the way for good
                        _quarantine(lake, batch, exc)
                        continue
                    except Exception as exc:  # one batch's failure must not stop the others
                        summary["failed"].append(_failed(lake, batch, exc))
                        continue
                    summary["batches"].append(result)
                    summary["rows"] += result["rows"] if result["appended"] else 0
                if lake.state.get(JOB_TABLE, PENDING_KEY) is None:
                    break
            summary["status"] = "COMPLETED"
            # the files this call quarantined (orders batches, and customers/products on the way)
            summary["quarantined"] = sorted(
                (dict(i.data) for i in lake.state.query(QUARANTINED_TABLE) if i.key not in known),
                key=lambda q: (str(q.get("quarantined_at")), str(q.get("run_id"))))
            lake.state.put(JOB_TABLE, LAST_RUN_KEY, {
                "started_at": started.isoformat(), "finished_at": datetime.now(UTC).isoformat(),
                "batches": [b["run_id"] for b in summary["batches"]], "rows": summary["rows"],
                "failed": [f["run_id"] for f in summary["failed"]]})
        finally:
            with contextlib.suppress(ConditionFailed):
                lake.state.delete(JOB_TABLE, LEASE_KEY, expected_version=lease.version)
        # a trigger that found the lease held after our last check: serve it now
        if lake.state.get(JOB_TABLE, PENDING_KEY) is None or summary["passes"] >= _MAX_PASSES:
            return summary


def _take_lease(lake: Lake, seconds: float) -> Item | None:
    try:
        return lake.state.put(JOB_TABLE, LEASE_KEY, {"taken_at": time.time()},
                              expires_at=time.time() + seconds, if_absent=True)
    except ConditionFailed:
        return None


def _renew_lease(lake: Lake, lease: Item, seconds: float) -> Item:
    return lake.state.put(JOB_TABLE, LEASE_KEY, dict(lease.data), expires_at=time.time() + seconds,
                          expected_version=lease.version)


def _consume_pending(lake: Lake) -> None:
    flag = lake.state.get(JOB_TABLE, PENDING_KEY)
    if flag is not None:
        with contextlib.suppress(ConditionFailed):
            lake.state.delete(JOB_TABLE, PENDING_KEY, expected_version=flag.version)


def _latest(lake: Lake, source: str) -> tuple[bytes | None, str]:
    """The text of the newest readable ``source`` file (a newer unreadable one is quarantined
    on the way)."""
    skip = _quarantined_ids(lake)
    for item in reversed(runlog.landings(lake.state, source)):
        if item["run_id"] in skip:
            continue
        key = str(item["key"])
        try:
            return text_bytes(lake.store.get(ZONE, key), key), key
        except UnreadableInput as exc:
            _quarantine(lake, item, exc)
    return None, f"{source}.csv"


def _quarantined_ids(lake: Lake) -> set[str]:
    return {i.key for i in lake.state.query(QUARANTINED_TABLE)}


def _quarantine(lake: Lake, item: dict[str, Any], exc: UnreadableInput) -> dict[str, Any]:
    """Move an unreadable landed file to the error zone and record it (never retried)."""
    run_id, key = str(item["run_id"]), str(item["key"])
    if lake.store.exists(ZONE, key):
        done = quarantine_object(lake, pipeline=PIPELINE, key=key, reason=exc.reason, message=str(exc))
    else:  # a crash after the move, before this record: the move is done
        done = {"key": key, "reason": exc.reason, "error": str(exc), "error_key": f"objects/{key}"}
    record = {"run_id": run_id, "key": key, "source": item.get("source"), "status": "FAILED",
              "reason": done["reason"], "error": done["error"], "error_key": done["error_key"],
              "quarantined_at": datetime.now(UTC).isoformat()}
    lake.state.put(QUARANTINED_TABLE, run_id, record)
    if lake.state.get(FAILED_TABLE, run_id) is not None:
        lake.state.delete(FAILED_TABLE, run_id)  # it no longer waits for a retry
    return record


def _process(lake: Lake, batch: dict[str, Any], on_violation: OnViolation) -> dict[str, Any]:

    key, run_id = str(batch["key"]), str(batch["run_id"])
    orders = text_bytes(lake.store.get(ZONE, key), key)  # UnreadableInput: quarantined by the caller
    customers, customers_key = _latest(lake, "customers")
    products, products_key = _latest(lake, "products")
    result = transform_orders(
        orders, key=key, customers=customers, products=products,
        on_violation=on_violation, bucket=str(batch.get("bucket", "")), etag=str(batch.get("etag", "")),
        customers_key=customers_key, products_key=products_key)
    rejects_key = None
    if result.rejects.num_rows:
        rejects_key = f"rejects/{PIPELINE}/part-{run_id}.parquet"
        with tempfile.TemporaryDirectory(dir=lake.work_dir) as tmp:
            path = Path(tmp) / "rejects.parquet"
            pq.write_table(result.rejects, path, compression="zstd")
            lake.store.put_file("error", rejects_key, path, move=True)
    snapshot_id, appended = None, False
    if result.rows:
        ensure_table(lake, TABLE, ORDERS_SCHEMA, PARTITION_BY)
        appended_result = append_batch(lake, TABLE, result.table, run_id)
        snapshot_id, appended = appended_result.snapshot_id, appended_result.appended
    out = {"run_id": run_id, "key": key, "input_rows": result.input_rows, "rows": result.rows,
           "rejected": int(result.rejects.num_rows), "rejects_key": rejects_key,
           "snapshot_id": snapshot_id, "appended": appended,
           "customers_key": customers_key, "products_key": products_key}
    lake.state.put(BATCHES_TABLE, run_id, dict(out, finished_at=datetime.now(UTC).isoformat()))
    if lake.state.get(FAILED_TABLE, run_id) is not None:
        lake.state.delete(FAILED_TABLE, run_id)  # a batch that failed before loaded now
    lineage.retail_batch(lake, batch, out, TABLE)
    return out


def _failed(lake: Lake, batch: dict[str, Any], exc: Exception) -> dict[str, Any]:
    """Record a batch's failure (kept until the batch loads) and notify it, once per distinct
    error (a retry failing the same way is reported, not notified again)."""
    run_id, key = str(batch["run_id"]), str(batch["key"])
    error = f"{type(exc).__name__}: {exc}"
    now = datetime.now(UTC).isoformat()
    before = lake.state.get(FAILED_TABLE, run_id)
    first = before.data.get("first_failed_at", now) if before is not None else now
    attempts = int(before.data.get("attempts", 0)) + 1 if before is not None else 1
    record = {"run_id": run_id, "key": key, "status": "FAILED", "error": error, "first_failed_at": first,
              "failed_at": now, "attempts": attempts}
    lake.state.put(FAILED_TABLE, run_id, record)
    if before is None or before.data.get("error") != error:
        lake.notifier.notify(
            NOTIFY_SUBJECT,
            f"retail orders file {key} (batch {run_id}) failed: {error}. It stays pending: fix the cause "
            f"(on_violation = \"quarantine\" in [pipelines.retail] loads the valid rows and quarantines "
            f"the others), then `{RETRY_COMMAND}` loads it.",
            {"pipeline": PIPELINE, "key": key, "run_id": run_id, "error": error})
    return record


def failures(lake: Lake) -> list[dict[str, Any]]:
    """Failure records of the orders files still pending, oldest failure first."""
    done = {i.key for i in lake.state.query(BATCHES_TABLE)}
    found = [dict(i.data) for i in lake.state.query(FAILED_TABLE) if i.key not in done]
    return sorted(found, key=lambda f: (str(f.get("first_failed_at")), str(f.get("run_id"))))


def run_log(lake: Lake, limit: int) -> list[dict[str, Any]]:
    """The run-log items of every source, newest landing first, at most ``limit``, each as
    ``{"item": <the seed's item>, "batch": <the loaded batch or None>, "failure": <the
    failure record of a still pending batch, or the quarantine record of an unreadable file,
    or None>}``."""
    items = lake.state.query(runlog.RUNLOG_TABLE)
    items.sort(key=lambda i: (str(i.data.get("ingest_ts", "")), i.updated_at, i.key), reverse=True)
    out = []
    for i in items[:max(limit, 0)]:
        run_id = str(i.data.get("run_id"))
        batch = lake.state.get(BATCHES_TABLE, run_id) if i.data.get("source") == "orders" else None
        failure = (lake.state.get(QUARANTINED_TABLE, run_id) or lake.state.get(FAILED_TABLE, run_id)
                   if batch is None else None)
        out.append({"item": dict(i.data), "batch": None if batch is None else batch.data,
                    "failure": None if failure is None else failure.data})
    return out
