"""Ingest stage: an object-created event → chunk messages on the transform queue.

Per object: claim the idempotency key ``s3://<bucket>/<key>#<etag>`` (a repeat is counted as
``skipped``), read the object once in blocks of ``ingest.chunk_bytes`` cut at line ends, count
the records of each chunk, and send one message per chunk (never one per record). JSON
arrays are one chunk. Empty objects are recorded in the run log, not crashed on. A gzip
object is decompressed and chunked from its staged text; an object that is not text is one
FAILED object with its reason (:mod:`lakeline.stages.gunzip`).
"""

from __future__ import annotations

import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lakeline import reasons
from lakeline.errors import LockedError, MessageError, NotFoundError
from lakeline.events import ObjectCreated, parse_events
from lakeline.faults import crash_point
from lakeline.lake import Lake
from lakeline.lineage import hooks as lineage_hooks
from lakeline.ports.queue import MAX_BATCH
from lakeline.ports.state import BeginResult
from lakeline.stages import csvscan
from lakeline.stages.chunking import Chunk, Plan, plan_chunks
from lakeline.stages.evolution import add_fields
from lakeline.stages.gunzip import Text, drop_staged, readable_text
from lakeline.stages.jsonarray import NotAnArray, split_array
from lakeline.stages.messages import ChunkMessage, idempotency_key, object_id
from lakeline.stages.rejects import reject_row, write_rejects
from lakeline.stages.spec import Router, StreamSpec
from lakeline.stages.textinput import UnreadableInput


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




#: the state table of plans made while landing (``put``, ``load``): key ``<key>#<etag>``
PLANS = "ingest_plans"
#: how long a kept plan waits for its ingest
PLAN_TTL_S = 86400.0
#: a plan longer than this is not kept (a state item stays small: DynamoDB's limit is 400 KB)
MAX_SAVED_CHUNKS = 2000


def save_plan(lake: Lake, key: str, etag: str, plan: Plan) -> None:
    """Keep the plan of an object version landed from a local file (its lines were counted
    while the landing copy was written: :func:`~lakeline.stages.chunking.plan_file`); ingest
    of that version uses it instead of reading the object again, then forgets it."""
    if len(plan.chunks) > MAX_SAVED_CHUNKS:
        return
    lake.state.put(PLANS, f"{key}#{etag}", {
        "chunk_bytes": lake.settings.ingest.chunk_bytes, "format": plan.format,
        "chunks": [[c.start, c.end, c.first_line, c.records, c.lines] for c in plan.chunks]},
        expires_at=time.time() + PLAN_TTL_S)  # one ingest never came (serve announced it first)


def _saved_plan(lake: Lake, key: str, etag: str) -> Plan | None:
    item = lake.state.get(PLANS, f"{key}#{etag}")
    if item is None or item.data.get("chunk_bytes") != lake.settings.ingest.chunk_bytes:
        return None
    return Plan(str(item.data["format"]), [Chunk(*(int(v) for v in c)) for c in item.data["chunks"]])


