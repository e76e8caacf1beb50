"""Raw totesys packets → the star schema in the gold zone (specs §2), incrementally, in DuckDB.

Each table's packets become visible when their id is published (``<table>_latest_packet_id``);
processing reads only packets after ``<table>_processed_packet_id`` and publishes that last,
after every gold file is stored. A packet id missing from the sequence logs a warning and is
skipped (``lakeline status`` lists it).

- **Facts** (``fact_sales_order``, ``fact_purchase_order``, ``fact_payment``) are append-only:
  every extracted version of a source row is one fact row, identified by the source id and
  ``last_updated`` (a version seen twice is kept once). Each packet becomes one file
  ``gold/<fact>/part-<packet id>.parquet`` with record ids continuing the previous maximum, so
  re-processing after a crash rewrites the same files with the same ids.
- **Dimensions** reflect the latest version of each source row. The latest version of every
  dimension source table is kept in ``gold/_totesys/current/<table>.parquet`` (hidden from
  SQL); a dimension is rebuilt from those when one of its sources changed, so a renamed
  department reaches every ``dim_staff`` row and a changed address every ``dim_counterparty``.
- **dim_date** spans every day from the earliest to the latest date any fact references.
"""

from __future__ import annotations

import re
import shutil
import time
import uuid
from pathlib import Path
from typing import Any, Final

import duckdb
import pyarrow as pa

from lakeline import log
from lakeline.errors import DataError
from lakeline.lake import Lake
from lakeline.pipelines.totesys import schema
from lakeline.pipelines.totesys.extract import PARAM_ROOT, list_packets
from lakeline.sqltext import lit

__all__ = [
    "CURRENCY_NAMES", "DIMENSIONS", "FACTS", "GOLD_TABLES", "process_pending", "processed_packet_id",
]

_log = log.get("totesys.star")

CURRENT_PREFIX: Final = "_totesys/current/"
#: ISO 4217 names of the currencies dim_currency can name (others get a NULL name).
CURRENCY_NAMES: Final[dict[str, str]] = {
    "GBP": "Pound Sterling", "USD": "US Dollar", "EUR": "Euro", "JPY": "Yen", "CHF": "Swiss Franc",
    "CAD": "Canadian Dollar", "AUD": "Australian Dollar", "NZD": "New Zealand Dollar", "SEK": "Swedish Krona",
    "NOK": "Norwegian Krone", "DKK": "Danish Krone", "PLN": "Zloty", "CZK": "Czech Koruna", "HUF": "Forint",
    "CNY": "Yuan Renminbi", "HKD": "Hong Kong Dollar", "SGD": "Singapore Dollar", "INR": "Indian Rupee",
    "KRW": "Won", "ZAR": "Rand", "BRL": "Brazilian Real", "MXN": "Mexican Peso", "TRY": "Turkish Lira",
    "ILS": "New Israeli Sheqel", "AED": "UAE Dirham", "SAR": "Saudi Riyal", "RON": "Romanian Leu",
}

#: fact → (source table, record id column, source id column, SELECT list over a source row ``s``).
FACTS: Final[dict[str, tuple[str, str, str, str]]] = {
    "fact_sales_order": ("sales_order", "sales_record_id", "sales_order_id", """
        CAST(s.sales_order_id AS INTEGER) AS sales_order_id, {stamps},
        CAST(s.staff_id AS INTEGER) AS sales_staff_id, CAST(s.counterparty_id AS INTEGER) AS counterparty_id,
        CAST(s.units_sold AS INTEGER) AS units_sold, s.unit_price,
        CAST(s.currency_id AS INTEGER) AS currency_id, CAST(s.design_id AS INTEGER) AS design_id,
        TRY_CAST(s.agreed_payment_date AS DATE) AS agreed_payment_date,
        TRY_CAST(s.agreed_delivery_date AS DATE) AS agreed_delivery_date,
        CAST(s.agreed_delivery_location_id AS INTEGER) AS agreed_delivery_location_id"""),
    "fact_purchase_order": ("purchase_order", "purchase_record_id", "purchase_order_id", """
        CAST(s.purchase_order_id AS INTEGER) AS purchase_order_id, {stamps},
        CAST(s.staff_id AS INTEGER) AS staff_id, CAST(s.counterparty_id AS INTEGER) AS counterparty_id,
        s.item_code, CAST(s.item_quantity AS INTEGER) AS item_quantity, s.item_unit_price,
        CAST(s.currency_id AS INTEGER) AS currency_id,
        TRY_CAST(s.agreed_delivery_date AS DATE) AS agreed_delivery_date,
        TRY_CAST(s.agreed_payment_date AS DATE) AS agreed_payment_date,
        CAST(s.agreed_delivery_location_id AS INTEGER) AS agreed_delivery_location_id"""),
    "fact_payment": ("payment", "payment_record_id", "payment_id", """
        CAST(s.payment_id AS INTEGER) AS payment_id, {stamps},
        CAST(s.transaction_id AS INTEGER) AS transaction_id,
        CAST(s.counterparty_id AS INTEGER) AS counterparty_id,
        s.payment_amount, CAST(s.currency_id AS INTEGER) AS currency_id,
        CAST(s.payment_type_id AS INTEGER) AS payment_type_id, s.paid,
        TRY_CAST(s.payment_date AS DATE) AS payment_date"""),
}
_STAMPS: Final = ("CAST(s.created_at AS DATE) AS created_date, CAST(s.created_at AS TIME) AS created_time, "
                  "CAST(s.last_updated AS DATE) AS last_updated_date, "
                  "CAST(s.last_updated AS TIME) AS last_updated_time")
