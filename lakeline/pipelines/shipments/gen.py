"""Fake data for the ``shipments`` pipeline: shipments, tracking events and invoice lines.

Everything is vectorised: columns are drawn with numpy and JSON text is assembled with Arrow
string kernels over whole arrays, so millions of records take seconds, not minutes, and
:func:`write` streams them in batches with bounded memory.

Determinism: records are drawn in fixed chunks of :data:`CHUNK_SIZE`, each from its own
generator seeded with ``(seed, record type, chunk index)``. The output therefore depends only on
the seed, the record type, ``days`` and ``end`` -- not on ``batch_size`` -- and the first *n*
records of a larger run are exactly the records of a run of *n*.

Value domains::

    shipments        record_type, event_time, shipment_id, origin, destination, carrier, weight_kg
    tracking_events  record_type, event_time, shipment_id, status, city
    invoice_lines    record_type, event_time, invoice_id, sku, quantity, unit_price, line_total

    event_time   ISO-8601 UTC, second precision, "Z" suffix, uniform over [end - days, end)
    shipment_id  "shp_" + 12 lowercase hex        invoice_id  "inv_" + 10 lowercase hex
    origin       SZX HKG LAX ORD                  destination SEA JFK SFO DFW
    carrier      UPS DHL FEDEX                    status      CREATED IN_TRANSIT OUT_FOR_DELIVERY DELIVERED
    weight_kg    0.00-30.00 (2 decimals)          sku         SKU-001 SKU-002 SKU-003
    quantity     1-6                              unit_price  3.00-53.00 (2 decimals)
    line_total   round(quantity * unit_price, 2)
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any, Final, Literal, TypeAlias, cast

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from lakeline.errors import UsageError

__all__ = [
    "CARRIERS",
    "CHUNK_SIZE",
    "CITIES",
    "DEFAULT_END",
    "DESTINATIONS",
    "FIELDS",
    "ORIGINS",
    "RECORD_TYPES",
    "SKUS",
    "STATUSES",
    "Format",
    "generate",
    "schema",
    "write",
]

RECORD_TYPES: Final = ("shipments", "tracking_events", "invoice_lines")

FIELDS: Final[Mapping[str, tuple[str, ...]]] = {
    "shipments": (
        "record_type",
        "event_time",
        "shipment_id",
        "origin",
        "destination",
        "carrier",
        "weight_kg",
    ),
    "tracking_events": ("record_type", "event_time", "shipment_id", "status", "city"),
    "invoice_lines": (
        "record_type",
        "event_time",
        "invoice_id",
        "sku",
        "quantity",
        "unit_price",
        "line_total",
    ),
}

ORIGINS: Final = ("SZX", "HKG", "LAX", "ORD")
DESTINATIONS: Final = ("SEA", "JFK", "SFO", "DFW")
CARRIERS: Final = ("UPS", "DHL", "FEDEX")
STATUSES: Final = ("CREATED", "IN_TRANSIT", "OUT_FOR_DELIVERY", "DELIVERED")
CITIES: Final = (
    "Shenzhen",
    "Hong Kong",
    "Los Angeles",
    "Chicago",
    "Seattle",
    "New York",
    "San Francisco",
    "Dallas",
)
SKUS: Final = ("SKU-001", "SKU-002", "SKU-003")

#: The default end of the event-time window, fixed so output is reproducible from the seed alone.
DEFAULT_END: Final = datetime(2026, 1, 8, tzinfo=UTC)

#: Records per independently seeded chunk; batches are a whole number of chunks.
CHUNK_SIZE: Final = 8192
#: Upper bound on records per written batch (keeps one batch's text well under 2 GiB).
_MAX_BATCH: Final = 2_000_000

Format = Literal["jsonl", "json"]
_FORMATS: Final = ("jsonl", "json")

_FLOAT_FIELDS: Final = frozenset({"weight_kg", "unit_price", "line_total"})
_INT_FIELDS: Final = frozenset({"quantity"})

_U8 = npt.NDArray[np.uint8]
_Strings: TypeAlias = "pa.Array[Any]"
_I64 = npt.NDArray[np.int64]

_HEX: Final = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_DIGITS: Final = np.frombuffer(b"0123456789", dtype=np.uint8)
_SECONDS_PER_DAY: Final = 86_400


def schema(record_type: str) -> pa.Schema:
    """The Arrow schema of :func:`generate`'s table for *record_type*."""
    fields = _fields(record_type)

    def arrow_type(name: str) -> pa.DataType:
        if name in _FLOAT_FIELDS:
            return pa.float64()
        if name in _INT_FIELDS:
            return pa.int64()
        return pa.string()

    return pa.schema([pa.field(name, arrow_type(name), nullable=False) for name in fields])


