"""Quarantine a whole landed object a job pipeline cannot read: it goes to ``error/``, with
its reason, and never blocks the run.

:func:`quarantine_object` moves ``landing/<key>`` to ``error/objects/<key>`` (the place ingest
copies the objects it drops), writes one reject row (``quarantine.rejects``: key, etag,
reason code, message), marks the object's run-log entry ``FAILED`` with the reason (the
``LANDED`` entry ingest wrote, else a new one) and sends one notification. The landing copy is
deleted last, so a crash part-way leaves the object pending and the next run quarantines it
again, overwriting the same files (the reject row is named by the object version: no
duplicate). Landing the file again, fixed, makes it pending again.
"""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lakeline.lake import Lake
from lakeline.ports.state import IDEMPOTENCY, RUNS
from lakeline.stages.messages import idempotency_key, object_id
from lakeline.stages.rejects import reject_row, write_rejects

SUBJECT = "lakeline: object rejected"
ERROR_PREFIX = "objects/"


def error_key(key: str) -> str:
    """Where a quarantined landing object goes in the error zone."""
    return f"{ERROR_PREFIX}{key}"


def quarantine_object(lake: Lake, *, pipeline: str, key: str, reason: str, message: str) -> dict[str, Any]:
    """Move the landed object ``key`` to the error zone because it cannot be read (``reason``:
    a reject reason code; ``message``: why, in one line). Returns what was done: ``key``,
    ``etag``, ``reason``, ``error`` (the message), ``error_key``, ``rejects_key``, ``run_key``."""
    info = lake.store.head("landing", key)
    bucket = lake.store.bucket("landing")
    oid = object_id(bucket, key, info.etag)
    now = datetime.now(UTC)
    row = reject_row(pipeline=pipeline, bucket=bucket, key=key, etag=info.etag, chunk=0, line_no=None,
                     byte_offset=None, record_type=pipeline, reason_code=reason, message=message, raw=None,
                     rejected_at=now)
    with tempfile.TemporaryDirectory(dir=lake.work_dir) as work:
        rejects_key = write_rejects(lake, [row], pipeline, f"{oid}-object", Path(work))
    dest = error_key(key)
    lake.store.copy("landing", key, "error", dest)
    run_key, entry = _landing_entry(lake, bucket, key, info.etag, oid, now)
    entry.update(pipeline=pipeline, status="FAILED", error=message, reason=reason, error_key=dest,
                 finished_at=now.isoformat(timespec="milliseconds"))
    lake.state.log_run(run_key, entry)
    lake.notifier.notify(
        SUBJECT,
        f"{key}: {message}. The {pipeline} pipeline moved it to error/{dest}; the rest of the run went on.",
        {"pipeline": pipeline, "key": key, "etag": info.etag, "reason": reason, "error_key": dest})
    lake.store.delete("landing", key)
    return {"key": key, "etag": info.etag, "reason": reason, "error": message, "error_key": dest,
            "rejects_key": rejects_key, "run_key": run_key}


def _landing_entry(lake: Lake, bucket: str, key: str, etag: str, oid: str,
                   now: datetime) -> tuple[str, dict[str, Any]]:
    """The run-log entry ingest wrote when the object landed (key and entry), else a new one."""
    claim = lake.state.get(IDEMPOTENCY, idempotency_key(bucket, key, etag))
    run_key = str(((claim.data.get("result") or {}) if claim is not None else {}).get("run_key") or "")
    found = lake.state.get(RUNS, run_key) if run_key else None
    if found is not None:
        return run_key, dict(found.data)
    return f"{now.strftime('%Y%m%dT%H%M%S.%fZ')}#{oid}", {
        "pipeline": None, "bucket": bucket, "key": key, "etag": etag, "object_id": oid,
        "started_at": now.isoformat(timespec="milliseconds"), "records": 0, "loaded": 0, "rejected": 0}


__all__ = ["ERROR_PREFIX", "SUBJECT", "error_key", "quarantine_object"]