#: Text date columns of each fact's source (checked: a value that is not YYYY-MM-DD is an error).
_TEXT_DATES: Final[dict[str, tuple[str, ...]]] = {
    "sales_order": ("agreed_payment_date", "agreed_delivery_date"),
    "purchase_order": ("agreed_delivery_date", "agreed_payment_date"),
    "payment": ("payment_date",),
}
#: Date columns of the facts (each references dim_date).
FACT_DATES: Final[dict[str, tuple[str, ...]]] = {
    "fact_sales_order": ("created_date", "last_updated_date", "agreed_payment_date", "agreed_delivery_date"),
    "fact_purchase_order": ("created_date", "last_updated_date", "agreed_delivery_date",
                            "agreed_payment_date"),
    "fact_payment": ("created_date", "last_updated_date", "payment_date"),
}

#: dimension → (its source tables, SELECT over the ``cur_<table>`` snapshots).
DIMENSIONS: Final[dict[str, tuple[tuple[str, ...], str]]] = {
    "dim_staff": (("staff", "department"), """
        SELECT CAST(s.staff_id AS INTEGER) AS staff_id, s.first_name, s.last_name, d.department_name,
               d.location, s.email_address
        FROM cur_staff s LEFT JOIN cur_department d USING (department_id) ORDER BY s.staff_id"""),
    "dim_location": (("address",), """
        SELECT CAST(address_id AS INTEGER) AS location_id, address_line_1, address_line_2, district, city,
               postal_code, country, phone
        FROM cur_address ORDER BY address_id"""),
    "dim_currency": (("currency",), """
        SELECT CAST(c.currency_id AS INTEGER) AS currency_id, c.currency_code, n.currency_name
        FROM cur_currency c LEFT JOIN currency_names n ON n.code = c.currency_code ORDER BY c.currency_id"""),
    "dim_design": (("design",), """
        SELECT CAST(design_id AS INTEGER) AS design_id, design_name, file_location, file_name
        FROM cur_design ORDER BY design_id"""),
    "dim_counterparty": (("counterparty", "address"), """
        SELECT CAST(c.counterparty_id AS INTEGER) AS counterparty_id, c.counterparty_legal_name,
               a.address_line_1 AS counterparty_legal_address_line_1,
               a.address_line_2 AS counterparty_legal_address_line_2,
               a.district AS counterparty_legal_district, a.city AS counterparty_legal_city,
               a.postal_code AS counterparty_legal_postal_code, a.country AS counterparty_legal_country,
               a.phone AS counterparty_legal_phone_number
        FROM cur_counterparty c LEFT JOIN cur_address a ON a.address_id = c.legal_address_id
        ORDER BY c.counterparty_id"""),
    "dim_payment_type": (("payment_type",), """
        SELECT CAST(payment_type_id AS INTEGER) AS payment_type_id, payment_type_name
        FROM cur_payment_type ORDER BY payment_type_id"""),
    "dim_transaction": (("transaction",), """
        SELECT CAST(transaction_id AS INTEGER) AS transaction_id, transaction_type,
               CAST(sales_order_id AS INTEGER) AS sales_order_id,
               CAST(purchase_order_id AS INTEGER) AS purchase_order_id
        FROM cur_transaction ORDER BY transaction_id"""),
}
DIM_SOURCES: Final = tuple(sorted({t for sources, _ in DIMENSIONS.values() for t in sources}))
GOLD_TABLES: Final = (*FACTS, "dim_date", *DIMENSIONS)
_PART = re.compile(r"/part-(\d{8})\.parquet$")

