"""The transform's fast path: clean JSON-lines chunks parsed by DuckDB's own JSON reader.

The exact path (:func:`lakeline.stages.classify.classify_sql`) splits a chunk into lines and
parses each line with ``from_json``, so that every line -- malformed, blank, not an object --
is classified with its line number; then it materialises the result and writes from it. That
generality costs about twice what DuckDB's ``read_json`` needs for the same bytes, but
``read_json`` only reads files, skips blank lines and stops at the first malformed line.

So the fast path is optimistic, and keeps its result only when it is provably the exact path's:

1. The chunk holds no blank line (ingest counts lines and records), so the n-th row
   ``read_json`` yields is the n-th line: ``WITH ORDINALITY`` numbers rows in file order (it
   runs as a streaming window, which DuckDB documents as order preserving).
2. ``read_json`` reads the fields as text, exactly as ``from_json`` does on the exact path,
   and the same SQL types and classifies them (:func:`~lakeline.stages.classify.typed_columns`
   and :func:`~lakeline.stages.classify.record_reasons`). A line that is not one JSON object
   (malformed, an array, two objects, invalid UTF-8) raises.
3. Every line loads: the rows written equal the lines of the chunk.

Otherwise its output is discarded and the chunk takes the exact path, which also gives
rejects their precise reason codes. The bytes reach ``read_json`` through an in-memory
filesystem (:class:`ChunkFiles`), so the fast path works the same on local and S3 objects.

Numbering rows in order makes a scan single-threaded, so a chunk is cut at line ends into one
part per DuckDB thread and the parts are written concurrently, each by its own cursor, to its
own files (``part-<object>-c<chunk>[-n].parquet``).
"""

from __future__ import annotations

import contextlib
import itertools
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import orjson
from fsspec.implementations.memory import MemoryFileSystem

from lakeline.pipelines.base import Field, RecordType, StreamPipeline
from lakeline.sqltext import lit, quote
from lakeline.stages.classify import record_reasons, type_error, typed_column
from lakeline.stages.messages import ChunkMessage

PROTOCOL = "lakeline-chunk"
MIN_PART = 4 << 20  # smaller parts are not worth a thread
_NOT_JSON_WHITESPACE = (b"\x0b", b"\x0c", b"\x00")


class ChunkFiles(MemoryFileSystem):  # type: ignore[misc]  # fsspec has no type hints
    """An fsspec in-memory filesystem of its own (``lakeline-chunk://``) holding chunk bytes
    while DuckDB reads them; entries live only for one chunk."""

    protocol = PROTOCOL
    store: dict[str, Any] = {}  # fsspec keeps the store on the class: this class's own
    pseudo_dirs = [""]

    @classmethod
    def _strip_protocol(cls, path: str) -> str:
        path = path.removeprefix(PROTOCOL + "://")
        return "/" + path.strip("/")


@dataclass(frozen=True)
class Part:
    """Bytes ``data[start:end]`` of a chunk whose first line is line ``base + 1`` of the chunk."""

    start: int
    end: int
    base: int


