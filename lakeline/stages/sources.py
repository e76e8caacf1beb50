"""A chunk's records as the transform's exact path reads them, one class per source format.

A :class:`ChunkSource` registers the chunk with DuckDB, gives the SQL of its *parsed* relation
(:mod:`lakeline.stages.formats`), finds records that cannot even be decoded (invalid UTF-8:
``ENCODING_ERROR``), and locates rejected records in the landed object (their text, line and
byte offset) — the format-specific parts; everything else is the same SQL for every format.

``_idx`` is the record's 1-based line within the chunk (the line its first line is on), so a
record's line number in the file is ``first_line + _idx - 1`` whatever the format.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson

from lakeline import reasons
from lakeline.sqltext import quote
from lakeline.stages import csvscan
from lakeline.stages.formats import csv_parsed, json_parsed, json_parsed_lines
from lakeline.stages.lines import as_string, chunk_table, line_spans
from lakeline.stages.messages import ChunkMessage
from lakeline.stages.spec import StreamSpec

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa


@dataclass
class Located:
    """A rejected record's text and where it starts (byte offset in the object; None when the
    source has no byte positions)."""

    text: str
    offset: int | None


@dataclass
class ChunkSource(ABC):
    """The records of one chunk (see the module docstring)."""

    msg: ChunkMessage
    spec: StreamSpec
    #: records that cannot be decoded: ``(idx, reason, message, text, offset)``
    bad: list[tuple[int, str, str, str, int | None]] = field(default_factory=list)

    #: SQL of the record's JSON text, when the format has one (tells a nested value from a string)
    json_line: str | None = None

    @abstractmethod
    def register(self, con: duckdb.DuckDBPyConnection) -> None:
        """Register the chunk's relation(s) with ``con``."""

    @abstractmethod
    def unregister(self, con: duckdb.DuckDBPyConnection) -> None:
        """Drop what :meth:`register` registered."""

    @abstractmethod
    def parsed_sql(self) -> str:
        """The parsed relation of the whole chunk."""

    @abstractmethod
    def bad_parsed_sql(self, relation: str) -> str:
        """The parsed relation of rejected records registered as ``relation`` (see :meth:`bad_table`)."""

    @abstractmethod
    def locate(self, idxs: list[int]) -> dict[int, Located]:
        """Text and offset of the records ``idxs`` (rejects only: a few)."""

    @abstractmethod
    def bad_table(self, located: dict[int, Located]) -> pa.Table:
        """The rejected records as the relation :meth:`bad_parsed_sql` reads."""

    @property
    def key(self) -> tuple[Any, ...]:
        """What the classify SQL depends on besides the spec (cache key)."""
        return (type(self).__name__,)

    def spans_table(self) -> pa.Table | None:
        """``(_idx, _offset, _end)``: where each record lies in the object (None: no byte positions)."""
        return None


@dataclass
class JsonLinesSource(ChunkSource):
    """JSON lines (a JSON array arrives here as lines, one element per line)."""

    data: bytes = b""
    json_line: str | None = "t._line"

    def register(self, con: duckdb.DuckDBPyConnection) -> None:
        table, encoding_bad = chunk_table(self.data)
        spans = line_spans(self.data, [idx for idx, _ in encoding_bad])
        for idx, message in encoding_bad:
            a, b = spans[idx]
            offset = self.msg.start + a if self.msg.format == "jsonl" else None
            self.bad.append((idx, reasons.ENCODING_ERROR, message, self.data[a:b].decode("utf-8", "replace"),
                             offset))
        con.register("chunk", table)

    def unregister(self, con: duckdb.DuckDBPyConnection) -> None:
        con.unregister("chunk")

    def parsed_sql(self) -> str:
        return json_parsed(self.spec)

    def bad_parsed_sql(self, relation: str) -> str:
        return json_parsed_lines(self.spec, relation)

    def locate(self, idxs: list[int]) -> dict[int, Located]:
        spans = line_spans(self.data, idxs)
        jsonl = self.msg.format == "jsonl"
        return {i: Located(self.data[a:b].decode("utf-8", "replace"), self.msg.start + a if jsonl else None)
                for i, (a, b) in spans.items()}

    def bad_table(self, located: dict[int, Located]) -> pa.Table:
        import pyarrow as pa  # heavy: imported when used, not by importing lakeline

        return pa.table({"_idx": pa.array(list(located), pa.int64()),
                         "_line": pa.array([x.text for x in located.values()], pa.string())})

    def spans_table(self) -> pa.Table | None:
        import pyarrow as pa  # heavy: imported when used, not by importing lakeline

        if self.msg.format != "jsonl":
            return None  # a JSON array's elements have no byte positions of their own
        arr = np.frombuffer(self.data, dtype=np.uint8)
        newlines = np.flatnonzero(arr == 10)
        lines = len(newlines) + (0 if self.data.endswith(b"\n") else 1)
        starts = np.concatenate(([0], newlines + 1))[:lines]
        ends = np.concatenate((newlines, [len(self.data)]))[: len(starts)]
        return pa.table({"_idx": pa.array(np.arange(1, len(starts) + 1, dtype=np.int64)),
                         "_offset": pa.array(starts.astype(np.int64) + self.msg.start),
                         "_end": pa.array(ends.astype(np.int64) + self.msg.start)})


