"""From a sample file to a pipeline file: ``lakeline pipeline new NAME --sample FILE``.

DuckDB reads the sample (its CSV sniffer for delimiter, quoting, header, date and time
formats and column types; ``read_json`` / ``read_parquet`` schemas for the others) and the
result is written as a commented pipeline file (:mod:`lakeline.pipelines.declared`) that
loads the sample: every setting says what it does and what else it may be.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from lakeline.errors import UsageError
from lakeline.pipelines.declared import RESERVED, parse
from lakeline.sqltext import lit
from lakeline.stages.spec import FORMATS, CsvOptions
from lakeline.tables.schema import NAME, TYPE_NAMES

_SUFFIXES = {".csv": "csv", ".tsv": "csv", ".txt": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl",
             ".json": "json", ".parquet": "parquet", ".pq": "parquet"}
_INTS = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT",
         "HUGEINT", "UHUGEINT")


@dataclass
class Column:
    """A column of the sample: its name there, its field name and silver type, and facts about
    its values that go into the file's comments."""

    source: str
    name: str
    type: str
    nulls: int = 0
    example: str = ""
    note: str = ""


@dataclass
class Sample:
    """What was read from the sample."""

    format: str
    rows: int
    columns: list[Column]
    csv: CsvOptions | None = None
    skipped: list[str] = field(default_factory=list)  # nested fields a flat table cannot hold


def format_of(path: Path, given: str | None) -> str:
    """The sample's format: ``given``, else from the file name; :class:`UsageError` otherwise."""
    if given:
        if given not in FORMATS:
            raise UsageError(f"--format {given!r}: use one of {', '.join(FORMATS)}")
        return given
    found = _SUFFIXES.get(path.suffix.lower())
    if found is None:
        raise UsageError(f"cannot tell the format of {path.name} from its name; pass --format "
                         f"({', '.join(FORMATS)})")
    return found


def silver_type(duck: str) -> str | None:
    """The silver type of a DuckDB type (None: a nested type no flat field holds)."""
    t = duck.upper()
    if t in _INTS:
        return "int64"
    if t in ("DOUBLE", "FLOAT", "REAL"):
        return "float64"
    if t.startswith("DECIMAL"):
        m = re.match(r"DECIMAL\((\d+),\s*(\d+)\)", t)
        return f"decimal({m.group(1)},{m.group(2)})" if m else "float64"
    if t == "BOOLEAN":
        return "bool"
    if t == "DATE":
        return "date"
    if t.startswith("TIMESTAMP"):
        return "timestamp"
    if t.endswith("]") or t.startswith(("STRUCT", "MAP", "UNION")) or t == "JSON":
        return None
    return "string"


def field_name(source: str, taken: set[str]) -> str:
    """A valid, unused field name for a source column (``Customer Name`` → ``customer_name``)."""
    name = re.sub(r"[^a-z0-9]+", "_", source.strip().lower()).strip("_") or "column"
    if name[0].isdigit():
        name = "c_" + name
    name = re.sub(r"_+", "_", name)
    if name in RESERVED or name.startswith("_"):
        name = "source_" + name.lstrip("_")
    base, n = name, 2
    while name in taken or not NAME.match(name):
        name = f"{base}_{n}"
        n += 1
    taken.add(name)
    return name


def read_sample(path: Path, fmt: str) -> Sample:
    """Read the sample with DuckDB; :class:`UsageError` when it cannot be read as ``fmt``."""
    import duckdb  # heavy: only `pipeline new` needs it here

    if not path.is_file():
        raise UsageError(f"--sample {path}: no such file")
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone='UTC'")
        if fmt == "csv":
            return _read_csv(con, path)
        reader = (f"read_parquet({lit(str(path))})" if fmt == "parquet" else
                  f"read_json({lit(str(path))}, sample_size=-1, format='auto')")
        return _describe(con, reader, fmt)
    except duckdb.Error as exc:
        first = str(exc).strip().splitlines()[0]
        raise UsageError(f"--sample {path}: cannot be read as {fmt}: {first}") from None
    finally:
        con.close()