class Ingester:
    """Runs the ingest stage against one lake."""

    def __init__(self, lake: Lake, router: Router) -> None:
        self.lake = lake
        self.router = router
        self._dropped: list[dict[str, Any]] = []
        self._landed: list[dict[str, Any]] = []

    def take_landed(self) -> list[dict[str, Any]]:
        """The job pipelines' objects recorded as landed since the last call (``pipeline``,
        ``key``, ``etag``; a repeated event of an object version is not among them): on AWS the
        ingest function starts their work; forgotten once taken."""
        out, self._landed = self._landed, []
        return out

    def take_dropped(self) -> list[dict[str, Any]]:
        """The objects dropped whole since the last call (``pipeline``, ``key``, ``reason``,
        ``error``), for the run's summary; forgotten once taken."""
        out, self._dropped = self._dropped, []
        return out

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
                self._landed.append({"pipeline": route.pipeline, "key": ev.key, "etag": info.etag})
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
            spec = route.stream
            assert spec is not None  # a job pipeline's landing returned above
            try:
                text = readable_text(lake, ev.key, info.size, oid, fmt=spec.format)
            except UnreadableInput as exc:  # one FAILED object with its reason, not a reject per line
                self._drop(ev, info.etag, oid, str(exc), entry, result, exc.reason)
                lake.state.log_run(run_key, entry)
                lineage_hooks.object_ingested(lake, ikey, ev.key, info.etag, entry)
                if not force:
                    lake.state.complete(ikey, {"run_key": run_key, "status": "FAILED"})
                return
            saved = None if text.staged or spec.format != "jsonl" else _saved_plan(lake, ev.key, info.etag)
            plan = saved or plan_chunks(lake, text.key, text.size, settings.chunk_bytes, spec, zone=text.zone)
            fmt, chunks = plan.format, plan.chunks
            if fmt == "json":
                chunks = self._check_array(ev, info.etag, oid, entry, result, text)
            elif (fmt == "parquet" or (fmt == "csv" and spec.csv.header)) and chunks:
                problem = self._check_columns(spec, plan, f"{ev.key}#{info.etag}")
                if problem is not None:
                    self._drop(ev, info.etag, oid, problem, entry, result, reasons.SCHEMA_ERROR)
                    chunks = []
            records = sum(c.records for c in chunks)
            entry.update(records=records, chunks=len(chunks), format=fmt)
            if not chunks:
                drop_staged(lake, text.zone, text.key)
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
                    lines=c.lines, header_start=plan.header_start, header_end=plan.header_end,
                    text_zone=text.zone if text.staged else "", text_key=text.key if text.staged else "",
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
            if saved is not None:
                lake.state.delete(PLANS, f"{ev.key}#{info.etag}")
        except BaseException:
            if not force:
                lake.state.release(ikey)
            raise

    def _check_columns(self, spec: StreamSpec, plan: Plan, source: str) -> str | None:
        """What is wrong with the columns of a CSV header or a Parquet schema as a whole (None:
        nothing). A column the pipeline needs in every record (time, route, a required or key
        field of the only table) must be there; an undeclared column is refused, added to the
        tables (schema evolution) or ignored, as ``on_unknown_field`` says."""
        columns = list(plan.columns)
        where = "line 1: the header" if plan.format == "csv" else "the Parquet schema"
        if plan.format == "csv":  # a ;-separated file read with "," would load NULLs or nothing
            wrong = csvscan.delimiter_problem(columns, {f.source for f in spec.all_fields()}, spec.csv)
            if wrong is not None:
                return f"{where} {wrong}"
        dup = sorted({c for c in columns if columns.count(c) > 1})
        if dup:
            return f"{where} repeats column(s) {', '.join(dup)}"
        needed = [f.source for f in spec.all_fields()
                  if f.name in (spec.time_field, spec.route_field)]
        if spec.route_field is None:
            t = spec.tables[0]
            needed += [f.source for f in t.columns if f.required or f.name in t.key]
        missing = [c for c in dict.fromkeys(needed) if c not in columns]
        if missing:
            return f"{where} lacks column(s) {', '.join(missing)} (it has: {', '.join(columns)})"
        declared = {f.source for f in spec.all_fields()}
        unknown = [c for c in columns if c not in declared]
        if unknown and spec.on_unknown_field == "reject":
            return (f"{where} has undeclared column(s) {', '.join(unknown)} "
                    "(the pipeline's on_unknown_field is reject)")
        if unknown and spec.on_unknown_field == "add":
            for t in spec.tables:
                spec = add_fields(self.lake, spec, t.name, unknown, source)
        return None

    def _check_array(
        self, ev: ObjectCreated, etag: str, oid: str, entry: dict[str, Any], result: IngestResult, text: Text
    ) -> list[Chunk]:
        raw = self.lake.store.get(text.zone, text.key)
        found = split_array(raw)
        if isinstance(found, NotAnArray):
            self._drop(ev, etag, oid, found.message, entry, result, found.reason)
            return []
        return [Chunk(0, len(raw), 1, found.count)] if found.count else []

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
        self._dropped.append({"pipeline": row["pipeline"], "key": ev.key, "reason": reason,
                              "error": message if message.startswith(ev.key) else f"{ev.key}: {message}"})
        entry.update(status="FAILED", dropped=1, error=message, reason=reason,
                     finished_at=datetime.now(UTC).isoformat(timespec="milliseconds"))
