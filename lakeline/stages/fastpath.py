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
   and the same SQL types and classifies them (:class:`~lakeline.stages.classify.Classifier`).
   A line that is not one JSON object (malformed, an array, two objects, invalid UTF-8) raises.
3. Every line loads: the rows written equal the lines of the chunk, and no key repeats.

Otherwise its output is discarded and the chunk takes the exact path, which also gives
rejects their precise reason codes. The bytes reach ``read_json`` as scratch files in the
chunk's work directory (not through a Python filesystem, whose reads hold the GIL the worker's
publishing needs), so the fast path works the same on local and S3 objects.

Line numbers without one ordered scan: numbering rows (``WITH ORDINALITY``) keeps a scan in
file order on one thread, so a chunk is cut at line ends into one part per DuckDB thread, each
part knows the lines before it (``base``), and ONE ``COPY`` reads the parts as a
``UNION ALL`` of numbered scans: DuckDB runs the parts in parallel and writes one file per
partition (``part-<object>-c<chunk>.parquet``), with the connection free to reorder rows
(``preserve_insertion_order = false``; each part's own numbering is a fixed-order streaming
window either way). A chunk whose bytes hold no ``[`` and one ``{`` per line, and no ``\\u``
escape, cannot hold a nested value, so its string fields skip that check.
"""

from __future__ import annotations

import contextlib
import itertools
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import duckdb
import orjson

from lakeline.duck import duckdb_connection
from lakeline.sqltext import lit, quote
from lakeline.stages.classify import Classifier, typed_column
from lakeline.stages.csvscan import parse_header, well_quoted
from lakeline.stages.messages import ChunkMessage
from lakeline.stages.spec import StreamSpec, StreamTable
from lakeline.tables.schema import Field

MIN_PART = 4 << 20  # smaller parts are not worth a thread
_NOT_JSON_WHITESPACE = (b"\x0b", b"\x0c", b"\x00")


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


def flat_json(data: bytes, lines: int) -> bool:
    """True when no value of a JSON-lines chunk of ``lines`` lines can be an object or an
    array, nor a string holding ``{`` or ``[``: the bytes hold no ``[``, no ``\\u`` escape and
    exactly one ``{`` per line (the line's own object). Byte searches, no parsing."""
    if b"[" in data or (b"\\" in data and b"\\u" in data):  # one byte is a memchr; two are slower
        return False
    return data.count(b"{") == lines


class FastPath:
    """Writes clean chunks with ``read_json``; one per :class:`~lakeline.stages.transform.Transformer`.

    It has a DuckDB connection of its own, free to reorder rows (its numbering does not depend
    on it), so that the transform's own connection keeps its settings."""

    def __init__(self, threads: int) -> None:
        self._threads = max(1, threads)
        self._con = duckdb_connection(self._threads, keep_order=False)

    def close(self) -> None:
        """Close the connection."""
        self._con.close()

    def write(
        self, msg: ChunkMessage, spec: StreamSpec, data: bytes, lines: int, work: Path, *, header: bytes = b""
    ) -> dict[str, list[Path]] | None:
        """Write every row of a clean chunk as Parquet under ``work``; returns the output
        directories by table, or ``None`` when the chunk must take the exact path
        (``work`` may then hold partial output: discard it). CSV: ``header`` is the header
        line (UTF-8), put before every part."""
        if spec.format != "csv" and any(b in data for b in _NOT_JSON_WHITESPACE):
            return None  # read_json takes these for whitespace around an object; JSON does not
        if spec.format == "csv" and not well_quoted(data, spec.csv):
            return None  # read_csv loads a stray quote (12" pipe) as text; RFC 4180 does not
        parts = split(data, self._threads)
        inputs = work / "_in"
        inputs.mkdir(parents=True, exist_ok=True)
        names = [str(inputs / f"part-{i}.{spec.format}") for i in range(len(parts))]
        reader = Reader(spec, header, flat=spec.format != "csv" and flat_json(data, lines))
        try:
            for name, p in zip(names, parts, strict=True):
                with open(name, "wb") as f:  # scratch: never synced, removed below
                    if header:
                        f.write(header)
                    f.write(memoryview(data)[p.start : p.end])
            return self._write(msg, reader, data, parts, names, lines, work)
        except duckdb.Error:  # malformed JSON, not an object, invalid UTF-8, ...
            return None
        finally:
            for name in names:
                Path(name).unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                inputs.rmdir()

    def _write(
        self, msg: ChunkMessage, reader: Reader, data: bytes, parts: list[Part],
        names: list[str], lines: int, work: Path,
    ) -> dict[str, list[Path]] | None:
        spec = reader.spec
        out: dict[str, list[Path]] = {}
        guess = _first_table(data, spec)
        written = 0
        if guess is not None:
            written = self._copy(msg, reader, guess, parts, names, work, out)
        if written == lines and not spec.keyed:
            return out
        present = self._census(reader, names)
        if present is None or sum(present.values()) != lines:
            return None  # a line is rejected, a key repeats, or read_json saw other rows
        for name in present:
            if guess is None or name != guess.name:
                t = spec.table_named(name)
                assert t is not None  # the census only counts tables that load
                written += self._copy(msg, reader, t, parts, names, work, out)
        return out if written == lines else None

    def _copy(
        self, msg: ChunkMessage, reader: Reader, t: StreamTable, parts: list[Part],
        names: list[str], work: Path, out: dict[str, list[Path]],
    ) -> int:
        """Write ``t``'s loading rows of every part in one COPY (the parts are scanned in
        parallel, each numbered from its own first line); rows written."""
        spec = reader.spec
        d = work / t.name
        d.mkdir(parents=True, exist_ok=True)
        sources = [(name, msg.first_line - 1 + p.base) for name, p in zip(names, parts, strict=True)]
        sql = copy_sql(reader, t, sources, d if spec.partitioned else d / "data_0.parquet")
        count = _count(self._con.execute(sql, [msg.bucket, msg.key, msg.etag]).fetchone())
        out[t.name] = [d]
        return count

    def _census(self, reader: Reader, names: list[str]) -> dict[str, int] | None:
        """Rows per table when every row loads and no key repeats, else ``None`` (a reject:
        the exact path)."""
        spec = reader.spec
        files = "[" + ", ".join(lit(n) for n in names) + "]"
        c = _classifier(spec)
        source = typed_source(reader, spec.all_fields(), files, ordinality=False)
        rows = self._con.execute(
            f"SELECT {c.route_expr()}, ({c.reason()}) IS NULL, count(*) FROM {source} GROUP BY ALL"
        ).fetchall()
        if any(not loads or name is None for name, loads, _ in rows):
            return None
        counts = {str(name): int(n) for name, _, n in rows}
        for t in spec.tables:
            if t.key and counts.get(t.name):
                keys = ", ".join(_typed(f) for k in t.key if (f := t.field(k)) is not None)
                distinct = self._con.execute(
                    f"SELECT count(DISTINCT ({keys})) FROM {source} WHERE {c.in_table(t)}").fetchone()
                if _count(distinct) != counts[t.name]:
                    return None
        return counts


def _count(row: tuple[Any, ...] | None) -> int:
    return int(row[0]) if row else 0


def _first_table(data: bytes, spec: StreamSpec) -> StreamTable | None:
    """The table of the chunk's first line: the likely table of the whole chunk."""
    if spec.route_field is None:
        return spec.tables[0]
    end = data.find(b"\n")
    try:
        first = orjson.loads(data[: end if end >= 0 else len(data)])
    except orjson.JSONDecodeError:
        return None
    value = first.get(spec.route_field) if isinstance(first, dict) else None
    return spec.table(value) if isinstance(value, str) else None


class Reader:
    """How DuckDB reads the chunk's part files: ``read_json`` for JSON lines, ``read_csv`` with
    the pipeline's CSV options for CSV (every column as text, strict: a malformed row fails
    the read, and the chunk takes the exact path). ``flat``: the chunk's bytes show that no
    value is nested (:func:`flat_json`), so string fields need no check for one."""

    def __init__(self, spec: StreamSpec, header: bytes = b"", *, flat: bool = False) -> None:
        self.spec = spec
        self.flat = flat
        self.csv = spec.csv if spec.format == "csv" else None
        if self.csv is not None:
            utf8 = replace(self.csv, encoding="utf-8")
            self.columns = parse_header(header, utf8) if header else [f.source for f in spec.all_fields()]
        self.header = bool(header)

    def sql(self, fields: list[Field], files: str) -> str:
        """The table function reading ``files`` (at least ``fields``, each as text)."""
        if self.csv is None:
            columns = "{" + ", ".join(f"{lit(f.source)}: 'VARCHAR'" for f in fields) + "}"
            return f"read_json({files}, format='newline_delimited', records=true, columns={columns})"
        o = self.csv
        columns = "{" + ", ".join(f"{lit(c)}: 'VARCHAR'" for c in self.columns) + "}"
        return (f"read_csv({files}, header={str(self.header).lower()}, columns={columns}, "
                f"delim={lit(o.delimiter)}, quote={lit(o.quote)}, escape={lit(o.escape)}, "
                "auto_detect=false, strict_mode=true, null_padding=false)")


def _raw(f: Field) -> str:
    return f"r.{quote(f.source)}"


def _typed(f: Field) -> str:
    return f"r.{quote('__t_' + f.name)}" if f.type != "string" else _raw(f)


def _classifier(spec: StreamSpec) -> Classifier:
    return Classifier(spec, _raw, _typed)


def typed_source(reader: Reader, fields: list[Field], files: str, *, ordinality: bool) -> str:
    """``files`` read as ``r``: each of ``fields`` as text (as the exact path has it),
    ``__t_<field>`` typed as on the exact path (non-string fields) and, with ``ordinality``,
    the row number in file order."""
    casts = "".join(
        f", {typed_column(f, quote(f.source), reader.csv)} AS {quote('__t_' + f.name)}"
        for f in fields if f.type != "string"
    )
    numbered = " WITH ORDINALITY" if ordinality else ""
    return f"(SELECT *{casts} FROM {reader.sql(fields, files)}{numbered}) AS r"


def copy_sql(reader: Reader, t: StreamTable, sources: list[tuple[str, int]], out: Path) -> str:
    """COPY of ``t``'s loading rows of the part files ``sources`` (each with the number of the
    line before it) to ``out`` (a directory of Parquet partitioned by ``dt`` when the pipeline
    has a time field, else one file), with the exact path's columns, in one statement: a
    ``UNION ALL`` of one numbered scan per part, which DuckDB runs in parallel. Parameters:
    bucket, key, etag.

    Only ``t``'s fields are read, and only its rules apply: a row of ``t`` loads when its
    time converts, no required field is empty and no field has the wrong type (keys of other
    tables are ignored, as ``from_json`` ignores them)."""
    spec = reader.spec
    c = _classifier(spec)
    fields = list(t.columns)
    extra = [f for f in (c.route, c.time) if f is not None and t.field(f.name) is None]
    fields += extra
    cols = ", ".join(f"{_typed(f)} AS {quote(f.name)}" for f in t.columns)
    checks = [cond for cond, _, f in c.type_checks(t) if not (reader.flat and f.type == "string")]
    where = [c.in_table(t), f"NOT coalesce({' OR '.join(checks) or 'FALSE'}, false)", f"NOT ({c.missing(t)})"]
    dt = ""
    partition = ""
    if c.time is not None:
        where.append(f"{_typed(c.time)} IS NOT NULL")
        dt = f", CAST({_typed(c.time)} AS DATE) AS dt"
        partition = ", PARTITION_BY (dt)"
    scans = [
        f"SELECT {cols}, "
        "{'bucket': $1, 'key': $2, 'etag': $3, "
        f"'line_no': CAST(r.ordinality AS BIGINT) + {int(before)}}} AS _source"
        f"{dt} FROM {typed_source(reader, fields, lit(file), ordinality=True)} "
        f"WHERE {' AND '.join(where)}"
        for file, before in sources
    ]
    union = " UNION ALL ".join(f"({scan})" for scan in scans)
    return f"COPY ({union}) TO {lit(str(out))} (FORMAT parquet{partition}, COMPRESSION zstd)"