def _read_csv(con: Any, path: Path) -> Sample:
    row = con.execute(f"SELECT Delimiter, Quote, Escape, HasHeader, DateFormat, TimestampFormat "
                      f"FROM sniff_csv({lit(str(path))}, sample_size=-1)").fetchone()
    delim, quote, escape, header, date_fmt, ts_fmt = row
    quote = quote if quote and quote != "(empty)" else '"'
    escape = escape if escape and escape != "(empty)" else quote
    opts = CsvOptions(delimiter=delim, quote=quote, escape=escape, header=bool(header),
                      date_format=date_fmt or "", timestamp_format=ts_fmt or "")
    base = (f"read_csv({lit(str(path))}, delim={lit(delim)}, quote={lit(quote)}, escape={lit(escape)}, "
            f"header={str(bool(header)).lower()}, sample_size=-1")
    sample = _describe(con, base + ")", "csv")
    if delim != ",":  # a decimal comma (147,43) only shows when the sniffer is told to try it
        comma = _describe(con, base + ", decimal_separator=',')", "csv")
        numeric = [c.source for a, c in zip(sample.columns, comma.columns, strict=True)
                   if a.type == "string" and (c.type == "float64" or c.type.startswith("decimal"))]
        if numeric:
            opts = CsvOptions(**{**opts.__dict__, "decimal": ","})
            sample = comma
    sample.csv = opts
    return sample


def _describe(con: Any, reader: str, fmt: str) -> Sample:
    described = con.execute(f"DESCRIBE SELECT * FROM {reader}").fetchall()
    rows = int(con.execute(f"SELECT count(*) FROM {reader}").fetchone()[0])
    taken: set[str] = set()
    columns: list[Column] = []
    skipped: list[str] = []
    for source, duck, *_ in described:
        t = silver_type(str(duck))
        if t is None:
            skipped.append(f"{source} ({duck})")
            continue
        columns.append(Column(str(source), field_name(str(source), taken), t))
    if columns:
        stats = ", ".join(
            f"count(*) - count({_q(c.source)}), CAST(any_value({_q(c.source)}) AS VARCHAR)" for c in columns)
        values = con.execute(f"SELECT {stats} FROM {reader}").fetchone()
        for i, c in enumerate(columns):
            c.nulls, c.example = int(values[2 * i]), str(values[2 * i + 1] or "")[:40]
    return Sample(fmt, rows, columns, skipped=skipped)


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def choose_time(sample: Sample, given: str | None) -> Column | None:
    """The time field: the one named (a timestamp or date column), else the first timestamp
    column, else the first date column, else none."""
    if given:
        found = next((c for c in sample.columns if given in (c.name, c.source)), None)
        if found is None:
            raise UsageError(f"--time-field {given!r} is not a column of the sample; columns: "
                             f"{', '.join(c.source for c in sample.columns)}")
        if found.type not in ("timestamp", "date"):
            raise UsageError(f"--time-field {given!r} holds {found.type} values in the sample "
                             f"(e.g. {found.example!r}); it must hold timestamps or dates")
        return found
    return next((c for c in sample.columns if c.type == "timestamp"),
                next((c for c in sample.columns if c.type == "date"), None))