@dataclass
class CsvSource(ChunkSource):
    """CSV records (quote-aware, :mod:`lakeline.stages.csvscan`). ``data`` is the chunk as
    UTF-8; ``raw`` the chunk as landed (another encoding: byte offsets are the file's)."""

    data: bytes = b""
    raw: bytes = b""
    columns: tuple[str, ...] = ()
    header: bytes = b""  # the header line as UTF-8 (the fast path puts it before each part)
    _records: csvscan.Records | None = None
    _raw_records: csvscan.Records | None = None

    @property
    def key(self) -> tuple[Any, ...]:
        return ("csv", self.columns)

    def _recs(self) -> tuple[csvscan.Records, csvscan.Records]:
        if self._records is None:
            self._records = csvscan.records(self.data, self.spec.csv)
            same = self.raw is self.data or not self.raw
            self._raw_records = self._records if same else csvscan.records(self.raw, self.spec.csv)
        assert self._raw_records is not None
        return self._records, self._raw_records

    def register(self, con: duckdb.DuckDBPyConnection) -> None:
        import pyarrow as pa  # heavy: imported when used, not by importing lakeline

        recs, raw = self._recs()
        data = self._blank_bad_quotes(recs, raw) if recs.bad else self.data
        try:
            as_string(data).validate(full=True)
        except pa.ArrowInvalid:
            data = self._blank_undecodable(recs, raw, data)
        # every record's text up to the next record's start (line end included): zero copy
        offsets = np.append(recs.start, len(data)).astype(np.int64)
        text = pa.LargeStringArray.from_buffers(len(recs.start), pa.py_buffer(offsets.tobytes()),
                                                pa.py_buffer(data))
        con.register("csv_records", pa.table({"_idx": pa.array(recs.line), "_raw": text}))

    def _blank_bad_quotes(self, recs: csvscan.Records, raw: csvscan.Records) -> bytes:
        """Reject the records whose quotes break RFC 4180 (:mod:`~lakeline.stages.csvscan`: each
        is its first line only) and blank them out, so the rows after them still load."""
        out = bytearray(self.data)
        for i, why in recs.bad.items():
            a, b = int(recs.start[i]), int(recs.end[i])
            line = self.msg.first_line + int(recs.line[i]) - 1
            self.bad.append((int(recs.line[i]), reasons.SCHEMA_ERROR, f"line {line}: {why}",
                             self.data[a:b].decode("utf-8", "replace"), self.msg.start + int(raw.start[i])))
            out[a:b] = b" " * (b - a)
        return bytes(out)

    def _blank_undecodable(self, recs: csvscan.Records, raw: csvscan.Records, data: bytes) -> bytes:
        """Reject records that are not UTF-8 (rare: checked one by one) and blank them out."""
        out = bytearray(data)
        for i in range(len(recs.start)):
            a, b = int(recs.start[i]), int(recs.end[i])
            try:
                data[a:b].decode("utf-8")
            except UnicodeDecodeError as exc:
                text = data[a:b].decode("utf-8", "replace")
                self.bad.append((int(recs.line[i]), reasons.ENCODING_ERROR,
                                 f"invalid UTF-8 at byte {exc.start} of the record", text,
                                 self.msg.start + int(raw.start[i])))
                out[a:b] = b" " * (b - a)
        return bytes(out)

    def unregister(self, con: duckdb.DuckDBPyConnection) -> None:
        con.unregister("csv_records")

    def parsed_sql(self) -> str:
        return csv_parsed(self.spec, list(self.columns))

    def bad_parsed_sql(self, relation: str) -> str:
        return csv_parsed(self.spec, list(self.columns), relation)

    def locate(self, idxs: list[int]) -> dict[int, Located]:
        recs, raw = self._recs()
        where = {int(line): i for i, line in enumerate(recs.line)}
        out = {}
        for idx in idxs:
            i = where.get(idx)
            if i is not None:
                text = self.data[int(recs.start[i]):int(recs.end[i])].decode("utf-8", "replace")
                out[idx] = Located(text, self.msg.start + int(raw.start[i]))
        return out

    def bad_table(self, located: dict[int, Located]) -> pa.Table:
        import pyarrow as pa  # heavy: imported when used, not by importing lakeline

        return pa.table({"_idx": pa.array(list(located), pa.int64()),
                         "_raw": pa.array([x.text for x in located.values()], pa.string())})

    def spans_table(self) -> pa.Table | None:
        import pyarrow as pa  # heavy: imported when used, not by importing lakeline

        recs, raw = self._recs()
        return pa.table({"_idx": pa.array(recs.line), "_offset": pa.array(raw.start + self.msg.start),
                         "_end": pa.array(raw.end + self.msg.start)})


