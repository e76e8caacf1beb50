"""Byte-level helpers of the streaming stages: chunk bytes as Arrow strings, line spans.

No per-record Python: bytes are wrapped without copying and lines are found with numpy.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson

if TYPE_CHECKING:
    import pyarrow as pa

BOM = b"\xef\xbb\xbf"


def blank_undecodable(data: bytes) -> tuple[bytes, list[tuple[int, str]]]:
    """``data`` with every line that is not valid UTF-8 emptied (line numbers kept), and
    ``(line, message)`` for each such line; ``data`` itself when all of it is UTF-8."""
    import pyarrow as pa  # heavy: imported when used, not by importing lakeline

    try:
        as_string(data).validate(full=True)
        return data, []
    except pa.ArrowInvalid:
        pass
    # Rare path: find the offending lines one by one.
    bad: list[tuple[int, str]] = []
    lines = data.split(b"\n")
    for i, raw in enumerate(lines):
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            bad.append((i + 1, f"invalid UTF-8 at byte {exc.start} of the line"))
            lines[i] = b""
    return b"\n".join(lines), bad


def chunk_table(data: bytes, pieces: int = 8) -> tuple[pa.Table, list[tuple[int, str]]]:
    """Wrap chunk bytes as Arrow rows ``(content, base)`` without copying the bytes.

    The chunk is cut at line ends into ``pieces`` rows (one record batch each) so DuckDB can
    split and parse them on several threads; ``base`` is the number of lines before each
    piece. Lines that are not valid UTF-8 are blanked (keeping line numbering) and returned
    as ``(idx, message)`` so the caller rejects them with ``ENCODING_ERROR``.
    """
    import pyarrow as pa  # heavy: imported when used, not by importing lakeline

    data, bad = blank_undecodable(data)
    view = memoryview(data)
    cuts = [0]
    for i in range(1, max(1, pieces)):
        cut = data.find(b"\n", max(cuts[-1], len(data) * i // pieces))
        if cut < 0:
            break
        cuts.append(cut + 1)
    cuts.append(len(data))
    batches: list[pa.RecordBatch] = []
    base = 0
    for a, b in itertools.pairwise(cuts):
        if b <= a and batches:
            continue
        batches.append(pa.record_batch({
            "content": as_string(view[a:b]), "base": pa.array([base], pa.int64()),
        }))
        base += data.count(b"\n", a, b)
    return pa.Table.from_batches(batches), bad


def as_string(data: bytes | memoryview) -> pa.Array[Any]:
    """``data`` as a one-element Arrow large string, without copying (not validated)."""
    import pyarrow as pa  # heavy: imported when used, not by importing lakeline

    offsets = np.array([0, len(data)], dtype=np.int64)
    return pa.LargeStringArray.from_buffers(1, pa.py_buffer(offsets.tobytes()), pa.py_buffer(data))


def line_count(data: bytes) -> int:
    """Lines in ``data``, blank ones included (a last line without a newline counts)."""
    if not data:
        return 0
    return data.count(b"\n") + (0 if data.endswith(b"\n") else 1)


def line_spans(data: bytes, indexes: list[int]) -> dict[int, tuple[int, int]]:
    """``(start, end)`` byte span within ``data`` of each 1-based line index (rejects only)."""
    if not indexes:
        return {}
    newlines = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == 10)
    starts = np.concatenate(([0], newlines + 1))
    ends = np.concatenate((newlines, [len(data)]))
    return {i: (int(starts[i - 1]), int(ends[i - 1])) for i in indexes if 0 < i <= len(starts)}


def json_error(line: str) -> str:
    """A precise parse error for one rejected line (rejects only, so per-line is fine)."""
    try:
        orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        return f"line is not valid JSON: {exc}"
    return "line is not valid JSON"


