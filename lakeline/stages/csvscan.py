"""Where CSV records begin and end, found with numpy (no per-record Python when well quoted).

A line end ends a record unless it lies inside a quoted field. With RFC 4180 quoting (a quote
inside a quoted field is doubled) that is exactly when an odd number of quotes precede it
in the record, so the record ends are the line ends preceded by an even number of quotes.
With another escape character (``\\"``), escaped quotes are not counted.

That parity reading is RFC 4180's only while every quote is where RFC 4180 allows it: an
opening quote starts a field, a closing quote is followed by the delimiter or a line end. A
quote elsewhere (``12" pipe``, ``"x"y``, or a quote never closed) would shift every record after
it, so the record holding it is walked field by field instead (:func:`_walk`, rare): it is its
first line only, marked bad with why (a reject), and reading resumes at
the next line -- the rows after it still load, and every line is accounted for.

Used by ingest (cut chunks at record ends, count records) and by the transform's exact path
(one row per record, with its line and byte offset).
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field, replace

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


_WINDOW = 1 << 20  # bytes checked at once while walking past a bad quote


def _first_break(arr: npt.NDArray[np.uint8], quotes: _I64, lo: int, hi: int, opts: CsvOptions,
                 final: bool) -> int:
    """The index of the first of ``quotes[lo:hi]`` that reading by parity would misread (-1:
    none), ``quotes[lo]`` being the first quote after a record start. Parity reads RFC 4180
    while every opening quote (even) starts a field and every closing quote (odd) ends one, a
    doubled quote (``""``) being a closing quote right before an opening one. With ``final``,
    ``quotes[hi - 1]`` is the data's last quote and the data ends there: an opening quote
    without its closing one breaks too."""
    qs = quotes[lo:hi]
    if not len(qs):
        return -1
    n, delim = len(arr), ord(opts.delimiter)
    doubled = opts.escape == opts.quote
    opening, closing = qs[0::2], qs[1::2]
    before = arr[np.maximum(opening - 1, 0)]
    ok_open = (opening == 0) | (before == delim) | (before == 10)
    if doubled and len(opening) > 1:
        ok_open[1:] |= opening[1:] - 1 == closing[: len(opening) - 1]
    after = arr[np.minimum(closing + 1, n - 1)]
    ok_close = (closing + 1 == n) | (after == delim) | (after == 10) | (after == 13)
    if doubled and len(closing):
        follows = quotes[lo + 2 : hi + 1 : 2]  # the opening quote after each closing one
        paired = np.zeros(len(closing), dtype=bool)
        paired[: len(follows)] = follows == closing[: len(follows)] + 1
        ok_close |= paired
    ok = np.ones(len(qs), dtype=bool)
    ok[0::2], ok[1::2] = ok_open, ok_close
    if final and len(qs) % 2:
        ok[-1] = False
    broken = np.flatnonzero(~ok)
    return lo + int(broken[0]) if len(broken) else -1


def _walk(data: bytes, arr: npt.NDArray[np.uint8], quotes: _I64, newlines: _I64, opts: CsvOptions,
          final: bool) -> tuple[_I64, dict[int, str]]:
    """Record ends of data whose quotes break the parity reading somewhere (rare), and why
    the records holding a bad quote are bad (by record start: such a record is its first line).
    Window by window: parity up to the first bad quote, then that quote's record walked field
    by field (:func:`_record`), then parity again. Without ``final``, a quoted field still
    open at the end of ``data`` ends the walk (the record may close in what follows)."""
    n = len(data)
    quote, delim = ord(opts.quote), opts.delimiter.encode()
    doubled = opts.escape == opts.quote
    pieces: list[_I64] = []
    bad: dict[int, str] = {}
    pos, width = 0, _WINDOW
    while pos < n:
        stop = min(n, pos + width)
        lo, hi = int(np.searchsorted(quotes, pos)), int(np.searchsorted(quotes, stop))
        brk = _first_break(arr, quotes, lo, hi, opts, final and stop == n)
        limit = stop if brk < 0 else int(quotes[brk])
        nls = newlines[np.searchsorted(newlines, pos) : np.searchsorted(newlines, limit)]
        good = nls[(np.searchsorted(quotes, nls) - lo) % 2 == 0]
        pieces.append(good)
        if brk < 0:
            if stop == n:
                break
            pos, width = (int(good[-1]) + 1, _WINDOW) if len(good) else (pos, width * 2)
            continue
        start = int(good[-1]) + 1 if len(good) else pos
        end, why = _record(data, start, quotes, quote, delim, doubled, final)
        if why is not None:
            bad[start] = why
            end = data.find(b"\n", start)
        if end < 0:
            break  # the last record, or (not final) one still open at the end of data
        pieces.append(np.array([end], dtype=np.int64))
        pos, width = end + 1, _WINDOW
    found: _I64 = np.concatenate(pieces).astype(np.int64) if pieces else np.zeros(0, dtype=np.int64)
    return found, bad


def _record(data: bytes, start: int, q: _I64, quote: int, delim: bytes, doubled: bool,
            final: bool) -> tuple[int, str | None]:
    """The line end of the record starting at ``start`` (-1: none in ``data``), or why its
    quotes break RFC 4180. Field by field; ``q`` are the quote positions."""
    n = len(data)
    i, field = start, 1
    while True:
        if i < n and data[i] == quote:  # a quoted field: find its closing quote
            j = int(np.searchsorted(q, i)) + 1
            while doubled and j + 1 < len(q) and q[j + 1] == q[j] + 1:
                j += 2  # a doubled quote inside the field
            if j >= len(q):
                return -1, (f"a quote opened in field {field} is never closed" if final else None)
            after = int(q[j]) + 1
            if after == n:
                return -1, None
            ch = data[after]
            if ch == delim[0]:
                i, field = after + 1, field + 1
                continue
            if ch == 10:
                return after, None
            if ch == 13 and (after + 1 == n or data[after + 1] == 10):
                return (after + 1 if after + 1 < n else -1), None
            below = data.count(b"\n", start, after)
            if below:  # the quote was left open: the next one, lines below, cannot close it
                lines = f"{below} line{'s' if below > 1 else ''} below"
                return -1, (f"a quote opened in field {field} is never closed (its next quote, {lines}, "
                            f"is followed by {chr(ch)!r})")
            return -1, (f"the quoted field {field} is followed by {chr(ch)!r}, "
                        "not a delimiter or a line end")
        line_end = data.find(b"\n", i)
        stop = n if line_end < 0 else line_end
        qi = int(np.searchsorted(q, i))
        next_quote = int(q[qi]) if qi < len(q) else n
        cut = data.find(delim, i, min(stop, next_quote))
        if cut >= 0:
            i, field = cut + 1, field + 1
            continue
        if next_quote < stop:
            return -1, f"a quote stands inside the unquoted field {field}"
        return line_end, None


def _scan(data: bytes | memoryview, opts: CsvOptions, final: bool) -> tuple[_I64, dict[int, str]]:
    """Record ends and bad records (by start offset) of ``data``, which starts at a record start."""
    if not len(data):
        return np.zeros(0, dtype=np.int64), {}
    arr = np.frombuffer(data, dtype=np.uint8)
    newlines = np.flatnonzero(arr == 10).astype(np.int64)
    quotes = _quotes(arr, opts)
    if not len(quotes):
        return newlines, {}
    if _first_break(arr, quotes, 0, len(quotes), opts, final) < 0:
        before = np.searchsorted(quotes, newlines)  # quotes before each line end
        ends: _I64 = newlines[before % 2 == 0]
        return ends, {}
    return _walk(bytes(data), arr, quotes, newlines, opts, final)


def record_ends(data: bytes | memoryview, opts: CsvOptions, *, final: bool = True) -> _I64:
    """Offsets of the line ends (``\\n``) that end a record, in order. ``final``: ``data`` runs to
    the end of the object; otherwise a record whose quote is still open at the end of ``data``
    has no end yet (it may close in what follows)."""
    return _scan(data, opts, final)[0]


def well_quoted(data: bytes | memoryview, opts: CsvOptions) -> bool:
    """True when every quote of ``data`` is where RFC 4180 allows it (no record is bad)."""
    arr = np.frombuffer(data, dtype=np.uint8)
    if not len(data) or (isinstance(data, bytes) and opts.quote.encode() not in data):
        return True  # memchr: no numpy pass over quote-free data
    quotes = _quotes(arr, opts)
    return _first_break(arr, quotes, 0, len(quotes), opts, True) < 0


def balanced(data: bytes | memoryview, opts: CsvOptions) -> bool:
    """True when ``data`` holds an even number of quotes (no quoted field left open)."""
    return len(_quotes(np.frombuffer(data, dtype=np.uint8), opts)) % 2 == 0 if len(data) else True


@dataclass(frozen=True)
class Records:
    """The records of a chunk: byte spans ``[start, end)`` (line end and CR excluded), the
    1-based line of each record's first line, whether it is blank, and why a record's quotes
    break RFC 4180 (by record index: such a record is a reject)."""

    start: _I64
    end: _I64
    line: _I64
    blank: npt.NDArray[np.bool_]
    bad: dict[int, str] = field(default_factory=dict)

    @property
    def count(self) -> int:
        """Records that are not blank."""
        return int(np.count_nonzero(~self.blank))


def records(data: bytes, opts: CsvOptions) -> Records:
    """Every record of ``data`` (which starts at a record start and runs to the object's end
    or to a record end)."""
    ends, bad_at = _scan(data, opts, True)
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
    bad = {}
    if bad_at:
        at = np.array(list(bad_at), dtype=np.int64)
        bad = dict(zip(np.searchsorted(starts, at).tolist(), bad_at.values(), strict=True))
    return Records(starts, stops.astype(np.int64), line, blank, bad)


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


#: delimiters a CSV file is commonly separated by (what :func:`foreign_delimiter` tries)
COMMON_DELIMITERS = (",", ";", "\t", "|")


def foreign_delimiter(columns: list[str], declared: set[str], opts: CsvOptions) -> str | None:
    """The delimiter the header ``columns`` (parsed with the pipeline's) was really written with,
    when it is another common one: re-split by it, the header names more declared columns in
    more columns. None when the pipeline's delimiter fits at least as well."""
    text = opts.delimiter.join(columns)
    have = len(declared.intersection(columns))
    for delim in COMMON_DELIMITERS:
        if delim == opts.delimiter or delim not in text:
            continue
        other = parse_header(text.encode(opts.encoding), replace(opts, delimiter=delim))
        if len(other) > len(columns) and len(declared.intersection(other)) > have:
            return delim
    return None


def delimiter_problem(columns: list[str], declared: set[str], opts: CsvOptions) -> str | None:
    """What to say of a header written with another delimiter than the pipeline's (None: it is
    not): the file is refused whole, since every record would split wrongly."""
    delim = foreign_delimiter(columns, declared, opts)
    if delim is None:
        return None
    shown = json.dumps(delim)  # a TOML basic string too: "\t" for a tab
    return (f"looks {shown}-separated (it has: {opts.delimiter.join(columns)}); "
            f"set csv.delimiter = {shown} in the pipeline")
