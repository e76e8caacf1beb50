"""The retail transform of one orders file, in DuckDB (no per-row Python).

1. The orders CSV is read with every column as text; column names are trimmed and
   lower-cased. Each record keeps its CSV line number (the header is line 1; a quoted field
   may span lines, blank lines are not records), byte offset and raw text, computed with numpy
   over the whole file.
2. Typing: ``order_date`` ``dd/MM/yyyy`` → DATE, ``unit_price`` with a decimal comma
   (``"147,43"``) → DOUBLE, ids → BIGINT, ``qty`` → INT (a value that does not cast is NULL).
3. Checks (fail fast): no data rows; an ``order_date`` that does not parse
   (``TIMESTAMP_ERROR``); a NULL ``order_id`` / ``customer_id`` / ``product_id``
   (``NULL_VALUE_ERROR``). With ``on_violation="fail"`` the first violation raises
   :class:`~lakeline.errors.DataError` naming the file, the line and the reason; with
   ``"quarantine"`` violating rows become rejects (:func:`rejects_schema`, pipeline ``retail``)
   and the other rows load.
4. Enrichment: left join the customers file (``region``) and the products file
   (``category``) — one row per id, the last in its file wins, so the join never multiplies
   orders; ``sales_amount = qty * unit_price``.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal

import duckdb
import numpy as np
import numpy.typing as npt
import pyarrow as pa

from lakeline import reasons
from lakeline.errors import DataError, UsageError
from lakeline.stages.rejects import rejects_schema

__all__ = [
    "ORDERS_SCHEMA",
    "ORDER_COLUMNS",
    "PIPELINE",
    "OnViolation",
    "TransformResult",
    "csv_records",
    "transform_orders",
]

PIPELINE: Final = "retail"
OnViolation = Literal["fail", "quarantine"]
_POLICIES: Final = ("fail", "quarantine")

ORDER_COLUMNS: Final = ("order_id", "order_date", "customer_id", "product_id", "qty", "unit_price",
                        "channel")
_FIELDS: list[pa.Field[Any]] = [
    pa.field("order_id", pa.int64()), pa.field("order_date", pa.date32()),
    pa.field("customer_id", pa.int64()), pa.field("product_id", pa.int64()),
    pa.field("qty", pa.int32()), pa.field("unit_price", pa.float64()),
    pa.field("channel", pa.string()), pa.field("region", pa.string()),
    pa.field("category", pa.string()), pa.field("sales_amount", pa.float64()),
]
ORDERS_SCHEMA: Final = pa.schema(_FIELDS)
_MAX_RAW: Final = 1000

_I64 = npt.NDArray[np.int64]


@dataclass
class TransformResult:
    """The silver rows of one orders file (:data:`ORDERS_SCHEMA`) and its rejects."""

    table: pa.Table
    rejects: pa.Table
    input_rows: int

    @property
    def rows(self) -> int:
        """Rows that load."""
        return int(self.table.num_rows)


def csv_records(data: bytes) -> tuple[_I64, _I64, _I64]:
    """Line number, start and end byte offset of every non-blank CSV record of ``data``
    (header included), vectorised: a newline ends a record unless it is inside quotes."""
    buf = np.frombuffer(data, dtype=np.uint8)
    newlines = np.flatnonzero(buf == 10)
    quotes_before = np.cumsum(buf == 34, dtype=np.int64)
    inside = (quotes_before[newlines] % 2 == 1) if newlines.size else np.zeros(0, dtype=bool)
    ends_nl = newlines[~inside]
    starts = np.concatenate(([0], ends_nl + 1)).astype(np.int64)
    ends = np.concatenate((ends_nl, [len(buf)])).astype(np.int64)
    # a record's line = 1 + newlines before its start
    lines = (np.searchsorted(newlines, starts, side="left") + 1).astype(np.int64)
    # strip a trailing CR; drop blank records (DuckDB skips them)
    cr = (ends > starts) & (buf[np.maximum(ends - 1, 0)] == 13) if len(buf) else np.zeros(0, bool)
    ends = ends - cr.astype(np.int64)
    keep = ends > starts
    return lines[keep], starts[keep], ends[keep]


def _read_csv(con: duckdb.DuckDBPyConnection, data: bytes, key: str, work: Path, name: str,
              required: tuple[str, ...]) -> pa.Table:
    """``data`` as an all-text Arrow table with normalised column names, plus ``_line``,
    ``_offset`` and ``_raw`` of each record in file order."""
    bom = 3 if data.startswith(b"\xef\xbb\xbf") else 0
    body = data[bom:]
    lines, starts, _ = csv_records(body)
    if len(lines) == 0:
        raise DataError(f"{key} line 1: empty file, no header ({reasons.SCHEMA_ERROR})")
    path = work / f"{name}.csv"
    path.write_bytes(body)
    try:
        table = con.sql(
            "SELECT * FROM read_csv($p, header=true, all_varchar=true, delim=',', quote='\"', "
            "escape='\"')", params={"p": str(path)}).to_arrow_table()
    except duckdb.Error as exc:
        raise DataError(f"{key}: not a readable CSV file ({exc})") from None
    names = [c.strip().lower() for c in table.column_names]
    if len(set(names)) != len(names):
        raise DataError(f"{key} line {lines[0]}: duplicate column names {names}")
    missing = [c for c in required if c not in names]
    if missing:
        raise DataError(f"{key} line {lines[0]}: missing required column(s): {', '.join(missing)}")
    table = table.rename_columns(names)
    n = table.num_rows
    if n != len(lines) - 1:
        raise DataError(f"{key}: {n} CSV rows but {len(lines) - 1} records (malformed quoting?)")
    offsets = np.concatenate((starts[1:], [len(body)])).astype(np.int64)
    raw = pa.LargeStringArray.from_buffers(
        n, pa.py_buffer(offsets.tobytes()), pa.py_buffer(body)) if n else pa.array([], pa.large_string())
    out: pa.Table = (table.append_column("_line", pa.array(lines[1:], pa.int64()))
            .append_column("_offset", pa.array(starts[1:] + bom, pa.int64()))
            .append_column("_raw", raw))
    return out


def transform_orders(
    orders: bytes, *, key: str, customers: bytes | None = None, products: bytes | None = None,
    on_violation: OnViolation = "fail", bucket: str = "", etag: str = "",
    customers_key: str = "customers.csv", products_key: str = "products.csv",
    now: datetime | None = None,
) -> TransformResult:
    """Type, check and enrich one orders file (see the module docstring)."""
    if on_violation not in _POLICIES:
        raise UsageError(f"on_violation must be one of {', '.join(_POLICIES)}, got {on_violation!r}")
    at = (datetime.now(UTC) if now is None else now).astimezone(UTC)
    con = duckdb.connect()
    con.execute("SET TimeZone='UTC'")
    con.execute("SET preserve_insertion_order=true")
    try:
        with tempfile.TemporaryDirectory(prefix="retail-") as tmp:
            work = Path(tmp)
            con.register("orders_raw", _read_csv(con, orders, key, work, "orders", ORDER_COLUMNS))
            con.register("customers_raw", _lookup(con, customers, customers_key, work, "customer_id",
                                                  "region"))
            con.register("products_raw", _lookup(con, products, products_key, work, "product_id",
                                                 "category"))
            return _transform(con, key, on_violation, bucket, etag, at)
    finally:
        con.close()


def _lookup(con: duckdb.DuckDBPyConnection, data: bytes | None, key: str, work: Path, id_col: str,
            value_col: str) -> pa.Table:
    if data is None:
        return pa.table({id_col: pa.array([], pa.string()), value_col: pa.array([], pa.string()),
                         "_line": pa.array([], pa.int64())})
    table = _read_csv(con, data, key, work, id_col, (id_col, value_col))
    return table.select([id_col, value_col, "_line"])


_TYPED_SQL: Final = """
CREATE OR REPLACE TEMP TABLE typed AS
SELECT
    TRY_CAST(trim(order_id) AS BIGINT) AS order_id,
    CAST(try_strptime(trim(order_date), '%d/%m/%Y') AS DATE) AS order_date,
    TRY_CAST(trim(customer_id) AS BIGINT) AS customer_id,
    TRY_CAST(trim(product_id) AS BIGINT) AS product_id,
    TRY_CAST(trim(qty) AS INTEGER) AS qty,
    TRY_CAST(replace(trim(unit_price), ',', '.') AS DOUBLE) AS unit_price,
    channel,
    order_date AS order_date_raw, order_id AS order_id_raw, customer_id AS customer_id_raw,
    product_id AS product_id_raw,
    _line, _offset, _raw
