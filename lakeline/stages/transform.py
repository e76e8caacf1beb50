"""Transform stage: one chunk message → typed silver Parquet + rejects.

Exactly-once effect under at-least-once delivery: a chunk's output files have names fixed by
(object, chunk), so a redelivered message rewrites the same files instead of adding rows.
Files are written in the lake's scratch directory and moved into their zone atomically.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from lakeline import reasons
from lakeline.errors import DataError, NotFoundError
from lakeline.faults import crash_point
from lakeline.lake import Lake
from lakeline.lineage import hooks as lineage_hooks
from lakeline.pipelines import get_pipeline
from lakeline.pipelines.base import RecordType, StreamPipeline
from lakeline.ports.state import RUNS
from lakeline.stages.classify import (
    BOM,
    REJECT_COLUMNS,
    chunk_table,
    classify_sql,
    explain_sql,
    json_error,
    line_count,
    line_spans,
    reject_row,
)
from lakeline.stages.fastpath import FastPath
from lakeline.stages.messages import ChunkMessage
from lakeline.writeback import start_writeback_tree

CHUNKS = "chunks"
PARTITION_READY = "silver_partition_ready"
MAX_RAW = 65536
_CHUNK_FILE = re.compile(r"(-[0-9]+)?\.parquet")  # what follows part-<object>-c<chunk>


@dataclass
class ChunkResult:
    """What one chunk produced."""

    object_id: str
    chunk: int
    loaded: int = 0
    rejected: int = 0
    files: list[str] = field(default_factory=list)
    partitions: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class PendingChunk:
    """A chunk :meth:`Transformer.start` began and :meth:`Transformer.finish` completes."""

    msg: ChunkMessage
    pipeline: StreamPipeline
    result: ChunkResult
    data: bytes = b""
    pre_rejects: list[dict[str, Any]] = field(default_factory=list)
    work: Path | None = None
    fast: Future[dict[str, list[Path]] | None] | None = None  # the fast path's write, running
    done: ChunkResult | None = None  # already loaded (its landing object is gone)


def duckdb_connection(
    threads: int = 0, *, memory_limit: str | None = None, spill_dir: Path | None = None,
    keep_order: bool = False,
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with UTC session time (naive timestamps are UTC).

    ``memory_limit`` (e.g. ``"768MB"``) bounds DuckDB's memory; with ``spill_dir`` larger
    work is spilled there instead of failing. ``keep_order``: results keep the order of their
    source (DuckDB documents row order only then); off by default, which is faster."""
    config: dict[str, Any] = {"threads": threads} if threads > 0 else {}
    if memory_limit:
        config["memory_limit"] = memory_limit
    if spill_dir is not None:
        config["temp_directory"] = str(spill_dir)
    con = duckdb.connect(config=config)
    con.execute("SET TimeZone='UTC'")
    con.execute(f"SET preserve_insertion_order={'true' if keep_order else 'false'}")
    return con