_DUCK_TYPES: Final = {pa.int64(): "BIGINT", pa.string(): "VARCHAR", pa.decimal128(10, 2): "DECIMAL(10,2)",
                      pa.timestamp("us"): "TIMESTAMP", pa.bool_(): "BOOLEAN"}


def _processed_param(table: str) -> str:
    return f"{PARAM_ROOT}/{table}_processed_packet_id"


def processed_packet_id(lake: Lake, table: str) -> int:
    """The last packet id of ``table`` already in the star schema (0 before the first)."""
    return int(lake.params.get(_processed_param(table)) or 0)


def _one(con: duckdb.DuckDBPyConnection, query: str) -> tuple[Any, ...] | None:
    """The first row of ``query`` (the result is fetched to the end: DuckDB refuses new work on
    a connection with an unfinished result)."""
    rows = con.execute(query).fetchall()
    return rows[0] if rows else None


def _count(con: duckdb.DuckDBPyConnection, query: str) -> int:
    row = _one(con, query)
    return 0 if row is None else int(row[0])


def _local(lake: Lake, zone: str, key: str, scratch: Path) -> Path | None:
    """A filesystem path of the object (downloaded into ``scratch`` for remote stores), or None."""
    path = lake.store.local_path(zone, key)
    if path is not None:
        return path if path.exists() else None
    if not lake.store.exists(zone, key):
        return None
    # the object's own file name, in a folder of its own: a packet's sequence number is read
    # from its name (a random name made the star schema fail on S3)
    target = scratch / uuid.uuid4().hex / Path(key).name
    target.parent.mkdir()
    target.write_bytes(lake.store.get(zone, key))
    return target


def _store(lake: Lake, con: duckdb.DuckDBPyConnection, query: str, key: str, scratch: Path) -> int:
    """Write ``query`` as a zstd Parquet file to ``gold/<key>`` (atomically); returns its rows."""
    out = scratch / f"{uuid.uuid4().hex}.parquet"
    con.execute(f"COPY ({query}) TO {lit(str(out))} (FORMAT parquet, COMPRESSION zstd)")
    rows = _count(con, f"SELECT count(*) FROM read_parquet({lit(str(out))})")
    lake.store.put_file("gold", key, out, move=True)
    return rows