def generate(
    record_type: str,
    count: int,
    *,
    seed: int = 0,
    days: int = 7,
    end: datetime | None = None,
) -> pa.Table:
    """Generate *count* records of *record_type* as an Arrow table (columns in field order)."""
    _fields(record_type)
    _check(count, seed, days)
    window = _Window(end, days)
    batches = [
        pa.RecordBatch.from_arrays(
            _typed_columns(record_type, _draw(record_type, seed, index, window), n, window),
            schema=schema(record_type),
        )
        for index, n in _chunks(count)
    ]
    return pa.Table.from_batches(batches, schema=schema(record_type))


def write(
    record_type: str,
    count: int,
    out: Path,
    *,
    fmt: Format = "jsonl",
    seed: int = 0,
    days: int = 7,
    end: datetime | None = None,
    batch_size: int = 500_000,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Write *count* records of *record_type* to *out*; return the number of records written.

    ``fmt="jsonl"``: one compact JSON object per line, keys in field order, each line ending in
    ``"\\n"`` (zero records: an empty file). ``fmt="json"``: one JSON array, ``[{...},{...}]``
    (zero records: ``[]``). Records are produced in batches of about *batch_size* (rounded up
    to whole chunks of :data:`CHUNK_SIZE`, at most 2,000,000) and written sequentially, so
    memory stays bounded. *progress*, if given, is called after each batch with the number of
    records written so far. The bytes written depend only on the record type, count, format,
    seed, days and end.
    """
    _fields(record_type)
    _check(count, seed, days)
    if fmt not in _FORMATS:
        raise UsageError(f"unknown format {fmt!r}; expected one of {', '.join(_FORMATS)}")
    if batch_size < 1:
        raise UsageError(f"batch_size must be at least 1, got {batch_size}")
    window = _Window(end, days)
    chunks_per_batch = max(1, -(-min(batch_size, _MAX_BATCH) // CHUNK_SIZE))
    array = fmt == "json"
    chunks = _chunks(count)
    written = 0
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("wb") as fh:
        if array:
            fh.write(b"[")
        for first in range(0, len(chunks), chunks_per_batch):
            group = chunks[first : first + chunks_per_batch]
            raw = _concat([_draw(record_type, seed, index, window) for index, _ in group])
            n = sum(size for _, size in group)
            lines = _json_text(
                record_type, raw, n, window, prefix="," if array else "", suffix="" if array else "\n"
            )
            data = _string_data(lines)
            if array and written == 0:
                data = data.slice(1)  # no comma before the first element
            fh.write(data)
            written += n
            if progress is not None:
                progress(written)
        if array:
            fh.write(b"]")
    return written


# --------------------------------------------------------------------------------------- checks


def _fields(record_type: str) -> tuple[str, ...]:
    try:
        return FIELDS[record_type]
    except (KeyError, TypeError):
        raise UsageError(
            f"unknown record type {record_type!r}; expected one of {', '.join(RECORD_TYPES)}"
        ) from None


def _check(count: int, seed: int, days: int) -> None:
    if count < 0:
        raise UsageError(f"count must be 0 or more, got {count}")
    if seed < 0:
        raise UsageError(f"seed must be 0 or more, got {seed}")
    if days < 1:
        raise UsageError(f"days must be at least 1, got {days}")


def _chunks(count: int) -> list[tuple[int, int]]:
    """``(chunk index, records used from it)`` for every chunk covering *count* records."""
    return [(i, min(CHUNK_SIZE, count - i * CHUNK_SIZE)) for i in range(-(-count // CHUNK_SIZE))]


# ----------------------------------------------------------------------------------------- draws


class _Window:
    """The event-time window ``[end - days, end)`` in epoch seconds, and its date strings."""

    def __init__(self, end: datetime | None, days: int) -> None:
        end = DEFAULT_END if end is None else end
        if end.tzinfo is None:
            end = end.replace(tzinfo=UTC)
        self.stop = math.floor(end.timestamp())
        self.span = days * _SECONDS_PER_DAY
        self.start = self.stop - self.span
        self.first_day = self.start // _SECONDS_PER_DAY
        last_day = (self.stop - 1) // _SECONDS_PER_DAY
        dates = [
            datetime.fromtimestamp(day * _SECONDS_PER_DAY, UTC).strftime("%Y-%m-%d").encode("ascii")
            for day in range(self.first_day, last_day + 1)
        ]
        # one row of 10 ASCII bytes per day in the window
        self.dates: _U8 = np.frombuffer(b"".join(dates), dtype=np.uint8).reshape(len(dates), 10)


_Raw = dict[str, np.ndarray]


def _draw(record_type: str, seed: int, chunk: int, window: _Window) -> _Raw:
    """Draw one full chunk of raw columns (numpy) for *record_type*.

    Always draws :data:`CHUNK_SIZE` records, so a chunk's values do not depend on how many of
    them are used. The draw order below is part of the output format: do not reorder it.
    """
    rng = np.random.default_rng([seed, RECORD_TYPES.index(record_type), chunk])
    n = CHUNK_SIZE
    raw: _Raw = {"event_time": window.start + rng.integers(0, window.span, n, dtype=np.int64)}
    if record_type == "shipments":
        raw["shipment_id"] = rng.integers(0, 16, (n, 12), dtype=np.uint8)
        raw["origin"] = rng.integers(0, len(ORIGINS), n, dtype=np.int64)
        raw["destination"] = rng.integers(0, len(DESTINATIONS), n, dtype=np.int64)
        raw["carrier"] = rng.integers(0, len(CARRIERS), n, dtype=np.int64)
        raw["weight_kg"] = rng.integers(0, 3001, n, dtype=np.int64)  # hundredths of a kilogram
    elif record_type == "tracking_events":
        raw["shipment_id"] = rng.integers(0, 16, (n, 12), dtype=np.uint8)
        raw["status"] = rng.integers(0, len(STATUSES), n, dtype=np.int64)
        raw["city"] = rng.integers(0, len(CITIES), n, dtype=np.int64)
    else:
        raw["invoice_id"] = rng.integers(0, 16, (n, 10), dtype=np.uint8)
        raw["sku"] = rng.integers(0, len(SKUS), n, dtype=np.int64)
        raw["quantity"] = rng.integers(1, 7, n, dtype=np.int64)
        raw["unit_price"] = rng.integers(300, 5301, n, dtype=np.int64)  # cents
        raw["line_total"] = raw["quantity"] * raw["unit_price"]  # cents, exact
    return raw


def _concat(raws: list[_Raw]) -> _Raw:
    if len(raws) == 1:
        return raws[0]
    return {key: np.concatenate([r[key] for r in raws]) for key in raws[0]}


# --------------------------------------------------------------------------------- conversions

_ENUMS: Final[Mapping[str, tuple[str, ...]]] = {
    "origin": ORIGINS,
    "destination": DESTINATIONS,
    "carrier": CARRIERS,
    "status": STATUSES,
    "city": CITIES,
    "sku": SKUS,
}
_ID_PREFIX: Final[Mapping[str, bytes]] = {"shipment_id": b"shp_", "invoice_id": b"inv_"}


def _fixed_width(rows: _U8) -> pa.StringArray:
    """A string array from a C-contiguous ``(n, width)`` matrix of ASCII bytes, zero-copy."""
    n, width = rows.shape
    offsets = np.arange(0, (n + 1) * width, width, dtype=np.int32)
    data = np.ascontiguousarray(rows)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets.data), pa.py_buffer(data.data))


def _timestamps(raw: _Raw, n: int, window: _Window) -> pa.StringArray:
    """``YYYY-MM-DDTHH:MM:SSZ`` for the first *n* event times."""
    epoch: _I64 = raw["event_time"][:n]
    day = epoch // _SECONDS_PER_DAY
    sod = epoch - day * _SECONDS_PER_DAY
    rows = np.empty((n, 20), dtype=np.uint8)
    rows[:, :10] = window.dates[day - window.first_day]
    rows[:, 10] = ord("T")
    rows[:, 13] = rows[:, 16] = ord(":")
    rows[:, 19] = ord("Z")
    for col, value in ((11, sod // 3600), (14, sod // 60 % 60), (17, sod % 60)):
        rows[:, col] = _DIGITS[value // 10]
        rows[:, col + 1] = _DIGITS[value % 10]
    return _fixed_width(rows)


def _ids(name: str, nibbles: _U8, n: int) -> pa.StringArray:
    prefix = _ID_PREFIX[name]
    rows = np.empty((n, len(prefix) + nibbles.shape[1]), dtype=np.uint8)
    rows[:, : len(prefix)] = np.frombuffer(prefix, dtype=np.uint8)
    rows[:, len(prefix) :] = _HEX[nibbles[:n]]
    return _fixed_width(rows)


def _enum(values: tuple[str, ...], index: _I64) -> _Strings:
    return _take(_string_table(values), index)


def _take(table: pa.StringArray, index: _I64) -> _Strings:
    return cast(_Strings, pc.take(table, cast(Any, pa.array(index, type=pa.int64()))))


@cache
def _string_table(values: tuple[str, ...]) -> pa.StringArray:
    return pa.array(values, type=pa.string())


@cache
def _cents_text(limit: int) -> pa.StringArray:
    """``repr(c / 100)`` for every ``c`` in ``[0, limit)``: the shortest text that parses back."""
    return pa.array([repr(c / 100) for c in range(limit)], type=pa.string())


def _text_column(name: str, raw: _Raw, n: int, window: _Window) -> _Strings:
    """The JSON text (without quotes) of column *name*."""
    if name == "event_time":
        return _timestamps(raw, n, window)
    if name in _ID_PREFIX:
        return _ids(name, raw[name], n)
    if name in _ENUMS:
        return _enum(_ENUMS[name], raw[name][:n])
    if name in _FLOAT_FIELDS:
        cents: _I64 = raw[name][:n]
        return _take(_cents_text(_cents_limit(name)), cents)
    if name in _INT_FIELDS:
        return pa.array(raw[name][:n], type=pa.int64()).cast(pa.string())
    raise AssertionError(f"no text for column {name!r}")  # pragma: no cover


def _cents_limit(name: str) -> int:
    return {"weight_kg": 3001, "unit_price": 5301, "line_total": 6 * 5300 + 1}[name]


def _typed_columns(record_type: str, raw: _Raw, n: int, window: _Window) -> list[pa.Array[Any]]:
    columns: list[pa.Array[Any]] = []
    for name in FIELDS[record_type]:
        if name == "record_type":
            columns.append(pa.repeat(record_type, n).cast(pa.string()))
        elif name in _FLOAT_FIELDS:
            columns.append(pa.array(raw[name][:n] / 100.0, type=pa.float64()))
        elif name in _INT_FIELDS:
            columns.append(pa.array(raw[name][:n], type=pa.int64()))
        else:
            columns.append(_text_column(name, raw, n, window))
    return columns


def _json_text(record_type: str, raw: _Raw, n: int, window: _Window, *, prefix: str, suffix: str) -> _Strings:
    """One compact JSON object per record, each wrapped in *prefix* ... *suffix*."""
    parts: list[str | _Strings] = []
    literal = prefix + "{"
    for name in FIELDS[record_type]:
        key = json.dumps(name) + ":"
        if name == "record_type":
            literal += key + json.dumps(record_type) + ","
            continue
        quoted = name not in _FLOAT_FIELDS and name not in _INT_FIELDS
        literal += key + ('"' if quoted else "")
        parts.append(literal)
        parts.append(_text_column(name, raw, n, window))
        literal = ('"' if quoted else "") + ","
    parts.append(literal[:-1] + "}" + suffix)
    join: Any = pc.binary_join_element_wise
    return cast(_Strings, join(*parts, ""))


def _string_data(array: _Strings) -> pa.Buffer:
    """The concatenated bytes of every value of a (non-null) string array, zero-copy."""
    offsets_buffer, data_buffer = array.buffers()[1:3]
    assert offsets_buffer is not None and data_buffer is not None
    offsets = np.frombuffer(memoryview(offsets_buffer), dtype=np.int32)
    start = int(offsets[array.offset])
    stop = int(offsets[array.offset + len(array)])
    return data_buffer.slice(start, stop - start)
