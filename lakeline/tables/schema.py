"""The types, fields and table descriptions every pipeline and table format share.

Silver types are named once here and mapped to DuckDB (:func:`sql_type`), Arrow
(:func:`arrow_type`) and the Hive/Glue catalog (:func:`hive_type`)::

    string · int64 · float64 · bool · date · timestamp · decimal(p,s)

``timestamp`` is an instant (UTC; a naive value is read as UTC). ``decimal(p,s)`` keeps exact
digits: ``1 <= p <= 38``, ``0 <= s <= p``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from lakeline.errors import ConfigError

if TYPE_CHECKING:
    import pyarrow as pa

#: the type names a field may have (``decimal(p,s)`` is written with its precision and scale).
BASE_TYPES = ("string", "int64", "float64", "bool", "date", "timestamp")
TYPE_NAMES = (*BASE_TYPES, "decimal(p,s)")
_SQL = {"string": "VARCHAR", "int64": "BIGINT", "float64": "DOUBLE", "bool": "BOOLEAN", "date": "DATE",
        "timestamp": "TIMESTAMPTZ"}
_HIVE = {"string": "string", "int64": "bigint", "float64": "double", "bool": "boolean", "date": "date",
         "timestamp": "timestamp"}
_DECIMAL = re.compile(r"^decimal\(\s*(\d+)\s*,\s*(\d+)\s*\)$")
#: names a table or field may have: SQL identifiers that need no quoting.
NAME = re.compile(r"^[a-z_][a-z0-9_]*$")

Zone = Literal["silver", "gold"]
#: how a table is stored: a Hive-partitioned Parquet dataset, an Iceberg table, run folders
#: promoted through ``current/`` and ``_LATEST.json`` (seed 000), or one Parquet file per
#: materialisation (gold models).
Layout = Literal["parquet", "iceberg", "runs", "file"]


def parse_type(text: str, where: str = "type") -> str:
    """The canonical spelling of a silver type; :class:`ConfigError` naming ``where`` and the
    allowed types otherwise."""
    t = str(text).strip().lower()
    if t in BASE_TYPES:
        return t
    m = _DECIMAL.match(t)
    if m:
        p, s = int(m.group(1)), int(m.group(2))
        if 1 <= p <= 38 and 0 <= s <= p:
            return f"decimal({p},{s})"
        raise ConfigError(f"{where}: decimal({p},{s}) needs 1 <= precision <= 38 and 0 <= scale <= precision")
    raise ConfigError(f"{where}: unknown type {text!r}; types: {', '.join(TYPE_NAMES)}")


def decimal_parts(t: str) -> tuple[int, int] | None:
    """``(precision, scale)`` of a decimal type, else None."""
    m = _DECIMAL.match(t)
    return (int(m.group(1)), int(m.group(2))) if m else None


def sql_type(t: str) -> str:
    """The DuckDB type of silver type ``t``."""
    dec = decimal_parts(t)
    return f"DECIMAL({dec[0]},{dec[1]})" if dec else _SQL[t]


def hive_type(t: str) -> str:
    """The Hive/Glue column type of silver type ``t``."""
    dec = decimal_parts(t)
    return f"decimal({dec[0]},{dec[1]})" if dec else _HIVE[t]


def arrow_type(t: str) -> pa.DataType:
    """The Arrow type of silver type ``t`` (what the Parquet files hold)."""
    import pyarrow as pa  # heavy: imported when used, not by importing lakeline
    dec = decimal_parts(t)
    if dec:
        return pa.decimal128(*dec)
    types: dict[str, pa.DataType] = {
        "string": pa.string(), "int64": pa.int64(), "float64": pa.float64(), "bool": pa.bool_(),
        "date": pa.date32(), "timestamp": pa.timestamp("us", tz="UTC")}
    return types[t]


@dataclass(frozen=True)
class Field:
    """One field of a table: its name, silver type, whether a value is required, and the name
    it has in the source (``column``; default: the same name)."""

    name: str
    type: str = "string"
    required: bool = False
    column: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "type", parse_type(self.type, f"field {self.name}"))

    @property
    def source(self) -> str:
        """The field's name in the source data."""
        return self.column or self.name


@dataclass(frozen=True)
class TableSpec:
    """A table a pipeline writes, as SQL sees it.

    ``name`` is the SQL name (``silver.shipments``, ``retail_silver.orders_silver``);
    ``layout`` how it is stored; ``location`` its prefix in ``zone`` (default: the table part of
    the name); ``fields`` its columns when they are known up front; ``partition`` the
    partition column (``dt`` for streams; None when unpartitioned)."""

    name: str
    layout: Layout = "parquet"
    zone: Zone = "silver"
    fields: tuple[Field, ...] = ()
    partition: str | None = None
    location: str = ""
    description: str = ""
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def schema(self) -> str:
        """The SQL schema (``silver``) of the table."""
        return self.name.split(".", 1)[0]

    @property
    def table(self) -> str:
        """The table part of the SQL name."""
        return self.name.split(".", 1)[1]

    @property
    def prefix(self) -> str:
        """The table's prefix in its zone (no trailing slash)."""
        return (self.location or self.table).strip("/")


def arrow_schema(fields: tuple[Field, ...] | list[Field]) -> pa.Schema:
    """The Arrow schema of ``fields`` (all nullable: required is enforced by the transform)."""
    import pyarrow as pa  # heavy: imported when used, not by importing lakeline
    return pa.schema([pa.field(f.name, arrow_type(f.type)) for f in fields])


#: how Glue and Athena read a table of Parquet files (a table's StorageDescriptor, columns apart)
GLUE_PARQUET: dict[str, Any] = {
    "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
    "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
    "SerdeInfo": {"SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"},
}


def hive_of(t: pa.DataType) -> str:
    """The Hive/Glue type of an Arrow type as Athena reads it from Parquet (nested types too;
    a time of day, which Hive lacks, as ``string``)."""
    import pyarrow as pa  # heavy: imported when used, not by importing lakeline

    if pa.types.is_dictionary(t):
        return hive_of(t.value_type)
    if pa.types.is_struct(t):
        return "struct<" + ",".join(f"{t.field(i).name}:{hive_of(t.field(i).type)}"
                                    for i in range(t.num_fields)) + ">"
    if pa.types.is_map(t):
        return f"map<{hive_of(t.key_type)},{hive_of(t.item_type)}>"
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        return f"array<{hive_of(t.value_type)}>"
    if pa.types.is_decimal(t):
        return f"decimal({t.precision},{t.scale})"
    simple: list[tuple[Callable[[Any], bool], str]] = [
        (pa.types.is_boolean, "boolean"), (pa.types.is_int8, "tinyint"), (pa.types.is_int16, "smallint"),
        (pa.types.is_int32, "int"), (pa.types.is_integer, "bigint"), (pa.types.is_float32, "float"),
        (pa.types.is_floating, "double"), (pa.types.is_date, "date"), (pa.types.is_timestamp, "timestamp"),
        (pa.types.is_binary, "binary"), (pa.types.is_large_binary, "binary")]
    for test, name in simple:
        if test(t):
            return name
    return "string"
