"""Validation of transaction CSV files in one DuckDB pass (no Python per row).

Each file's bytes become Arrow strings (:func:`lakeline.stages.lines.chunk_table`, zero
copy); DuckDB splits them into lines, so every row keeps its exact line number and raw text.
A file holding a double quote is cut into records by RFC 4180 instead
(:func:`records_table`, numpy over the bytes: a quoted field may span lines, and a record
whose quotes break the rules is a SCHEMA_ERROR naming its line, the rows after it still load).
The header is the first non-blank line; columns are found by name (extra columns are
ignored, order is free). A record is split on commas — with a regular expression when it
contains a double quote, so ``"a,b"`` and ``""`` escapes work. Every field is text until it is
checked; each rejected row carries exactly one reason, checked in this order:

==================  ==========================================================================
SCHEMA_ERROR        the row has more fields than the header (a whole file without a required
                    column is one file-level SCHEMA_ERROR, decided before this pass)
NULL_VALUE_ERROR    a required field is empty, blank or absent (a short row)
TYPE_ERROR          TransactionAmount is not a plain decimal with at most 2 fractional digits
                    (``12``, ``-3.5``, ``1200.00``; not ``1e3``, ``12.345``, ``N/A``)
CURRENCY_ERROR      Currency is not in the allowlist (exact, case-sensitive ISO-4217 codes)
TIMESTAMP_ERROR     TransactionTimestamp is not an ISO-8601 date/time (naive = UTC)
DUPLICATE_FAILURE   an otherwise valid row whose TransactionID was loaded by an earlier
                    complete run, or appeared on an earlier valid row of this run (the first
                    occurrence, in file order then line order, is kept)
MAX_ATTEMPTS        the row's (TransactionID, reason) was rejected in ``max_attempts - 1``
                    earlier complete runs: it is *condemned*, not quarantined
==================  ==========================================================================

Valid rows are typed: TransactionID, CustomerID, Currency ``VARCHAR``; TransactionAmount
``DECIMAL(18,2)`` (exact, no float rounding); TransactionTimestamp ``TIMESTAMPTZ`` (UTC).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from lakeline import reasons
from lakeline.sqltext import lit
from lakeline.stages import csvscan
from lakeline.stages.spec import CsvOptions
from lakeline.stages.textinput import UnreadableInput

REQUIRED = ("TransactionID", "CustomerID", "TransactionAmount", "Currency", "TransactionTimestamp")
_FIELD_VARS = ("txn_id", "cust", "amt", "cur", "ts")
#: The default currency allowlist: the ISO-4217 codes of the world's most traded currencies.
DEFAULT_CURRENCIES = (
    "USD", "EUR", "GBP", "JPY", "CHF", "CAD", "AUD", "NZD", "SEK", "NOK", "DKK", "PLN", "CZK",
    "HUF", "RON", "BGN", "ISK", "TRY", "CNY", "HKD", "SGD", "KRW", "INR", "IDR", "MYR", "THB",
    "PHP", "TWD", "ZAR", "BRL", "MXN", "ARS", "CLP", "COP", "PEN", "ILS", "AED", "SAR", "QAR",
    "KWD", "EGP", "NGN", "KES", "MAD", "UAH",
)
AMOUNT_PATTERN = r"[+-]?[0-9]{1,16}(\.[0-9]{1,2})?"
MAX_RAW = 65536
BOM = b"\xef\xbb\xbf"
#: the CSV dialect of transaction files: RFC 4180 (comma, doubled double quotes)
CSV = CsvOptions()
#: the ``records`` relation of :func:`classify` (files cut by :func:`records_table`)
_RECORDS_FIELDS: list[pa.Field[Any]] = [pa.field("file_no", pa.int64()), pa.field("idx", pa.int64()),
                                         pa.field("line", pa.large_string())]
RECORDS_SCHEMA = pa.schema(_RECORDS_FIELDS)


@dataclass(frozen=True)
class Header:
    """The header of one file: its line number and each required column's 1-based position."""

    line_no: int
    columns: int
    positions: dict[str, int]
    missing: tuple[str, ...]


