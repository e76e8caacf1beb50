"""Publishing a chunk's rows: through the table's sink, or — for a keyed load of several chunks —
staged until the whole load is known, then deduplicated once and published.

A key is unique within a load (one landed object). A load of one chunk is deduplicated by the
chunk itself (:func:`lakeline.stages.classify.dedupe_sql`). A load of several chunks cannot be:
its chunks are transformed independently, maybe by different workers. So each chunk of such a
load writes its rows to the ``tmp`` zone (``staging/<pipeline>/<object>/c<chunk>/<table>.parquet``)
instead of its table, and the worker that finishes the last chunk runs :meth:`Publisher.finalize`:
one DuckDB pass over the staged rows keeps the first record of each key (``on_duplicate =
"reject"``: later ones become ``DUPLICATE_FAILURE`` rejects with their line and byte offset) or
the latest (``"latest"``: the others count as deduplicated), publishes the survivors as the
load's batch (``part-<object>-final``), and removes the staging. Readers never see a duplicate.

Finalizing is claimed in the state store (``begin``/``complete``, like ingest idempotency): a
crash in it is finished by the redelivered last chunk, and it runs once.

A replayed copy (``<pipeline>/replay/<name>/<key>``) publishes its batches under the original
object's id, so it replaces the original's rows instead of adding them again
(:mod:`lakeline.stages.supersede`).
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from lakeline import reasons
from lakeline.errors import LockedError
from lakeline.lake import Lake
from lakeline.ports.state import BeginResult
from lakeline.sqltext import lit, quote
from lakeline.stages.messages import ChunkMessage
from lakeline.stages.rejects import reject_row, write_rejects
from lakeline.stages.spec import StreamSpec, StreamTable
from lakeline.stages.supersede import batch_object_id, replay_root
from lakeline.tables.sink import Batch, TableSink, WriteResult, open_sink

if TYPE_CHECKING:
    import duckdb

STAGING = "staging"
FINALS = "finals"
MAX_RAW = 65536


@dataclass
class Published:
    """What publishing wrote: rows, files and one ``silver_partition_ready`` detail per partition."""

    loaded: int = 0
    rejected: int = 0
    deduplicated: int = 0
    files: list[str] = field(default_factory=list)
    partitions: list[dict[str, Any]] = field(default_factory=list)


class Counts(Protocol):
    """Where :meth:`Publisher.write` adds what it wrote (a chunk's result, :class:`Published`)."""

    loaded: int
    files: list[str]
    partitions: list[dict[str, Any]]


def staged_load(spec: StreamSpec, msg: ChunkMessage) -> bool:
    """True when a chunk's rows wait for the whole load (a keyed load of several chunks)."""
    return spec.keyed and msg.chunks > 1


class Publisher:
    """Writes tables' rows through their sinks, and stages and finalizes keyed loads."""

    def __init__(self, lake: Lake) -> None:
        self.lake = lake
        self._object_ids: dict[str, str] = {}  # a replayed copy's id → the id its batches take

    def sink(self, spec: StreamSpec, name: str) -> TableSink:
        """The sink of one of the stream's tables."""
        t = spec.table_named(name)
        assert t is not None
        return open_sink(self.lake, spec.table_spec(t), time_field=spec.time_field)

    def takes_files(self, spec: StreamSpec) -> bool:
        """True when every table of the stream takes the fast path's Parquet files as they are."""
        return all(self.sink(spec, t.name).takes_files for t in spec.tables)

    def write(self, msg: ChunkMessage, spec: StreamSpec, name: str, batch: Batch, out: Counts,
              *, tag: str | None = None) -> None:
        """Write one table's rows of a chunk (``tag``: ``c<chunk>``, or ``final``) exactly once."""
        sink = self.sink(spec, name)
        self._record(msg, spec, name, sink, sink.write_batch(self._batch_id(msg, sink, name, tag), batch),
                     batch.rows, out)

    def write_select(self, msg: ChunkMessage, spec: StreamSpec, name: str, con: duckdb.DuckDBPyConnection,
                     select: str, params: list[Any], rows: dict[str | None, int], out: Counts,
                     *, tag: str | None = None) -> None:
        """Write one table's rows of a chunk given as a DuckDB query (with ``dt`` when the
        table is partitioned), in the form its sink takes best."""
        sink = self.sink(spec, name)
        written = sink.write_select(self._batch_id(msg, sink, name, tag), con, select, params, rows=rows)
        self._record(msg, spec, name, sink, written, rows, out)

    def _batch_id(self, msg: ChunkMessage, sink: TableSink, name: str, tag: str | None) -> str:
        # one id per (object, chunk, table); the forms are those lakes already hold, so a
        # redelivery after an upgrade still replaces (Parquet) or finds (Iceberg) its batch.
        # A replayed copy publishes under the original object's id: it supersedes its rows
        # (lakeline.stages.supersede) instead of adding them again.
        tag = tag or f"c{msg.chunk:05d}"
        oid = self.batch_object(msg)
        return f"{oid}#{tag}#{name}" if sink.spec.layout == "iceberg" else f"{oid}-{tag}"

    def batch_object(self, msg: ChunkMessage) -> str:
        """The object id ``msg``'s batches (and rejects files) are named by: its own, or for a
        replayed copy the original object's."""
        if not msg.key.startswith(replay_root(msg.pipeline)):
            return msg.object_id
        if msg.object_id not in self._object_ids:
            self._object_ids[msg.object_id] = batch_object_id(self.lake, msg.pipeline, msg.key, msg.etag,
                                                              msg.object_id)
        return self._object_ids[msg.object_id]

    def _record(self, msg: ChunkMessage, spec: StreamSpec, name: str, sink: TableSink, written: WriteResult,
                rows_by_part: dict[str | None, int] | None, out: Counts) -> None:
        table = sink.spec
        out.files.extend(written.files)
        out.loaded += sum(rows_by_part.values()) if rows_by_part else written.total
        for part, rows in written.rows.items():
            detail: dict[str, Any] = {
                "silver_bucket": self.lake.store.bucket("silver"),
                "silver_prefix": f"iceberg/silver/{name}" if table.layout == "iceberg" else (
                    f"{table.prefix}/" + (f"dt={part}/" if part is not None else "")),
                "record_type": name, "dt": part, "files_written": written.files_by_partition.get(part, 0),
                "rows": (rows_by_part or {}).get(part, rows), "object_id": msg.object_id, "chunk": msg.chunk,
                "pipeline": spec.pipeline,
            }
            if table.layout == "iceberg":
                detail["format"] = "iceberg"
            out.partitions.append(detail)

    # ---- keyed loads of several chunks --------------------------------------------------------
    def stage_key(self, msg: ChunkMessage, table: str) -> str:
        """Where a chunk's rows of ``table`` wait (tmp zone)."""
        return f"{STAGING}/{msg.pipeline}/{msg.object_id}/c{msg.chunk:05d}/{table}.parquet"

    def stage(self, msg: ChunkMessage, table: str, path: Path) -> None:
        """Store a chunk's staged rows (written by the transform to ``path``)."""
        self.lake.store.put_file("tmp", self.stage_key(msg, table), path, move=True)

    def finalized(self, msg: ChunkMessage) -> bool:
        """True once the load of ``msg``'s object is published."""
        return self.lake.state.get(FINALS, msg.object_id) is not None

    def finalize(self, con: duckdb.DuckDBPyConnection, msg: ChunkMessage,
                 spec: StreamSpec) -> Published | None:
        """Deduplicate and publish a staged load (see the module docstring); None when another
        call did it already. Raises :class:`LockedError` while another worker is at it."""
        claim = f"finalize:{msg.bucket}/{msg.key}#{msg.etag}"
        settings = self.lake.settings.ingest
        begun = self.lake.state.begin(claim, ttl_seconds=settings.idempotency_ttl_days * 86400,
                                      lock_seconds=settings.lock_timeout_seconds)
        if begun is BeginResult.COMPLETED:
            return None
        if begun is BeginResult.IN_PROGRESS:
            raise LockedError(f"{claim} is being finalized by another worker")
        work = Path(tempfile.mkdtemp(prefix=f"{msg.object_id}-final-", dir=self.lake.work_dir))
        try:
            out = Published()
            rejects: list[dict[str, Any]] = []
            prefix = f"{STAGING}/{msg.pipeline}/{msg.object_id}/"
            listed = [i.key for i in self.lake.store.list("tmp", prefix)]
            for t in spec.tables:
                staged = [k for k in listed if k.endswith(f"/{t.name}.parquet")]
                if staged:
                    rejects += self._finalize_table(con, msg, spec, t, staged, work, out)
            if rejects:
                write_rejects(self.lake, rejects, msg.pipeline, f"{self.batch_object(msg)}-final", work)
            out.rejected = len(rejects)
            self.lake.state.put(FINALS, msg.object_id, {
                "loaded": out.loaded, "rejected": out.rejected, "deduplicated": out.deduplicated,
                "files": out.files})
            for key in listed:
                self.lake.store.delete("tmp", key)
        except BaseException:
            self.lake.state.release(claim)
            raise
        finally:
            shutil.rmtree(work, ignore_errors=True)
        self.lake.state.complete(claim, {"loaded": out.loaded})
        return out

    def _finalize_table(self, con: duckdb.DuckDBPyConnection, msg: ChunkMessage, spec: StreamSpec,
                        t: StreamTable, staged: list[str], work: Path,
                        out: Published) -> list[dict[str, Any]]:
        paths = [str(self._readable(k, work)) for k in staged]
        keys = ", ".join(quote(k) for k in t.key)
        if spec.on_duplicate == "latest":
            latest = f"{quote(spec.time_field)} DESC, " if spec.time_field else ""
            order = f"{latest}_chunk DESC, _idx DESC"
        else:
            order = "_chunk, _idx"
        con.execute(f"""CREATE OR REPLACE TEMP TABLE final_rows AS
            SELECT *, row_number() OVER (PARTITION BY {keys} ORDER BY {order}) AS _rank,
                   first_value(_source.line_no) OVER (PARTITION BY {keys} ORDER BY _chunk, _idx) AS _first
            FROM read_parquet({lit_list(paths)}, union_by_name = true)""")
        try:
            cols = ", ".join(quote(f.name) for f in t.columns)
            parts: dict[str | None, int] = {dt: int(n) for dt, n in con.execute(
                "SELECT CAST(_dt AS VARCHAR), count(*) FROM final_rows WHERE _rank = 1 GROUP BY ALL",
            ).fetchall()}
            if parts:
                dt = ", _dt AS dt" if spec.partitioned else ""
                self.write_select(msg, spec, t.name, con,
                                  f"SELECT {cols}, _source{dt} FROM final_rows WHERE _rank = 1", [], parts,
                                  out, tag="final")
            dups = con.execute(
                f"SELECT _source.line_no, _offset, _end, _chunk, _first, {_shown(t)} FROM final_rows "
                "WHERE _rank > 1 ORDER BY _chunk, _idx").fetchall()
        finally:
            con.execute("DROP TABLE IF EXISTS final_rows")
        if spec.on_duplicate == "latest":
            out.deduplicated += len(dups)
            return []
        texts = self._texts(msg, [(o, e) for _, o, e, _, _, _ in dups if o is not None and e is not None])
        now = datetime.now(UTC)
        return [reject_row(
            pipeline=msg.pipeline, bucket=msg.bucket, key=msg.key, etag=msg.etag, chunk=chunk,
            line_no=line, byte_offset=offset, record_type=t.name, reason_code=reasons.DUPLICATE_FAILURE,
            message=f"duplicate key {shown}: first at line {first}", raw=texts.get(offset),
            rejected_at=now) for line, offset, _, chunk, first, shown in dups]

    def _readable(self, key: str, work: Path) -> Path:
        path = self.lake.store.local_path("tmp", key)
        if path is not None:
            return path
        local = work / key.replace("/", "_")
        local.write_bytes(self.lake.store.get("tmp", key))
        return local

    def _texts(self, msg: ChunkMessage, spans: list[tuple[int, int]]) -> dict[int, str]:
        """The landed text of the duplicate records, read in a few ranges (rejects only)."""
        out: dict[int, str] = {}
        for a, b in _merged(sorted(spans)):
            block = self.lake.store.get_range(*msg.text, a, b)
            for start, end in spans:
                if a <= start and end <= b:
                    out[start] = block[start - a:end - a].decode("utf-8", "replace")[:MAX_RAW]
        return out


def _merged(spans: list[tuple[int, int]], gap: int = 1 << 20) -> list[tuple[int, int]]:
    """Sorted spans merged when less than ``gap`` bytes apart (fewer range reads)."""
    out: list[tuple[int, int]] = []
    for a, b in spans:
        if out and a - out[-1][1] < gap:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def _shown(t: StreamTable) -> str:
    return " || ', ' || ".join(f"{lit(k + '=')} || CAST({quote(k)} AS VARCHAR)" for k in t.key)


def lit_list(values: list[str]) -> str:
    """A SQL list of string literals."""
    return "[" + ", ".join(lit(v) for v in values) + "]"
