"""The retail fake-data generator: formats, value domains, referential integrity, determinism."""

from __future__ import annotations

import csv
import io
import re
from datetime import date, datetime

import pytest

from lakeline.errors import UsageError
from lakeline.pipelines.retail import gen as gen

DATE_RE = re.compile(r"\d{2}/\d{2}/\d{4}")
PRICE_RE = re.compile(r"\d+,\d{2}")


def _rows(path):
    text = path.read_text("ascii")
    assert text.endswith("\n")
    return list(csv.DictReader(io.StringIO(text)))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return gen.write(tmp_path_factory.mktemp("retail"), seed=7)


def test_files_headers_and_counts(files):
    assert set(files) == {"orders", "customers", "products"}
    for source, path in files.items():
        assert path.name == f"{source}.csv"
        assert path.read_text("ascii").split("\n", 1)[0] == ",".join(gen.HEADERS[source])
    assert [len(_rows(files[s])) for s in ("orders", "customers", "products")] == [8800, 500, 200]


def test_raw_formats(files):
    first = files["orders"].read_text("ascii").split("\n")[1]
    # quoted text, dd/MM/yyyy date and decimal comma, exactly as the seed's raw files
    assert re.fullmatch(r'100001,"\d{2}/\d{2}/\d{4}",\d+,\d+,[1-5],"\d+,\d{2}","(web|store|mobile)"', first)
    assert files["products"].read_text("ascii").split("\n")[1].startswith('1,"Product 0001","')


def test_domains_and_references(files):
    orders, customers, products = (_rows(files[s]) for s in ("orders", "customers", "products"))
    cust_ids = {int(r["customer_id"]) for r in customers}
    prod_ids = {int(r["product_id"]) for r in products}
    assert cust_ids == set(range(1, 501)) and prod_ids == set(range(1, 201))
    assert {r["region"] for r in customers} == set(gen.REGIONS)
    assert {r["category"] for r in products} <= set(gen.CATEGORIES)
    assert len({r["category"] for r in products}) == len(gen.CATEGORIES)
    assert all(PRICE_RE.fullmatch(r["list_price"]) for r in products)
    list_price = {int(r["product_id"]): float(r["list_price"].replace(",", ".")) for r in products}
    assert [int(r["order_id"]) for r in orders] == list(range(100001, 108801))
    assert {r["channel"] for r in orders} == {"web", "store", "mobile"}
    for r in orders:
        assert int(r["customer_id"]) in cust_ids and int(r["product_id"]) in prod_ids
        assert 1 <= int(r["qty"]) <= 5
        assert DATE_RE.fullmatch(r["order_date"]) and PRICE_RE.fullmatch(r["unit_price"])
        day = datetime.strptime(r["order_date"], "%d/%m/%Y").date()
        assert date(2025, 7, 1) <= day <= date(2025, 9, 30)
        price = float(r["unit_price"].replace(",", "."))
        assert 0.84 * list_price[int(r["product_id"])] <= price <= list_price[int(r["product_id"])]


def test_deterministic_by_seed(tmp_path):
    a = gen.write(tmp_path / "a", seed=3, orders=50, customers=10, products=5)
    b = gen.write(tmp_path / "b", seed=3, orders=50, customers=10, products=5)
    c = gen.write(tmp_path / "c", seed=4, orders=50, customers=10, products=5)
    assert all(a[s].read_bytes() == b[s].read_bytes() for s in a)
    assert a["orders"].read_bytes() != c["orders"].read_bytes()
    assert len(_rows(a["orders"])) == 50


def test_bad_arguments(tmp_path):
    with pytest.raises(UsageError):
        gen.write(tmp_path, orders=0)
