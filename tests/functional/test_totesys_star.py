"""The totesys star schema on the embedded stack (SQLite source, DuckDB gold zone): the join
rules of specs §2 on exact values, dim_date, the overlap window for late commits, missing
packet ids, and re-processing after a crash."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from lakeline.config import load_settings
from lakeline.errors import DataError, LockedError
from lakeline.lake import Lake
from lakeline.pipelines.totesys import gen as gen
from lakeline.pipelines.totesys.extract import extract, list_packets, missing_packets, param_name
from lakeline.pipelines.totesys.star import process_pending, processed_packet_id
from lakeline.sql import connect

SPEC_COLUMNS = {
    "fact_sales_order": ["sales_record_id", "sales_order_id", "created_date", "created_time", "last_updated_date",
                         "last_updated_time", "sales_staff_id", "counterparty_id", "units_sold", "unit_price",
                         "currency_id", "design_id", "agreed_payment_date", "agreed_delivery_date",
                         "agreed_delivery_location_id"],
    "fact_purchase_order": ["purchase_record_id", "purchase_order_id", "created_date", "created_time",
                            "last_updated_date", "last_updated_time", "staff_id", "counterparty_id", "item_code",
                            "item_quantity", "item_unit_price", "currency_id", "agreed_delivery_date",
                            "agreed_payment_date", "agreed_delivery_location_id"],
    "fact_payment": ["payment_record_id", "payment_id", "created_date", "created_time", "last_updated_date",
                     "last_updated_time", "transaction_id", "counterparty_id", "payment_amount", "currency_id",
                     "payment_type_id", "paid", "payment_date"],
    "dim_date": ["date_id", "year", "month", "day", "day_of_week", "day_name", "month_name", "quarter"],
    "dim_staff": ["staff_id", "first_name", "last_name", "department_name", "location", "email_address"],
    "dim_location": ["location_id", "address_line_1", "address_line_2", "district", "city", "postal_code",
                     "country", "phone"],
    "dim_currency": ["currency_id", "currency_code", "currency_name"],
    "dim_design": ["design_id", "design_name", "file_location", "file_name"],
    "dim_counterparty": ["counterparty_id", "counterparty_legal_name", "counterparty_legal_address_line_1",
                         "counterparty_legal_address_line_2", "counterparty_legal_district",
                         "counterparty_legal_city", "counterparty_legal_postal_code", "counterparty_legal_country",
                         "counterparty_legal_phone_number"],
    "dim_payment_type": ["payment_type_id", "payment_type_name"],
    "dim_transaction": ["transaction_id", "transaction_type", "sales_order_id", "purchase_order_id"],
}


@pytest.fixture
def setup(home: Path, tmp_path: Path) -> tuple[Lake, Path]:
    db = tmp_path / "totesys.db"
    gen.create(str(db), scale=400, seed=11)
    lake = Lake.open(load_settings(home))
    assert extract(lake, str(db)).status == "SUCCEEDED"
    assert process_pending(lake) is not None
    return lake, db


def _gold(lake: Lake, sql: str) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in connect(lake).execute(sql).fetchall()]


def _src(db: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as conn:
        return [tuple(r) for r in conn.execute(sql).fetchall()]


def test_star_tables_have_the_spec_columns(setup: tuple[Lake, Path]) -> None:
    lake, _ = setup
    con = connect(lake)
    for table, columns in SPEC_COLUMNS.items():
        assert [r[0] for r in con.execute(f"DESCRIBE gold.{table}").fetchall()] == columns, table
    types = dict((r[0], r[1]) for r in con.execute("DESCRIBE gold.fact_sales_order").fetchall())
    assert (types["created_date"], types["created_time"], types["unit_price"], types["agreed_payment_date"]) == (
        "DATE", "TIME", "DECIMAL(10,2)", "DATE")


def test_join_rules_on_exact_values(setup: tuple[Lake, Path]) -> None:
    lake, db = setup
    # dim_counterparty: each counterparty with the columns of its legal address
    assert _gold(lake, "SELECT * FROM gold.dim_counterparty ORDER BY counterparty_id") == _src(db, """
        SELECT c.counterparty_id, c.counterparty_legal_name, a.address_line_1, a.address_line_2, a.district,
               a.city, a.postal_code, a.country, a.phone
        FROM counterparty c JOIN address a ON a.address_id = c.legal_address_id ORDER BY 1""")
    # dim_staff joins department
    assert _gold(lake, "SELECT * FROM gold.dim_staff ORDER BY staff_id") == _src(db, """
        SELECT s.staff_id, s.first_name, s.last_name, d.department_name, d.location, s.email_address
        FROM staff s JOIN department d USING (department_id) ORDER BY 1""")
    assert _gold(lake, "SELECT * FROM gold.dim_currency ORDER BY 1") == [
        (1, "GBP", "Pound Sterling"), (2, "USD", "US Dollar"), (3, "EUR", "Euro")]
    assert _gold(lake, "SELECT * FROM gold.dim_payment_type ORDER BY 1") == [
        (1, "SALES_RECEIPT"), (2, "SALES_REFUND"), (3, "PURCHASE_PAYMENT"), (4, "PURCHASE_REFUND")]
    assert _gold(lake, "SELECT * FROM gold.dim_location ORDER BY 1") == _src(db, """
        SELECT address_id, address_line_1, address_line_2, district, city, postal_code, country, phone
        FROM address ORDER BY 1""")
    # fact_sales_order: staff_id → sales_staff_id, timestamps split into date and time, text dates typed
    [(so, created, staff, price, delivery)] = _src(db, """SELECT sales_order_id, created_at, staff_id,
        unit_price, agreed_delivery_date FROM sales_order WHERE sales_order_id = 17""")
    [row] = _gold(lake, """SELECT created_date, created_time, sales_staff_id, unit_price, agreed_delivery_date
        FROM gold.fact_sales_order WHERE sales_order_id = 17""")
    stamp = datetime.fromisoformat(created)
    assert row[0] == stamp.date() and row[1] == stamp.time() and row[2] == staff
    assert float(row[3]) == price and row[4].isoformat() == delivery
    # fact_payment drops the account numbers and keeps paid / payment_date
    assert _gold(lake, "SELECT count(*) FROM gold.fact_payment") == _src(db, "SELECT count(*) FROM payment")
    # dim_transaction: exact source rows
    assert _gold(lake, "SELECT * FROM gold.dim_transaction ORDER BY 1") == _src(db, """
        SELECT transaction_id, transaction_type, sales_order_id, purchase_order_id FROM "transaction" ORDER BY 1""")


def test_dim_date_covers_every_referenced_date(setup: tuple[Lake, Path]) -> None:
    lake, _ = setup
    refs = " UNION ".join(f"SELECT {c} AS d FROM gold.{f}" for f, cols in {
        "fact_sales_order": ("created_date", "last_updated_date", "agreed_payment_date", "agreed_delivery_date"),
        "fact_purchase_order": ("created_date", "last_updated_date", "agreed_delivery_date", "agreed_payment_date"),
        "fact_payment": ("created_date", "last_updated_date", "payment_date")}.items() for c in cols)
    assert _gold(lake, f"SELECT count(*) FROM ({refs}) r ANTI JOIN gold.dim_date d ON d.date_id = r.d") == [(0,)]
    [(low, high, n)] = _gold(lake, "SELECT min(date_id), max(date_id), count(*) FROM gold.dim_date")
    assert n == (high - low).days + 1  # one contiguous calendar
    assert _gold(lake, "SELECT * FROM gold.dim_date WHERE date_id IN ('2023-01-01', '2023-01-02') ORDER BY 1") == [
        (datetime(2023, 1, 1).date(), 2023, 1, 1, 7, "Sunday", "January", 1),  # ISO: Monday = 1, Sunday = 7
        (datetime(2023, 1, 2).date(), 2023, 1, 2, 1, "Monday", "January", 1)]


def test_late_commits_inside_the_overlap_are_not_missed(setup: tuple[Lake, Path]) -> None:
    lake, db = setup
    mark = datetime.fromisoformat(lake.params.get(param_name("sales_order", "latest_extracted_timestamp")) or "")
    late = (mark - timedelta(seconds=10)).strftime("%Y-%m-%d %H:%M:%S.%f")
    with sqlite3.connect(db) as conn:  # committed after the extraction, stamped before its watermark
        conn.execute("""INSERT INTO sales_order SELECT 99999, design_id, staff_id, counterparty_id, units_sold,
            unit_price, currency_id, agreed_delivery_date, agreed_payment_date, agreed_delivery_location_id,
            ?, ? FROM sales_order WHERE sales_order_id = 1""", (late, late))
    report = extract(lake, str(db))
    so = next(t for t in report.tables if t.table == "sales_order")
    assert (so.rows, so.packet_id) == (1, 2)
    assert so.duplicates_dropped >= 1  # the versions at the watermark were read again and dropped
    process_pending(lake)
    assert _gold(lake, "SELECT count(*) FROM gold.fact_sales_order WHERE sales_order_id = 99999") == [(1,)]
    assert _gold(lake, "SELECT count(*) FROM gold.fact_sales_order") == [(401,)]


def test_missing_packet_ids_are_warned_and_reported(setup: tuple[Lake, Path],
                                                    caplog: pytest.LogCaptureFixture) -> None:
    lake, db = setup
    gen.mutate(str(db), seed=1)
    extract(lake, str(db))
    gen.mutate(str(db), seed=2)
    extract(lake, str(db))
    lost = list_packets(lake)["sales_order"][2]
    lake.store.delete("raw", lost)
    assert missing_packets(lake) == {"sales_order": [2]}
    caplog.set_level("WARNING", logger="lakeline")
    report = process_pending(lake)
    assert report is not None and report["missing_packets"] == {"sales_order": [2]}
    assert "packet ids missing from the sequence" in caplog.text
    assert processed_packet_id(lake, "sales_order") == 3  # packet 3 was processed; 2 stays reported


def test_reprocessing_after_a_crash_gives_the_same_star(setup: tuple[Lake, Path]) -> None:
    lake, db = setup
    gen.mutate(str(db), seed=5)
    extract(lake, str(db))
    process_pending(lake)
    facts = _gold(lake, "SELECT * FROM gold.fact_sales_order ORDER BY sales_record_id")
    dims = _gold(lake, "SELECT * FROM gold.dim_counterparty ORDER BY 1")
    # a crash before the processed ids were published: the same packets are processed again
    for table in ("sales_order", "counterparty", "address"):
        lake.params.put(f"/lakeline/totesys/{table}_processed_packet_id", "1")
    assert process_pending(lake) is not None
    assert _gold(lake, "SELECT * FROM gold.fact_sales_order ORDER BY sales_record_id") == facts
    assert _gold(lake, "SELECT * FROM gold.dim_counterparty ORDER BY 1") == dims
    assert process_pending(lake) is None


def test_an_unparsable_text_date_names_the_packet(home: Path, tmp_path: Path) -> None:
    db = tmp_path / "bad.db"
    gen.create(str(db), scale=50)
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE sales_order SET agreed_delivery_date = '31/12/2023' WHERE sales_order_id = 3")
    lake = Lake.open(load_settings(home))
    extract(lake, str(db))
    with pytest.raises(DataError, match=r"agreed_delivery_date '31/12/2023' in sales_order_00000001_\d{12}\.jsonl"):
        process_pending(lake)
    assert processed_packet_id(lake, "sales_order") == 0  # nothing published: fix and re-run


def test_one_extraction_at_a_time(setup: tuple[Lake, Path]) -> None:
    lake, db = setup
    lake.state.put("totesys", "extract_lease", {"run_id": "other"}, if_absent=True)
    with pytest.raises(LockedError, match="another totesys extraction is running"):
        extract(lake, str(db))
    lake.state.delete("totesys", "extract_lease")
    assert extract(lake, str(db)).status == "SUCCEEDED"
    assert lake.state.get("totesys", "extract_lease") is None  # released after the run
