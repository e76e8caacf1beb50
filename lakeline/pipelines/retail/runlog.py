"""Landing keys and the run log of the retail lakehouse.

A landed file lives at ``retail/<orders|customers|products>/ingest_date=YYYY-MM-DD/<file>.csv``
and is never rewritten. Each landing writes one run-log item (the seed's DynamoDB item)::

    pk          SRC#<source>
    sk          INGEST#<ISO-8601 UTC seconds, Z>#<etag|noetag>
    run_id      <source>_<ingest_ts with ':' -> '-'>_<6 upper-case hex>
    source, bucket, key, etag, version_id, size_bytes, ingest_ts
    status      LANDED
    dedupe      sha256("<bucket>#<key>#<etag|noetag>")[:16]

Only the first landing of a (bucket, key, etag) is logged: the dedupe hash is claimed with a
put-if-absent in table ``retail_dedupe`` (the claim holds the whole item), then the item is
written to ``retail_runlog`` under ``<pk>|<sk>``. A crash between the two writes is repaired by
the next landing of the same object, which finds the claim and writes the missing item.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import UTC, date, datetime
from typing import Any, Final

from lakeline.errors import ConditionFailed, UsageError
from lakeline.ports.state import StateStore

__all__ = [
    "DEDUPE_TABLE",
    "PREFIX",
    "RUNLOG_TABLE",
    "SOURCES",
    "STATUS_LANDED",
    "dedupe_hash",
    "iso_z",
    "landing_key",
    "landings",
    "log_landing",
    "make_run_id",
    "source_of",
]

PREFIX: Final = "retail/"
SOURCES: Final = ("orders", "customers", "products")
RUNLOG_TABLE: Final = "retail_runlog"
DEDUPE_TABLE: Final = "retail_dedupe"
STATUS_LANDED: Final = "LANDED"

_FILE_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*\.csv(\.gz)?")


def landing_key(source: str, filename: str, today: date | None = None) -> str:
    """``retail/<source>/ingest_date=YYYY-MM-DD/<filename>`` (``today`` defaults to the UTC date)."""
    if source not in SOURCES:
        raise UsageError(f"unknown retail source {source!r}; sources are {', '.join(SOURCES)}")
    if not _FILE_RE.fullmatch(filename):
        raise UsageError(f"retail file name {filename!r} must be a plain name ending in .csv or .csv.gz")
    day = datetime.now(UTC).date() if today is None else today
    return f"{PREFIX}{source}/ingest_date={day.isoformat()}/{filename}"


def source_of(key: str) -> str:
    """The source of a landing key ``retail/<source>/...`` (the seed's ``infer_source``)."""
    parts = key.split("/")
    if len(parts) < 3 or parts[0] != PREFIX.rstrip("/") or parts[1] not in SOURCES:
        raise UsageError(f"{key!r} is not a retail landing key (retail/<{'|'.join(SOURCES)}>/...)")
    return parts[1]


def iso_z(at: datetime) -> str:
    """ISO-8601 UTC with second precision and a ``Z`` suffix: ``2025-10-04T21:24:24Z``."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def make_run_id(source: str, ingest_ts: str, suffix: str | None = None) -> str:
    """``<source>_<ingest_ts with ':' → '-'>_<6 upper-case hex>`` (random unless ``suffix``)."""
    short = secrets.token_hex(3).upper() if suffix is None else suffix
    return f"{source}_{ingest_ts.replace(':', '-')}_{short}"


def dedupe_hash(bucket: str, key: str, etag: str | None) -> str:
    """First 16 hex digits of ``sha256("<bucket>#<key>#<etag|noetag>")``."""
    return hashlib.sha256(f"{bucket}#{key}#{etag or 'noetag'}".encode()).hexdigest()[:16]


def _item_key(item: dict[str, Any]) -> str:
    return f"{item['pk']}|{item['sk']}"


def log_landing(
    state: StateStore, *, bucket: str, key: str, etag: str | None, size_bytes: int | None,
    version_id: str | None = None, now: datetime | None = None,
) -> dict[str, Any] | None:
    """Write the run-log item of one landing; None when this object was logged before."""
    source = source_of(key)
    ts = iso_z(datetime.now(UTC) if now is None else now)
    tag = etag or "noetag"
    dedupe = dedupe_hash(bucket, key, etag)
    item: dict[str, Any] = {
        "pk": f"SRC#{source}",
        "sk": f"INGEST#{ts}#{tag}",
        "run_id": make_run_id(source, ts),
        "source": source,
        "bucket": bucket,
        "key": key,
        "etag": etag or "",
        "version_id": version_id,
        "size_bytes": size_bytes,
        "ingest_ts": ts,
        "status": STATUS_LANDED,
        "dedupe": dedupe,
    }
    try:
        state.put(DEDUPE_TABLE, dedupe, item, if_absent=True)
    except ConditionFailed:
        claim = state.get(DEDUPE_TABLE, dedupe)
        if claim is None or state.get(RUNLOG_TABLE, _item_key(claim.data)) is not None:
            return None  # a duplicate landing: ignored
        item = dict(claim.data)  # the first landing crashed before its item: finish it
    try:
        state.put(RUNLOG_TABLE, _item_key(item), item, if_absent=True)
    except ConditionFailed:
        return None  # a concurrent repair wrote it
    return item


def landings(state: StateStore, source: str) -> list[dict[str, Any]]:
    """Run-log items of ``source`` in landing order (ingest time, then write time)."""
    items = state.query(RUNLOG_TABLE, prefix=f"SRC#{source}|")
    items.sort(key=lambda i: (str(i.data.get("ingest_ts", "")), i.updated_at, i.key))
    return [dict(i.data) for i in items]
