"""The pipelines' lineage calls: open the lake's ledger, and record without ever failing the
data path.

Every hook goes through :func:`guarded`: a lineage failure (a locked database, a throttled
table, a bug) is logged as a warning with the root id and swallowed, because losing a
lineage node must never lose or delay data. Ids are deterministic where the work can repeat
(:func:`~lakeline.ports.lineage_model.derived_id`): a redelivered event or a retried chunk records
over its earlier nodes instead of forking a second tree.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import orjson

from lakeline import log
from lakeline.errors import ConfigError
from lakeline.lineage import openlineage
from lakeline.ports.lineage_model import derived_id
from lakeline.stages.messages import idempotency_key

if TYPE_CHECKING:
    from lakeline.lake import Lake
    from lakeline.stages.messages import ChunkMessage
    from lakeline.stages.transform import ChunkResult

_log = log.get("lineage")


@contextmanager
def guarded(what: str, root_id: str | None = None, lake: Lake | None = None) -> Iterator[None]:
    """Run a lineage write; log and swallow any failure (the data path goes on). A ledger that
    cannot be used at all (:class:`ConfigError`: no table deployed) is switched off for
    ``lake`` after one warning instead of failing every call."""

    try:
        yield
    except ConfigError as exc:
        if lake is not None:
            lake.__dict__["_lineage_off"] = True
        _log.warning("lineage is off for this lake: %s", exc, extra={"root_id": root_id})
    except Exception:
        _log.warning("lineage %s failed; the data path continues", what, exc_info=True,
                     extra={"root_id": root_id})


def enabled(lake: Lake) -> bool:
    """False once :func:`guarded` switched lineage off for ``lake``."""
    return not lake.__dict__.get("_lineage_off")


def maybe_export(lake: Lake, root_id: str) -> None:
    """Export a completed root as OpenLineage run events when ``[lineage]`` names a sink
    (guarded: an unreachable endpoint is logged, the data path goes on)."""

    if not openlineage.configured(lake.settings) or not enabled(lake):
        return
    with guarded("OpenLineage export", root_id, lake):
        openlineage.export_root(lake.lineage, lake.settings, root_id)


def location(lake: Lake, zone: str, key: str) -> str:
    """Where an object lives, as a reader can open it: a path on the local lake,
    ``s3://bucket/key`` on AWS."""
    return lake.store.scan_uri(zone, key)


def object_root(idempotency_key: str) -> str:
    """The root id of one landed object version, from its ingest idempotency key
    (``s3://<bucket>/<key>#<etag>``): the same object is always the same tree."""
    return derived_id("object", idempotency_key)


def node_id(root_id: str, *parts: str) -> str:
    """A deterministic node id inside ``root_id`` (a retried step records over itself)."""
    return derived_id(root_id, *parts)


# ---- shipments (streaming: one root per landed object) -------------------------------------------
def _object_nodes(root_id: str) -> tuple[str, str]:
    return node_id(root_id, "RAW_DATA_INPUT"), node_id(root_id, "FILE_INGESTED")


def object_ingested(lake: Lake, ikey: str, key: str, etag: str, entry: dict[str, Any]) -> None:
    """Ingest of a streaming pipeline's object: ``RAW_DATA_INPUT`` (the landed file, the first
    node) and ``FILE_INGESTED`` (cut into chunks) — or ``FILE_FAILED`` when the object was
    refused as a whole (moved to the error zone)."""
    if not enabled(lake):
        return
    root_id = object_root(ikey)
    raw_id, ingested_id = _object_nodes(root_id)
    failed = entry.get("status") == "FAILED"
    with guarded("object ingest", root_id, lake):
        ledger = lake.lineage
        landing = location(lake, "landing", key)
        ledger.record(root_id, root_id, "RAW_DATA_INPUT", landing, node_id=raw_id, attrs={
            "pipeline": entry.get("pipeline"), "key": key, "etag": etag, "size": entry.get("size")})
        if failed:
            ledger.record(root_id, raw_id, "FILE_FAILED", location(lake, "error", f"objects/{key}"),
                          node_id=node_id(root_id, "FILE_FAILED"),
                          attrs={"reason": entry.get("reason"), "message": entry.get("error")})
        else:
            ledger.record(root_id, raw_id, "FILE_INGESTED", landing, node_id=ingested_id, attrs={
                "records": entry.get("records"), "chunks": entry.get("chunks"), "format": entry.get("format"),
                "run_key": entry.get("run_key")})
    if failed:
        maybe_export(lake, root_id)