def read_header(data: bytes) -> Header:
    """Find the header (first non-blank line) of CSV ``data`` (BOM already removed).

    Column names are matched after trimming, exactly first, then case-insensitively. A header
    line the CSV reader refuses raises :class:`~lakeline.stages.textinput.UnreadableInput`.
    """
    pos, line_no = 0, 0
    while pos <= len(data):
        end = data.find(b"\n", pos)
        end = len(data) if end < 0 else end
        line_no += 1
        text = data[pos:end].decode("utf-8", "replace").strip()
        if text:
            try:
                names = [n.strip() for n in next(csv.reader([text]))]
            except csv.Error as exc:  # a header no CSV reader takes: the file is unreadable
                raise UnreadableInput(f"line {line_no}: the header is not a CSV line ({_csv_why(exc)})",
                                      reasons.SCHEMA_ERROR) from exc
            positions: dict[str, int] = {}
            for col in REQUIRED:
                match = [i for i, n in enumerate(names) if n == col] or [
                    i for i, n in enumerate(names) if n.lower() == col.lower()]
                if match:
                    positions[col] = match[0] + 1
            missing = tuple(c for c in REQUIRED if c not in positions)
            return Header(line_no, len(names), positions, missing)
        pos = end + 1
    return Header(line_no, 0, {}, REQUIRED)


def records_table(file_no: int, data: bytes) -> tuple[pa.Table, list[tuple[int, str, str]]]:
    """Every record of the CSV text ``data`` (valid UTF-8) as :data:`RECORDS_SCHEMA` rows, each
    numbered by its first line; a quoted line end stays inside its record. A record whose quotes
    break RFC 4180 is blanked (it is its first line only) and returned as ``(line, why)`` for a
    SCHEMA_ERROR. The text is not copied: each row is a view up to the next record's start."""
    recs = csvscan.records(data, CSV)
    bad: list[tuple[int, str, str]] = []
    if recs.bad:  # rare: a few records, blanked one by one
        out = bytearray(data)
        for i, why in sorted(recs.bad.items()):
            a, b = int(recs.start[i]), int(recs.end[i])
            bad.append((int(recs.line[i]), f"line {int(recs.line[i])}: {why}",
                        data[a:b].decode("utf-8", "replace")))
            out[a:b] = b" " * (b - a)
        data = bytes(out)
    offsets = np.append(recs.start, len(data)).astype(np.int64)
    text = pa.LargeStringArray.from_buffers(len(recs.start), pa.py_buffer(offsets.tobytes()),
                                            pa.py_buffer(data))
    table = pa.table({"file_no": pa.array(np.full(len(recs.start), file_no, np.int64)),
                      "idx": pa.array(recs.line), "line": text}, schema=RECORDS_SCHEMA)
    return table, bad


def _csv_why(exc: csv.Error) -> str:
    """The csv module's complaint in the words of the file (its own wording names Python APIs)."""
    text = str(exc)
    if "new-line character" in text:
        return "a carriage return inside the line"
    if "field larger than field limit" in text:
        return f"a field longer than {csv.field_size_limit()} characters"
    return text


_UNQUOTE = (
    "CREATE OR REPLACE TEMP MACRO lk_unq(x) AS CASE WHEN len(x) >= 2 AND starts_with(x, '\"') "
    "AND ends_with(x, '\"') THEN replace(x[2:-2], '\"\"', '\"') ELSE x END"
)


