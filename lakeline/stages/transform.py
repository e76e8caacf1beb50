"""Transform stage: one chunk message → typed silver Parquet + rejects.

Exactly-once effect under at-least-once delivery: a chunk's output files have names fixed by
(object, chunk), so a redelivered message rewrites the same files instead of adding rows.
Files are written in the lake's scratch directory and moved into their zone atomically.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lakeline import reasons
from lakeline.duck import duckdb_connection
from lakeline.errors import DataError, NotFoundError
from lakeline.faults import crash_point
from lakeline.lake import Lake
from lakeline.lineage import hooks as lineage_hooks
from lakeline.ports.state import RUNS
from lakeline.sqltext import lit, quote
from lakeline.stages.chunking import read_row_groups
from lakeline.stages.classify import SUPERSEDED, Classifier, dedupe_sql
from lakeline.stages.csvscan import parse_header
from lakeline.stages.evolution import add_fields, evolved
from lakeline.stages.fastpath import FastPath
from lakeline.stages.formats import json_keys_sql, unknown_column
from lakeline.stages.gunzip import drop_staged
from lakeline.stages.jsonarray import NotAnArray, split_array
from lakeline.stages.lines import chunk_table, json_error, line_count
from lakeline.stages.messages import CHUNKS, PARTITION_READY, ChunkMessage
from lakeline.stages.publish import FINALS, Publisher, staged_load
from lakeline.stages.rejects import reject_row, write_rejects
from lakeline.stages.sources import ChunkSource, CsvSource, JsonLinesSource, Located, ParquetSource
from lakeline.stages.spec import StreamSpec, StreamTable
from lakeline.tables.sink import Batch
from lakeline.writeback import start_writeback_tree

MAX_RAW = 65536
#: fast-path misses of one object after which its chunks take the exact path at once
FAST_MISSES = 2


@dataclass
class ChunkResult:
    """What one chunk produced. ``deduplicated``: records a later record with the same key
    superseded (``on_duplicate = "latest"``); ``input = loaded + rejected + deduplicated``."""

    object_id: str
    chunk: int
    loaded: int = 0
    rejected: int = 0
    deduplicated: int = 0
    files: list[str] = field(default_factory=list)
    partitions: list[dict[str, Any]] = field(default_factory=list)
    staged: int = 0  # rows waiting for the rest of a keyed load (lakeline.stages.publish)


@dataclass
class PendingChunk:
    """A chunk :meth:`Transformer.start` began and :meth:`Transformer.finish` completes."""

    msg: ChunkMessage
    spec: StreamSpec
    result: ChunkResult
    data: bytes = b""  # the chunk's bytes as UTF-8 text (JSON lines, CSV)
    source: ChunkSource | None = None
    pre_rejects: list[dict[str, Any]] = field(default_factory=list)
    work: Path | None = None
    fast: Future[dict[str, list[Path]] | None] | None = None  # the fast path's write, running
    done: ChunkResult | None = None  # already loaded (its landing object is gone)


class Transformer:
    """Transforms chunk messages of streaming pipelines. One per worker process.

    ``specs(pipeline)`` gives the stream spec of a pipeline (the pipeline registry's
    ``stream``), so the transform never names a pipeline."""

    def __init__(self, lake: Lake, specs: Callable[[str], StreamSpec], *, threads: int = 0) -> None:
        self.lake = lake
        self.specs = specs
        self._con = duckdb_connection(threads, keep_order=True)
        self._fast = FastPath(threads or os.cpu_count() or 1)  # a connection of its own
        self._sql: dict[tuple[Any, ...], tuple[str, str]] = {}
        self._background: ThreadPoolExecutor | None = None  # runs the fast path's writes
        self._publisher = Publisher(lake)
        # fast-path misses by object: after two, the object's other chunks would likely miss too
        # (a file with a bad row every few thousand) and go straight to the exact path; one
        # miss (a file with one bad line) leaves the rest of the file on the fast path
        self._misses: dict[str, int] = {}

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
        spec = evolved(self.lake, self.specs(msg.pipeline))
        pending = PendingChunk(msg, spec, ChunkResult(msg.object_id, msg.chunk))
        done = self.lake.state.get(CHUNKS, _chunk_key(msg))
        if done is not None and staged_load(spec, msg) and self._publisher.finalized(msg):
            # its load is published and its staging gone: staging it again would leave litter
            pending.done = ChunkResult(msg.object_id, msg.chunk, **_ledger_counts(done.data))
            return pending
        try:
            pending.source = self._read(msg, spec, pending)
        except NotFoundError:
            if done is not None:
                pending.done = ChunkResult(msg.object_id, msg.chunk, **_ledger_counts(done.data))
                return pending
            raise DataError(f"landing object {msg.key} vanished before chunk {msg.chunk} loaded") from None
        pending.work = Path(tempfile.mkdtemp(prefix=f"{msg.object_id}-{msg.chunk}-", dir=self.lake.work_dir))
        clean = True
        if spec.on_unknown_field != "ignore":
            pending.spec, clean = self._unknown_fields(msg, spec, pending.data)
            pending.source.spec = pending.spec
        exact = not clean or self._misses.get(msg.object_id, 0) >= FAST_MISSES
        lines = None if exact else self._fast_lines(msg, pending.spec, pending.data)
        if lines is not None:
            if self._background is None:
                self._background = ThreadPoolExecutor(1, thread_name_prefix="lakeline-chunk")
            header = pending.source.header if isinstance(pending.source, CsvSource) else b""
            pending.fast = self._background.submit(
                self._write_fast, msg, pending.spec, pending.data, lines, pending.work / "fast", header)
        return pending

    def _read(self, msg: ChunkMessage, spec: StreamSpec, pending: PendingChunk) -> ChunkSource:
        """Read the chunk from the landing zone as its format says."""
        store = self.lake.store
        if msg.format == "json":
            pending.data = self._array_as_lines(msg, pending.pre_rejects)
            return JsonLinesSource(msg, spec, data=pending.data)
        if msg.format == "parquet":
            return ParquetSource(msg, spec, rows=read_row_groups(self.lake, msg))
        zone, text_key = msg.text
        raw = store.get_range(zone, text_key, msg.start, msg.end)
        if msg.format != "csv":
            pending.data = raw
            return JsonLinesSource(msg, spec, data=raw)
        opts = spec.csv
        header = store.get_range(zone, text_key, msg.header_start, msg.header_end) \
            if msg.header_end > msg.header_start else b""
        columns = tuple(parse_header(header, opts)) if header else tuple(f.source for f in spec.all_fields())
        if opts.encoding.replace("-", "").lower() not in ("utf8", "ascii"):
            # a single-byte (ASCII-compatible) encoding: the text as UTF-8; offsets stay the file's
            pending.data = raw.decode(opts.encoding, "replace").encode("utf-8")
            header = header.decode(opts.encoding, "replace").encode("utf-8")
        else:
            pending.data = raw
        return CsvSource(msg, spec, data=pending.data, raw=raw, columns=columns, header=header)

    def _write_fast(
        self, msg: ChunkMessage, spec: StreamSpec, data: bytes, lines: int, out: Path, header: bytes
    ) -> dict[str, list[Path]] | None:
        dirs = self._fast.write(msg, spec, data, lines, out, header=header)
        if dirs is not None:
            start_writeback_tree(out)  # publishing fsyncs each file: let the disk start now
        return dirs

    def finish(self, pending: PendingChunk) -> ChunkResult:
        """Complete a chunk :meth:`start` began: publish its files, or take the exact path;
        then the events, the ledger entry and lineage."""
        if pending.done is not None:
            return pending.done
        msg, spec, result, work = pending.msg, pending.spec, pending.result, pending.work
        assert work is not None  # set whenever done is not
        try:
            dirs = pending.fast.result() if pending.fast is not None else None
            if dirs is not None:
                for name, out_dirs in dirs.items():
                    self._publisher.write(msg, spec, name, Batch(files=_by_partition(out_dirs, spec)), result)
                crash_point("transform.after_silver")
            else:
                if pending.fast is not None:
                    if len(self._misses) > 10_000:
                        self._misses.clear()
                    self._misses[msg.object_id] = self._misses.get(msg.object_id, 0) + 1
                shutil.rmtree(work / "fast", ignore_errors=True)
                assert pending.source is not None  # read by start
                self._exact_transform(msg, pending.source, pending.pre_rejects, work, result)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        for part in result.partitions:
            self.lake.state.emit_event(PARTITION_READY, part)
        self.lake.state.put(CHUNKS, _chunk_key(msg), {
            "loaded": result.loaded, "rejected": result.rejected, "deduplicated": result.deduplicated,
            "staged": result.staged, "files": result.files, "finished_at": time.time(),
        })
        crash_point("transform.after_ledger")
        lineage_hooks.chunk_written(self.lake, msg, result)
        self._maybe_finish_run(msg, spec, result)
        return result

    def abandon(self, pending: PendingChunk) -> None:
        """Drop a started chunk that will not be finished (its message is retried)."""
        if pending.fast is not None:
            with contextlib.suppress(Exception):
                pending.fast.result()
        if pending.work is not None:
            shutil.rmtree(pending.work, ignore_errors=True)

    # ---- paths ------------------------------------------------------------------------
    def _fast_lines(self, msg: ChunkMessage, spec: StreamSpec, data: bytes) -> int | None:
        """The chunk's line count when it may take the fast path (:mod:`lakeline.stages.fastpath`):
        JSON lines or CSV with no blank line (and, for CSV, no record over several lines), the
        setting on, not Iceberg; else ``None``."""
        if msg.format not in ("jsonl", "csv") or not self.lake.settings.transform.fast_path:
            return None
        if staged_load(spec, msg) or not self._publisher.takes_files(spec):
            return None  # the fast path writes files for the table's sink to publish as they are
        lines = msg.lines or line_count(data)
        return lines if lines == msg.records else None  # blank lines: only the exact path numbers them

    def _unknown_fields(self, msg: ChunkMessage, spec: StreamSpec, data: bytes) -> tuple[StreamSpec, bool]:
        """Fields the chunk's records have that their tables do not declare: with ``add``
        they become new columns (the spec is evolved); with ``reject`` such a chunk takes the
        exact path, which rejects those records. Returns the spec and whether the chunk is
        clean of them."""
        if msg.format not in ("jsonl", "json"):
            return spec, True
        table, _ = chunk_table(data)
        self._con.register("keys_chunk", table)
        try:
            pairs = self._con.execute(json_keys_sql(spec, "keys_chunk")).fetchall()
        finally:
            self._con.unregister("keys_chunk")
        new: dict[str, list[str]] = {}
        for route, key in pairs:
            t = spec.table(route) if spec.route_field else spec.tables[0]
            if t is not None and all(f.source != key for f in t.columns):
                new.setdefault(t.name, []).append(str(key))
        if not new:
            return spec, True
        if spec.on_unknown_field == "reject":
            return spec, False
        for name, keys in sorted(new.items()):
            spec = add_fields(self.lake, spec, name, sorted(keys), f"{msg.key}#{msg.etag}")
        return spec, True

    def _exact_transform(
        self, msg: ChunkMessage, source: ChunkSource, pre_rejects: list[dict[str, Any]], work: Path,
        result: ChunkResult,
    ) -> None:
        """The exact path: every record classified (:mod:`lakeline.stages.classify`)."""
        source.register(self._con)
        for idx, reason, message, text, offset in source.bad:
            pre_rejects.append(self._reject(msg, idx, offset, reason, message, text))
        try:
            self._transform(msg, source, pre_rejects, work, result)
        finally:
            self._con.execute("DROP TABLE IF EXISTS classified")
            source.unregister(self._con)

    def _sql_for(self, source: ChunkSource) -> tuple[str, str]:
        """The classify and explain SQL of a chunk source's spec (built once per spec)."""
        key = (source.spec, source.key)
        found = self._sql.get(key)
        if found is None:
            c = Classifier(source.spec, json_line=source.json_line, unknown=unknown_column(source.spec))
            found = self._sql[key] = (c.classify_sql(source.parsed_sql()),
                                      c.explain_sql(source.bad_parsed_sql("bad_lines")))
        return found

    def _transform(
        self, msg: ChunkMessage, source: ChunkSource, pre_rejects: list[dict[str, Any]], work: Path,
        result: ChunkResult,
    ) -> None:
        """Classify the chunk once into a temp table, then write each table and the rejects
        from it (measured faster than one streaming COPY per table: the write parallelises
        over a materialised table)."""
        spec = source.spec
        classify, _ = self._sql_for(source)
        self._con.execute(f"CREATE OR REPLACE TEMP TABLE classified AS {classify}")
        dedupe = dedupe_sql(spec, "classified")
        if dedupe is not None:
            self._con.execute(f"CREATE OR REPLACE TEMP TABLE classified AS {dedupe}")
        counts = self._con.execute(
            "SELECT _table, CAST(_dt AS VARCHAR), count(*) FROM classified WHERE _reason IS NULL "
            "GROUP BY ALL ORDER BY ALL"
        ).fetchall()
        by_table: dict[str, dict[str | None, int]] = {}
        for name, dt, n in counts:
            by_table.setdefault(name, {})[dt] = int(n)
        staged = staged_load(spec, msg)
        dt = ", _dt AS dt" if spec.partitioned else ""
        for name, parts in by_table.items():
            t = spec.table_named(name)
            assert t is not None  # classify only passes known tables
            if staged:
                result.staged += self._stage_table(msg, t, source, work)
                continue
            select = (f"SELECT {self._columns(t)}, "
                      "{'bucket': ?, 'key': ?, 'etag': ?, 'line_no': CAST(_idx AS BIGINT) + ?} AS _source"
                      f"{dt} FROM classified WHERE _reason IS NULL AND _table = ?")
            params = [msg.bucket, msg.key, msg.etag, msg.first_line - 1, t.name]
            self._publisher.write_select(msg, spec, name, self._con, select, params, parts, result)
        crash_point("transform.after_silver")
        rejects = pre_rejects + self._collect_rejects(msg, source)
        result.rejected = len(rejects)
        result.deduplicated = _count(self._con.execute(
            f"SELECT count(*) FROM classified WHERE _reason = '{SUPERSEDED}'").fetchone())
        if rejects:
            # a replayed copy replaces the original's rejects file, like its batches
            named = f"{self._publisher.batch_object(msg)}-c{msg.chunk:05d}"
            write_rejects(self.lake, rejects, msg.pipeline, named, work)

    def _columns(self, t: StreamTable, prefix: str = "") -> str:
        return ", ".join(prefix + quote(f.name) for f in t.columns)

    def _stage_table(self, msg: ChunkMessage, t: StreamTable, source: ChunkSource, work: Path) -> int:
        """Stage a table's rows of a chunk of a keyed load, with what finalizing needs: the
        chunk, the record's index and its byte span (:mod:`lakeline.stages.publish`)."""
        spans = source.spans_table()
        join = ""
        if spans is not None:
            self._con.register("spans", spans)
            join = "LEFT JOIN spans USING (_idx)"
        offsets = "s._offset, s._end" if spans is not None else "CAST(NULL AS BIGINT) AS _offset, " \
            "CAST(NULL AS BIGINT) AS _end"
        path = work / f"stage-{t.name}.parquet"
        try:
            row = self._con.execute(
                f"COPY (SELECT {self._columns(t, 'c.')}, "
                "{'bucket': ?, 'key': ?, 'etag': ?, 'line_no': CAST(c._idx AS BIGINT) + ?} AS _source, "
                f"c._dt, CAST(? AS INTEGER) AS _chunk, c._idx, {offsets} "
                f"FROM classified AS c {join.replace('USING (_idx)', 'AS s USING (_idx)')} "
                f"WHERE c._reason IS NULL AND c._table = ?) "
                f"TO {lit(str(path))} (FORMAT parquet, COMPRESSION zstd)",
                [msg.bucket, msg.key, msg.etag, msg.first_line - 1, msg.chunk, t.name]).fetchone()
        finally:
            if spans is not None:
                self._con.unregister("spans")
        self._publisher.stage(msg, t.name, path)
        return _count(row)

    def _collect_rejects(self, msg: ChunkMessage, source: ChunkSource) -> list[dict[str, Any]]:
        rows = self._con.execute(
            "SELECT _idx, _reason, _table FROM classified "
            f"WHERE _reason IS NOT NULL AND _reason <> '{SUPERSEDED}' ORDER BY _idx"
        ).fetchall()
        if not rows:
            return []
        located = source.locate([int(r[0]) for r in rows])
        messages = self._explain(source, located)
        if any(r[1] == reasons.DUPLICATE_FAILURE for r in rows):
            messages.update(self._duplicates(msg, source.spec))
        out = []
        for idx, reason, table in rows:
            found = located.get(idx)
            text = found.text if found is not None else ""
            message = json_error(text) if reason == reasons.MALFORMED_JSON else messages.get(idx, "")
            out.append(self._reject(msg, idx, found.offset if found else None, reason, message, text,
                                    record_type=table))
        return out

    def _explain(self, source: ChunkSource, located: dict[int, Located]) -> dict[int, str]:
        """The message of each rejected record (rejects only: a few)."""
        self._con.register("bad_lines", source.bad_table(located))
        try:
            return {int(i): str(m) for i, m in self._con.execute(self._sql_for(source)[1]).fetchall()}
        finally:
            self._con.unregister("bad_lines")

    def _duplicates(self, msg: ChunkMessage, spec: StreamSpec) -> dict[int, str]:
        """Messages of DUPLICATE_FAILURE records: the key and the line that holds it first."""
        out: dict[int, str] = {}
        for t in spec.tables:
            if not t.key:
                continue
            keys = ", ".join(quote(k) for k in t.key)
            shown = " || ', ' || ".join(f"{lit(k + '=')} || CAST({quote(k)} AS VARCHAR)" for k in t.key)
            found = self._con.execute(
                f"SELECT _idx, {shown}, first_value(_idx) OVER (PARTITION BY {keys} ORDER BY _idx), _reason "
                f"FROM classified WHERE _table = ? AND (_reason IS NULL OR _reason = ?)",
                [t.name, reasons.DUPLICATE_FAILURE]).fetchall()
            for idx, key, first, reason in found:
                if reason == reasons.DUPLICATE_FAILURE:
                    out[int(idx)] = f"duplicate key {key}: first at line {msg.first_line + int(first) - 1}"
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
        found = split_array(self.lake.store.get(*msg.text))
        if isinstance(found, NotAnArray):  # ingest checked it: the object changed under its etag
            raise DataError(f"landing object {msg.key}: {found.message}")
        for i, text in found.not_objects:
            pre_rejects.append(self._reject(
                msg, i, None, reasons.NOT_AN_OBJECT, "array element is not an object", text))
        return found.lines

    def _maybe_finish_run(self, msg: ChunkMessage, spec: StreamSpec, result: ChunkResult) -> None:
        """When every chunk of the object is done: finalize a staged keyed load (its rows,
        rejects and counts join this chunk's result), then the run-log entry and lineage."""
        done = self.lake.state.query(CHUNKS, prefix=f"{msg.object_id}#")
        if len(done) < msg.chunks:
            return
        final = self.lake.state.get(FINALS, msg.object_id)
        if staged_load(spec, msg):
            published = self._publisher.finalize(self._con, msg, spec)
            if published is not None:
                for part in published.partitions:
                    self.lake.state.emit_event(PARTITION_READY, part)
                result.loaded += published.loaded
                result.rejected += published.rejected
                result.deduplicated += published.deduplicated
                lineage_hooks.chunk_written(self.lake, replace(msg, chunk=msg.chunks),
                                            ChunkResult(msg.object_id, msg.chunks, published.loaded,
                                                        published.rejected, published.deduplicated,
                                                        published.files, published.partitions))
                final = self.lake.state.get(FINALS, msg.object_id)
        extra = final.data if final is not None else {}
        run = self.lake.state.get(RUNS, msg.run_key)
        entry = dict(run.data) if run else {}
        entry.update(
            status="COMPLETE",
            loaded=sum(int(i.data["loaded"]) for i in done) + int(extra.get("loaded", 0)),
            rejected=sum(int(i.data["rejected"]) for i in done) + int(entry.get("dropped", 0))
            + int(extra.get("rejected", 0)),
            deduplicated=sum(int(i.data.get("deduplicated", 0)) for i in done)
            + int(extra.get("deduplicated", 0)),
            finished_at=datetime.now(UTC).isoformat(timespec="milliseconds"),
        )
        self.lake.state.log_run(msg.run_key, entry)
        lineage_hooks.object_complete(self.lake, msg, entry)
        drop_staged(self.lake, *msg.text)


def _chunk_key(msg: ChunkMessage) -> str:
    return f"{msg.object_id}#{msg.chunk:05d}"


def _ledger_counts(data: dict[str, Any]) -> dict[str, Any]:
    return {"loaded": int(data.get("loaded", 0)), "rejected": int(data.get("rejected", 0)),
            "deduplicated": int(data.get("deduplicated", 0)), "files": list(data.get("files", []))}


def _count(row: tuple[Any, ...] | None) -> int:
    return int(row[0]) if row else 0


def _by_partition(out_dirs: list[Path], spec: StreamSpec) -> dict[str | None, list[Path]]:
    """The Parquet files DuckDB wrote under ``out_dirs``, by ``dt`` partition (None when the
    table is not partitioned)."""
    found: dict[str | None, list[Path]] = {}
    for out_dir in out_dirs:
        if not spec.partitioned:
            found.setdefault(None, []).extend(sorted(out_dir.glob("*.parquet")))
            continue
        for part_dir in sorted(out_dir.glob("dt=*")):
            found.setdefault(part_dir.name.split("=", 1)[1], []).extend(sorted(part_dir.glob("*.parquet")))
    return found
