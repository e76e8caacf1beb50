"""Load the gold star schema into a warehouse, idempotently.

``load(lake, "duckdb")`` is the embedded default: DuckDB already reads the gold zone
(``gold.fact_sales_order`` …), so it only reports each table's rows.

``load(lake, "postgresql://…")`` (or a libpq keyword string ``host=… dbname=…``) creates the
star schema if needed — primary keys, the facts' natural keys
``UNIQUE (<source id>, last_updated_date, last_updated_time)`` and foreign keys from every fact
to ``dim_date`` and its other dimensions — and loads it in one transaction:

- every gold file goes through a temporary staging table filled by ``COPY`` (Arrow-written
  CSV, streamed in batches);
- dimensions are upserted: ``INSERT … ON CONFLICT (pk) DO UPDATE … WHERE (row) IS DISTINCT
  FROM (new row)``, so an unchanged row is not even rewritten;
- facts are inserted ``ON CONFLICT DO NOTHING`` (the record id and the natural key are both
  unique): a fact version is never loaded twice;
- ``lakeline_loaded_files (table_name, file_key, etag)`` records every file loaded, in the same
  transaction, so a re-run skips files it has loaded and a failed load leaves nothing behind.

Re-running a load therefore changes nothing (counts and checksums stay identical).
"""

from __future__ import annotations

import io
import shutil
import time
import uuid
from pathlib import Path
from typing import Any, Final

import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from sqlalchemy.engine import URL
from sqlalchemy.exc import InterfaceError, OperationalError

from lakeline import secrets
from lakeline.errors import TransientError, UsageError
from lakeline.lake import Lake
from lakeline.pipelines.totesys.source import engine_for, mask, parse_url
from lakeline.pipelines.totesys.star import DIMENSIONS, FACTS, GOLD_TABLES
from lakeline.sql import connect

__all__ = ["DDL", "LEDGER", "PRIMARY_KEYS", "load"]

LEDGER: Final = "lakeline_loaded_files"
#: Fact files with at least this many rows are loaded with the foreign keys re-validated once.
BULK_ROWS: Final = 50_000

#: Primary key of each star-schema table.
PRIMARY_KEYS: Final[dict[str, str]] = {
    "dim_date": "date_id", "dim_staff": "staff_id", "dim_location": "location_id",
    "dim_currency": "currency_id", "dim_design": "design_id", "dim_counterparty": "counterparty_id",
    "dim_payment_type": "payment_type_id", "dim_transaction": "transaction_id",
    "fact_sales_order": "sales_record_id", "fact_purchase_order": "purchase_record_id",
    "fact_payment": "payment_record_id",
}


def _dates(*cols: str) -> str:
    return "".join(f",\n    FOREIGN KEY ({c}) REFERENCES dim_date (date_id)" for c in cols)