def split(data: bytes, parts: int) -> list[Part]:
    """Cut ``data`` at line ends into at most ``parts`` parts of at least :data:`MIN_PART`."""
    parts = max(1, min(parts, len(data) // MIN_PART))
    cuts = [0]
    for i in range(1, parts):
        cut = data.find(b"\n", max(cuts[-1], len(data) * i // parts))
        if cut < 0 or cut + 1 >= len(data):
            break
        cuts.append(cut + 1)
    cuts.append(len(data))
    out: list[Part] = []
    base = 0
    for a, b in itertools.pairwise(cuts):
        out.append(Part(a, b, base))
        if b < len(data):  # the last part's lines are never needed
            base += data.count(b"\n", a, b)
    return out


class FastPath:
    """Writes clean chunks with ``read_json``; one per :class:`~lakeline.stages.transform.Transformer`."""

    def __init__(self, con: duckdb.DuckDBPyConnection, threads: int) -> None:
        self._con = con
        self._threads = max(1, threads)
        self._fs = ChunkFiles()
        con.register_filesystem(self._fs)
        self._cursors: list[duckdb.DuckDBPyConnection] = []
        self._pool: ThreadPoolExecutor | None = None

    def close(self) -> None:
        """Stop the threads and close the cursors."""
        if self._pool is not None:
            self._pool.shutdown()
        for cur in self._cursors:
            cur.close()
        with contextlib.suppress(Exception):
            self._con.unregister_filesystem(PROTOCOL)

    def write(
        self, msg: ChunkMessage, pipeline: StreamPipeline, data: bytes, lines: int, work: Path
    ) -> dict[str, list[Path]] | None:
        """Write every row of a clean chunk as Parquet under ``work``; returns the output
        directories by record type, or ``None`` when the chunk must take the exact path
        (``work`` may then hold partial output: discard it)."""
        if any(b in data for b in _NOT_JSON_WHITESPACE):
            return None  # read_json takes these for whitespace around an object; JSON does not
        parts = split(data, self._threads)
        names = [f"/{uuid.uuid4().hex}-{i}.jsonl" for i in range(len(parts))]
        try:
            for name, p in zip(names, parts, strict=True):
                self._fs.pipe_file(name, data if len(parts) == 1 else data[p.start : p.end])
            return self._write(msg, pipeline, data, parts, names, lines, work)
        except duckdb.Error:  # malformed JSON, not an object, invalid UTF-8, ...
            return None
        finally:
            for name in names:
                self._fs.store.pop(name, None)

    def _write(
        self, msg: ChunkMessage, pipeline: StreamPipeline, data: bytes, parts: list[Part],
        names: list[str], lines: int, work: Path,
    ) -> dict[str, list[Path]] | None:
        out: dict[str, list[Path]] = {}
        guess = _first_record_type(data, pipeline)
        written = 0
        if guess is not None:
            written = self._copy(msg, pipeline, guess, parts, names, work, out)
        if written == lines:
            return out
        present = self._census(pipeline, names)
        if present is None or sum(present.values()) != lines:
            return None  # a line is rejected, or read_json saw a different number of rows
        for rt_name in present:
            if rt_name != (guess.name if guess else None):
                rt = pipeline.record_type(rt_name)
                assert rt is not None  # the census only counts known types that load
                written += self._copy(msg, pipeline, rt, parts, names, work, out)
        return out if written == lines else None

    def _copy(
        self, msg: ChunkMessage, pipeline: StreamPipeline, rt: RecordType, parts: list[Part],
        names: list[str], work: Path, out: dict[str, list[Path]],
    ) -> int:
        """Write ``rt``'s loading rows, one COPY per part on its own thread; rows written."""
        dirs = [work / rt.name / f"p{i}" for i in range(len(parts))]
        (work / rt.name).mkdir(parents=True, exist_ok=True)
        jobs = [
            (copy_sql(pipeline, rt, PROTOCOL + "://" + name.lstrip("/"), d),
             [msg.bucket, msg.key, msg.etag, msg.first_line - 1 + p.base])
            for name, p, d in zip(names, parts, dirs, strict=True)
        ]
        counts = list(self._run(jobs))
        out[rt.name] = dirs
        return sum(counts)

    def _run(self, jobs: list[tuple[str, list[Any]]]) -> Iterator[int]:
        if len(jobs) == 1:
            sql, params = jobs[0]
            yield self._execute(0, sql, params)
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self._threads, thread_name_prefix="lakeline-fast")
        self._cursor(len(jobs) - 1)  # open the cursors here, not racing in the threads
        futures = [
            self._pool.submit(self._execute, i, sql, params) for i, (sql, params) in enumerate(jobs)
        ]
        for f in futures:
            yield f.result()

    def _execute(self, i: int, sql: str, params: list[Any]) -> int:
        return _count(self._cursor(i).execute(sql, params).fetchone())

    def _cursor(self, i: int) -> duckdb.DuckDBPyConnection:
        while len(self._cursors) <= i:
            cur = self._con.cursor()
            cur.execute("SET TimeZone='UTC'")
            self._cursors.append(cur)
        return self._cursors[i]

    def _census(self, pipeline: StreamPipeline, names: list[str]) -> dict[str, int] | None:
        """Rows per record type when every row loads, else ``None`` (a reject: exact path)."""
        files = "[" + ", ".join(lit(PROTOCOL + "://" + n.lstrip("/")) for n in names) + "]"
        rows = self._cursor(0).execute(
            f"SELECT r.record_type, ({reason_sql(pipeline)}) IS NULL, count(*) "
            f"FROM {typed_source(pipeline.all_fields(), files, ordinality=False)} GROUP BY ALL"
        ).fetchall()
        if any(not loads for _, loads, _ in rows):
            return None
        return {str(rt): int(n) for rt, _, n in rows}


def _count(row: tuple[Any, ...] | None) -> int:
    return int(row[0]) if row else 0


def _first_record_type(data: bytes, pipeline: StreamPipeline) -> RecordType | None:
    """The record type of the chunk's first line: the likely type of the whole chunk."""
    end = data.find(b"\n")
    try:
        first = orjson.loads(data[: end if end >= 0 else len(data)])
    except orjson.JSONDecodeError:
        return None
    name = first.get("record_type") if isinstance(first, dict) else None
    return pipeline.record_type(name) if isinstance(name, str) else None


def _read_json(fields: list[Field], files: str) -> str:
    columns = "{" + ", ".join(f"{lit(f.name)}: 'VARCHAR'" for f in fields) + "}"
    return f"read_json({files}, format='newline_delimited', records=true, columns={columns})"


def _raw(f: Field) -> str:
    return f"r.{quote(f.name)}"


def _typed(f: Field) -> str:
    return f"r.{quote('__t_' + f.name)}" if f.type != "string" else _raw(f)


def typed_source(fields: list[Field], files: str, *, ordinality: bool) -> str:
    """``read_json`` of ``files`` as ``r``: each of ``fields`` as text (as ``from_json`` gives
    it on the exact path), ``__t_<field>`` typed as on the exact path (non-string fields) and,
    with ``ordinality``, the row number in file order."""
    casts = "".join(
        f", {typed_column(f, quote(f.name))} AS {quote('__t_' + f.name)}"
        for f in fields if f.type != "string"
    )
    numbered = " WITH ORDINALITY" if ordinality else ""
    return f"(SELECT *{casts} FROM {_read_json(fields, files)}{numbered}) AS r"


def reason_sql(pipeline: StreamPipeline) -> str:
    """The reason code of a row of :func:`typed_source` over all the pipeline's fields (NULL:
    it loads)."""
    return f"CASE {record_reasons(pipeline, _raw, _typed)} END"


def copy_sql(pipeline: StreamPipeline, rt: RecordType, file: str, out: Path) -> str:
    """COPY of ``rt``'s loading rows of one part to ``out`` (Parquet partitioned by ``dt``),
    with the exact path's columns. Parameters: bucket, key, etag, line number before the part.

    Only ``rt``'s fields are read, and only its rules apply: a row of ``rt`` loads when its
    time converts and no field has the wrong type (:func:`record_reasons` restricted to
    ``record_type = rt``; keys of other types are ignored, as ``from_json`` ignores them)."""
    fields = [Field("record_type"), *(f for f in rt.fields if f.name != "record_type")]
    cols = ", ".join(
        f"{_raw(f) if f.name == 'record_type' else _typed(f)} AS {quote(f.name)}" for f in rt.fields
    )
    time_field = Field(pipeline.time_field, "timestamp")
    if time_field.name not in {f.name for f in fields}:
        fields.append(time_field)
    return (
        f"COPY (SELECT {cols}, "
        "{'bucket': ?, 'key': ?, 'etag': ?, 'line_no': CAST(r.ordinality AS BIGINT) + ?} AS _source, "
        f"CAST({_typed(time_field)} AS DATE) AS dt "
        f"FROM {typed_source(fields, lit(file), ordinality=True)} "
        f"WHERE r.record_type = {lit(rt.name)} AND {_typed(time_field)} IS NOT NULL "
        f"AND NOT coalesce({type_error(pipeline, rt, _raw, _typed)}, false)) "
        f"TO {lit(str(out))} (FORMAT parquet, PARTITION_BY (dt), COMPRESSION zstd)"
    )