class Transformer:
    """Transforms chunk messages of streaming pipelines. One per worker process."""

    def __init__(self, lake: Lake, *, threads: int = 0) -> None:
        self.lake = lake
        self._con = duckdb_connection(threads, keep_order=True)  # the fast path numbers rows in file order
        self._fast = FastPath(self._con, threads or os.cpu_count() or 1)
        self._sql: dict[str, str] = {}
        self._background: ThreadPoolExecutor | None = None  # runs the fast path's writes

    def close(self) -> None:
        """Close the DuckDB connection."""
        if self._background is not None:
            self._background.shutdown()
        self._fast.close()
        self._con.close()

    def process(self, msg: ChunkMessage) -> ChunkResult:
        """Transform one chunk; safe to repeat (same files, same ledger entry)."""
        return self.finish(self.start(msg))

    def start(self, msg: ChunkMessage) -> PendingChunk:
        """Read a chunk and, when it can take the fast path, start writing it on a background
        thread; :meth:`finish` completes it. Meanwhile the caller may finish the previous
        chunk, so its publishing (file moves, fsyncs, ledger, lineage) overlaps this chunk's
        DuckDB work."""
        pipeline = get_pipeline(msg.pipeline)
        pending = PendingChunk(msg, pipeline, ChunkResult(msg.object_id, msg.chunk))
        try:
            if msg.format == "json":
                pending.data = self._array_as_lines(msg, pending.pre_rejects)
            else:
                pending.data = self.lake.store.get_range("landing", msg.key, msg.start, msg.end)
        except NotFoundError:
            done = self.lake.state.get(CHUNKS, _chunk_key(msg))
            if done is not None:
                pending.done = ChunkResult(msg.object_id, msg.chunk, **_ledger_counts(done.data))
                return pending
            raise DataError(f"landing object {msg.key} vanished before chunk {msg.chunk} loaded") from None
        pending.work = Path(tempfile.mkdtemp(prefix=f"{msg.object_id}-{msg.chunk}-", dir=self.lake.work_dir))
        lines = self._fast_lines(msg, pipeline, pending.data)
        if lines is not None:
            if self._background is None:
                self._background = ThreadPoolExecutor(1, thread_name_prefix="lakeline-chunk")
            pending.fast = self._background.submit(
                self._write_fast, msg, pipeline, pending.data, lines, pending.work / "fast")
        return pending

    def _write_fast(
        self, msg: ChunkMessage, pipeline: StreamPipeline, data: bytes, lines: int, out: Path
    ) -> dict[str, list[Path]] | None:
        dirs = self._fast.write(msg, pipeline, data, lines, out)
        if dirs is not None:
            start_writeback_tree(out)  # publishing fsyncs each file: let the disk start now
        return dirs

    def finish(self, pending: PendingChunk) -> ChunkResult:
        """Complete a chunk :meth:`start` began: publish its files, or take the exact path;
        then the events, the ledger entry and lineage."""
        if pending.done is not None:
            return pending.done
        msg, pipeline, result, work = pending.msg, pending.pipeline, pending.result, pending.work
        assert work is not None  # set whenever done is not
        try:
            dirs = pending.fast.result() if pending.fast is not None else None
            if dirs is not None:
                for rt_name, out_dirs in dirs.items():
                    self._publish(msg, rt_name, out_dirs, None, result)
                crash_point("transform.after_silver")
            else:
                shutil.rmtree(work / "fast", ignore_errors=True)
                self._exact_transform(msg, pipeline, pending.data, pending.pre_rejects, work, result)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        for part in result.partitions:
            self.lake.state.emit_event(PARTITION_READY, part)
        self.lake.state.put(CHUNKS, _chunk_key(msg), {
            "loaded": result.loaded, "rejected": result.rejected, "files": result.files,
            "finished_at": time.time(),
        })
        crash_point("transform.after_ledger")
        lineage_hooks.chunk_written(self.lake, msg, result)
        self._maybe_finish_run(msg)
        return result

    def abandon(self, pending: PendingChunk) -> None:
        """Drop a started chunk that will not be finished (its message is retried)."""
        if pending.fast is not None:
            with contextlib.suppress(Exception):
                pending.fast.result()
        if pending.work is not None:
            shutil.rmtree(pending.work, ignore_errors=True)

    # ---- paths ------------------------------------------------------------------------
    def _fast_lines(self, msg: ChunkMessage, pipeline: StreamPipeline, data: bytes) -> int | None:
        """The chunk's line count when it may take the fast path (:mod:`lakeline.stages.fastpath`):
        clean JSON lines, no blank line, the setting on, not Iceberg; else ``None``."""
        if msg.format != "jsonl" or not self.lake.settings.transform.fast_path or self._iceberg(pipeline):
            return None
        lines = msg.lines or line_count(data)
        return lines if lines == msg.records else None  # blank lines: only the exact path numbers them

    def _exact_transform(
        self, msg: ChunkMessage, pipeline: StreamPipeline, data: bytes,
        pre_rejects: list[dict[str, Any]], work: Path, result: ChunkResult,
    ) -> None:
        """The exact path: every line classified (:mod:`lakeline.stages.classify`)."""
        table, encoding_bad = chunk_table(data)
        spans = line_spans(data, [idx for idx, _ in encoding_bad])
        for idx, message in encoding_bad:
            a, b = spans[idx]
            pre_rejects.append(self._reject(
                msg, idx, msg.start + a if msg.format == "jsonl" else None, reasons.ENCODING_ERROR,
                message, data[a:b].decode("utf-8", "replace"),
            ))
        self._con.register("chunk", table)
        try:
            self._transform(msg, pipeline, data, pre_rejects, work, result)
        finally:
            self._con.execute("DROP TABLE IF EXISTS classified")
            self._con.unregister("chunk")

    def _iceberg(self, pipeline: StreamPipeline) -> bool:
        """True when the pipeline's silver tables are Iceberg (``[tables]``)."""
        return bool(getattr(self.lake.settings.tables, pipeline.name, "parquet") == "iceberg")

    def _sql_for(self, pipeline: StreamPipeline) -> str:
        sql = self._sql.get(pipeline.name)
        if sql is None:
            sql = self._sql[pipeline.name] = classify_sql(pipeline)
        return sql

    def _transform(
        self, msg: ChunkMessage, pipeline: StreamPipeline, data: bytes,
        pre_rejects: list[dict[str, Any]], work: Path, result: ChunkResult,
    ) -> None:
        """Classify the chunk once into a temp table, then write each record type and the
        rejects from it (measured faster than one streaming COPY per type: the write
        parallelises over a materialised table)."""
        self._con.execute(f"CREATE OR REPLACE TEMP TABLE classified AS {self._sql_for(pipeline)}")
        counts = self._con.execute(
            "SELECT record_type, CAST(dt AS VARCHAR), count(*) FROM classified WHERE reason IS NULL "
            "GROUP BY ALL ORDER BY ALL"
        ).fetchall()
        by_type: dict[str, dict[str, int]] = {}
        for rt_name, dt, n in counts:
            by_type.setdefault(rt_name, {})[dt] = int(n)
        iceberg = self._iceberg(pipeline)
        for rt_name, parts in by_type.items():
            rt = pipeline.record_type(rt_name)
            assert rt is not None  # classify only passes known record types
            if iceberg:
                self._append_iceberg(msg, rt, parts, result)
                continue
            self._copy_type(msg, rt, "classified", work)
            self._publish(msg, rt_name, [work / rt_name], parts, result)
        crash_point("transform.after_silver")
        rejects = pre_rejects + self._collect_rejects(msg, pipeline, data)
        result.rejected = len(rejects)
        if rejects:
            write_rejects(self.lake, rejects, msg.pipeline, f"{msg.object_id}-c{msg.chunk:05d}", work)

    def _append_iceberg(
        self, msg: ChunkMessage, rt: RecordType, counts: dict[str, int], result: ChunkResult
    ) -> None:
        """Append a record type's rows to Iceberg ``silver.<record_type>`` (partitioned by
        day of the time field) exactly once: the batch id is (object, chunk, record type)."""
        from lakeline.tables.iceberg import append_batch, ensure_table

        cols = ", ".join('"' + f.name + '"' for f in rt.fields)
        data = self._con.sql(  # a relation's Arrow result is not copied again
            f"SELECT {cols}, "
            "{'bucket': ?, 'key': ?, 'etag': ?, 'line_no': CAST(idx AS BIGINT) + ?} AS _source "
            "FROM classified WHERE reason IS NULL AND record_type = ?",
            params=[msg.bucket, msg.key, msg.etag, msg.first_line - 1, rt.name],
        ).to_arrow_table()
        assert data is not None  # a SELECT always yields a table
        ident = f"silver.{rt.name}"
        ensure_table(self.lake, ident, data.schema, [("event_time", "day")])
        append_batch(self.lake, ident, data, f"{msg.object_id}#c{msg.chunk:05d}#{rt.name}")
        result.loaded += data.num_rows
        result.files.append(f"iceberg:{ident}")
        for dt, n in counts.items():
            result.partitions.append({
                "silver_bucket": self.lake.store.bucket("silver"),
                "silver_prefix": f"iceberg/silver/{rt.name}",
                "record_type": rt.name, "dt": dt, "files_written": 1, "rows": n,
                "object_id": msg.object_id, "chunk": msg.chunk, "format": "iceberg",
            })

    def _copy_type(self, msg: ChunkMessage, rt: RecordType, source: str, out: Path) -> int:
        cols = ", ".join('"' + f.name + '"' for f in rt.fields)
        out.mkdir(parents=True, exist_ok=True)
        row = self._con.execute(
            f"COPY (SELECT {cols}, "
            "{'bucket': ?, 'key': ?, 'etag': ?, 'line_no': CAST(idx AS BIGINT) + ?} AS _source, dt "
            f"FROM {source} WHERE reason IS NULL AND record_type = ?) "
            f"TO '{out / rt.name}' (FORMAT parquet, PARTITION_BY (dt), COMPRESSION zstd)",
            [msg.bucket, msg.key, msg.etag, msg.first_line - 1, rt.name],
        ).fetchone()
        return int(row[0]) if row else 0

    def _publish(
        self, msg: ChunkMessage, rt_name: str, out_dirs: list[Path], counts: dict[str, int] | None,
        result: ChunkResult,
    ) -> None:
        """Move a record type's partition files into silver under their deterministic names
        (``part-<object>-c<chunk>[-n].parquet``), then delete any other file of this chunk in
        the partition: a redelivery that wrote fewer files leaves no stale rows."""
        store = self.lake.store
        by_dt: dict[str, list[Path]] = {}
        for out_dir in out_dirs:
            for part_dir in sorted(out_dir.glob("dt=*")):
                dt = part_dir.name.split("=", 1)[1]
                by_dt.setdefault(dt, []).extend(sorted(part_dir.glob("*.parquet")))
        for dt, produced in sorted(by_dt.items()):
            rows = counts[dt] if counts else sum(pq.read_metadata(p).num_rows for p in produced)
            prefix = f"{rt_name}/dt={dt}/"
            stem = f"{prefix}part-{msg.object_id}-c{msg.chunk:05d}"
            keys = []
            for i, path in enumerate(produced):
                key = f"{stem}{'' if i == 0 else f'-{i}'}.parquet"
                store.put_file("silver", key, path, move=True)
                keys.append(key)
            for info in list(store.list("silver", stem)):
                if info.key not in keys and _CHUNK_FILE.fullmatch(info.key.removeprefix(stem)):
                    store.delete("silver", info.key)
            result.files.extend(keys)
            result.loaded += rows
            result.partitions.append({
                "silver_bucket": store.bucket("silver"), "silver_prefix": prefix,
                "record_type": rt_name, "dt": dt, "files_written": len(produced), "rows": rows,
                "object_id": msg.object_id, "chunk": msg.chunk,
            })

    def _collect_rejects(
        self, msg: ChunkMessage, pipeline: StreamPipeline, data: bytes
    ) -> list[dict[str, Any]]:
        rows = self._con.execute(
            "SELECT idx, reason, record_type FROM classified WHERE reason IS NOT NULL ORDER BY idx"
        ).fetchall()
        if not rows:
            return []
        spans = line_spans(data, [r[0] for r in rows])
        lines = {i: data[a:b].decode("utf-8", "replace") for i, (a, b) in spans.items()}
        bad = pa.table({"idx": pa.array(list(lines), pa.int64()),
                        "line": pa.array(list(lines.values()), pa.string())})
        self._con.register("bad", bad)
        try:
            messages = dict(self._con.execute(explain_sql(pipeline)).fetchall())
        finally:
            self._con.unregister("bad")
        out = []
        for idx, reason, record_type in rows:
            line = lines.get(idx, "")
            message = json_error(line) if reason == reasons.MALFORMED_JSON else messages.get(idx, "")
            offset = msg.start + spans[idx][0] if msg.format == "jsonl" and idx in spans else None
            out.append(self._reject(msg, idx, offset, reason, message, line, record_type=record_type))
        return out

    def _reject(
        self, msg: ChunkMessage, idx: int, byte_offset: int | None, reason: str, message: str,
        raw: str | None, *, record_type: str | None = None,
    ) -> dict[str, Any]:
        return reject_row(
            pipeline=msg.pipeline, bucket=msg.bucket, key=msg.key, etag=msg.etag, chunk=msg.chunk,
            line_no=msg.first_line + idx - 1, byte_offset=byte_offset, record_type=record_type,
            reason_code=reason, message=message, raw=None if raw is None else raw[:MAX_RAW],
            rejected_at=datetime.now(UTC),
        )

    def _array_as_lines(self, msg: ChunkMessage, pre_rejects: list[dict[str, Any]]) -> bytes:
        raw = self.lake.store.get("landing", msg.key)
        items = orjson.loads(raw.removeprefix(BOM))
        lines: list[bytes] = []
        for i, item in enumerate(items, start=1):
            if isinstance(item, dict):
                lines.append(orjson.dumps(item))
            else:
                pre_rejects.append(self._reject(
                    msg, i, None, reasons.NOT_AN_OBJECT, "array element is not an object",
                    orjson.dumps(item).decode(),
                ))
                lines.append(b"")
        return b"\n".join(lines)

    def _maybe_finish_run(self, msg: ChunkMessage) -> None:
        done = self.lake.state.query(CHUNKS, prefix=f"{msg.object_id}#")
        if len(done) < msg.chunks:
            return
        run = self.lake.state.get(RUNS, msg.run_key)
        entry = dict(run.data) if run else {}
        entry.update(
            status="COMPLETE",
            loaded=sum(int(i.data["loaded"]) for i in done),
            rejected=sum(int(i.data["rejected"]) for i in done) + int(entry.get("dropped", 0)),
            finished_at=datetime.now(UTC).isoformat(timespec="milliseconds"),
        )
        self.lake.state.log_run(msg.run_key, entry)
        lineage_hooks.object_complete(self.lake, msg, entry)