#: PostgreSQL DDL of the star schema (dimensions first: the facts reference them).
DDL: Final[tuple[str, ...]] = (
    """CREATE TABLE IF NOT EXISTS dim_date (
    date_id DATE PRIMARY KEY, year INTEGER NOT NULL, month INTEGER NOT NULL, day INTEGER NOT NULL,
    day_of_week INTEGER NOT NULL, day_name TEXT NOT NULL, month_name TEXT NOT NULL,
    quarter INTEGER NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS dim_staff (
    staff_id INTEGER PRIMARY KEY, first_name TEXT NOT NULL, last_name TEXT NOT NULL, department_name TEXT,
    location TEXT, email_address TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS dim_location (
    location_id INTEGER PRIMARY KEY, address_line_1 TEXT NOT NULL, address_line_2 TEXT, district TEXT,
    city TEXT NOT NULL, postal_code TEXT NOT NULL, country TEXT NOT NULL, phone TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS dim_currency (
    currency_id INTEGER PRIMARY KEY, currency_code TEXT NOT NULL, currency_name TEXT)""",
    """CREATE TABLE IF NOT EXISTS dim_design (
    design_id INTEGER PRIMARY KEY, design_name TEXT NOT NULL, file_location TEXT NOT NULL,
    file_name TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS dim_counterparty (
    counterparty_id INTEGER PRIMARY KEY, counterparty_legal_name TEXT NOT NULL,
    counterparty_legal_address_line_1 TEXT, counterparty_legal_address_line_2 TEXT,
    counterparty_legal_district TEXT, counterparty_legal_city TEXT, counterparty_legal_postal_code TEXT,
    counterparty_legal_country TEXT, counterparty_legal_phone_number TEXT)""",
    """CREATE TABLE IF NOT EXISTS dim_payment_type (
    payment_type_id INTEGER PRIMARY KEY, payment_type_name TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS dim_transaction (
    transaction_id INTEGER PRIMARY KEY, transaction_type TEXT NOT NULL, sales_order_id INTEGER,
    purchase_order_id INTEGER)""",
    f"""CREATE TABLE IF NOT EXISTS fact_sales_order (
    sales_record_id BIGINT PRIMARY KEY, sales_order_id INTEGER NOT NULL,
    created_date DATE NOT NULL, created_time TIME NOT NULL,
    last_updated_date DATE NOT NULL, last_updated_time TIME NOT NULL,
    sales_staff_id INTEGER NOT NULL REFERENCES dim_staff (staff_id),
    counterparty_id INTEGER NOT NULL REFERENCES dim_counterparty (counterparty_id),
    units_sold INTEGER NOT NULL, unit_price NUMERIC(10, 2) NOT NULL,
    currency_id INTEGER NOT NULL REFERENCES dim_currency (currency_id),
    design_id INTEGER NOT NULL REFERENCES dim_design (design_id),
    agreed_payment_date DATE NOT NULL, agreed_delivery_date DATE NOT NULL,
    agreed_delivery_location_id INTEGER NOT NULL REFERENCES dim_location (location_id),
    UNIQUE (sales_order_id, last_updated_date, last_updated_time){_dates(
        "created_date", "last_updated_date", "agreed_payment_date", "agreed_delivery_date")})""",
    f"""CREATE TABLE IF NOT EXISTS fact_purchase_order (
    purchase_record_id BIGINT PRIMARY KEY, purchase_order_id INTEGER NOT NULL,
    created_date DATE NOT NULL, created_time TIME NOT NULL,
    last_updated_date DATE NOT NULL, last_updated_time TIME NOT NULL,
    staff_id INTEGER NOT NULL REFERENCES dim_staff (staff_id),
    counterparty_id INTEGER NOT NULL REFERENCES dim_counterparty (counterparty_id),
    item_code TEXT NOT NULL, item_quantity INTEGER NOT NULL, item_unit_price NUMERIC(10, 2) NOT NULL,
    currency_id INTEGER NOT NULL REFERENCES dim_currency (currency_id),
    agreed_delivery_date DATE NOT NULL, agreed_payment_date DATE NOT NULL,
    agreed_delivery_location_id INTEGER NOT NULL REFERENCES dim_location (location_id),
    UNIQUE (purchase_order_id, last_updated_date, last_updated_time){_dates(
        "created_date", "last_updated_date", "agreed_delivery_date", "agreed_payment_date")})""",
    f"""CREATE TABLE IF NOT EXISTS fact_payment (
    payment_record_id BIGINT PRIMARY KEY, payment_id INTEGER NOT NULL,
    created_date DATE NOT NULL, created_time TIME NOT NULL,
    last_updated_date DATE NOT NULL, last_updated_time TIME NOT NULL,
    transaction_id INTEGER NOT NULL REFERENCES dim_transaction (transaction_id),
    counterparty_id INTEGER NOT NULL REFERENCES dim_counterparty (counterparty_id),
    payment_amount NUMERIC(10, 2) NOT NULL,
    currency_id INTEGER NOT NULL REFERENCES dim_currency (currency_id),
    payment_type_id INTEGER NOT NULL REFERENCES dim_payment_type (payment_type_id),
    paid BOOLEAN NOT NULL, payment_date DATE NOT NULL,
    UNIQUE (payment_id, last_updated_date, last_updated_time){_dates(
        "created_date", "last_updated_date", "payment_date")})""",
    f"""CREATE TABLE IF NOT EXISTS {LEDGER} (
    table_name TEXT NOT NULL, file_key TEXT NOT NULL, etag TEXT NOT NULL, rows BIGINT NOT NULL,
    loaded_at TIMESTAMPTZ NOT NULL DEFAULT now(), PRIMARY KEY (table_name, file_key))""",
)
_LOAD_ORDER: Final = ("dim_date", *DIMENSIONS, *FACTS)


def load(lake: Lake, target: str = "duckdb") -> dict[str, Any]:
    """Load the gold star schema into ``target`` (``duckdb``, a PostgreSQL URL or keyword string);
    returns a report ``{target, tables: {name: {rows, written, files_loaded, files_skipped}},
    elapsed_s}`` whose target has its password masked. TransientError (exit 1) when the
    warehouse cannot be reached: the message names it, masked."""
    started = time.monotonic()
    if target in {"", "duckdb"}:
        report = _duckdb_report(lake)
    else:
        import psycopg  # heavy: the PostgreSQL driver, only for a PostgreSQL target

        url = parse_url(target)
        if url.get_backend_name() != "postgresql":
            raise UsageError(f"unsupported load target {mask(target)}: use duckdb or postgresql://…")
        try:
            report = _load_postgres(lake, url)
        except (OperationalError, InterfaceError, psycopg.OperationalError) as exc:
            # the warehouse is down or refuses us: nothing was committed, a later load retries
            raise TransientError(f"cannot load into {mask(url)}: {secrets.mask_error(exc)}") from None
    report["elapsed_s"] = round(time.monotonic() - started, 3)
    return report