FROM orders_raw
"""

_CHECKED_SQL: Final = f"""
CREATE OR REPLACE TEMP TABLE checked AS
SELECT *,
    CASE
        WHEN order_date IS NULL THEN '{reasons.TIMESTAMP_ERROR}'
        WHEN order_id IS NULL OR customer_id IS NULL OR product_id IS NULL
            THEN '{reasons.NULL_VALUE_ERROR}'
    END AS reason,
    CASE
        WHEN order_date IS NULL THEN
            'order_date ' || coalesce('''' || order_date_raw || '''', 'NULL')
            || ' does not parse as dd/MM/yyyy'
        WHEN order_id IS NULL THEN
            'order_id is null (' || coalesce('''' || order_id_raw || '''', 'missing') || ')'
        WHEN customer_id IS NULL THEN
            'customer_id is null (' || coalesce('''' || customer_id_raw || '''', 'missing') || ')'
        WHEN product_id IS NULL THEN
            'product_id is null (' || coalesce('''' || product_id_raw || '''', 'missing') || ')'
    END AS message
FROM typed
"""

_SILVER_SQL: Final = """
WITH c AS (
    SELECT TRY_CAST(trim(customer_id) AS BIGINT) AS customer_id, arg_max(region, _line) AS region
    FROM customers_raw WHERE TRY_CAST(trim(customer_id) AS BIGINT) IS NOT NULL GROUP BY 1
), p AS (
    SELECT TRY_CAST(trim(product_id) AS BIGINT) AS product_id, arg_max(category, _line) AS category
    FROM products_raw WHERE TRY_CAST(trim(product_id) AS BIGINT) IS NOT NULL GROUP BY 1
)
SELECT o.order_id, o.order_date, o.customer_id, o.product_id, o.qty, o.unit_price, o.channel,
       c.region, p.category, CAST(o.qty AS DOUBLE) * o.unit_price AS sales_amount
FROM checked AS o
LEFT JOIN c ON c.customer_id = o.customer_id
LEFT JOIN p ON p.product_id = o.product_id
WHERE o.reason IS NULL
ORDER BY o._line
"""


def _transform(con: duckdb.DuckDBPyConnection, key: str, on_violation: str, bucket: str, etag: str,
               at: datetime) -> TransformResult:
    con.execute(_TYPED_SQL)
    con.execute(_CHECKED_SQL)
    total = _scalar(con, "SELECT count(*) FROM checked")
    if total == 0:
        message = "no data rows (zero rows read)"
        if on_violation == "fail":
            raise DataError(f"{key} line 1: {message} ({reasons.SCHEMA_ERROR})", reasons.SCHEMA_ERROR)
        reject = pa.Table.from_pylist([{
            "pipeline": PIPELINE, "bucket": bucket, "key": key, "etag": etag, "chunk": 0, "line_no": 1,
            "byte_offset": 0, "record_type": "orders", "reason_code": reasons.SCHEMA_ERROR,
            "message": message, "raw": None, "rejected_at": at}], schema=rejects_schema())
        return TransformResult(ORDERS_SCHEMA.empty_table(), reject, 0)
    bad = _scalar(con, "SELECT count(*) FROM checked WHERE reason IS NOT NULL")
    if bad and on_violation == "fail":
        line, reason, message = con.execute(
            "SELECT _line, reason, message FROM checked WHERE reason IS NOT NULL ORDER BY _line LIMIT 1"
        ).fetchall()[0]
        more = f"; {bad - 1} more violating row(s)" if bad > 1 else ""
        raise DataError(f"{key} line {line}: {reason}: {message}{more}", str(reason))
    rejects = con.sql(
        "SELECT $pipeline AS pipeline, $bucket AS bucket, $key AS key, $etag AS etag, "
        "CAST(0 AS BIGINT) AS chunk, _line AS line_no, _offset AS byte_offset, "
        "'orders' AS record_type, reason AS reason_code, message, "
        f"left(rtrim(CAST(_raw AS VARCHAR), chr(13) || chr(10)), {_MAX_RAW}) AS raw, "
        "CAST($at AS TIMESTAMPTZ) AS rejected_at "
        "FROM checked WHERE reason IS NOT NULL ORDER BY _line",
        params={"pipeline": PIPELINE, "bucket": bucket, "key": key, "etag": etag, "at": at.isoformat()},
    ).to_arrow_table().cast(rejects_schema())
    table = con.sql(_SILVER_SQL).to_arrow_table().cast(ORDERS_SCHEMA)
    return TransformResult(table, rejects, total)


def _scalar(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    rows: Any = con.execute(sql).fetchall()
    return int(rows[0][0])
