"""Declared pipelines: a streaming pipeline written as a TOML file (``HOME/pipelines/NAME.toml``).

::

    description = "Orders exported by the shop"
    format = "csv"                  # csv | jsonl | json | parquet
    time_field = "ordered_at"       # its UTC day is the dt partition (optional)
    table_format = "parquet"        # parquet | iceberg
    on_unknown_field = "add"        # ignore | add (new nullable column) | reject
    on_duplicate = "reject"         # reject (DUPLICATE_FAILURE) | latest (keep the latest)

    [csv]                           # only for format = "csv"
    delimiter = ","
    header = true
    decimal = ","
    date_format = "%d/%m/%Y"

    [tables.orders]                 # silver.orders
    key = ["order_id"]
    fields = [
      { name = "order_id", type = "int64", required = true },
      { name = "ordered_at", type = "timestamp", required = true },
      { name = "amount", type = "decimal(10,2)" },
      { name = "customer", column = "Customer Name" },
    ]
    rules = [{ kind = "between", column = "amount", min = 0, max = 100000 }]

Several tables need ``route_field``: a record goes to the table whose ``route`` (default: the
table's name) equals the record's value of that field, as ``shipments`` routes by
``record_type``. ``[pipelines.NAME]`` in ``lakeline.toml`` may override ``table_format``,
``on_unknown_field`` and ``on_duplicate``.

Every problem raises :class:`~lakeline.errors.ConfigError` naming the file, the key (or the
line, for TOML syntax) and what is allowed.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from lakeline.config import Settings, check
from lakeline.dq.rules import Ruleset, parse_ruleset
from lakeline.errors import ConfigError
from lakeline.pipelines.base import Generator, check_name
from lakeline.pipelines.stream import StreamPipeline
from lakeline.stages.spec import FORMATS, CsvOptions, StreamSpec, StreamTable
from lakeline.tables.schema import Field

_TOP = ("description", "format", "time_field", "table_format", "on_unknown_field", "on_duplicate",
        "route_field", "csv", "tables")
_TABLE = ("fields", "key", "route", "rules", "description")
_FIELD = ("name", "type", "required", "column")
_CHOICES = {"table_format": ("parquet", "iceberg"), "on_unknown_field": ("ignore", "add", "reject"),
            "on_duplicate": ("reject", "latest")}
#: columns every streaming table gets: a field may not take their names.
RESERVED = ("_source", "dt")


@dataclass(frozen=True)
class DeclaredSettings:
    """``[pipelines.NAME]`` overrides of a declared pipeline (empty: the file's value)."""

    #: overrides the pipeline file's `table_format`: `parquet` or `iceberg` (empty: the file's)
    table_format: str = ""
    #: overrides the file's `on_unknown_field`: `add`, `ignore` or `reject` (empty: the file's)
    on_unknown_field: str = ""
    #: overrides the file's `on_duplicate`: `reject` (DUPLICATE_FAILURE) or `latest` (empty: the file's)
    on_duplicate: str = ""


class DeclaredPipeline(StreamPipeline):
    """A streaming pipeline read from a pipeline file."""

    settings_class = DeclaredSettings

    def __init__(self, name: str, spec: StreamSpec, *, description: str = "", origin: str = "",
                 rules: Mapping[str, Ruleset] | None = None, gen: Generator | None = None) -> None:
        self.name = name
        self.description = description
        self._spec = spec
        self._rules = dict(rules or {})
        self._gen = gen
        self.origin = origin or "builtin"

    def check_settings(self, values: Any, settings: Settings) -> None:
        for key, allowed in _CHOICES.items():
            value = getattr(values, key)
            check(value in ("", *allowed), settings, self.name, key,
                  f"must be one of {', '.join(allowed)}, got {value!r}")

    def stream(self, settings: Settings) -> StreamSpec:
        values: DeclaredSettings = self.settings(settings)
        changes = {f.name: getattr(values, f.name) for f in fields(values) if getattr(values, f.name)}
        return replace(self._spec, **changes) if changes else self._spec

    def rulesets(self) -> Mapping[str, Ruleset]:
        return self._rules

    def generator(self) -> Generator | None:
        return self._gen


def load_file(path: Path) -> DeclaredPipeline:
    """The pipeline declared in ``path`` (named after the file)."""
    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the pipeline file: {exc}") from None
    return parse(path.stem, data, str(path))


def parse(name: str, data: Mapping[str, Any], origin: str, *,
          gen: Generator | None = None) -> DeclaredPipeline:
    """A declared pipeline from the parsed TOML ``data``; errors name ``origin`` and the key."""
    check_name(name, f"{origin}: pipeline name")
    _known(data, _TOP, origin, "")
    fmt = _choice(data, "format", FORMATS, origin, default="jsonl")
    csv = _csv(data.get("csv"), origin, fmt)
    raw_tables = data.get("tables")
    if not isinstance(raw_tables, Mapping) or not raw_tables:
        raise ConfigError(f"{origin}: tables: declare at least one table, e.g. [tables.{name}] with "
                          "fields = [{ name = \"id\", type = \"int64\" }]")
    route_field = _opt_str(data, "route_field", origin)
    if len(raw_tables) > 1 and route_field is None:
        raise ConfigError(f"{origin}: route_field: {len(raw_tables)} tables need route_field, the field "
                          "whose value names each record's table")
    tables = tuple(_table(str(t), raw, origin) for t, raw in raw_tables.items())
    _check_routes(tables, origin)
    time_field = _opt_str(data, "time_field", origin)
    for t in tables:
        _check_table(t, time_field, route_field, origin)
    spec = StreamSpec(
        pipeline=name, tables=tables, format=fmt, csv=csv, route_field=route_field, time_field=time_field,
        on_duplicate=_choice(data, "on_duplicate", _CHOICES["on_duplicate"], origin, default="reject"),  # type: ignore[arg-type]
        on_unknown_field=_choice(data, "on_unknown_field", _CHOICES["on_unknown_field"], origin,
                                 default="ignore"),  # type: ignore[arg-type]
        table_format=_choice(data, "table_format", _CHOICES["table_format"], origin, default="parquet"),  # type: ignore[arg-type]
    )
    rules = {t: parse_ruleset(f"{name}.{t}", raw["rules"], origin=f"{origin}: tables.{t}.rules")
             for t, raw in raw_tables.items() if isinstance(raw, Mapping) and "rules" in raw}
    description = data.get("description", "")
    if not isinstance(description, str):
        raise ConfigError(f"{origin}: description must be a string")
    return DeclaredPipeline(name, spec, description=description, origin=origin, rules=rules, gen=gen)


def _known(data: Mapping[str, Any], allowed: tuple[str, ...], origin: str, where: str) -> None:
    for key in data:
        if key not in allowed:
            raise ConfigError(f"{origin}: {where}{key}: unknown key; allowed: {', '.join(allowed)}")


def _choice(data: Mapping[str, Any], key: str, allowed: tuple[str, ...], origin: str, *, default: str) -> Any:
    value = data.get(key, default)
    if value not in allowed:
        raise ConfigError(f"{origin}: {key}: {value!r} is not allowed; use one of {', '.join(allowed)}")
    return value


def _opt_str(data: Mapping[str, Any], key: str, origin: str) -> str | None:
    value = data.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ConfigError(f"{origin}: {key} must be a field name (a string), got {value!r}")
    return value


def _csv(raw: Any, origin: str, fmt: str) -> CsvOptions:
    if raw is None:
        return CsvOptions()
    if fmt != "csv":
        raise ConfigError(f"{origin}: csv: [csv] options apply to format = \"csv\", not {fmt!r}")
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{origin}: csv must be a table ([csv])")
    allowed = tuple(f.name for f in fields(CsvOptions))
    _known(raw, allowed, origin, "csv.")
    values: dict[str, Any] = {}
    for key, value in raw.items():
        default = getattr(CsvOptions(), key)
        if type(value) is not type(default):
            raise ConfigError(f"{origin}: csv.{key} must be a {type(default).__name__}, got {value!r}")
        values[key] = value
    opts = CsvOptions(**values)
    for key in ("delimiter", "quote", "escape"):
        value = getattr(opts, key)
        if len(value) != 1 or value in "\r\n":
            why = (" (a file's delimiter is declared, never guessed: a file whose header is "
                   "written with another common one is refused, naming it)") if key == "delimiter" else ""
            raise ConfigError(f"{origin}: csv.{key} must be one character (not a line end), "
                              f"got {value!r}{why}")
    if opts.decimal not in (".", ","):
        raise ConfigError(f"{origin}: csv.decimal must be \".\" or \",\", got {opts.decimal!r}")
    if opts.decimal == opts.delimiter:
        raise ConfigError(f"{origin}: csv.decimal and csv.delimiter are both {opts.delimiter!r}")
    try:
        "x".encode(opts.encoding)
    except LookupError:
        raise ConfigError(f"{origin}: csv.encoding: unknown encoding {opts.encoding!r}") from None
    if "\n".encode(opts.encoding) != b"\n":
        raise ConfigError(f"{origin}: csv.encoding {opts.encoding!r} does not write line ends as one "
                          "ASCII byte; use utf-8, latin-1, cp1252 or another ASCII-compatible encoding")
    return opts


def _table(name: str, raw: Any, origin: str) -> StreamTable:
    where = f"tables.{name}"
    check_name(name, f"{origin}: {where}")
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{origin}: {where} must be a table ([{where}])")
    _known(raw, _TABLE, origin, f"{where}.")
    raw_fields = raw.get("fields")
    if not isinstance(raw_fields, list) or not raw_fields:
        raise ConfigError(f"{origin}: {where}.fields: declare the fields, e.g. "
                          "fields = [{ name = \"id\", type = \"int64\" }]")
    out: list[Field] = []
    for i, f in enumerate(raw_fields):
        out.append(_field(f, origin, f"{where}.fields[{i}]"))
    names = [f.name for f in out]
    dup = next((n for n in names if names.count(n) > 1), None)
    if dup:
        raise ConfigError(f"{origin}: {where}.fields: field {dup!r} is declared twice")
    key = raw.get("key", [])
    if isinstance(key, str):
        key = [key]
    if not isinstance(key, list) or not all(isinstance(k, str) for k in key):
        raise ConfigError(f"{origin}: {where}.key must be a field name or a list of field names")
    for k in key:
        if k not in names:
            raise ConfigError(f"{origin}: {where}.key: {k!r} is not a field of the table; fields: "
                              f"{', '.join(names)}")
    route = raw.get("route", "")
    if not isinstance(route, str):
        raise ConfigError(f"{origin}: {where}.route must be a string")
    return StreamTable(name, tuple(out), tuple(key), route)


def _field(raw: Any, origin: str, where: str) -> Field:
    if not isinstance(raw, Mapping) or "name" not in raw:
        raise ConfigError(f"{origin}: {where}: a field is a table like {{ name = \"id\", type = \"int64\" }}")
    _known(raw, _FIELD, origin, f"{where}.")
    name = raw["name"]
    if not isinstance(name, str):
        raise ConfigError(f"{origin}: {where}.name must be a string")
    check_name(name, f"{origin}: {where}.name")
    if name in RESERVED:
        raise ConfigError(f"{origin}: {where}.name: {name!r} is reserved (every table has "
                          f"{' and '.join(RESERVED)}); rename it and set column = {name!r}")
    required = raw.get("required", False)
    if not isinstance(required, bool):
        raise ConfigError(f"{origin}: {where}.required must be true or false")
    column = raw.get("column")
    if column is not None and (not isinstance(column, str) or not column):
        raise ConfigError(f"{origin}: {where}.column must be the field's name in the source")
    try:
        return Field(name, str(raw.get("type", "string")), required, column)
    except ConfigError as exc:
        raise ConfigError(f"{origin}: {where}.type: {str(exc).split(': ', 1)[1]}") from None


def _check_routes(tables: tuple[StreamTable, ...], origin: str) -> None:
    seen: dict[str, str] = {}
    for t in tables:
        if t.route_value in seen:
            raise ConfigError(f"{origin}: tables.{t.name}.route: {t.route_value!r} already routes to "
                              f"tables.{seen[t.route_value]}")
        seen[t.route_value] = t.name


def _check_table(t: StreamTable, time_field: str | None, route_field: str | None, origin: str) -> None:
    if time_field is not None:
        f = t.field(time_field)
        if f is None:
            raise ConfigError(f"{origin}: time_field: {time_field!r} is not a field of tables.{t.name}; "
                              f"fields: {', '.join(x.name for x in t.fields)}")
        if f.type not in ("timestamp", "date"):
            raise ConfigError(f"{origin}: time_field: {time_field!r} of tables.{t.name} is {f.type}; "
                              "the time field must be a timestamp or a date")
    if route_field is not None:
        f = t.field(route_field)
        if f is not None and f.type != "string":
            raise ConfigError(f"{origin}: route_field: {route_field!r} of tables.{t.name} must be a string")
