"""Declarative description of a streaming (JSON → silver Parquet) pipeline."""

from __future__ import annotations

from dataclasses import dataclass

#: silver types a field may have, with the DuckDB type used to cast it.
SILVER_TYPES = {"string": "VARCHAR", "float64": "DOUBLE", "int64": "BIGINT", "timestamp": "TIMESTAMPTZ"}


@dataclass(frozen=True)
class Field:
    """One field of a record type and its silver type."""

    name: str
    type: str = "string"

    def __post_init__(self) -> None:
        if self.type not in SILVER_TYPES:
            raise ValueError(f"field {self.name}: unknown type {self.type!r}")


@dataclass(frozen=True)
class RecordType:
    """A record type: its fields in output order. ``event_time`` drives the ``dt`` partition."""

    name: str
    fields: tuple[Field, ...]


@dataclass(frozen=True)
class StreamPipeline:
    """A pipeline whose objects are JSON / JSON lines records routed by ``record_type``."""

    name: str
    record_types: tuple[RecordType, ...]
    time_field: str = "event_time"

    def record_type(self, name: str) -> RecordType | None:
        """The record type called ``name``, if any."""
        for rt in self.record_types:
            if rt.name == name:
                return rt
        return None

    def all_fields(self) -> list[Field]:
        """Union of every record type's fields (first declaration wins), ``record_type`` first."""
        seen: dict[str, Field] = {"record_type": Field("record_type")}
        for rt in self.record_types:
            for f in rt.fields:
                seen.setdefault(f.name, f)
        return list(seen.values())
