"""A totesys-shaped OLTP database (specs §2) to extract from: create and fill it, then mutate it.

``create(url, scale=N)`` makes the eleven tables (SQLite file or PostgreSQL) and fills them,
deterministically by seed. ``N`` is the number of sales orders; the rest follows from it::

    currency 3 (GBP, USD, EUR)     department 8            payment_type 4 (the spec's names)
    design   max(10, N/200)        address max(30, N/1000) staff max(20, N/5000)
    counterparty max(20, N/2000)   sales_order N           purchase_order max(1, N/10)
    transaction: one per purchase order and per sales order whose id % 4 == 1
    payment: one per transaction (SALES_RECEIPT for sales, PURCHASE_PAYMENT for purchases)

Timestamps start at 2022-11-03 14:20:49.962 (totesys' own first day). Reference tables are
created in one instant (many rows share a ``last_updated``, as in the real database); orders
are spread over a year, a tenth of them updated after creation.

``mutate(url)`` applies one realistic round after the newest ``last_updated`` in the database
(plus one day): new sales and purchase orders with their transactions and payments, updates
of existing orders and payments, a renamed counterparty, a counterparty moved to a new legal
address, a changed address phone, a staff member's new e-mail and department, a department's
new location and a renamed design. It returns exact counts of what it inserted and updated.

Bulk writes: PostgreSQL ``COPY … FROM STDIN`` of Arrow-written CSV, SQLite ``executemany`` in
one transaction. Values are drawn with numpy and assembled with Arrow kernels.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any, Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from sqlalchemy import Connection, Engine, bindparam, func, inspect, select, update
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.schema import AddConstraint, CreateIndex, CreateTable

from lakeline import secrets
from lakeline.errors import TransientError, UsageError
from lakeline.pipelines.totesys import schema
from lakeline.pipelines.totesys.source import engine_for, parse_url

__all__ = ["START", "create", "mutate", "sizes"]

START: Final = datetime(2022, 11, 3, 14, 20, 49, 962000)
SPAN: Final = timedelta(days=365)
CURRENCIES: Final = ("GBP", "USD", "EUR")
DEPARTMENTS: Final = (
    ("Sales", "Manchester"), ("Purchasing", "Manchester"), ("Production", "Leeds"), ("Dispatch", "Leeds"),
    ("Finance", "Manchester"), ("Facilities", "Manchester"), ("Communications", "Leeds"), ("HR", "Leeds"),
)
PAYMENT_TYPES: Final = ("SALES_RECEIPT", "SALES_REFUND", "PURCHASE_PAYMENT", "PURCHASE_REFUND")
FIRST_NAMES: Final = ("Jeremie", "Deron", "Jeanette", "Ana", "Magdalena", "Korey", "Raphael", "Oswaldo",
                      "Brody", "Jazmyn", "Meda", "Imani", "Stan", "Rigoberto", "Tom", "Pierre")
LAST_NAMES: Final = ("Franey", "Beier", "Erdman", "Glover", "Zieme", "Kreiger", "Rippin", "Bergnaum",
                     "Ratke", "Kuhn", "Cremin", "Walsh", "Lehner", "VonRueden", "Gutmann", "Sauer")
COMPANIES: Final = ("Fahey and Sons", "Leannon, Predovic and Morar", "Armstrong Inc", "Kohler Inc",
                    "Frami, Yundt and Macejkovic", "Mraz LLC", "Padberg, Lueilwitz and Johnson",
                    "Grant - Lakin", "Price LLC", "Bosco - Grimes", "Jacobs Inc", "Hagenes LLC")
CITIES: Final = (("New Patienceburgh", "Avon", "United States of America"),
                 ("Aliso Viejo", "Buckinghamshire", "San Marino"), ("Lake Charles", None, "Samoa"),
                 ("Olsonside", "Cambridgeshire", "Republic of Korea"), ("Fort Shadburgh", None, "Turkey"),
                 ("Kendraburgh", "Bedfordshire", "Saint Helena"), ("Suffolk", "Borders", "Mongolia"))
DESIGNS: Final = ("Wooden", "Bronze", "Granite", "Soft", "Frozen", "Steel", "Cotton", "Plastic", "Rubber",
                  "Concrete", "Fresh", "Metal")
ITEMS: Final = ("ZDOI5EA", "QLZLEXR", "AN3D85L", "I9MET53", "9ZGQ0X3", "8KQ6QGZ", "4ZJT1P2", "N3N2KQF")


def sizes(scale: int) -> dict[str, int]:
    """Rows per table for ``scale`` sales orders (transaction and payment: see the module doc)."""
    if scale < 1:
        raise UsageError("--scale must be >= 1")
    n_po = max(1, scale // 10)
    n_tx = (scale + 3) // 4 + n_po
    return {
        "currency": 3, "department": 8, "design": max(10, scale // 200), "address": max(30, scale // 1000),
        "payment_type": 4, "staff": max(20, scale // 5000), "counterparty": max(20, scale // 2000),
        "sales_order": scale, "purchase_order": n_po, "transaction": n_tx, "payment": n_tx,
    }


# ---- value helpers (vectorised) ------------------------------------------------------------
_join: Any = pc.binary_join_element_wise  # the stubs' overloads reject mixed scalar/array arguments


def _pick(rng: np.random.Generator, values: tuple[Any, ...], n: int) -> Any:
    return pa.array(np.asarray(values, dtype=object)[rng.integers(0, len(values), n)])


def _ids(first: int, n: int) -> Any:
    return pa.array(np.arange(first, first + n, dtype=np.int64))


def _fmt(template_ids: Any, prefix: str, suffix: str = "") -> Any:
    return _join(prefix, pc.cast(template_ids, pa.string()), suffix, "")


def _money(rng: np.random.Generator, n: int, low: int, high: int) -> Any:
    cents = pc.utf8_lpad(pa.array(rng.integers(low, high, n)).cast(pa.string()), 3, "0")
    text = _join(pc.utf8_slice_codeunits(cents, 0, -2),
                                       pc.utf8_slice_codeunits(cents, -2), ".")
    return text.cast(pa.decimal128(10, 2))


def _stamps(rng: np.random.Generator, n: int, start: datetime, span: timedelta, *,
            ordered: bool) -> np.ndarray:
    offsets = rng.integers(0, int(span.total_seconds() * 1_000_000), n)
    if ordered:
        offsets.sort()
    return np.datetime64(start, "us") + offsets.astype("timedelta64[us]")


def _dates(stamps: np.ndarray, rng: np.random.Generator, low: int, high: int) -> Any:
    days = stamps.astype("datetime64[D]") + rng.integers(low, high, len(stamps)).astype("timedelta64[D]")
    return pa.array(days.astype(str))


def _table(name: str, cols: dict[str, Any]) -> pa.Table:
    target = schema.ARROW_TYPES[name]
    return pa.table([pa.array(cols[f.name], f.type) if not isinstance(cols[f.name], pa.Array)
                     else cols[f.name].cast(f.type) for f in target], schema=target)


def _same(ts: datetime, n: int) -> np.ndarray:
    return np.full(n, np.datetime64(ts, "us"))


def _build_reference(rng: np.random.Generator, n: dict[str, int]) -> dict[str, pa.Table]:
    out: dict[str, pa.Table] = {}
    st = START
    out["currency"] = _table("currency", {"currency_id": _ids(1, 3), "currency_code": list(CURRENCIES),
                                          "created_at": _same(st, 3), "last_updated": _same(st, 3)})
    out["department"] = _table("department", {
        "department_id": _ids(1, 8), "department_name": [d for d, _ in DEPARTMENTS],
        "location": [loc for _, loc in DEPARTMENTS], "manager": list(_pick(rng, FIRST_NAMES, 8).to_pylist()),
        "created_at": _same(st, 8), "last_updated": _same(st, 8)})
    nd = n["design"]
    ids = _ids(1, nd)
    names = _pick(rng, DESIGNS, nd)
    out["design"] = _table("design", {
        "design_id": ids, "design_name": names,
        "file_location": _pick(rng, ("/usr", "/private", "/System"), nd),
        "file_name": _join(pc.utf8_lower(names), _fmt(ids, "-", ".json"), ""),
        "created_at": _same(st, nd), "last_updated": _same(st, nd)})
    out["address"] = _address(rng, 1, n["address"], _same(st, n["address"]))
    out["payment_type"] = _table("payment_type", {
        "payment_type_id": _ids(1, 4), "payment_type_name": list(PAYMENT_TYPES),
        "created_at": _same(st, 4), "last_updated": _same(st, 4)})
    ns = n["staff"]
    sids = _ids(1, ns)
    first, last = _pick(rng, FIRST_NAMES, ns), _pick(rng, LAST_NAMES, ns)
    out["staff"] = _table("staff", {
        "staff_id": sids, "first_name": first, "last_name": last,
        "department_id": pa.array(rng.integers(1, 9, ns)),
        "email_address": _join(pc.utf8_lower(first), ".", pc.utf8_lower(last),
                                                     _fmt(sids, "", "@terrifictotes.com"), ""),
        "created_at": _same(st, ns), "last_updated": _same(st, ns)})
    nc = n["counterparty"]
    out["counterparty"] = _table("counterparty", {
        "counterparty_id": _ids(1, nc),
        "counterparty_legal_name": _join(_pick(rng, COMPANIES, nc), _fmt(_ids(1, nc), " #"), ""),
        "legal_address_id": pa.array(rng.integers(1, n["address"] + 1, nc)),
        "commercial_contact": _pick(rng, (*FIRST_NAMES, None), nc),
        "delivery_contact": _pick(rng, (*LAST_NAMES, None), nc),
        "created_at": _same(st, nc), "last_updated": _same(st, nc)})
    return out


def _address(rng: np.random.Generator, first: int, n: int, stamps: np.ndarray) -> pa.Table:
    ids = _ids(first, n)
    city = rng.integers(0, len(CITIES), n)
    return _table("address", {
        "address_id": ids, "address_line_1": _fmt(ids, "", " Rohan Trafficway"),
        "address_line_2": _pick(rng, ("Flat 1", "Suite 20", None), n),
        "district": [CITIES[i][1] for i in city], "city": [CITIES[i][0] for i in city],
        "postal_code": _fmt(pa.array(rng.integers(10000, 99999, n)), "", "-"),
        "country": [CITIES[i][2] for i in city],
        "phone": _fmt(pa.array(rng.integers(1000000, 9999999, n)), "1803 "),
        "created_at": stamps, "last_updated": stamps})


def _orders(rng: np.random.Generator, n: dict[str, int], first_so: int, n_so: int, first_po: int,
            n_po: int, start: datetime, span: timedelta, revise: float) -> dict[str, pa.Table]:
    """Sales and purchase orders, their transactions and payments (new ids from the firsts)."""
    out: dict[str, pa.Table] = {}
    created = _stamps(rng, n_so, start, span, ordered=True)
    updated = created.copy()
    later = rng.random(n_so) < revise
    bump = rng.integers(1, 30 * 86_400_000_000, n_so).astype("timedelta64[us]")
    updated[later] = np.minimum(created[later] + bump[later], np.datetime64(start + span, "us"))
    so_ids = _ids(first_so, n_so)
    out["sales_order"] = _table("sales_order", {
        "sales_order_id": so_ids, "design_id": pa.array(rng.integers(1, n["design"] + 1, n_so)),
        "staff_id": pa.array(rng.integers(1, n["staff"] + 1, n_so)),
        "counterparty_id": pa.array(rng.integers(1, n["counterparty"] + 1, n_so)),
        "units_sold": pa.array(rng.integers(1000, 100000, n_so)), "unit_price": _money(rng, n_so, 200, 400),
        "currency_id": pa.array(rng.integers(1, 4, n_so)),
        "agreed_delivery_date": _dates(created, rng, 2, 10),
        "agreed_payment_date": _dates(created, rng, 0, 14),
        "agreed_delivery_location_id": pa.array(rng.integers(1, n["address"] + 1, n_so)),
        "created_at": created, "last_updated": updated})
    po_created = _stamps(rng, n_po, start, span, ordered=True)
    po_ids = _ids(first_po, n_po)
    out["purchase_order"] = _table("purchase_order", {
        "purchase_order_id": po_ids, "staff_id": pa.array(rng.integers(1, n["staff"] + 1, n_po)),
        "counterparty_id": pa.array(rng.integers(1, n["counterparty"] + 1, n_po)),
        "item_code": _pick(rng, ITEMS, n_po), "item_quantity": pa.array(rng.integers(1, 1000, n_po)),
        "item_unit_price": _money(rng, n_po, 100, 100000), "currency_id": pa.array(rng.integers(1, 4, n_po)),
        "agreed_delivery_date": _dates(po_created, rng, 1, 7),
        "agreed_payment_date": _dates(po_created, rng, 1, 7),
        "agreed_delivery_location_id": pa.array(rng.integers(1, n["address"] + 1, n_po)),
        "created_at": po_created, "last_updated": po_created})
    sale = (so_ids.to_numpy() % 4) == 1
    tx_so = so_ids.to_numpy()[sale]
    tx_created = np.concatenate([created[sale], po_created])
    n_tx = len(tx_so) + n_po
    first_tx = n["transaction"] + 1
    tx_ids = _ids(first_tx, n_tx)
    is_sale = np.arange(n_tx) < len(tx_so)
    out["transaction"] = _table("transaction", {
        "transaction_id": tx_ids, "transaction_type": np.where(is_sale, "SALE", "PURCHASE").astype(object),
        "sales_order_id": pa.array(np.concatenate([tx_so, np.zeros(n_po, np.int64)]), mask=~is_sale),
        "purchase_order_id": pa.array(np.concatenate([np.zeros(len(tx_so), np.int64), po_ids.to_numpy()]),
                                      mask=is_sale),
        "created_at": tx_created, "last_updated": tx_created})
    cp = np.concatenate([out["sales_order"]["counterparty_id"].to_numpy()[sale],
                         out["purchase_order"]["counterparty_id"].to_numpy()])
    cur = np.concatenate([out["sales_order"]["currency_id"].to_numpy()[sale],
                          out["purchase_order"]["currency_id"].to_numpy()])
    out["payment"] = _table("payment", {
        "payment_id": _ids(n["payment"] + 1, n_tx), "transaction_id": tx_ids, "counterparty_id": cp,
        "payment_amount": _money(rng, n_tx, 100, 10_000_000), "currency_id": cur,
        "payment_type_id": np.where(is_sale, 1, 3).astype(np.int64), "paid": rng.random(n_tx) < 0.5,
        "payment_date": _dates(tx_created, rng, 0, 30),
        "company_ac_number": pa.array(rng.integers(10_000_000, 99_999_999, n_tx)),
        "counterparty_ac_number": pa.array(rng.integers(10_000_000, 99_999_999, n_tx)),
        "created_at": tx_created, "last_updated": tx_created})
    return out


# ---- writing ----------------------------------------------------------------------------------
def _as_text_stamps(t: pa.Table) -> pa.Table:
    cols = [pc.strftime(c, format="%Y-%m-%d %H:%M:%S") if pa.types.is_timestamp(c.type) else c
            for c in t.columns]
    return pa.table(cols, names=t.column_names)


def _insert(conn: Connection, name: str, t: pa.Table) -> None:
    if t.num_rows == 0:
        return
    t = _as_text_stamps(t)
    quoted = ", ".join(f'"{c}"' for c in t.column_names)
    raw = conn.connection.driver_connection
    assert raw is not None
    if conn.dialect.name == "postgresql":
        buf = io.BytesIO()
        pacsv.write_csv(t, buf, pacsv.WriteOptions(include_header=False, batch_size=65536))
        with raw.cursor() as cur, cur.copy(f'COPY "{name}" ({quoted}) FROM STDIN (FORMAT csv)') as cp:
            cp.write(buf.getbuffer())
        return
    cols = [pc.cast(c, pa.float64()) if pa.types.is_decimal(c.type) else c for c in t.columns]
    rows = zip(*(c.to_pylist() for c in cols), strict=True)
    marks = ", ".join("?" for _ in cols)
    raw.executemany(f'INSERT INTO "{name}" ({quoted}) VALUES ({marks})', rows)


def _counts(conn: Connection) -> dict[str, int]:
    return {name: int(conn.execute(select(func.count()).select_from(schema.table(name))).scalar_one())
            for name in schema.TABLES}


def create(url: str, *, scale: int = 1000, seed: int = 0) -> dict[str, int]:
    """Create the totesys tables at ``url`` and fill them for ``scale`` sales orders.

    Returns the row count of each table. Refuses a database that already holds sales orders.
    """
    n = sizes(scale)
    engine = engine_for(parse_url(url))
    try:
        with _reachable(url):
            return _create(engine, n, seed)
    finally:
        engine.dispose()


def _create(engine: Engine, n: dict[str, int], seed: int) -> dict[str, int]:
    """Create and fill the tables on ``engine`` (see :func:`create`)."""
    # PostgreSQL bulk fill: tables first, then indexes and foreign keys, each validated in one
    # pass instead of one trigger call per row (6x faster at 1M sales orders)
    deferred = engine.dialect.name == "postgresql" and not inspect(engine).has_table("sales_order")
    with engine.begin() as conn:
        if deferred:
            for t in schema.METADATA.sorted_tables:
                conn.execute(CreateTable(t, include_foreign_key_constraints=[]))
        else:
            schema.METADATA.create_all(conn)
        if conn.execute(select(func.count()).select_from(schema.table("sales_order"))).scalar_one():
            raise UsageError(f"{engine.url.render_as_string(hide_password=True)} already holds totesys "
                             "data; use --mutate for a new round of changes")
        rng = np.random.default_rng(seed)
        tables = _build_reference(rng, n)
        empty = dict.fromkeys(("transaction", "payment"), 0)
        tables.update(_orders(rng, {**n, **empty}, 1, n["sales_order"], 1, n["purchase_order"], START,
                              SPAN, revise=0.1))
        for name in schema.TABLES:
            _insert(conn, name, tables[name])
        if deferred:
            for t in schema.METADATA.sorted_tables:
                for index in t.indexes:
                    conn.execute(CreateIndex(index))
                for fk in t.foreign_key_constraints:
                    conn.execute(AddConstraint(fk))
        return _counts(conn)


@contextlib.contextmanager
def _reachable(url: str) -> Iterator[None]:
    """A database that cannot be reached (refused, missing, wrong credentials) is one clear,
    masked line (a TransientError: exit 1), not a driver traceback."""
    try:
        yield
    except (OperationalError, InterfaceError) as exc:
        raise TransientError(f"{secrets.mask_url(url)}: cannot reach the database: "
                             f"{secrets.mask(str(exc.orig or exc).splitlines()[0])}") from None


def mutate(url: str, *, seed: int = 0) -> dict[str, Any]:
    """Apply one round of inserts and updates, all later than anything in the database.

    Returns ``{"round_start", "inserted": {table: n}, "updated": {table: n}, "counts": {…}}``.
    """
    engine = engine_for(parse_url(url))
    try:
        with _reachable(url), engine.begin() as conn:
            return _mutate(conn, seed)
    finally:
        engine.dispose()


def _mutate(conn: Connection, seed: int) -> dict[str, Any]:
    counts = _counts(conn)
    if counts["sales_order"] == 0:
        raise UsageError("the database holds no totesys data; create it first: lakeline gen totesys --db URL")
    newest = max(conn.execute(select(func.max(schema.table(t).c.last_updated))).scalar_one()
                 for t in schema.TABLES)
    t0 = (newest if isinstance(newest, datetime) else datetime.fromisoformat(str(newest))) + timedelta(days=1)
    t0 = t0.replace(microsecond=0)
    rng = np.random.default_rng([seed, counts["sales_order"]])
    n_so = counts["sales_order"]
    k = max(5, n_so // 100)
    u = max(3, n_so // 200)
    ins: dict[str, int] = dict.fromkeys(schema.TABLES, 0)
    upd: dict[str, int] = dict.fromkeys(schema.TABLES, 0)

    def stamp(i: int) -> datetime:
        return t0 + timedelta(seconds=i)

    # reference data: one new address and design; a handful of updates at one shared instant
    new_addr = counts["address"] + 1
    _insert(conn, "address", _address(rng, new_addr, 1, _same(t0, 1)))
    ins["address"] = 1
    design = schema.table("design")
    _insert(conn, "design", _table("design", {
        "design_id": [counts["design"] + 1], "design_name": ["Recycled"], "file_location": ["/usr/local"],
        "file_name": [f"recycled-{counts['design'] + 1}.json"], "created_at": _same(t0, 1),
        "last_updated": _same(t0, 1)}))
    ins["design"] = 1
    cp, addr, staff, dept = (schema.table(t) for t in ("counterparty", "address", "staff", "department"))
    renamed = int(rng.integers(1, counts["counterparty"] + 1))
    moved = renamed % counts["counterparty"] + 1
    conn.execute(update(cp).where(cp.c.counterparty_id == renamed).values(
        counterparty_legal_name=cp.c.counterparty_legal_name + " Holdings", last_updated=t0))
    conn.execute(update(cp).where(cp.c.counterparty_id == moved).values(
        legal_address_id=new_addr, last_updated=t0))
    upd["counterparty"] = 2
    legal = conn.execute(select(cp.c.legal_address_id).where(cp.c.counterparty_id == renamed)).scalar_one()
    conn.execute(update(addr).where(addr.c.address_id == legal).values(
        phone=f"1803 {int(rng.integers(1000000, 9999999))}", last_updated=t0))
    upd["address"] = 1
    who = int(rng.integers(1, counts["staff"] + 1))
    conn.execute(update(staff).where(staff.c.staff_id == who).values(
        email_address=f"staff{who}.r{counts['sales_order']}@terrifictotes.com",
        department_id=staff.c.department_id % 8 + 1, last_updated=t0))
    upd["staff"] = 1
    moved_dept = int(rng.integers(1, 9))
    conn.execute(update(dept).where(dept.c.department_id == moved_dept).values(
        location=f"Floor {counts['sales_order'] % 7 + 1}, Leeds", last_updated=t0))
    upd["department"] = 1
    renamed_design = int(rng.integers(1, counts["design"] + 1))
    conn.execute(update(design).where(design.c.design_id == renamed_design).values(
        design_name=design.c.design_name + " Deluxe", last_updated=t0))
    upd["design"] = 1

    # new orders in the hour after t0, with their transactions and payments
    n_po = max(1, k // 10)
    sizes_now = {**counts, "design": counts["design"] + 1, "address": counts["address"] + 1}
    new = _orders(rng, sizes_now, counts["sales_order"] + 1, k, counts["purchase_order"] + 1, n_po,
                  t0, timedelta(hours=1), revise=0.0)
    for name in ("sales_order", "purchase_order", "transaction", "payment"):
        _insert(conn, name, new[name])
        ins[name] = new[name].num_rows

    # updates of existing orders and payments, spread over the same hour (some share a second)
    so = schema.table("sales_order")
    chosen = np.sort(rng.choice(counts["sales_order"], size=min(u, counts["sales_order"]), replace=False) + 1)
    secs = rng.integers(0, 3600, len(chosen))
    conn.execute(update(so).where(so.c.sales_order_id == bindparam("b_id")).values(
        units_sold=so.c.units_sold + bindparam("b_d"), last_updated=bindparam("b_t")),
        [{"b_id": int(i), "b_d": int(d), "b_t": stamp(int(s))}
         for i, d, s in zip(chosen, rng.integers(1, 50, len(chosen)), secs, strict=True)])
    upd["sales_order"] = len(chosen)
    po = schema.table("purchase_order")
    n_po_upd = min(max(1, u // 10), counts["purchase_order"])
    po_chosen = np.sort(rng.choice(counts["purchase_order"], size=n_po_upd, replace=False) + 1)
    conn.execute(update(po).where(po.c.purchase_order_id == bindparam("b_id")).values(
        item_quantity=po.c.item_quantity + 1, last_updated=bindparam("b_t")),
        [{"b_id": int(i), "b_t": stamp(int(s))}
         for i, s in zip(po_chosen, rng.integers(0, 3600, len(po_chosen)), strict=True)])
    upd["purchase_order"] = len(po_chosen)
    pay = schema.table("payment")
    unpaid = [int(r) for r in conn.execute(select(pay.c.payment_id).where(
        pay.c.paid.is_(False), pay.c.payment_id <= counts["payment"]).order_by(pay.c.payment_id)).scalars()]
    n_settle = min(max(1, u // 2), len(unpaid))
    settle = sorted(int(x) for x in rng.choice(unpaid, size=n_settle, replace=False)) if unpaid else []
    if settle:
        conn.execute(update(pay).where(pay.c.payment_id == bindparam("b_id")).values(
            paid=True, last_updated=bindparam("b_t")),
            [{"b_id": i, "b_t": stamp(int(s))} for i, s in zip(settle, rng.integers(0, 3600, len(settle)),
                                                                 strict=True)])
    upd["payment"] = len(settle)
    return {"round_start": t0.isoformat(), "inserted": ins, "updated": upd, "counts": _counts(conn),
            "changed": {t: ins[t] + upd[t] for t in schema.TABLES}}
