"""Replay: run landed objects of a time window through the pipeline again (specs §3).

``copy`` mode copies each object whose LastModified is in ``[start, end)`` to
``<pipeline>/replay/<name>/<original key>``; the normal path ingests the copies as new objects,
and each copy *supersedes* the rows of the object it copies (its batches take the original's
batch ids, :mod:`lakeline.stages.supersede`): after the copies load, the tables hold the same
rows as before, rewritten. ``queue`` mode re-plans the original objects and sends their chunk
messages straight to the transform queue, bypassing ingest idempotency; deterministic output
names mean the silver files are rewritten, not duplicated.

The seed's input names (its ops workflow) are taken as they are, the seed's ``bronze`` being
lakeline's landing zone: ``bronze_bucket`` (the landing bucket; any other is refused),
``src_prefix`` (default ``bronze/<pipeline>/``; must be under the pipeline's landing prefix) and
``dest_prefix_base`` (default ``bronze/replay``; must be under ``replay/`` so the copies are
never replayed again — ``bronze/replay/manual`` lands them under
``<pipeline>/replay/manual/<name>/``). A leading ``bronze/`` is optional in both prefixes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from lakeline.errors import NotFoundError, UsageError
from lakeline.events import ObjectCreated
from lakeline.lake import Lake
from lakeline.landing import announce
from lakeline.ports.objectstore import ObjectInfo
from lakeline.stages.chunking import plan_chunks
from lakeline.stages.gunzip import drop_staged, readable_text
from lakeline.stages.ingest import Ingester, IngestResult
from lakeline.stages.messages import CHUNKS, object_id
from lakeline.stages.spec import Router
from lakeline.stages.supersede import record, replay_root
from lakeline.stages.textinput import UnreadableInput

#: the seed's name of the landing zone, accepted before a prefix
BRONZE = "bronze/"


def parse_instant(text: str) -> datetime:
    """Parse an ISO-8601 instant; a naive value is UTC."""
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"not an ISO-8601 time: {text!r}") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def source_prefix(pipeline: str, src_prefix: str | None) -> str:
    """The landing prefix a replay scans: ``src_prefix`` without the seed's ``bronze/``;
    :class:`UsageError` unless it is under ``<pipeline>/``."""
    root = f"{pipeline}/"
    if src_prefix is None:
        return root
    prefix = src_prefix.removeprefix(BRONZE)
    if prefix == pipeline:
        prefix = root
    if not prefix.startswith(root) or ".." in prefix.split("/"):
        raise UsageError(f"src_prefix {src_prefix!r} is not under pipeline {pipeline}' landing prefix "
                         f"{root!r} (seed form: 'bronze/{root}')")
    return prefix


def pipeline_of(src_prefix: str) -> str:
    """The pipeline a seed ``src_prefix`` names (``bronze/shipments/`` → ``shipments``)."""
    return src_prefix.removeprefix(BRONZE).split("/", 1)[0]


def dest_root(pipeline: str, dest_prefix_base: str | None) -> str:
    """Where the copies of one replay go, before the replay name: ``<pipeline>/replay/…/``."""
    base = (dest_prefix_base or "bronze/replay").strip("/").removeprefix(BRONZE).removeprefix(f"{pipeline}/")
    parts = base.split("/")
    if parts[0] != "replay" or any(p in {"", ".", ".."} for p in parts):
        raise UsageError(f"dest_prefix_base {dest_prefix_base!r} must be under replay/ ('bronze/replay' or "
                         "'bronze/replay/<folder>'): copies anywhere else would be replayed again")
    return f"{pipeline}/{base}/"


def check_bucket(lake: Lake, bucket: str | None) -> None:
    """:class:`NotFoundError` unless ``bucket`` (the seed's ``bronze_bucket``) is the landing bucket."""
    landing = lake.store.bucket("landing")
    if bucket is not None and bucket.removeprefix("s3://").strip("/") != landing:
        raise NotFoundError(f"bronze_bucket {bucket!r} is not this lake's landing bucket {landing!r}")


def replay(
    lake: Lake, router: Router, pipeline: str, start: datetime, end: datetime, *, mode: str = "copy",
    name: str | None = None, src_prefix: str | None = None, dest_prefix_base: str | None = None,
    bucket: str | None = None,
) -> dict[str, Any]:
    """Replay the pipeline's landed objects modified in ``[start, end)`` (``router``: the
    pipeline registry's, which the queue mode's ingest and the chunking check use)."""
    if end <= start:
        raise UsageError("replay window is empty: --end must be after --start")
    if mode not in {"copy", "queue"}:
        raise UsageError(f"unknown replay mode {mode!r}; use copy or queue")
    check_bucket(lake, bucket)
    scan = source_prefix(pipeline, src_prefix)
    label = name or datetime.now(UTC).strftime("%Y-%m-%dT%H-%M-%SZ")
    if not label or "/" in label or label in {".", ".."}:
        raise UsageError(f"replay name {label!r} must be one path segment")
    dest_prefix = f"{dest_root(pipeline, dest_prefix_base)}{label}/"
    skip = replay_root(pipeline)
    scanned = copied = enqueued = 0
    targets = []
    for info in lake.store.list("landing", scan):
        if info.key.startswith(skip):
            continue  # never replay replays
        scanned += 1
        if start <= info.last_modified < end:
            targets.append(info)
    if mode == "copy":
        for info in targets:  # all checked before anything is copied
            _check_chunking(lake, router, info)
    ingester = Ingester(lake, router)
    landing = lake.store.bucket("landing")
    for info in targets:
        if mode == "copy":
            copy_key = dest_prefix + info.key
            # recorded before the copy exists: no copy is ever published under its own id
            record(lake, copy_key, original_key=info.key, etag=info.etag,
                   original_id=object_id(landing, info.key, info.etag), name=label)
            lake.store.copy("landing", info.key, "landing", copy_key)
            announce(lake, copy_key, force=True)  # S3 notifies a CopyObject too
            copied += 1
        else:
            result = IngestResult()
            ev = ObjectCreated(landing, info.key, info.size, info.etag, "", "")
            ingester.ingest_object(ev, result, force=True)
            enqueued += result.enqueued
            copied += 1
    out: dict[str, Any] = {
        "scanned": scanned, "copied": copied, "dest_prefix": dest_prefix if mode == "copy" else None,
        "start": start.isoformat().replace("+00:00", "Z"), "end": end.isoformat().replace("+00:00", "Z"),
        "mode": mode, "src_prefix": scan, "bronze_bucket": landing,
    }
    if mode == "queue":
        out["enqueued"] = enqueued
    else:
        out["copies"] = [dest_prefix + i.key for i in targets]
    return out


def _check_chunking(lake: Lake, router: Router, info: ObjectInfo) -> None:
    """:class:`UsageError` when the copy of ``info`` would be cut into other chunks than its first
    load was (``ingest.chunk_bytes`` changed since): its batches would not line up with the
    original's, and some original rows would stay beside the copy's."""
    route = router(info.key)
    if route is None or route.stream is None:
        return
    oid = object_id(lake.store.bucket("landing"), info.key, info.etag)
    done = lake.state.query(CHUNKS, prefix=f"{oid}#")
    if not done:
        return  # never published: nothing to supersede
    spec = route.stream
    try:
        text = readable_text(lake, info.key, info.size, oid, fmt=spec.format)
    except UnreadableInput:
        return  # dropped whole at its first load: nothing was published to supersede
    plan = plan_chunks(lake, text.key, text.size, lake.settings.ingest.chunk_bytes, spec, zone=text.zone)
    if text.created:
        drop_staged(lake, text.zone, text.key)
    now = len(plan.chunks)
    before = 1 + max(int(i.key.rsplit("#", 1)[1]) for i in done)
    staged_before = any(bool(i.data.get("staged")) for i in done)
    staged_now = spec.keyed and now > 1
    if before > now or staged_before != staged_now:
        raise UsageError(f"cannot replay {info.key}: its first load had {before} chunks, a replay now "
                         f"makes {now} (ingest.chunk_bytes changed since), so the copy could not supersede "
                         "its rows; replay it with the chunk size of its first load")
