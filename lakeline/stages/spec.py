"""What the streaming stages need to know of a pipeline: its source format and its tables.

A :class:`StreamSpec` is the data side of a streaming pipeline (declared in a pipeline file,
see :mod:`lakeline.pipelines.declared`). Ingest cuts each landed object into chunks by its
format; the transform parses each chunk, routes every record to one of the tables (by the
value of ``route_field``, or all to the single table), types its fields, and writes the rows
that pass or rejects them with a reason code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from lakeline.lake import Lake
from lakeline.tables.schema import Field, TableSpec

Format = Literal["jsonl", "json", "csv", "parquet"]
FORMATS: tuple[Format, ...] = ("jsonl", "json", "csv", "parquet")
OnDuplicate = Literal["reject", "latest"]
OnUnknown = Literal["ignore", "add", "reject"]
TableFormat = Literal["parquet", "iceberg"]


@dataclass(frozen=True)
class CsvOptions:
    """How a CSV source is read. ``decimal = ","`` reads ``147,43`` as 147.43 in number
    fields; ``date_format`` / ``timestamp_format`` are strptime patterns (``%d/%m/%Y``; empty:
    ISO 8601). ``encoding`` is one whose line ends, quotes and delimiters are single ASCII
    bytes (utf-8, latin-1, cp1252, iso-8859-*); bytes are converted to UTF-8 before parsing.
    An empty field is NULL."""

    delimiter: str = ","
    quote: str = '"'
    escape: str = '"'
    header: bool = True
    decimal: str = "."
    date_format: str = ""
    timestamp_format: str = ""
    encoding: str = "utf-8"


@dataclass(frozen=True)
class StreamTable:
    """One output table of a stream: ``silver.<name>``. ``route`` is the value of the route
    field that sends a record here; ``key`` the fields that identify a record (unique within a
    load); ``added`` the fields schema evolution added (nullable strings)."""

    name: str
    fields: tuple[Field, ...]
    key: tuple[str, ...] = ()
    route: str = ""
    added: tuple[Field, ...] = ()

    @property
    def route_value(self) -> str:
        """The route field's value of this table's records."""
        return self.route or self.name

    @property
    def columns(self) -> tuple[Field, ...]:
        """Declared fields, then the added ones."""
        return self.fields + self.added

    def field(self, name: str) -> Field | None:
        """The field called ``name``, if any."""
        return next((f for f in self.columns if f.name == name), None)


@dataclass(frozen=True)
class StreamSpec:
    """The data side of a streaming pipeline."""

    pipeline: str
    tables: tuple[StreamTable, ...]
    format: Format = "jsonl"
    csv: CsvOptions = field(default_factory=CsvOptions)
    route_field: str | None = None
    time_field: str | None = None
    on_duplicate: OnDuplicate = "reject"
    on_unknown_field: OnUnknown = "ignore"
    table_format: TableFormat = "parquet"

    def table(self, route_value: str) -> StreamTable | None:
        """The table whose records carry ``route_value`` (the only table when not routed)."""
        if self.route_field is None:
            return self.tables[0]
        return next((t for t in self.tables if t.route_value == route_value), None)

    def table_named(self, name: str) -> StreamTable | None:
        """The table called ``name``."""
        return next((t for t in self.tables if t.name == name), None)

    def all_fields(self) -> list[Field]:
        """Every table's fields (first declaration wins), the route field first."""
        seen: dict[str, Field] = {}
        if self.route_field is not None:
            seen[self.route_field] = Field(self.route_field)
        for t in self.tables:
            for f in t.columns:
                seen.setdefault(f.name, f)
        return list(seen.values())

    @property
    def partitioned(self) -> bool:
        """True when rows are partitioned by the day (``dt``) of the time field."""
        return self.time_field is not None

    @property
    def keyed(self) -> bool:
        """True when some table has a key."""
        return any(t.key for t in self.tables)

    def table_spec(self, t: StreamTable) -> TableSpec:
        """The :class:`TableSpec` of one of the stream's tables (``silver.<name>``)."""
        return TableSpec(f"silver.{t.name}", layout=self.table_format, fields=t.columns,
                         partition="dt" if self.partitioned else None,
                         description=f"{self.pipeline} pipeline")

    def with_tables(self, tables: tuple[StreamTable, ...]) -> StreamSpec:
        """A copy with other tables (schema evolution)."""
        return StreamSpec(self.pipeline, tables, self.format, self.csv, self.route_field, self.time_field,
                          self.on_duplicate, self.on_unknown_field, self.table_format)


@dataclass(frozen=True)
class Route:
    """Where a landing key goes: its pipeline, the stream spec when the pipeline is streaming
    (the object is cut into chunks), else ``on_landed(lake, key, etag, size)``, which a job
    pipeline uses to note the landing (its work waits for ``lakeline run``)."""

    pipeline: str
    stream: StreamSpec | None
    on_landed: Callable[[Lake, str, str, int], None]


#: finds the route of a landing key (None: no pipeline takes it); the pipeline registry's ``route``.
Router = Callable[[str], Route | None]
