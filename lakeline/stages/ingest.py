"""Ingest stage: an object-created event → chunk messages on the transform queue.

Per object: claim the idempotency key ``s3://<bucket>/<key>#<etag>`` (a repeat is counted as
``skipped``), read the object once in blocks of ``ingest.chunk_bytes`` cut at line ends, count
the records of each chunk, and send one message per chunk (never one per record). JSON
arrays are one chunk. Empty objects are recorded in the run log, not crashed on.
"""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from lakeline import reasons
from lakeline.errors import LockedError, MessageError, NotFoundError
from lakeline.events import ObjectCreated, parse_events
from lakeline.faults import crash_point
from lakeline.lake import Lake
from lakeline.lineage import hooks as lineage_hooks
from lakeline.ports.queue import MAX_BATCH
from lakeline.ports.state import BeginResult
from lakeline.stages.lines import BOM
from lakeline.stages.messages import ChunkMessage, idempotency_key, object_id
from lakeline.stages.rejects import reject_row, write_rejects
from lakeline.stages.spec import StreamSpec

_READ_BLOCK = 8 * 1024 * 1024


@dataclass
class IngestResult:
    """The ingest result of specs §3."""

    objects: int = 0
    records: int = 0
    enqueued: int = 0
    skipped: int = 0
    dropped: int = 0
    request_id: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The result as a plain dict."""
        return asdict(self)


@dataclass(frozen=True)
class Route:
    """Where a landing key goes: its pipeline, the stream spec when the pipeline is streaming
    (the object is cut into chunks), else ``on_landed(lake, key, etag, size)``, which a job
    pipeline uses to note the landing (its work waits for ``lakeline run``)."""

    pipeline: str
    stream: StreamSpec | None
    on_landed: Callable[[Lake, str, str, int], None]


#: finds the route of a landing key (None: no pipeline takes it); the pipeline registry's ``route``.
Router = Callable[[str], Route | None]


@dataclass(frozen=True)
class Chunk:
    """A planned chunk: bytes ``[start, end)`` holding ``lines`` lines, ``records`` of them
    not blank."""

    start: int
    end: int
    first_line: int
    records: int
    lines: int = 0


# Bytes a blank line can start with: it is empty or holds only spaces, tabs and a CR.
_BLANK_START = np.zeros(256, dtype=bool)
_BLANK_START[[ord("\n"), ord("\r"), ord(" "), ord("\t")]] = True


def scan_block(block: bytes | memoryview) -> tuple[int, int, int]:
    """``(newlines, lines, records)`` of a block: records are the non-blank lines.

    Vectorised: a block can only hold a blank line if a line starts with a newline, CR, space
    or tab; only then are the lines inspected one by one. A memoryview is scanned in place."""
    if not len(block):
        return 0, 0, 0
    arr = np.frombuffer(block, dtype=np.uint8)
    is_newline = arr == 10
    newlines = int(np.count_nonzero(is_newline))
    lines = newlines + (0 if arr[-1] == 10 else 1)
    if not (_BLANK_START[arr[0]] or _BLANK_START[arr[1:][is_newline[:-1]]].any()):
        return newlines, lines, lines
    return newlines, lines, sum(1 for line in bytes(block).split(b"\n") if line.strip(b" \t\r"))


def count_records(block: bytes) -> int:
    """Non-blank lines in ``block``."""
    return scan_block(block)[2]


def plan_chunks(lake: Lake, key: str, size: int, chunk_bytes: int) -> tuple[str, list[Chunk]]:
    """Read the object once and cut it into chunks at line ends.

    Returns the format (``jsonl`` or ``json``) and the chunks. Memory stays bounded by
    ``chunk_bytes`` plus one read block, whatever the object's size.
    """
    store = lake.store
    head = store.get_range("landing", key, 0, min(size, 4096))
    start = 3 if head.startswith(BOM) else 0
    if head[start:].lstrip()[:1] == b"[":
        return "json", [Chunk(0, size, 1, -1)]
    chunks: list[Chunk] = []
    line = 1
    pos = start
    while pos < size:
        end = min(pos + chunk_bytes, size)
        block = store.get_range("landing", key, pos, end)
        if end < size:
            cut = block.rfind(b"\n")
            while cut < 0:  # a single line longer than chunk_bytes: extend the chunk
                more = store.get_range("landing", key, end, min(end + _READ_BLOCK, size))
                block += more
                end += len(more)
                cut = block.rfind(b"\n") if end < size else len(block) - 1
            end = pos + cut + 1
        newlines, lines, records = scan_block(memoryview(block)[: end - pos])  # no copy
        if records:
            chunks.append(Chunk(pos, end, line, records, lines))
        line += newlines
        pos = end
    return "jsonl", chunks


class Ingester:
    """Runs the ingest stage against one lake."""

    def __init__(self, lake: Lake, router: Router) -> None:
        self.lake = lake
        self.router = router

    def handle_event(
        self, event: dict[str, Any], *, request_id: str | None = None, force: bool = False
    ) -> IngestResult:
        """Ingest every object an event names; ``force`` bypasses idempotency (replay)."""
        result = IngestResult(request_id=request_id or str(uuid.uuid4()))
        for created in parse_events(event):
            self.ingest_object(created, result, force=force)
        return result

    def ingest_object(self, ev: ObjectCreated, result: IngestResult, *, force: bool = False) -> None:
        """Ingest one object version, updating ``result``."""
        lake = self.lake
        if ev.bucket != lake.store.bucket("landing"):
            raise MessageError(f"event for bucket {ev.bucket!r}; the landing bucket is "
                               f"{lake.store.bucket('landing')!r}")
        result.objects += 1
        try:
            info = lake.store.head("landing", ev.key)
        except NotFoundError:
            result.skipped += 1  # deleted after its event: nothing to ingest
            return
        ikey = idempotency_key(ev.bucket, ev.key, info.etag)
        oid = object_id(ev.bucket, ev.key, info.etag)
        settings = lake.settings.ingest
        if not force:
            begun = lake.state.begin(
                ikey, ttl_seconds=settings.idempotency_ttl_days * 86400,
                lock_seconds=settings.lock_timeout_seconds,
            )
            if begun is BeginResult.COMPLETED:
                result.skipped += 1
                return
            if begun is BeginResult.IN_PROGRESS:
                raise LockedError(f"{ikey} is being ingested by another worker")
        started = datetime.now(UTC)
        run_key = f"{started.strftime('%Y%m%dT%H%M%S.%fZ')}#{oid}"
        entry: dict[str, Any] = {
            "pipeline": None, "bucket": ev.bucket, "key": ev.key, "etag": info.etag,
            "object_id": oid, "size": info.size, "request_id": result.request_id,
            "started_at": started.isoformat(timespec="milliseconds"), "records": 0,
            "chunks": 0, "dropped": 0, "loaded": 0, "rejected": 0,
        }
        try:
            route = self.router(ev.key)
            if route is not None and route.stream is None:
                # Job pipelines wait for `lakeline run`: record the landing only.
                route.on_landed(lake, ev.key, info.etag, info.size)
                entry.update(pipeline=route.pipeline, status="LANDED",
                             finished_at=datetime.now(UTC).isoformat(timespec="milliseconds"))
                lake.state.log_run(run_key, entry)
                lake.state.complete(ikey, {"run_key": run_key, "status": "LANDED"})
                return
            if route is None:
                first = ev.key.split("/", 1)[0]
                why = (f"no pipeline takes {ev.key!r}: {first!r} is not a pipeline's landing prefix "
                       "(see `lakeline pipeline list`)")
                self._drop(ev, info.etag, oid, why, entry, result, reasons.SCHEMA_ERROR)
                lake.state.log_run(run_key, entry)
                lineage_hooks.object_ingested(lake, ikey, ev.key, info.etag, entry)
                lake.state.complete(ikey, {"run_key": run_key, "status": "FAILED"})
                return
            entry["pipeline"] = route.pipeline
            fmt, chunks = plan_chunks(lake, ev.key, info.size, settings.chunk_bytes)
            if fmt == "json":
                chunks = self._check_array(ev, info.etag, oid, entry, result)
            records = sum(c.records for c in chunks)
            entry.update(records=records, chunks=len(chunks), format=fmt)
            if not chunks:
                entry.setdefault("status", "EMPTY")
                entry["finished_at"] = datetime.now(UTC).isoformat(timespec="milliseconds")
            else:
                entry["status"] = "INGESTED"
            lake.state.log_run(run_key, entry)
            lineage_hooks.object_ingested(lake, ikey, ev.key, info.etag, dict(entry, run_key=run_key))
            bodies = [
                ChunkMessage(
                    pipeline=route.pipeline, bucket=ev.bucket, key=ev.key, etag=info.etag,
                    object_id=oid, run_key=run_key, chunk=i, chunks=len(chunks), start=c.start,
                    end=c.end, first_line=c.first_line, records=c.records, format=fmt,
                    lines=c.lines,
                ).to_json()
                for i, c in enumerate(chunks)
            ]
            for i in range(0, len(bodies), MAX_BATCH):
                lake.transform_queue.send_batch(bodies[i : i + MAX_BATCH])
                crash_point("ingest.after_send")
            result.records += records
            result.enqueued += len(bodies)
            if not force:
                lake.state.complete(ikey, {"run_key": run_key, "chunks": len(chunks)})
        except BaseException:
            if not force:
                lake.state.release(ikey)
            raise

    def _check_array(
        self, ev: ObjectCreated, etag: str, oid: str, entry: dict[str, Any], result: IngestResult
    ) -> list[Chunk]:
        raw = self.lake.store.get("landing", ev.key)
        try:
            items = orjson.loads(raw.removeprefix(BOM))
        except orjson.JSONDecodeError as exc:
            self._drop(ev, etag, oid, f"object is not a valid JSON array: {exc}", entry, result,
                       reasons.MALFORMED_JSON)
            return []
        if not isinstance(items, list):
            self._drop(ev, etag, oid, "object is JSON but not an array", entry, result,
                       reasons.NOT_AN_OBJECT)
            return []
        return [Chunk(0, len(raw), 1, len(items))] if items else []

    def _drop(
        self, ev: ObjectCreated, etag: str, oid: str, message: str, entry: dict[str, Any],
        result: IngestResult, reason: str,
    ) -> None:
        """Reject a whole object: reject row, copy to the error zone, notify."""
        lake = self.lake
        row = reject_row(
            pipeline=entry.get("pipeline") or ev.key.split("/", 1)[0], bucket=ev.bucket,
            key=ev.key, etag=etag, chunk=0, line_no=None, byte_offset=None,
            reason_code=reason, message=message, raw=None, rejected_at=datetime.now(UTC),
        )
        with tempfile.TemporaryDirectory(dir=lake.work_dir) as work:
            write_rejects(lake, [row], str(row["pipeline"]), f"{oid}-object", Path(work))
        lake.store.copy("landing", ev.key, "error", f"objects/{ev.key}")
        lake.notifier.notify(
            "lakeline: object rejected",
            f"{ev.key}: {message}",
            {"key": ev.key, "etag": etag, "reason": reason},
        )
        result.dropped += 1
        entry.update(status="FAILED", dropped=1, error=message, reason=reason,
                     finished_at=datetime.now(UTC).isoformat(timespec="milliseconds"))
