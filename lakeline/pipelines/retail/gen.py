"""Fake data for the retail lakehouse (seed 004): ``orders.csv``, ``customers.csv`` and
``products.csv`` in the seed's raw formats.

Formats: comma-separated, a plain header line, text / date / price fields in double quotes,
dates ``dd/MM/yyyy``, prices with a decimal comma (``"147,43"``). Every order references an
existing customer and product, so the transform's left joins miss nothing.

Vectorised (numpy draws, Arrow string kernels, Arrow's CSV writer) and deterministic by seed::

    customers  customer_id (1..customers), customer_name, email, region, signup_date
    products   product_id (1..products), product_name, category, list_price
    orders     order_id (100001..), order_date, customer_id, product_id, qty, unit_price, channel

    region      North South East West Central        channel  web store mobile
    category    Electronics Home Clothing Sports Beauty Toys Grocery Books
    order_date  uniform over [START, START + DAYS)   qty      1-5
    list_price  2,00-499,99                           unit_price list_price less 0/5/10/15 %
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any, Final, cast

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from lakeline.errors import UsageError

__all__ = [
    "CATEGORIES", "CHANNELS", "DAYS", "FIRST_ORDER_ID", "HEADERS", "REGIONS", "START", "generate",
    "write",
]

REGIONS: Final = ("North", "South", "East", "West", "Central")
CHANNELS: Final = ("web", "store", "mobile")
CATEGORIES: Final = ("Electronics", "Home", "Clothing", "Sports", "Beauty", "Toys", "Grocery", "Books")
START: Final = date(2025, 7, 1)
DAYS: Final = 92
FIRST_ORDER_ID: Final = 100_001
_DISCOUNTS: Final = np.array([0, 5, 10, 15], dtype=np.int64)

HEADERS: Final = {
    "orders": ("order_id", "order_date", "customer_id", "product_id", "qty", "unit_price", "channel"),
    "customers": ("customer_id", "customer_name", "email", "region", "signup_date"),
    "products": ("product_id", "product_name", "category", "list_price"),
}


def _pick(rng: np.random.Generator, values: tuple[str, ...], n: int, p: list[float] | None = None
          ) -> pa.Array[Any]:
    return pa.array(np.asarray(values, dtype=object)[rng.choice(len(values), size=n, p=p)], pa.string())


def _dates(days: np.ndarray[Any, Any]) -> pa.Array[Any]:
    base = np.datetime64(START.isoformat(), "D")
    stamps = pa.array((base + days.astype("timedelta64[D]")).astype("datetime64[s]"))
    return cast("pa.Array[Any]", pc.strftime(stamps, format="%d/%m/%Y"))


def _money(cents: np.ndarray[Any, Any]) -> pa.Array[Any]:
    """``cents`` as ``"<units>,<2 digits>"`` text."""
    units = pc.cast(pa.array(cents // 100), pa.string())
    frac = pc.utf8_lpad(pc.cast(pa.array(cents % 100), pa.string()), width=2, padding="0")
    return _join(units, frac, sep=",")


def _labels(prefix: str, ids: np.ndarray[Any, Any], width: int) -> pa.Array[Any]:
    text = pc.utf8_lpad(pc.cast(pa.array(ids), pa.string()), width=width, padding="0")
    return _join(pa.scalar(prefix), text)


def _join(*parts: Any, sep: str = "") -> pa.Array[Any]:
    join: Any = pc.binary_join_element_wise
    return cast("pa.Array[Any]", join(*parts, sep))


def generate(*, seed: int = 0, orders: int = 8800, customers: int = 500, products: int = 200
             ) -> dict[str, pa.Table]:
    """The three sources as Arrow tables of CSV field text (ids as integers)."""
    if min(orders, customers, products) < 1 or seed < 0:
        raise UsageError("orders, customers and products must be at least 1, seed non-negative")
    rng = np.random.default_rng([seed, 4])
    cust_ids = np.arange(1, customers + 1, dtype=np.int64)
    cust = pa.table({
        "customer_id": pa.array(cust_ids),
        "customer_name": _labels("Customer ", cust_ids, 4),
        "email": _join(_labels("customer", cust_ids, 4), pa.scalar("@example.com")),
        "region": _pick(rng, REGIONS, customers, [0.25, 0.2, 0.2, 0.2, 0.15]),
        "signup_date": _dates(rng.integers(-730, 0, size=customers)),
    })
    prod_ids = np.arange(1, products + 1, dtype=np.int64)
    price_cents = rng.integers(200, 50_000, size=products)
    prod = pa.table({
        "product_id": pa.array(prod_ids),
        "product_name": _labels("Product ", prod_ids, 4),
        "category": _pick(rng, CATEGORIES, products),
        "list_price": _money(price_cents),
    })
    product = rng.integers(0, products, size=orders)
    discount = _DISCOUNTS[rng.integers(0, len(_DISCOUNTS), size=orders)]
    unit_cents = (price_cents[product] * (100 - discount) + 50) // 100
    order = pa.table({
        "order_id": pa.array(np.arange(FIRST_ORDER_ID, FIRST_ORDER_ID + orders, dtype=np.int64)),
        "order_date": _dates(np.sort(rng.integers(0, DAYS, size=orders))),
        "customer_id": pa.array(cust_ids[rng.integers(0, customers, size=orders)]),
        "product_id": pa.array(prod_ids[product]),
        "qty": pa.array(rng.integers(1, 6, size=orders).astype(np.int64)),
        "unit_price": _money(unit_cents),
        "channel": _pick(rng, CHANNELS, orders, [0.5, 0.3, 0.2]),
    })
    return {"orders": order, "customers": cust, "products": prod}


def write(out_dir: Path, *, seed: int = 0, orders: int = 8800, customers: int = 500,
          products: int = 200) -> dict[str, Path]:
    """Write ``orders.csv``, ``customers.csv`` and ``products.csv`` into ``out_dir``."""
    tables = generate(seed=seed, orders=orders, customers=customers, products=products)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for source, table in tables.items():
        path = paths[source] = out_dir / f"{source}.csv"
        sink = pa.BufferOutputStream()
        pacsv.write_csv(table, sink, pacsv.WriteOptions(include_header=False, quoting_style="needed"))
        path.write_bytes((",".join(HEADERS[source]) + "\n").encode() + sink.getvalue().to_pybytes())
    return paths
