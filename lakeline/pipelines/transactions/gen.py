"""Fake data for the ``transactions`` batch pipeline (seed 000): a CSV of card transactions.

Header and value domains::

    TransactionID,CustomerID,TransactionAmount,Currency,TransactionTimestamp

    TransactionID         "TXN-" + 8 digits, sequential from TXN-00000001 (unique)
    CustomerID            "CUST-" + 6 digits, 000001-050000 (customers repeat)
    TransactionAmount     log-normal around 50.00, 0.01-99999.99, always 2 decimals
    Currency              one of CURRENCIES (ISO 4217), USD/EUR/GBP most frequent
    TransactionTimestamp  ISO-8601 UTC "YYYY-MM-DDTHH:MM:SSZ", uniform over [start, start + days)
                          (default 2024-01-01 + 90 days: January to March 2024)

Dirty rows: with ``dirty_rate`` R exactly ``floor(count * R)`` rows (never the first) carry
exactly one defect each; the i-th dirty row (in file order) gets defect ``DEFECTS[i % 5]``:

    NULL_VALUE_ERROR   one field empty (the field cycles through the five columns)
    TYPE_ERROR         a non-numeric amount ("N/A", "twelve", "12.3.4", "1O.00")
    CURRENCY_ERROR     an unknown currency code ("XXX", "ABC", "ZZZ")
    TIMESTAMP_ERROR    an unparseable timestamp ("not-a-date", "2024-13-45T25:00:00Z", ...)
    DUPLICATE_FAILURE  the TransactionID of the nearest clean row before it

so the validation of :mod:`lakeline.pipelines.transactions.job` rejects exactly
:func:`defect_counts` rows per reason code. Everything is vectorised (numpy draws, Arrow string
kernels); the bytes depend only on ``count``, ``seed``, ``dirty_rate``, ``start`` and ``days``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, TypeAlias, cast

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from lakeline.errors import UsageError

__all__ = [
    "CURRENCIES",
    "DEFAULT_DAYS",
    "DEFAULT_START",
    "DEFECTS",
    "HEADER",
    "defect_counts",
    "generate",
    "write",
]

HEADER: Final = ("TransactionID", "CustomerID", "TransactionAmount", "Currency", "TransactionTimestamp")
#: Currencies drawn for clean rows, with their weights.
CURRENCIES: Final = ("USD", "EUR", "GBP", "JPY", "CHF", "CAD", "AUD", "SEK", "NOK", "DKK")
_CURRENCY_WEIGHTS: Final = (0.35, 0.25, 0.15, 0.06, 0.05, 0.04, 0.04, 0.02, 0.02, 0.02)
#: The defect of the i-th dirty row is ``DEFECTS[i % len(DEFECTS)]`` (named by the reason code
#: validation gives it).
DEFECTS: Final = ("NULL_VALUE_ERROR", "TYPE_ERROR", "CURRENCY_ERROR", "TIMESTAMP_ERROR", "DUPLICATE_FAILURE")
DEFAULT_START: Final = datetime(2024, 1, 1, tzinfo=UTC)
DEFAULT_DAYS: Final = 90
CUSTOMERS: Final = 50_000
#: Rows per independently seeded batch (bounds memory). Values are drawn per batch, so this
#: constant is part of the output format; which rows are dirty is planned for the whole file.
BATCH: Final = 500_000

_BAD_AMOUNTS: Final = ("N/A", "twelve", "12.3.4", "1O.00")
_BAD_CURRENCIES: Final = ("XXX", "ABC", "ZZZ")
_BAD_TIMESTAMPS: Final = ("not-a-date", "2024-13-45T25:00:00Z", "yesterday", "2024/02/30 10:00")

_I64 = npt.NDArray[np.int64]
_Strings: TypeAlias = "pa.Array[Any]"


def defect_counts(count: int, dirty_rate: float) -> dict[str, int]:
    """How many rows of :func:`write` carry each defect (reason code → rows)."""
    dirty = _dirty_total(count, dirty_rate)
    k = len(DEFECTS)
    return {name: dirty // k + (1 if i < dirty % k else 0) for i, name in enumerate(DEFECTS)}


def generate(
    count: int, *, seed: int = 0, dirty_rate: float = 0.0, start: datetime | None = None,
    days: int = DEFAULT_DAYS,
) -> pa.Table:
    """The rows of :func:`write` as an Arrow table of strings (columns :data:`HEADER`)."""
    plan = _Plan(count, seed, dirty_rate, start, days)
    batches = [plan.batch(first, min(BATCH, count - first)) for first in range(0, count, BATCH)]
    schema = pa.schema([pa.field(name, pa.string()) for name in HEADER])
    return pa.Table.from_batches(
        [pa.RecordBatch.from_arrays(b, schema=schema) for b in batches], schema=schema
    )


def write(
    count: int, out: Path, *, seed: int = 0, dirty_rate: float = 0.0, start: datetime | None = None,
    days: int = DEFAULT_DAYS, first_id: int = 1,
) -> int:
    """Write ``count`` rows (plus the header line) as CSV to ``out``; return ``count``.

    TransactionIDs run from ``first_id`` (give each batch its own range).

    Lines end in ``"\\n"``; no field needs quoting. Same arguments, same bytes.
    """
    plan = _Plan(count, seed, dirty_rate, start, days, first_id)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("wb") as fh:
        fh.write((",".join(HEADER) + "\n").encode("ascii"))
        for first in range(0, count, BATCH):
            cols = plan.batch(first, min(BATCH, count - first))
            join: Any = pc.binary_join_element_wise
            lines = join(*cols, ",")
            text = cast(_Strings, join(lines, "", "\n"))  # line + "\n" + ""
            fh.write(_string_data(text))
    return count


# ------------------------------------------------------------------------------------ internals


def _dirty_total(count: int, dirty_rate: float) -> int:
    if count < 0:
        raise UsageError(f"count must be 0 or more, got {count}")
    if not 0.0 <= dirty_rate <= 1.0:
        raise UsageError(f"dirty_rate must be between 0 and 1, got {dirty_rate}")
    return min(int(count * dirty_rate), max(count - 1, 0))


class _Plan:
    """Which rows are dirty (drawn once for the whole file) and how each batch is drawn."""

    def __init__(
        self, count: int, seed: int, dirty_rate: float, start: datetime | None, days: int,
        first_id: int = 1,
    ) -> None:
        if first_id < 1 or first_id + count > 10**8:
            raise UsageError(f"first_id must be >= 1 and leave room for {count} 8-digit ids")
        self.first_id = first_id
        if seed < 0:
            raise UsageError(f"seed must be 0 or more, got {seed}")
        if days < 1:
            raise UsageError(f"days must be at least 1, got {days}")
        dirty = _dirty_total(count, dirty_rate)
        begin = DEFAULT_START if start is None else start
        if begin.tzinfo is None:
            begin = begin.replace(tzinfo=UTC)
        self.seed = seed
        self.start = int(begin.timestamp())
        self.span = days * 86_400
        rng = np.random.default_rng([seed, 1])
        # dirty rows: never row 0, so every duplicate has a clean row before it
        rows = np.sort(rng.choice(np.arange(1, max(count, 1), dtype=np.int64), dirty, replace=False))
        self.kind = np.full(count, -1, dtype=np.int64)
        self.kind[rows] = np.arange(dirty, dtype=np.int64) % len(DEFECTS)
        self.variant = np.zeros(count, dtype=np.int64)
        self.variant[rows] = np.arange(dirty, dtype=np.int64) // len(DEFECTS)
        # the row whose id a duplicate copies: the nearest clean row before it
        index = np.arange(count, dtype=np.int64)
        self.source = np.maximum.accumulate(np.where(self.kind == -1, index, 0)) if count else index

    def batch(self, first: int, n: int) -> list[_Strings]:
        """The five string columns of rows ``[first, first + n)``."""
        rng = np.random.default_rng([self.seed, 0, first // BATCH])
        stop = first + n
        kind, variant = self.kind[first:stop], self.variant[first:stop]
        numbers = np.arange(first, stop, dtype=np.int64) + self.first_id
        dup = kind == DEFECTS.index("DUPLICATE_FAILURE")
        numbers[dup] = self.source[first:stop][dup] + self.first_id
        txn = _prefixed("TXN-", numbers, 8)
        cust = _prefixed("CUST-", rng.integers(1, CUSTOMERS + 1, n, dtype=np.int64), 6)
        cents = np.clip(np.rint(rng.lognormal(np.log(5000.0), 1.0, n)), 1, 9_999_999).astype(np.int64)
        amount = _money(cents)
        cur_idx = rng.choice(len(CURRENCIES), n, p=np.array(_CURRENCY_WEIGHTS) / sum(_CURRENCY_WEIGHTS))
        currency = _take(CURRENCIES, cur_idx.astype(np.int64))
        secs = self.start + rng.integers(0, self.span, n, dtype=np.int64)
        stamp = cast(_Strings, pc.strftime(pa.array(secs, pa.timestamp("s")), format="%Y-%m-%dT%H:%M:%SZ"))
        cols = [txn, cust, amount, currency, stamp]
        null = kind == DEFECTS.index("NULL_VALUE_ERROR")
        for field in range(len(HEADER)):  # the emptied field cycles through the columns
            cols[field] = _replace(cols[field], null & (variant % len(HEADER) == field), ("",), variant)
        cols[2] = _replace(cols[2], kind == DEFECTS.index("TYPE_ERROR"), _BAD_AMOUNTS, variant)
        cols[3] = _replace(cols[3], kind == DEFECTS.index("CURRENCY_ERROR"), _BAD_CURRENCIES, variant)
        cols[4] = _replace(cols[4], kind == DEFECTS.index("TIMESTAMP_ERROR"), _BAD_TIMESTAMPS, variant)
        return cols


def _prefixed(prefix: str, numbers: _I64, width: int) -> _Strings:
    digits = pc.utf8_lpad(pa.array(numbers, pa.int64()).cast(pa.string()), width=width, padding="0")
    join: Any = pc.binary_join_element_wise
    return cast(_Strings, join(prefix, digits, ""))


def _money(cents: _I64) -> _Strings:
    units = pa.array(cents // 100, pa.int64()).cast(pa.string())
    frac = pc.utf8_lpad(pa.array(cents % 100, pa.int64()).cast(pa.string()), width=2, padding="0")
    join: Any = pc.binary_join_element_wise
    return cast(_Strings, join(units, frac, "."))


def _take(values: tuple[str, ...], index: _I64) -> _Strings:
    return cast(_Strings, pc.take(pa.array(values, pa.string()), pa.array(index, pa.int64())))


def _replace(col: _Strings, mask: npt.NDArray[np.bool_], values: tuple[str, ...], variant: _I64) -> _Strings:
    """``col`` with the rows of ``mask`` replaced by ``values[variant % len(values)]``."""
    if not mask.any():
        return col
    bad = _take(values, variant % len(values))
    return cast(_Strings, pc.if_else(pa.array(mask), bad, col))


def _string_data(array: _Strings) -> pa.Buffer:
    """The concatenated bytes of a non-null string array, zero-copy."""
    offsets_buffer, data_buffer = array.buffers()[1:3]
    assert offsets_buffer is not None and data_buffer is not None
    offsets = np.frombuffer(memoryview(offsets_buffer), dtype=np.int32)
    begin = int(offsets[array.offset])
    end = int(offsets[array.offset + len(array)])
    return data_buffer.slice(begin, end - begin)