@dataclass
class ParquetSource(ChunkSource):
    """Row groups of a Parquet object; every declared column is read as text (DuckDB's cast),
    so the same typing and checks as JSON and CSV apply."""

    rows: Any = None  # the chunk's rows as an Arrow table, with ``_idx`` (row number in the chunk)

    @property
    def key(self) -> tuple[Any, ...]:
        return ("parquet", tuple(self.rows.column_names))

    def register(self, con: duckdb.DuckDBPyConnection) -> None:
        con.register("parquet_rows", self.rows)

    def unregister(self, con: duckdb.DuckDBPyConnection) -> None:
        con.unregister("parquet_rows")

    def _parsed(self, relation: str) -> str:
        present = set(self.rows.column_names)
        fields = ", ".join(
            f"{quote(f.source)} := " + (f"CAST({quote(f.source)} AS VARCHAR)" if f.source in present
                                        else "CAST(NULL AS VARCHAR)")
            for f in self.spec.all_fields())
        # undeclared columns are the schema's, settled for the whole object at ingest
        unknown = ", CAST([] AS VARCHAR[]) AS _unknown" if self.spec.on_unknown_field != "ignore" else ""
        return (f"(SELECT _idx, CAST(NULL AS VARCHAR) AS _pre, CAST(NULL AS VARCHAR) AS _pre_msg, "
                f"struct_pack({fields}) AS _r{unknown} FROM {relation})")

    def parsed_sql(self) -> str:
        return self._parsed("parquet_rows")

    def bad_parsed_sql(self, relation: str) -> str:
        return self._parsed(relation)

    def locate(self, idxs: list[int]) -> dict[int, Located]:
        import pyarrow as pa  # heavy: imported when used, not by importing lakeline
        import pyarrow.compute as pc

        picked = self.rows.filter(pc.is_in(self.rows.column("_idx"), pa.array(idxs, pa.int64())))
        return {int(r["_idx"]): Located(_row_text(r), None) for r in picked.to_pylist()}

    def bad_table(self, located: dict[int, Located]) -> pa.Table:
        import pyarrow as pa  # heavy: imported when used, not by importing lakeline
        import pyarrow.compute as pc

        wanted = pa.array(list(located), pa.int64())
        picked: pa.Table = self.rows.filter(pc.is_in(self.rows.column("_idx"), wanted))
        return picked


def _row_text(row: dict[str, Any]) -> str:
    """A Parquet row shown as JSON text in the rejects (rejects only)."""
    return orjson.dumps({k: v for k, v in row.items() if k != "_idx"}, default=str).decode()