def chunk_written(lake: Lake, msg: ChunkMessage, result: ChunkResult) -> None:
    """One transformed chunk: a ``BATCH_WRITTEN`` node per silver file it wrote (or per
    Iceberg table it appended to) and a ``REJECTS_WRITTEN`` node for its rejects file, all
    children of the object's ``FILE_INGESTED`` node. Ids are fixed by (object, chunk, file):
    a redelivered chunk records over its own nodes."""
    if not enabled(lake):
        return
    root_id = _msg_root(msg)
    _, parent = _object_nodes(root_id)
    chunk, files, partitions, rejected = msg.chunk, result.files, result.partitions, result.rejected
    with guarded("chunk written", root_id, lake):
        import pyarrow as pa

        ids, locations, attrs = [], [], []
        for f in files:
            part = _partition_of(f, partitions)
            if f.startswith("iceberg:"):
                table = f.split(".", 1)[1]
                rows = sum(int(p["rows"]) for p in partitions if p["record_type"] == table)
                info: dict[str, Any] = {"chunk": chunk, "record_type": table, "rows": rows,
                                        "format": "iceberg"}
                locations.append(f)
            else:
                info = {"chunk": chunk, "record_type": part["record_type"] if part else f.split("/", 1)[0]}
                if part is not None and part.get("dt") is not None:
                    info["dt"] = part["dt"]
                if part is not None and int(part["files_written"]) == 1:
                    info["rows"] = int(part["rows"])
                locations.append(location(lake, "silver", f))
            ids.append(node_id(root_id, "chunk", str(chunk), f))
            attrs.append(json_text(info))
        ledger = lake.lineage
        if ids:
            ledger.record_many(root_id, "BATCH_WRITTEN", pa.table({
                "node_id": ids, "parent_id": [parent] * len(ids), "storage_location": locations,
                "attrs": attrs}))
        if rejected:
            key = f"rejects/{msg.pipeline}/part-{msg.object_id}-c{chunk:05d}.parquet"
            ledger.record(root_id, parent, "REJECTS_WRITTEN", location(lake, "error", key),
                          node_id=node_id(root_id, "rejects", str(chunk)),
                          attrs={"chunk": chunk, "rows": rejected})


def _partition_of(key: str, partitions: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The partition event a silver file of a chunk belongs to (by its prefix)."""
    folder = key.rsplit("/", 1)[0] + "/"
    return next((p for p in partitions if p.get("silver_prefix") == folder), None)


def object_complete(lake: Lake, msg: ChunkMessage, entry: dict[str, Any]) -> None:
    """Every chunk of an object is done: ``RUN_COMPLETE`` with the object's counts."""
    if not enabled(lake):
        return
    root_id = _msg_root(msg)
    _, parent = _object_nodes(root_id)
    with guarded("run complete", root_id, lake):
        counts = {k: entry.get(k) for k in ("records", "loaded", "rejected")}
        lake.lineage.record(root_id, parent, "RUN_COMPLETE", "", node_id=node_id(root_id, "RUN_COMPLETE"),
                            attrs=dict(counts, run_key=msg.run_key))
    maybe_export(lake, root_id)


def _msg_root(msg: ChunkMessage) -> str:

    return object_root(idempotency_key(msg.bucket, msg.key, msg.etag))


def json_text(value: dict[str, Any]) -> str:
    """A JSON object as text (the ``attrs`` column of a ``record_many`` table)."""

    return orjson.dumps(value).decode()
