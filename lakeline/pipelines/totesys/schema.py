"""The totesys source schema (specs §2): eleven OLTP tables, each with ``created_at`` and
``last_updated``.

The tables are SQLAlchemy Core objects, so one definition creates the database on PostgreSQL
(production) and SQLite (the embedded demo), and the extractor selects from them without
spelling SQL per dialect. ``TABLES`` is in dependency order (a table after every table it
references): the generator fills them in that order.

``ARROW_TYPES`` is the type of every column once extracted; the raw JSON lines and the star
schema processing read them with exactly these types.
"""

from __future__ import annotations

from typing import Final

import pyarrow as pa
from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
)

__all__ = ["ARROW_TYPES", "METADATA", "PRIMARY_KEYS", "TABLES", "table"]

METADATA: Final = MetaData()


def _stamps() -> list[Column[object]]:
    return [
        Column("created_at", DateTime(), nullable=False),
        Column("last_updated", DateTime(), nullable=False),
    ]


def _money(name: str) -> Column[object]:
    # asdecimal keeps exact cents on both dialects (SQLite stores REAL; SQLAlchemy re-quantises)
    return Column(name, Numeric(10, 2, asdecimal=True), nullable=False)


Table(
    "currency", METADATA,
    Column("currency_id", Integer, primary_key=True, autoincrement=False),
    Column("currency_code", String(3), nullable=False),
    *_stamps(),
)
Table(
    "department", METADATA,
    Column("department_id", Integer, primary_key=True, autoincrement=False),
    Column("department_name", String, nullable=False),
    Column("location", String),
    Column("manager", String),
    *_stamps(),
)
Table(
    "design", METADATA,
    Column("design_id", Integer, primary_key=True, autoincrement=False),
    Column("design_name", String, nullable=False),
    Column("file_location", String, nullable=False),
    Column("file_name", String, nullable=False),
    *_stamps(),
)
Table(
    "address", METADATA,
    Column("address_id", Integer, primary_key=True, autoincrement=False),
    Column("address_line_1", String, nullable=False),
    Column("address_line_2", String),
    Column("district", String),
    Column("city", String, nullable=False),
    Column("postal_code", String, nullable=False),
    Column("country", String, nullable=False),
    Column("phone", String, nullable=False),
    *_stamps(),
)
Table(
    "payment_type", METADATA,
    Column("payment_type_id", Integer, primary_key=True, autoincrement=False),
    Column("payment_type_name", String, nullable=False),
    *_stamps(),
    CheckConstraint("payment_type_name IN ('SALES_RECEIPT', 'SALES_REFUND', 'PURCHASE_PAYMENT', "
                    "'PURCHASE_REFUND')", name="payment_type_name_domain"),
)
Table(
    "staff", METADATA,
    Column("staff_id", Integer, primary_key=True, autoincrement=False),
    Column("first_name", String, nullable=False),
    Column("last_name", String, nullable=False),
    Column("department_id", Integer, ForeignKey("department.department_id"), nullable=False),
    Column("email_address", String, nullable=False),
    *_stamps(),
)
Table(
    "counterparty", METADATA,
    Column("counterparty_id", Integer, primary_key=True, autoincrement=False),
    Column("counterparty_legal_name", String, nullable=False),
    Column("legal_address_id", Integer, ForeignKey("address.address_id"), nullable=False),
    Column("commercial_contact", String),
    Column("delivery_contact", String),
    *_stamps(),
)
Table(
    "sales_order", METADATA,
    Column("sales_order_id", Integer, primary_key=True, autoincrement=False),
    Column("design_id", Integer, ForeignKey("design.design_id"), nullable=False),
    Column("staff_id", Integer, ForeignKey("staff.staff_id"), nullable=False),
    Column("counterparty_id", Integer, ForeignKey("counterparty.counterparty_id"), nullable=False),
    Column("units_sold", Integer, nullable=False),
    _money("unit_price"),
    Column("currency_id", Integer, ForeignKey("currency.currency_id"), nullable=False),
    Column("agreed_delivery_date", String, nullable=False),
    Column("agreed_payment_date", String, nullable=False),
    Column("agreed_delivery_location_id", Integer, ForeignKey("address.address_id"), nullable=False),
    *_stamps(),
)
Table(
    "purchase_order", METADATA,
    Column("purchase_order_id", Integer, primary_key=True, autoincrement=False),
    Column("staff_id", Integer, ForeignKey("staff.staff_id"), nullable=False),
    Column("counterparty_id", Integer, ForeignKey("counterparty.counterparty_id"), nullable=False),
    Column("item_code", String, nullable=False),
    Column("item_quantity", Integer, nullable=False),
    _money("item_unit_price"),
    Column("currency_id", Integer, ForeignKey("currency.currency_id"), nullable=False),
    Column("agreed_delivery_date", String, nullable=False),
    Column("agreed_payment_date", String, nullable=False),
    Column("agreed_delivery_location_id", Integer, ForeignKey("address.address_id"), nullable=False),
    *_stamps(),
)
Table(
    "transaction", METADATA,
    Column("transaction_id", Integer, primary_key=True, autoincrement=False),
    Column("transaction_type", String, nullable=False),
    Column("sales_order_id", Integer, ForeignKey("sales_order.sales_order_id")),
    Column("purchase_order_id", Integer, ForeignKey("purchase_order.purchase_order_id")),
    *_stamps(),
    CheckConstraint("transaction_type IN ('SALE', 'PURCHASE')", name="transaction_type_domain"),
)
Table(
    "payment", METADATA,
    Column("payment_id", Integer, primary_key=True, autoincrement=False),
    Column("transaction_id", Integer, ForeignKey("transaction.transaction_id"), nullable=False,
           unique=True),
    Column("counterparty_id", Integer, ForeignKey("counterparty.counterparty_id"), nullable=False),
    _money("payment_amount"),
    Column("currency_id", Integer, ForeignKey("currency.currency_id"), nullable=False),
    Column("payment_type_id", Integer, ForeignKey("payment_type.payment_type_id"), nullable=False),
    Column("paid", Boolean, nullable=False),
    Column("payment_date", String, nullable=False),
    Column("company_ac_number", Integer, nullable=False),
    Column("counterparty_ac_number", Integer, nullable=False),
    *_stamps(),
)

