"""Cutting a landed object into chunks by its format: what ingest sends, one message per chunk.

* JSON lines: blocks of ``ingest.chunk_bytes`` cut at line ends; a JSON array is one chunk
  (never for a ``.jsonl`` / ``.ndjson`` name: such a file is lines, whatever its first line).
* CSV: the header (when the pipeline says there is one) is read once and named in every
  chunk message; blocks are cut at record ends (a line end outside quotes,
  :mod:`lakeline.stages.csvscan`), so a quoted field spanning lines is never split.
* Parquet: whole row groups, grouped up to ``chunk_bytes`` of compressed data.

Memory stays bounded by ``chunk_bytes`` plus one read block, whatever the object's size.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lakeline.lake import Lake
from lakeline.stages import csvscan
from lakeline.stages.lines import BOM
from lakeline.stages.spec import StreamSpec

_READ_BLOCK = 8 * 1024 * 1024


@dataclass(frozen=True)
class Chunk:
    """A planned chunk: bytes ``[start, end)`` holding ``lines`` lines, ``records`` of them
    not blank (Parquet: row groups ``[start, end)`` holding ``records`` rows)."""

    start: int
    end: int
    first_line: int
    records: int
    lines: int = 0


@dataclass(frozen=True)
class Plan:
    """How an object is cut: its format, its chunks, and for CSV the end of the header
    (bytes ``[header_start, header_end)``) and its column names."""

    format: str
    chunks: list[Chunk]
    header_start: int = 0
    header_end: int = 0
    columns: tuple[str, ...] = ()


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


def plan_jsonl(lake: Lake, key: str, size: int, chunk_bytes: int, *,
               zone: str = "landing") -> tuple[str, list[Chunk]]:
    """Read the object once and cut it into chunks at line ends.

    Returns the format (``jsonl`` or ``json``: a JSON array, one chunk) and the chunks. The
    file name decides first (:func:`is_json_lines_name`): a ``.jsonl`` / ``.ndjson`` file is
    lines even when its first line is ``[…]`` (that line alone is then rejected); any other
    file is an array when it starts with ``[``."""
    store = lake.store
    return plan_jsonl_ranges(lambda a, b: store.get_range(zone, key, a, b), key, size, chunk_bytes)


def plan_jsonl_ranges(read: Callable[[int, int], bytes], key: str, size: int,
                      chunk_bytes: int) -> tuple[str, list[Chunk]]:
    """:func:`plan_jsonl` over any bytes: ``read(start, end)`` gives bytes ``[start, end)``
    (``key``: the name that decides lines or array). ``lakeline load`` plans a local file
    with it while the file's landing copy is written."""
    head = read(0, min(size, 4096))
    start = 3 if head.startswith(BOM) else 0
    if not is_json_lines_name(key) and head[start:].lstrip()[:1] == b"[":
        return "json", [Chunk(0, size, 1, -1)]
    chunks: list[Chunk] = []
    line = 1
    pos = start
    while pos < size:
        end = min(pos + chunk_bytes, size)
        block = read(pos, end)
        if end < size:
            cut = block.rfind(b"\n")
            while cut < 0:  # a single line longer than chunk_bytes: extend the chunk
                more = read(end, min(end + _READ_BLOCK, size))
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


def plan_file(path: Path, key: str, chunk_bytes: int) -> tuple[str, Plan] | None:
    """``(key, plan)``: the chunks ingest would cut the landed copy of the local file ``path``
    into under ``key`` (JSON lines), read from the local file — what ``put`` and ``load`` do
    while the landing copy is written; None for a gzip file (ingest decompresses it first)."""
    with open(path, "rb") as f:
        fd = f.fileno()
        size = os.fstat(fd).st_size
        if os.pread(fd, 2, 0) == b"\x1f\x8b":
            return None

        def read(start: int, end: int) -> bytes:
            parts = []
            while start < end:
                got = os.pread(fd, end - start, start)
                if not got:
                    break
                parts.append(got)
                start += len(got)
            return parts[0] if len(parts) == 1 else b"".join(parts)

        fmt, chunks = plan_jsonl_ranges(read, key, size, chunk_bytes)
    return key, Plan(fmt, chunks)


def same_file(a: os.stat_result, b: os.stat_result) -> bool:
    """True when two stats of a path show the same, unchanged file (inode, size, mtime)."""
    return (a.st_ino, a.st_dev, a.st_size, a.st_mtime_ns) == (b.st_ino, b.st_dev, b.st_size, b.st_mtime_ns)


def is_json_lines_name(key: str) -> bool:
    """True when the object's name says JSON lines (``.jsonl``, ``.ndjson``, also gzipped)."""
    name = key.rsplit("/", 1)[-1].lower().removesuffix(".gz")
    return name.endswith((".jsonl", ".ndjson"))


def plan_chunks(lake: Lake, key: str, size: int, chunk_bytes: int, spec: StreamSpec, *,
                zone: str = "landing") -> Plan:
    """Plan the chunks of a landed object by the pipeline's source format (``zone``: where the
    text is read, ``tmp`` for the staged text of a gzip object)."""
    if spec.format == "csv":
        return plan_csv(lake, key, size, chunk_bytes, spec, zone=zone)
    if spec.format == "parquet":
        return plan_parquet(lake, key, size, chunk_bytes)
    fmt, chunks = plan_jsonl(lake, key, size, chunk_bytes, zone=zone)
    return Plan(fmt, chunks)


def plan_csv(lake: Lake, key: str, size: int, chunk_bytes: int, spec: StreamSpec, *,
             zone: str = "landing") -> Plan:
    """Cut a CSV object at record ends; the header (if any) is line 1 and in no chunk."""
    opts = spec.csv
    store = lake.store
    head = store.get_range(zone, key, 0, min(size, 4096))
    start = 3 if head.startswith(BOM) else 0
    pos, line = start, 1
    columns: tuple[str, ...] = ()
    if opts.header and size > start:
        block = store.get_range(zone, key, start, min(size, start + _READ_BLOCK))
        end = csvscan.header_end(block, opts)
        columns = tuple(csvscan.parse_header(block[:end], opts))
        line += block[:end].count(b"\n")
        pos = start + end
    header = (start, pos)
    chunks: list[Chunk] = []
    while pos < size:
        end = min(pos + chunk_bytes, size)
        block = store.get_range(zone, key, pos, end)
        if end < size:
            ends = csvscan.record_ends(block, opts, final=end >= size)
            while not len(ends) and end < size:  # one record longer than chunk_bytes: extend
                more = store.get_range(zone, key, end, min(end + _READ_BLOCK, size))
                block += more
                end += len(more)
                ends = csvscan.record_ends(block, opts, final=end >= size)
            if len(ends):
                end = pos + int(ends[-1]) + 1
                block = block[: end - pos]
        recs = csvscan.records(block, opts)
        newlines = block.count(b"\n")
        lines = newlines + (0 if block.endswith(b"\n") else 1)
        if recs.count:
            chunks.append(Chunk(pos, end, line, recs.count, lines))
        line += newlines
        pos = end
    return Plan("csv", chunks, header[0], header[1], columns)


def plan_parquet(lake: Lake, key: str, size: int, chunk_bytes: int) -> Plan:
    """Group a Parquet object's row groups into chunks of about ``chunk_bytes``."""
    meta = parquet_metadata(lake, key, size)
    chunks: list[Chunk] = []
    first, rows, held, row = 0, 0, 0, 1
    for i in range(meta.num_row_groups):
        rg = meta.row_group(i)
        if i > first and held + rg.total_byte_size > chunk_bytes:
            chunks.append(Chunk(first, i, row, rows))
            row += rows
            first, rows, held = i, 0, 0
        rows += rg.num_rows
        held += rg.total_byte_size
    if rows:
        chunks.append(Chunk(first, meta.num_row_groups, row, rows))
    return Plan("parquet", chunks, columns=tuple(meta.schema.to_arrow_schema().names))


def parquet_metadata(lake: Lake, key: str, size: int) -> Any:
    """The footer of a landed Parquet object, read with range requests (not the whole object)."""
    import pyarrow.parquet as pq  # heavy: only Parquet sources need it

    source: Any = RangeFile(lake, "landing", key, size)  # a file-like object pyarrow reads by ranges
    return pq.ParquetFile(source).metadata


class RangeFile(io.RawIOBase):
    """A read-only, seekable file over an object, read by ranges (a Range GET on S3): lets
    pyarrow read a Parquet footer and chosen row groups without fetching the whole object."""

    def __init__(self, lake: Lake, zone: str, key: str, size: int) -> None:
        super().__init__()
        self._store, self._zone, self._key, self._size, self._pos = lake.store, zone, key, size, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def read(self, n: int = -1) -> bytes:
        end = self._size if n is None or n < 0 else min(self._size, self._pos + n)
        if end <= self._pos:
            return b""
        data = self._store.get_range(self._zone, self._key, self._pos, end)
        self._pos += len(data)
        return data

    def readinto(self, b: Any) -> int:
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)


def read_row_groups(lake: Lake, msg: Any) -> Any:
    """The rows of a Parquet chunk (row groups ``[msg.start, msg.end)``) as an Arrow table with
    ``_idx``, the row's 1-based number within the chunk."""
    import pyarrow as pa  # heavy: only Parquet sources need it
    import pyarrow.parquet as pq

    size = lake.store.head("landing", msg.key).size
    source: Any = RangeFile(lake, "landing", msg.key, size)
    table = pq.ParquetFile(source).read_row_groups(list(range(msg.start, msg.end)))
    return table.append_column("_idx", pa.array(np.arange(1, table.num_rows + 1, dtype=np.int64)))
