"""The retail lakehouse (seed 004) on the local lake: landing keys and the run log, the DuckDB
transform with its fail-fast checks or quarantine, and the job appending to Iceberg — with
exact figures."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, date, datetime

import pyarrow.parquet as pq
import pytest

from lakeline.errors import DataError, UsageError
from lakeline.lake import Lake
from lakeline.pipelines.retail import gen as gen
from lakeline.pipelines.retail import job, runlog
from lakeline.pipelines.retail.transform import ORDERS_SCHEMA, csv_records, transform_orders
from lakeline.stages.rejects import rejects_schema
from lakeline.tables import iceberg
from tests.functional.helpers import settings

ORDERS = (
    ' Order_ID ,ORDER_DATE, Customer_ID,product_id,QTY,unit_price,channel\n'   # 1 header (messy names)
    '1,24/07/2025,10,100,2,"147,43",web\n'                                     # 2
    '2,"01/08/2025",11,101,3,"5,5","store"\n'                                   # 3 quoted, price 5,5
    '\n'                                                                       # 4 blank: no record
    '3,02/08/2025,12,100,1,"10,00","mo\nbile"\n'                               # 5-6 quoted newline
    '4,03/08/2025,10,999,4,"0,25",web\n'                                       # 7 unknown product
)
CUSTOMERS = "customer_id,customer_name,region\n10,Ann,North\n11,Bob,South\n11,Bob,East\n"
PRODUCTS = 'product_id,category\n100,Electronics\n101,"Home, Garden"\n'


@pytest.fixture
def lake(home):
    return Lake.open(settings(home))


# ---- landing and the run log -------------------------------------------------------------------


def test_landing_key():
    assert runlog.landing_key("orders", "orders.csv", date(2025, 10, 4)) == \
        "retail/orders/ingest_date=2025-10-04/orders.csv"
    assert runlog.source_of("retail/products/ingest_date=2025-10-04/p.csv") == "products"
    with pytest.raises(UsageError):
        runlog.landing_key("returns", "r.csv", date(2025, 10, 4))
    with pytest.raises(UsageError):
        runlog.landing_key("orders", "../x.csv", date(2025, 10, 4))
    with pytest.raises(UsageError):
        runlog.source_of("shipments/a.csv")


def test_run_log_item_fields(lake):
    key = "retail/orders/ingest_date=2025-10-04/orders.csv"
    now = datetime(2025, 10, 4, 21, 24, 24, 987654, tzinfo=UTC)
    item = runlog.log_landing(lake.state, bucket="raw-b", key=key, etag="abc123", size_bytes=42,
                              version_id="v1", now=now)
    dedupe = hashlib.sha256(f"raw-b#{key}#abc123".encode()).hexdigest()[:16]
    assert item is not None
    run_id = item.pop("run_id")
    assert re.fullmatch(r"orders_2025-10-04T21-24-24Z_[0-9A-F]{6}", run_id)
    assert item == {
        "pk": "SRC#orders", "sk": "INGEST#2025-10-04T21:24:24Z#abc123", "source": "orders",
        "bucket": "raw-b", "key": key, "etag": "abc123", "version_id": "v1", "size_bytes": 42,
        "ingest_ts": "2025-10-04T21:24:24Z", "status": "LANDED", "dedupe": dedupe,
    }
    stored = lake.state.get(runlog.RUNLOG_TABLE, "SRC#orders|INGEST#2025-10-04T21:24:24Z#abc123")
    assert stored is not None and stored.data == dict(item, run_id=run_id)
    assert lake.state.get(runlog.DEDUPE_TABLE, dedupe) is not None
    # a duplicate landing (same bucket, key and etag, later) is ignored
    later = datetime(2025, 10, 5, tzinfo=UTC)
    assert runlog.log_landing(lake.state, bucket="raw-b", key=key, etag="abc123", size_bytes=42,
                              now=later) is None
    assert len(runlog.landings(lake.state, "orders")) == 1
    # no etag: "noetag" in sk and in the dedupe string
    other = runlog.log_landing(lake.state, bucket="raw-b", key=key, etag=None, size_bytes=0, now=now)
    assert other is not None and other["sk"] == "INGEST#2025-10-04T21:24:24Z#noetag"
    assert other["dedupe"] == hashlib.sha256(f"raw-b#{key}#noetag".encode()).hexdigest()[:16]
    assert len(runlog.landings(lake.state, "orders")) == 2


def test_run_log_repairs_a_crash_between_claim_and_item(lake):
    key = "retail/customers/ingest_date=2025-10-04/customers.csv"
    item = runlog.log_landing(lake.state, bucket="b", key=key, etag="e", size_bytes=1)
    assert item is not None
    lake.state.delete(runlog.RUNLOG_TABLE, f"{item['pk']}|{item['sk']}")  # the crash
    repaired = runlog.log_landing(lake.state, bucket="b", key=key, etag="e", size_bytes=1)
    assert repaired == item
    assert runlog.log_landing(lake.state, bucket="b", key=key, etag="e", size_bytes=1) is None


def test_land_retail_puts_logs_and_ignores_duplicates(lake, tmp_path):
    path = tmp_path / "orders.csv"
    path.write_text(ORDERS)
    key = job.land_retail(lake, path, today=date(2025, 10, 4))
    assert key == "retail/orders/ingest_date=2025-10-04/orders.csv"
    assert lake.store.get("landing", key) == ORDERS.encode()
    [item] = runlog.landings(lake.state, "orders")
    assert item["etag"] == hashlib.md5(ORDERS.encode()).hexdigest()
    assert item["size_bytes"] == len(ORDERS.encode()) and item["bucket"] == lake.store.bucket("landing")
    assert lake.state.get(job.JOB_TABLE, "pending") is not None  # an orders file triggers a run
    assert job.land_retail(lake, path, today=date(2025, 10, 4)) is None
    path.write_text(ORDERS + '5,03/08/2025,10,100,1,"1,00",web\n')
    with pytest.raises(UsageError, match="immutable"):
        job.land_retail(lake, path, today=date(2025, 10, 4))
    with pytest.raises(UsageError):
        job.land_retail(lake, tmp_path / "x.csv")


# ---- the transform ------------------------------------------------------------------------------


def test_csv_records_line_numbers():
    lines, starts, ends = csv_records(ORDERS.encode())
    assert lines.tolist() == [1, 2, 3, 5, 7]
    data = ORDERS.encode()
    assert data[starts[3]:ends[3]] == b'3,02/08/2025,12,100,1,"10,00","mo\nbile"'
    assert csv_records(b"a\r\n1\r\n")[2].tolist() == [1, 4]


def test_transform_exact_values():
    r = transform_orders(ORDERS.encode(), key="o.csv", customers=CUSTOMERS.encode(),
                         products=PRODUCTS.encode())
    assert r.table.schema == ORDERS_SCHEMA and r.input_rows == 4 and r.rejects.num_rows == 0
    assert r.table.to_pylist() == [
        {"order_id": 1, "order_date": date(2025, 7, 24), "customer_id": 10, "product_id": 100, "qty": 2,
         "unit_price": 147.43, "channel": "web", "region": "North", "category": "Electronics",
         "sales_amount": 2 * 147.43},
        {"order_id": 2, "order_date": date(2025, 8, 1), "customer_id": 11, "product_id": 101, "qty": 3,
         "unit_price": 5.5, "channel": "store", "region": "East", "category": "Home, Garden",
         "sales_amount": 16.5},
        {"order_id": 3, "order_date": date(2025, 8, 2), "customer_id": 12, "product_id": 100, "qty": 1,
         "unit_price": 10.0, "channel": "mo\nbile", "region": None, "category": "Electronics",
         "sales_amount": 10.0},
        {"order_id": 4, "order_date": date(2025, 8, 3), "customer_id": 10, "product_id": 999, "qty": 4,
         "unit_price": 0.25, "channel": "web", "region": "North", "category": None, "sales_amount": 1.0},
    ]
    assert r.table.column("sales_amount").to_pylist()[0] == 294.86


def test_transform_without_lookups_and_bom():
    r = transform_orders(b"\xef\xbb\xbf" + ORDERS.encode(), key="o.csv")
    assert r.rows == 4 and set(r.table.column("region").to_pylist()) == {None}


HEADER = "order_id,order_date,customer_id,product_id,qty,unit_price,channel\n"
VIOLATIONS = [
    # (rows after the header, line, reason, message part)
    ('1,24/07/2025,10,100,1,"1,00",web\n2,2025-07-24,10,100,1,"1,00",web\n', 3, "TIMESTAMP_ERROR",
     "order_date '2025-07-24' does not parse as dd/MM/yyyy"),
    ('1,24/07/2025,10,100,1,"1,00",web\n2,31/02/2025,10,100,1,"1,00",web\n', 3, "TIMESTAMP_ERROR",
     "order_date '31/02/2025'"),
    ('1,24/07/2025,10,100,1,"1,00",web\n,24/07/2025,10,100,1,"1,00",web\n', 3, "NULL_VALUE_ERROR",
     "order_id is null (missing)"),
    ('1,24/07/2025,x,100,1,"1,00",web\n2,24/07/2025,10,100,1,"1,00",web\n', 2, "NULL_VALUE_ERROR",
     "customer_id is null ('x')"),
    ('1,24/07/2025,10,100,1,"1,00",web\n\n2,24/07/2025,10,,1,"1,00",web\n', 4, "NULL_VALUE_ERROR",
     "product_id is null (missing)"),
]


@pytest.mark.parametrize(("rows", "line", "reason", "message"), VIOLATIONS)
def test_violation_fails_fast(rows, line, reason, message):
    with pytest.raises(DataError) as info:
        transform_orders((HEADER + rows).encode(), key="retail/orders/x.csv")
    text = str(info.value)
    assert text.startswith(f"retail/orders/x.csv line {line}: {reason}: ") and message in text
    assert info.value.reason == reason


@pytest.mark.parametrize(("rows", "line", "reason", "message"), VIOLATIONS)
def test_violation_quarantined(rows, line, reason, message):
    data = (HEADER + rows).encode()
    r = transform_orders(data, key="k.csv", on_violation="quarantine", bucket="b", etag="e")
    assert r.rows == 1 and r.input_rows == 2
    assert r.rejects.schema == rejects_schema()
    [rej] = r.rejects.to_pylist()
    assert (rej["pipeline"], rej["bucket"], rej["key"], rej["etag"]) == ("retail", "b", "k.csv", "e")
    assert (rej["line_no"], rej["reason_code"]) == (line, reason) and message in rej["message"]
    assert data[rej["byte_offset"]:].decode().startswith(rej["raw"]) and rej["raw"].count(",") == 7


def test_zero_rows():
    with pytest.raises(DataError, match=r"^o.csv line 1: no data rows"):
        transform_orders(HEADER.encode(), key="o.csv")
    r = transform_orders(HEADER.encode(), key="o.csv", on_violation="quarantine")
    assert r.rows == 0 and r.rejects.column("line_no").to_pylist() == [1]
    assert r.rejects.column("reason_code").to_pylist() == ["SCHEMA_ERROR"]
    with pytest.raises(DataError, match="line 1"):
        transform_orders(b"", key="o.csv", on_violation="quarantine")


def test_missing_column_and_bad_policy():
    with pytest.raises(DataError, match="missing required column"):
        transform_orders(b"order_id,order_date\n1,24/07/2025\n", key="o.csv", on_violation="quarantine")
    with pytest.raises(UsageError):
        transform_orders(ORDERS.encode(), key="o.csv", on_violation="skip")  # type: ignore[arg-type]


def test_quarantine_mixed_exact_lines():
    rows = ('1,24/07/2025,10,100,1,"1,00",web\n'        # 2 ok
            '2,99/07/2025,10,100,1,"1,00",web\n'        # 3 date
            '3,24/07/2025,10,100,1,"1,00","a\nb"\n'     # 4-5 ok
            '4,24/07/2025,10,,1,"1,00",web\n'           # 6 product
            '5,,,100,1,"1,00",web\n')                   # 7 date first
    r = transform_orders((HEADER + rows).encode(), key="k.csv", on_violation="quarantine")
    assert r.table.column("order_id").to_pylist() == [1, 3]
    assert [(x["line_no"], x["reason_code"]) for x in r.rejects.to_pylist()] == [
        (3, "TIMESTAMP_ERROR"), (6, "NULL_VALUE_ERROR"), (7, "TIMESTAMP_ERROR")]


# ---- the job -----------------------------------------------------------------------------------


def _land(lake, tmp_path, name, text, day=date(2025, 10, 4)):
    path = tmp_path / name
    path.write_text(text)
    return job.land_retail(lake, path, today=day)


def test_run_retail_quarantine_writes_rejects_and_fail_keeps_pending(lake, tmp_path):
    bad = HEADER + '1,24/07/2025,10,100,2,"1,50",web\n2,bad,10,100,1,"1,00",web\n'
    _land(lake, tmp_path, "orders.csv", bad)
    failed = job.run_retail(lake)
    [failure] = failed["failed"]
    assert (failed["status"], failed["batches"], failed["rows"]) == ("COMPLETED", [], 0)
    assert re.match(r"DataError: retail/orders/.*/orders.csv line 3: TIMESTAMP_ERROR", failure["error"])
    assert len(job.pending_batches(lake)) == 1
    assert lake.state.get(job.JOB_TABLE, "lease") is None  # released after the failure
    out = job.run_retail(lake, on_violation="quarantine")
    [batch] = out["batches"]
    assert (out["status"], out["rows"], batch["rejected"], batch["appended"]) == ("COMPLETED", 1, 1, True)
    rejects = pq.read_table(lake.store.local_path("error", batch["rejects_key"])).to_pylist()
    assert [(r["line_no"], r["reason_code"], r["pipeline"]) for r in rejects] == [
        (3, "TIMESTAMP_ERROR", "retail")]
    assert job.pending_batches(lake) == []


def test_run_is_skipped_and_coalesced_while_active(lake, tmp_path, monkeypatch):
    _land(lake, tmp_path, "orders_a.csv", HEADER + '1,24/07/2025,10,100,2,"1,50",web\n')
    calls = []
    real = job._process

    def process(lk, batch, policy):
        if not calls:
            # a new orders file lands while this run is active: its own run is skipped
            assert _land(lake, tmp_path, "orders_b.csv", HEADER + '2,25/07/2025,10,100,1,"2,00",web\n')
            assert job.run_retail(lake)["status"] == "SKIPPED_ACTIVE"
        calls.append(batch["key"])
        return real(lk, batch, policy)

    monkeypatch.setattr(job, "_process", process)
    out = job.run_retail(lake)
    assert out["status"] == "COMPLETED" and out["passes"] == 2 and out["rows"] == 2
    assert [c.rsplit("/", 1)[1] for c in calls] == ["orders_a.csv", "orders_b.csv"]
    assert lake.state.get(job.JOB_TABLE, "pending") is None
    assert job.run_retail(lake)["batches"] == []


def test_trigger_after_lease_release_is_served(lake, tmp_path, monkeypatch):
    _land(lake, tmp_path, "orders_a.csv", HEADER + '1,24/07/2025,10,100,2,"1,50",web\n')
    real_delete = lake.state.delete
    fired = []

    def delete(table, key, **kw):
        if table == job.JOB_TABLE and key == "lease" and not fired:
            fired.append(1)  # a trigger lands between the last pending check and the release
            _land(lake, tmp_path, "orders_b.csv", HEADER + '2,25/07/2025,10,100,1,"2,00",web\n')
        return real_delete(table, key, **kw)

    monkeypatch.setattr(lake.state, "delete", delete)
    out = job.run_retail(lake)
    assert [b["key"].rsplit("/", 1)[1] for b in out["batches"]] == ["orders_a.csv", "orders_b.csv"]


def test_end_to_end_gen_land_run(lake, tmp_path):
    files = gen.write(tmp_path / "gen", seed=1)
    for source in ("products", "customers", "orders"):
        assert job.land_retail(lake, files[source], today=date(2025, 10, 4)) is not None
    more = gen.write(tmp_path / "gen2", seed=2, orders=1200)
    # a second orders batch with its own order ids
    text = more["orders"].read_text().replace("\n1", "\n9", -1)
    (tmp_path / "orders_2.csv").write_text(text)
    assert job.land_retail(lake, tmp_path / "orders_2.csv", today=date(2025, 10, 5)) is not None

    out = job.run_retail(lake)
    assert out["status"] == "COMPLETED" and out["rows"] == 10_000
    assert [(b["input_rows"], b["rows"], b["rejected"], b["appended"]) for b in out["batches"]] == [
        (8800, 8800, 0, True), (1200, 1200, 0, True)]
    run_ids = [i["run_id"] for i in runlog.landings(lake.state, "orders")]
    assert [b["run_id"] for b in out["batches"]] == run_ids

    table = iceberg.load_table(lake, job.TABLE)
    assert [f.name for f in table.schema().fields] == ORDERS_SCHEMA.names
    assert [(f.name, str(f.transform)) for f in table.spec().fields] == [("order_date_day", "day")]
    snaps = list(iceberg.ancestry(table))
    assert len(snaps) == 2
    assert {iceberg.find_batch(table, r) for r in run_ids} == {s.snapshot_id for s in snaps}

    import duckdb
    data = table.scan().to_arrow()
    con = duckdb.connect()
    con.register("t", data)
    rows, sales, recompute, no_region, no_category, customers, products = con.execute(
        "SELECT count(*), round(sum(sales_amount), 2), round(sum(qty * unit_price), 2), "
        "count(*) FILTER (WHERE region IS NULL), count(*) FILTER (WHERE category IS NULL), "
        "count(DISTINCT customer_id), count(DISTINCT product_id) FROM t").fetchone()
    assert rows == 10_000 and sales == recompute
    assert (no_region, no_category) == (0, 0)
    assert customers <= 500 and products <= 200
    assert con.execute("SELECT count(*) FROM t WHERE sales_amount <> qty * unit_price").fetchone() == (0,)

    again = job.run_retail(lake)
    assert (again["status"], again["batches"], again["rows"]) == ("COMPLETED", [], 0)
    # even a lost batch record does not append twice (Iceberg batch ids)
    lake.state.delete(job.BATCHES_TABLE, run_ids[0])
    redo = job.run_retail(lake)
    assert [(b["run_id"], b["appended"]) for b in redo["batches"]] == [(run_ids[0], False)]
    table.refresh()
    assert len(list(iceberg.ancestry(table))) == 2
    assert table.scan().to_arrow().num_rows == 10_000