def process_pending(lake: Lake) -> dict[str, Any] | None:
    """Process every published, unprocessed packet into the gold star schema.

    Returns a report ``{pipeline, step, packets, rows_read, facts, dimensions, dim_date,
    missing_packets, elapsed_s}``, or None when nothing is pending.
    """
    # one read of every totesys parameter (one SSM call on AWS: `run` checks this on every pass)
    params = lake.params.get_by_path(PARAM_ROOT)
    committed = {t: int(params.get(f"{PARAM_ROOT}/{t}_latest_packet_id") or 0) for t in schema.TABLES}
    done = {t: int(params.get(_processed_param(t)) or 0) for t in schema.TABLES}
    if all(committed[t] <= done[t] for t in schema.TABLES):
        return None
    started = time.monotonic()
    packets = list_packets(lake)
    pending: dict[str, list[tuple[int, str]]] = {}
    missing: dict[str, list[int]] = {}
    for t in schema.TABLES:
        have = packets.get(t, {})
        seqs = range(done[t] + 1, committed[t] + 1)
        gaps = [s for s in seqs if s not in have]
        if gaps:
            missing[t] = gaps
            _log.warning("totesys packet ids missing from the sequence", extra={
                "pipeline": "totesys", "data": {"table": t, "missing_packet_ids": gaps,
                                                "processed_up_to": done[t], "published": committed[t]}})
        found = [(s, have[s]) for s in seqs if s in have]
        if found:
            pending[t] = found
    scratch = lake.work_dir / f"totesys-star-{uuid.uuid4().hex}"
    scratch.mkdir(parents=True)
    con = duckdb.connect()
    report: dict[str, Any] = {"pipeline": "totesys", "step": "process", "packets": 0, "rows_read": 0,
                              "facts": {}, "dimensions": {}, "dim_date": None, "missing_packets": missing}
    try:
        con.execute("SET preserve_insertion_order = false")
        for table, items in pending.items():
            paths = [_local(lake, "raw", key, scratch) for _, key in items]
            files = ", ".join(lit(str(p)) for p in paths if p is not None)
            columns = ", ".join(
                f"{lit(f.name)}: {lit(_DUCK_TYPES[f.type])}" for f in schema.ARROW_TYPES[table]
            )
            con.execute(f"""CREATE TEMP VIEW new_{table} AS
                SELECT *,
                       CAST(regexp_extract(filename, '_(\\d{{8}})_\\d{{12}}\\.jsonl$', 1) AS INTEGER) AS _seq
                FROM read_json([{files}], format = 'newline_delimited', columns = {{{columns}}},
                               filename = true)""")
            report["packets"] += len(items)
            report["rows_read"] += _count(con, f"SELECT count(*) FROM new_{table}")
            _check_dates(con, table)
        changed = _update_current(lake, con, pending, scratch)
        report["dimensions"] = _rebuild_dimensions(lake, con, changed, scratch)
        new_dates: list[str] = []
        for fact, (source, _, _, _) in FACTS.items():
            if source in pending:
                report["facts"][fact] = _append_facts(lake, con, fact, done[source], pending[source], scratch)
                new_dates += [f"SELECT {c} AS d FROM new_{fact}" for c in FACT_DATES[fact]]
        if new_dates:
            report["dim_date"] = _extend_dim_date(lake, con, new_dates, scratch)
        # the commit point: every gold file is stored, now mark the packets processed
        for table in {*pending, *missing}:  # missing ids are skipped (logged, listed by status)
            lake.params.put(_processed_param(table), str(committed[table]))
    finally:
        con.close()
        shutil.rmtree(scratch, ignore_errors=True)
    report["elapsed_s"] = round(time.monotonic() - started, 3)
    _log.info("totesys star schema updated", extra={"pipeline": "totesys", "data": report})
    return report


def _check_dates(con: duckdb.DuckDBPyConnection, table: str) -> None:
    for col in _TEXT_DATES.get(table, ()):
        bad = _one(con, f"""SELECT filename, {col} FROM new_{table}
            WHERE {col} IS NOT NULL AND TRY_CAST({col} AS DATE) IS NULL LIMIT 1""")
        if bad is not None:
            raise DataError(f"totesys {table}: {col} {bad[1]!r} in {Path(bad[0]).name} is not a "
                            "YYYY-MM-DD date", reason="TYPE_ERROR")


def _update_current(lake: Lake, con: duckdb.DuckDBPyConnection, pending: dict[str, list[tuple[int, str]]],
                    scratch: Path) -> set[str]:
    """Refresh the latest-version snapshot of each dimension source; load all of them as
    ``cur_<table>``. Returns the tables that changed."""
    changed: set[str] = set()
    for table in DIM_SOURCES:
        cols = ", ".join(f'"{f.name}"' for f in schema.ARROW_TYPES[table])
        pk = schema.PRIMARY_KEYS[table]
        key = f"{CURRENT_PREFIX}{table}.parquet"
        existing = _local(lake, "gold", key, scratch)
        parts = [f"SELECT {cols} FROM read_parquet({lit(str(existing))})"] if existing else []
        if table in pending:
            parts.append(f"SELECT {cols} FROM new_{table}")
        if not parts:
            empty = ", ".join(f'CAST(NULL AS {_DUCK_TYPES[f.type]}) AS "{f.name}"'
                              for f in schema.ARROW_TYPES[table])
            con.execute(f"CREATE TEMP TABLE cur_{table} AS SELECT {empty} LIMIT 0")
            continue
        con.execute(f"""CREATE TEMP TABLE cur_{table} AS SELECT {cols} FROM ({' UNION ALL '.join(parts)})
            QUALIFY row_number() OVER (PARTITION BY {pk} ORDER BY last_updated DESC) = 1""")
        if table in pending:
            _store(lake, con, f"SELECT * FROM cur_{table} ORDER BY {pk}", key, scratch)
            changed.add(table)
    return changed