def classify(
    con: duckdb.DuckDBPyConnection, *, currencies: tuple[str, ...], max_attempts: int
) -> None:
    """Create temp table ``classified`` from the registered relations.

    Inputs: ``chunks(file_no, content, base)`` (file text cut at line ends, ``base`` = lines
    before each piece), ``records(file_no, idx, line)`` (the files cut into records by
    :func:`records_table` instead), ``files(file_no, header_line, ncols, p_txn_id, p_cust, p_amt, p_cur,
    p_ts, bad)`` (``bad`` true for a file missing a required column: all its rows are
    SCHEMA_ERROR), ``objects(file_no, key, ...)`` (the landing key of each file),
    ``seen(TransactionID, run_id)`` (ids of earlier complete runs) and
    ``prior(TransactionID, reason_code, n)`` (earlier runs that rejected that pair).

    Output columns: ``file_no, idx`` (line number), ``line``, ``reason`` (NULL = valid),
    ``first_reason`` (the reason before MAX_ATTEMPTS), ``message``, the trimmed text fields
    and the typed ``amount`` / ``ts_utc``.
    """
    con.execute(_UNQUOTE)
    allow = "[" + ", ".join(lit(c) for c in currencies) + "]"
    fields = ",\n    ".join(
        f"nullif(trim(lk_unq(trim(f[p_{v}]))), '') AS {v}" for v in _FIELD_VARS
    )
    null_cols = " || ".join(
        f"CASE WHEN {v} IS NULL THEN '{name}, ' ELSE '' END"
        for v, name in zip(_FIELD_VARS, REQUIRED, strict=True)
    )
    con.execute(f"""
CREATE OR REPLACE TEMP TABLE classified AS
WITH src AS (SELECT file_no, base, string_split(content, E'\\n') AS s FROM chunks),
lines AS (
  SELECT file_no, base + unnest(range(1, len(s) + 1)) AS idx, unnest(s) AS line FROM src
  UNION ALL
  SELECT file_no, idx, rtrim(line, E'\\n') AS line FROM records
),
split AS (
  SELECT l.file_no, l.idx, rtrim(l.line, E'\\r') AS line, f.* EXCLUDE (file_no),
    CASE WHEN contains(l.line, '"')
      THEN regexp_extract_all(',' || rtrim(l.line, E'\\r'), ',("(?:[^"]|"")*"|[^,]*)', 1)
      ELSE string_split(rtrim(l.line, E'\\r'), ',') END AS f
  FROM lines AS l JOIN files AS f USING (file_no)
  WHERE l.idx > f.header_line AND trim(l.line, E' \\t\\r') <> ''
),
fields AS (
  SELECT file_no, idx, line, bad, len(f) AS nf, ncols,
    {fields}
  FROM split
),
checked AS (
  SELECT *,
    CASE
      WHEN bad THEN '{reasons.SCHEMA_ERROR}'
      WHEN nf > ncols THEN '{reasons.SCHEMA_ERROR}'
      WHEN txn_id IS NULL OR cust IS NULL OR amt IS NULL OR cur IS NULL OR ts IS NULL
        THEN '{reasons.NULL_VALUE_ERROR}'
      WHEN NOT regexp_full_match(amt, '{AMOUNT_PATTERN}') THEN '{reasons.TYPE_ERROR}'
      WHEN NOT list_contains({allow}, cur) THEN '{reasons.CURRENCY_ERROR}'
      WHEN NOT regexp_matches(ts, '^[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}')
        OR NOT coalesce(isfinite(TRY_CAST(ts AS TIMESTAMPTZ)), false) THEN '{reasons.TIMESTAMP_ERROR}'
    END AS reason0
  FROM fields
),
ranked AS (
  SELECT c.*, s.run_id AS seen_in,
    CASE WHEN reason0 IS NULL THEN
      first_value(struct_pack(file_no := c.file_no, idx := c.idx))
        OVER (PARTITION BY c.txn_id, reason0 IS NULL ORDER BY c.file_no, c.idx) END AS first_seen
  FROM checked AS c LEFT JOIN seen AS s ON c.reason0 IS NULL AND s.TransactionID = c.txn_id
),
deduped AS (
  SELECT *, coalesce(reason0, CASE WHEN seen_in IS NOT NULL
      OR first_seen.file_no <> file_no OR first_seen.idx <> idx THEN '{reasons.DUPLICATE_FAILURE}' END
    ) AS first_reason
  FROM ranked
)
SELECT d.file_no, d.idx, d.line, d.txn_id, d.cust, d.amt, d.cur, d.ts, d.first_reason,
  coalesce(p.n, 0) + 1 AS attempt,
  CASE WHEN d.first_reason IS NOT NULL AND NOT d.bad AND d.txn_id IS NOT NULL
    AND coalesce(p.n, 0) + 1 >= {int(max_attempts)} THEN '{reasons.MAX_ATTEMPTS}'
    ELSE d.first_reason END AS reason,
  CASE WHEN d.first_reason IS NULL THEN CAST(d.amt AS DECIMAL(18,2)) END AS amount,
  CASE WHEN d.first_reason IS NULL THEN CAST(d.ts AS TIMESTAMPTZ) END AS ts_utc,
  d.bad,
  CASE d.first_reason
    WHEN '{reasons.SCHEMA_ERROR}' THEN 'row has ' || d.nf || ' fields; the header has ' || d.ncols
    WHEN '{reasons.NULL_VALUE_ERROR}' THEN 'missing required value: ' || rtrim({null_cols}, ', ')
    WHEN '{reasons.TYPE_ERROR}' THEN 'TransactionAmount ' || d.amt
      || ' is not a decimal number with at most 2 decimals'
    WHEN '{reasons.CURRENCY_ERROR}' THEN 'Currency ' || d.cur || ' is not an allowed ISO-4217 code'
    WHEN '{reasons.TIMESTAMP_ERROR}' THEN 'TransactionTimestamp ' || d.ts || ' is not an ISO-8601 timestamp'
    WHEN '{reasons.DUPLICATE_FAILURE}' THEN 'TransactionID ' || d.txn_id || CASE
      WHEN d.seen_in IS NOT NULL THEN ' was loaded by run ' || d.seen_in
      ELSE ' repeats line ' || d.first_seen.idx || ' of ' || o.key END
  END AS message
FROM deduped AS d
LEFT JOIN objects AS o ON o.file_no = d.first_seen.file_no
LEFT JOIN prior AS p ON d.first_reason IS NOT NULL AND p.TransactionID = d.txn_id
  AND p.reason_code = d.first_reason
""")