#: The eleven source tables in dependency order.
TABLES: Final[tuple[str, ...]] = (
    "currency", "department", "design", "address", "payment_type", "staff", "counterparty",
    "sales_order", "purchase_order", "transaction", "payment",
)

# The incremental read is `WHERE last_updated > ? ORDER BY last_updated, <pk>`: index it.
for _name in TABLES:
    _t = METADATA.tables[_name]
    Index(f"ix_{_name}_last_updated", _t.c.last_updated, next(iter(_t.primary_key.columns)))

#: Primary key column of each table.
PRIMARY_KEYS: Final[dict[str, str]] = {
    name: next(iter(METADATA.tables[name].primary_key.columns)).name for name in TABLES
}


def table(name: str) -> Table:
    """The SQLAlchemy table called ``name`` (KeyError naming the known tables otherwise)."""
    try:
        return METADATA.tables[name]
    except KeyError:
        raise KeyError(f"unknown totesys table {name!r}; tables: {', '.join(TABLES)}") from None


def _arrow_type(column: Column[object]) -> pa.DataType:
    t = column.type
    if isinstance(t, Numeric):
        return pa.decimal128(10, 2)
    if isinstance(t, DateTime):
        return pa.timestamp("us")
    if isinstance(t, Boolean):
        return pa.bool_()
    if isinstance(t, Integer):
        return pa.int64()
    return pa.string()


#: Arrow schema of each table as extracted (column order = the table's).
ARROW_TYPES: Final[dict[str, pa.Schema]] = {
    name: pa.schema([pa.field(c.name, _arrow_type(c)) for c in METADATA.tables[name].columns])
    for name in TABLES
}