def _rebuild_dimensions(lake: Lake, con: duckdb.DuckDBPyConnection, changed: set[str],
                        scratch: Path) -> dict[str, int]:
    names = pa.table({"code": list(CURRENCY_NAMES), "currency_name": list(CURRENCY_NAMES.values())})
    con.register("currency_names", names)
    rebuilt: dict[str, int] = {}
    for dim, (sources, query) in DIMENSIONS.items():
        if changed.intersection(sources):
            rebuilt[dim] = _store(lake, con, query, f"{dim}/{dim}.parquet", scratch)
    return rebuilt


def _fact_files(lake: Lake, fact: str, up_to: int) -> list[str]:
    """Keys of the fact's files for packets ``<= up_to`` (files of later packets are leftovers
    of a crashed run that this run rewrites)."""
    keys = []
    for info in lake.store.list("gold", f"{fact}/"):
        m = _PART.search(info.key)
        if m is not None and int(m.group(1)) <= up_to:
            keys.append(info.key)
    return keys


def _append_facts(lake: Lake, con: duckdb.DuckDBPyConnection, fact: str, done: int,
                  items: list[tuple[int, str]], scratch: Path) -> int:
    source, record_id, source_id, select = FACTS[fact]
    paths = [p for p in (_local(lake, "gold", k, scratch) for k in _fact_files(lake, fact, done)) if p]
    if paths:
        files = ", ".join(lit(str(p)) for p in paths)
        con.execute(f"""CREATE TEMP TABLE old_{fact} AS SELECT {record_id}, {source_id},
            last_updated_date, last_updated_time FROM read_parquet([{files}])""")
    else:
        con.execute(f"""CREATE TEMP TABLE old_{fact} ({record_id} BIGINT, {source_id} INTEGER,
            last_updated_date DATE, last_updated_time TIME)""")
    base = _count(con, f"SELECT coalesce(max({record_id}), 0) FROM old_{fact}")
    body = select.format(stamps=_STAMPS)
    # one fact row per source version: the first packet holding a version keeps it
    con.execute(f"""CREATE TEMP TABLE new_{fact} AS
        WITH versions AS (
            SELECT s._seq, {body} FROM new_{source} s
            QUALIFY row_number() OVER (PARTITION BY s.{source_id}, s.last_updated ORDER BY s._seq) = 1
        ), fresh AS (
            SELECT v.* FROM versions v ANTI JOIN old_{fact} o
              ON o.{source_id} = v.{source_id} AND o.last_updated_date = v.last_updated_date
             AND o.last_updated_time = v.last_updated_time
        )
        SELECT {base} + row_number() OVER (ORDER BY _seq, last_updated_date, last_updated_time,
                                                    {source_id}) AS {record_id}, *
        FROM fresh""")
    cols = [r[0] for r in con.execute(f"DESCRIBE new_{fact}").fetchall() if r[0] != "_seq"]
    added = 0
    for seq, _ in items:
        query = f"SELECT {', '.join(cols)} FROM new_{fact} WHERE _seq = {int(seq)} ORDER BY {record_id}"
        added += _store(lake, con, query, f"{fact}/part-{seq:08d}.parquet", scratch)
    return added


def _extend_dim_date(lake: Lake, con: duckdb.DuckDBPyConnection, new_dates: list[str], scratch: Path) -> int:
    key = "dim_date/dim_date.parquet"
    existing = _local(lake, "gold", key, scratch)
    sources = list(new_dates)
    if existing is not None:
        sources.append(f"SELECT date_id AS d FROM read_parquet({lit(str(existing))})")
    low, high = _one(con, f"SELECT min(d), max(d) FROM ({' UNION ALL '.join(sources)})") or (None, None)
    if low is None:
        return 0
    if existing is not None:
        old = _one(con, f"SELECT min(date_id), max(date_id) FROM read_parquet({lit(str(existing))})")
        if old == (low, high):
            return 0  # the calendar already covers every referenced date
    return _store(lake, con, f"""
        SELECT CAST(d AS DATE) AS date_id, CAST(year(d) AS INTEGER) AS year,
               CAST(month(d) AS INTEGER) AS month, CAST(day(d) AS INTEGER) AS day,
               CAST(isodow(d) AS INTEGER) AS day_of_week,
               dayname(d) AS day_name, monthname(d) AS month_name, CAST(quarter(d) AS INTEGER) AS quarter
        FROM generate_series(DATE {lit(str(low))}, DATE {lit(str(high))}, INTERVAL 1 DAY) g(d) ORDER BY d""",
        key, scratch)