def _duckdb_report(lake: Lake) -> dict[str, Any]:

    con = connect(lake)
    try:
        present = {r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'gold'").fetchall()}
        tables = {t: {"rows": int(con.execute(f"SELECT count(*) FROM gold.{t}").fetchall()[0][0])}
                  for t in GOLD_TABLES if t in present}
    finally:
        con.close()
    return {"target": "duckdb", "tables": tables}


def _gold_files(lake: Lake, table: str) -> list[tuple[str, str]]:
    return [(i.key, i.etag) for i in lake.store.list("gold", f"{table}/") if i.key.endswith(".parquet")]


def _local(lake: Lake, key: str, scratch: Path) -> Path:
    path = lake.store.local_path("gold", key)
    if path is not None:
        return path
    target = scratch / f"{uuid.uuid4().hex}.parquet"
    target.write_bytes(lake.store.get("gold", key))
    return target


def _copy_file(cur: Any, stage: str, path: Path) -> list[str]:
    """COPY a Parquet file into ``stage`` in CSV batches; returns its column names."""
    pf = pq.ParquetFile(path)
    names = pf.schema_arrow.names
    cols = ", ".join(names)
    with cur.copy(f"COPY {stage} ({cols}) FROM STDIN (FORMAT csv)") as cp:
        for batch in pf.iter_batches(batch_size=65536):
            buf = io.BytesIO()
            pacsv.write_csv(batch, buf, pacsv.WriteOptions(include_header=False))
            cp.write(buf.getbuffer())
    return list(names)


def _load_postgres(lake: Lake, target: URL) -> dict[str, Any]:
    engine = engine_for(target)
    tables: dict[str, dict[str, int]] = {}
    scratch = lake.work_dir / f"totesys-load-{uuid.uuid4().hex}"
    scratch.mkdir(parents=True)
    try:
        raw = engine.raw_connection()
        try:
            pg = raw.driver_connection
            assert pg is not None
            with pg.transaction(), pg.cursor() as cur:
                # one loader at a time per warehouse; the lock ends with the transaction
                cur.execute("SELECT pg_advisory_xact_lock(hashtext('lakeline.pipelines.totesys.load'))")
                for statement in DDL:
                    cur.execute(statement)
                loaded = {(r[0], r[1]): r[2] for r in cur.execute(
                    f"SELECT table_name, file_key, etag FROM {LEDGER}").fetchall()}
                for table in _LOAD_ORDER:
                    tables[table] = _load_table(cur, lake, table, loaded, scratch)
            for table in _LOAD_ORDER:
                with pg.cursor() as cur:
                    tables[table]["rows"] = int(cur.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # type: ignore[index]
        finally:
            raw.close()
    finally:
        engine.dispose()
        shutil.rmtree(scratch, ignore_errors=True)
    return {"target": mask(target), "tables": tables}


def _load_table(cur: Any, lake: Lake, table: str, loaded: dict[tuple[str, str], str],
                scratch: Path) -> dict[str, int]:
    stats = {"rows": 0, "written": 0, "files_loaded": 0, "files_skipped": 0}
    pk = PRIMARY_KEYS[table]
    for key, etag in _gold_files(lake, table):
        if loaded.get((table, key)) == etag:
            stats["files_skipped"] += 1
            continue
        stage = f"stage_{table}"
        cur.execute(f"CREATE TEMP TABLE IF NOT EXISTS {stage} (LIKE {table}) ON COMMIT DROP")
        cur.execute(f"TRUNCATE {stage}")
        path = _local(lake, key, scratch)
        names = _copy_file(cur, stage, path)
        cols = ", ".join(names)
        if table in FACTS:
            # a big file: check the foreign keys once for the table (re-adding them validates every
            # row in one join, inside this transaction) instead of one trigger call per new row
            bulk = pq.ParquetFile(path).metadata.num_rows >= BULK_ROWS
            fks = cur.execute("""SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint
                WHERE conrelid = %s::regclass AND contype = 'f' ORDER BY conname""", (table,)).fetchall() \
                if bulk else []
            for name, _ in fks:
                cur.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
            cur.execute(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM {stage} ON CONFLICT DO NOTHING")
            written = cur.rowcount
            for name, definition in fks:
                cur.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
        else:
            rest = [c for c in names if c != pk]
            sets = ", ".join(f"{c} = EXCLUDED.{c}" for c in rest)
            old = ", ".join(f"{table}.{c}" for c in rest)
            new = ", ".join(f"EXCLUDED.{c}" for c in rest)
            cur.execute(f"""INSERT INTO {table} ({cols}) SELECT {cols} FROM {stage}
                ON CONFLICT ({pk}) DO UPDATE SET {sets} WHERE ({old}) IS DISTINCT FROM ({new})""")
            written = cur.rowcount
        stats["written"] += max(written, 0)
        rows = int(cur.execute(f"SELECT count(*) FROM {stage}").fetchone()[0])
        cur.execute(f"""INSERT INTO {LEDGER} (table_name, file_key, etag, rows) VALUES (%s, %s, %s, %s)
            ON CONFLICT (table_name, file_key) DO UPDATE SET etag = EXCLUDED.etag, rows = EXCLUDED.rows,
            loaded_at = now()""", (table, key, etag, rows))
        stats["files_loaded"] += 1
    return stats