def write_rejects(lake: Lake, rows: list[dict[str, Any]], pipeline: str, name: str, work: Path) -> str:
    """Write reject rows as one Parquet file under ``error/rejects/<pipeline>/``."""
    table = pa.Table.from_pylist(rows, schema=REJECTS_SCHEMA)
    path = work / f"rejects-{name}.parquet"
    pq.write_table(table, path, compression="zstd")
    key = f"rejects/{pipeline}/part-{name}.parquet"
    lake.store.put_file("error", key, path, move=True)
    return key


_REJECT_FIELDS: list[pa.Field[Any]] = [
    pa.field("pipeline", pa.string()), pa.field("bucket", pa.string()), pa.field("key", pa.string()),
    pa.field("etag", pa.string()), pa.field("chunk", pa.int64()), pa.field("line_no", pa.int64()),
    pa.field("byte_offset", pa.int64()), pa.field("record_type", pa.string()),
    pa.field("reason_code", pa.string()), pa.field("message", pa.string()), pa.field("raw", pa.string()),
    pa.field("rejected_at", pa.timestamp("us", tz="UTC")),
]
REJECTS_SCHEMA = pa.schema(_REJECT_FIELDS)
assert tuple(REJECTS_SCHEMA.names) == REJECT_COLUMNS


def _chunk_key(msg: ChunkMessage) -> str:
    return f"{msg.object_id}#{msg.chunk:05d}"


def _ledger_counts(data: dict[str, Any]) -> dict[str, Any]:
    return {"loaded": int(data.get("loaded", 0)), "rejected": int(data.get("rejected", 0)),
            "files": list(data.get("files", []))}