_FILES_FIELDS: list[pa.Field[Any]] = [
    pa.field("file_no", pa.int64()), pa.field("header_line", pa.int64()), pa.field("ncols", pa.int64()),
    pa.field("bad", pa.bool_()), *(pa.field(f"p_{v}", pa.int64()) for v in _FIELD_VARS),
]
FILES_SCHEMA = pa.schema(_FILES_FIELDS)


def files_row(file_no: int, header: Header) -> dict[str, Any]:
    """The ``files`` relation row (:data:`FILES_SCHEMA`) of one file."""
    row: dict[str, Any] = {
        "file_no": file_no, "header_line": header.line_no, "ncols": header.columns,
        "bad": bool(header.missing),
    }
    for var, col in zip(_FIELD_VARS, REQUIRED, strict=True):
        row[f"p_{var}"] = header.positions.get(col)
    return row


def enriched_sql(ingested: str) -> str:
    """Valid rows, typed and enriched, with their partition columns ``year`` and ``month``.

    ``row_hash`` is the hex SHA-256 of the canonical row: the five typed values as text
    (amount with 2 decimals, timestamp ``YYYY-MM-DDTHH:MM:SS.ffffffZ``) joined by U+001F;
    ``ingestion_timestamp`` is ``ingested`` (ISO-8601, UTC).
    """
    return f"""
SELECT txn_id AS "TransactionID", cust AS "CustomerID", amount AS "TransactionAmount",
  cur AS "Currency", ts_utc AS "TransactionTimestamp",
  sha256(concat_ws(chr(31), txn_id, cust, CAST(amount AS VARCHAR), cur,
                   strftime(ts_utc, '%Y-%m-%dT%H:%M:%S.%fZ'))) AS row_hash,
  o.object_id AS source_file_id,
  CAST({lit(ingested)} AS TIMESTAMPTZ) AS ingestion_timestamp,
  strftime(ts_utc, '%Y') AS year, strftime(ts_utc, '%m') AS month
FROM classified AS c JOIN objects AS o USING (file_no)
WHERE c.reason IS NULL
"""
