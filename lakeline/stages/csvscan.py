"""Where CSV records begin and end, found with numpy (no per-record Python).

A line end ends a record unless it lies inside a quoted field. With RFC 4180 quoting (a quote
inside a quoted field is doubled) that is exactly when an odd number of quotes precede it
in the record, so the record ends are the line ends preceded by an even number of quotes.
With another escape character (``\\"``), escaped quotes are not counted.

Used by ingest (cut chunks at record ends, count records) and by the transform's exact path
(one row per record, with its line and byte offset).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from lakeline.stages.spec import CsvOptions

_I64 = npt.NDArray[np.int64]


def _quotes(arr: npt.NDArray[np.uint8], opts: CsvOptions) -> _I64:
    """Positions of the quote characters that open or close a quoted field."""
    quote = ord(opts.quote)
    pos = np.flatnonzero(arr == quote)
    if opts.escape != opts.quote and len(pos):
        escaped = pos[pos > 0]
        escaped = escaped[arr[escaped - 1] == ord(opts.escape)]
        pos = np.setdiff1d(pos, escaped, assume_unique=True)
    return pos.astype(np.int64)


def record_ends(data: bytes | memoryview, opts: CsvOptions) -> _I64:
    """Offsets of the line ends (``\\n``) that end a record, in order."""
    if not len(data):
        return np.zeros(0, dtype=np.int64)
    arr = np.frombuffer(data, dtype=np.uint8)
    newlines = np.flatnonzero(arr == 10).astype(np.int64)
    if not len(newlines):
        return newlines
    quotes = _quotes(arr, opts)
    if not len(quotes):
        return newlines
    before = np.searchsorted(quotes, newlines)  # quotes before each line end
    ends: _I64 = newlines[before % 2 == 0]
    return ends


def balanced(data: bytes | memoryview, opts: CsvOptions) -> bool:
    """True when ``data`` holds an even number of quotes (no quoted field left open)."""
    return len(_quotes(np.frombuffer(data, dtype=np.uint8), opts)) % 2 == 0 if len(data) else True


@dataclass(frozen=True)
class Records:
    """The records of a chunk: byte spans ``[start, end)`` (line end and CR excluded), the
    1-based line of each record's first line, and whether it is blank."""

    start: _I64
    end: _I64
    line: _I64
    blank: npt.NDArray[np.bool_]

    @property
    def count(self) -> int:
        """Records that are not blank."""
        return int(np.count_nonzero(~self.blank))


def records(data: bytes, opts: CsvOptions) -> Records:
    """Every record of ``data`` (which starts at a record start)."""
    ends = record_ends(data, opts)
    if not len(data):
        empty = np.zeros(0, dtype=np.int64)
        return Records(empty, empty, empty, np.zeros(0, dtype=bool))
    stops = ends.copy() if len(ends) and ends[-1] == len(data) - 1 else np.append(ends, len(data))
    starts = np.concatenate(([0], ends + 1))[: len(stops)].astype(np.int64)
    arr = np.frombuffer(data, dtype=np.uint8)
    if len(ends) < len(stops) and arr[-1] == 10:  # a last record left open by a quote: not its line end
        stops[-1] -= 1
    last = np.maximum(stops - 1, 0)
    has_cr = (stops > starts) & (arr[last] == 13)
    stops = stops - has_cr.astype(np.int64)
    newlines = np.flatnonzero(arr == 10)
    line = np.searchsorted(newlines, starts).astype(np.int64) + 1
    blank = stops <= starts
    if np.any(~blank):  # a record of only spaces and tabs is blank too (rare: checked one by one)
        short = np.flatnonzero(~blank & (arr[np.minimum(starts, len(arr) - 1)] <= 32))
        for i in short:
            if not bytes(data[starts[i]:stops[i]]).strip(b" \t"):
                blank[i] = True
    return Records(starts, stops.astype(np.int64), line, blank)


def header_end(data: bytes, opts: CsvOptions) -> int:
    """The offset just past the header record's line end (``len(data)`` if it has none)."""
    ends = record_ends(data, opts)
    return int(ends[0]) + 1 if len(ends) else len(data)


def parse_header(line: bytes, opts: CsvOptions) -> list[str]:
    """The column names of a header line (one record: Python's csv module is fine here)."""
    text = line.decode(opts.encoding).rstrip("\r\n")
    row = next(csv.reader(io.StringIO(text), delimiter=opts.delimiter, quotechar=opts.quote,
                          escapechar=None if opts.escape == opts.quote else opts.escape,
                          doublequote=opts.escape == opts.quote), [])
    return [c.strip() for c in row]