def render(name: str, sample: Sample, path: Path, *, time: Column | None, key: list[Column]) -> str:
    """The commented pipeline file for ``sample``."""
    s = sample
    out = [
        f"# Pipeline {name!r}, written by `lakeline pipeline new` from {path.name} ({s.rows} records).",
        "# Edit freely; `lakeline pipeline validate` checks it. Then:",
        f"#   lakeline put FILE --pipeline {name}   and   lakeline run   → the table silver.{name}",
        f'description = "{name}: records like {path.name}"',
        f'format = "{s.format}"'.ljust(40) + f"# {', '.join(FORMATS)}",
    ]
    if time is not None:
        out.append(f'time_field = "{time.name}"'.ljust(40) + "# its UTC day is the dt partition of silver."
                   f"{name}; remove it for an unpartitioned table")
    else:
        out.append('# time_field = "..."'.ljust(40) + "# no timestamp or date column found: the table is "
                   "not partitioned; name a timestamp field to partition by its day")
    out += [
        _line('table_format = "parquet"',
              "parquet (Hive-partitioned files) or iceberg (snapshots, time travel)"),
        _line('on_unknown_field = "add"', "a field the file does not declare: add (a new nullable string "
              "column, recorded in the table's history), ignore, or reject"),
        _line('on_duplicate = "reject"', "with a key: reject later duplicates in a load (DUPLICATE_FAILURE) "
              "or keep the latest (latest)"),
    ]
    if s.csv is not None:
        o = s.csv
        out += ["", "[csv]",
                _line(f"delimiter = {_toml(o.delimiter)}", "one character"),
                _line(f"quote = {_toml(o.quote)}", "quotes a field holding the delimiter or a line end"),
                _line(f"escape = {_toml(o.escape)}",
                      "the quote itself: a doubled quote inside quotes (RFC 4180)"),
                _line(f"header = {str(o.header).lower()}", "the first line names the columns"),
                _line(f"decimal = {_toml(o.decimal)}", '"," reads 147,43 as 147.43'),
                _line(f"date_format = {_toml(o.date_format)}",
                      "strptime pattern (%d/%m/%Y); empty: ISO 8601"),
                _line(f"timestamp_format = {_toml(o.timestamp_format)}", "strptime pattern; empty: ISO 8601"),
                _line('encoding = "utf-8"', "or latin-1, cp1252, …")]
    keys = [c.name for c in key]
    out += ["", f"[tables.{name}]".ljust(40) + f"# the table silver.{name}"]
    out.append((f"key = {_toml_list(keys)}" if keys else "key = []").ljust(40)
               + "# fields unique within a load (a landed file); [] for none")
    out.append("fields = [")
    for c in s.columns:
        parts = [f'name = "{c.name}"', f'type = "{c.type}"']
        if c in key or c is time:
            parts.append("required = true")
        if c.name != c.source:
            parts.append(f"column = {_toml(c.source)}")
        note = f"sample: {c.nulls} empty of {s.rows}" + (f", e.g. {c.example}" if c.example else "")
        out.append(f"  {{ {', '.join(parts)} }},".ljust(70) + f"# {note}")
    for skipped in s.skipped:
        out.append(f"  # {skipped}: nested values have no flat silver type; declare a string field from "
                   "it in your source or leave it out")
    out.append("]")
    out.append(f"# types: {', '.join(TYPE_NAMES)}; required = true rejects a record without it")
    out.append('# rules = [{ kind = "not_null", column = "..." }]   # quality rules checked after each run')
    return "\n".join(out) + "\n"


def _line(setting: str, comment: str) -> str:
    return setting.ljust(40) + "# " + comment


def _toml(value: str) -> str:
    return orjson.dumps(value).decode()


def _toml_list(values: list[str]) -> str:
    return "[" + ", ".join(_toml(v) for v in values) + "]"


def new_pipeline(name: str, sample_path: Path, *, fmt: str | None = None, time_field: str | None = None,
                 keys: tuple[str, ...] = ()) -> str:
    """The pipeline file text for ``sample_path`` (checked: it parses as a pipeline)."""
    sample = read_sample(sample_path, format_of(sample_path, fmt))
    if not sample.columns:
        raise UsageError(f"--sample {sample_path}: no columns found")
    time = choose_time(sample, time_field)
    key = []
    for k in keys:
        found = next((c for c in sample.columns if k in (c.name, c.source)), None)
        if found is None:
            raise UsageError(f"--key {k!r} is not a column of the sample; columns: "
                             f"{', '.join(c.source for c in sample.columns)}")
        key.append(found)
    text = render(name, sample, sample_path, time=time, key=key)
    parse(name, tomllib.loads(text), f"pipeline file for {name}")  # what we write must load
    return text
