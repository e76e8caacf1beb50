"""Lineage of every pipeline on the local lake: the exact nodes the shipments, transactions and
retail pipelines record, redelivery without forked trees, and a ledger failure that never
fails the data path."""

from __future__ import annotations

import hashlib
import logging
from datetime import UTC, date, datetime

import orjson

from lakeline.adapters.local.lineage import SqliteLedger
from lakeline.lake import Lake
from lakeline.lineage.hooks import node_id, object_root
from lakeline.pipelines.registry import registry
from lakeline.pipelines.retail import job
from lakeline.pipelines.transactions.job import TABLE, execute_run
from lakeline.ports.lineage_model import derived_id
from lakeline.stages.messages import idempotency_key, object_id
from lakeline.tables import iceberg
from tests.functional.helpers import land, query, rec, run, settings


def jsonl(*records: object) -> bytes:
    return b"".join(orjson.dumps(r) + b"\n" for r in records)


def shape(nodes):
    return sorted((n.action_taken, n.parent_id, n.storage_location) for n in nodes)


# ---- shipments: a root per landed object ------------------------------------------------------
def shipments_body() -> bytes:
    good = [rec(shipment_id=f"shp_{i:012d}", event_time=f"2026-01-0{5 + i % 2}T10:00:00Z") for i in range(30)]
    good += [rec("invoice_lines")]
    lines = [orjson.dumps(r) for r in good]
    lines[7] = b'{"broken'  # one reject
    return b"\n".join(lines) + b"\n"


def test_shipments_object_tree(home):
    s = settings(home, ingest__chunk_bytes=2048)
    lake = Lake.open(s)
    body = shipments_body()
    key = "shipments/2026-01-05/a.jsonl"
    land(lake, key, body)
    summary = run(s)
    assert (summary["loaded"], summary["rejected"]) == (30, 1)
    etag = hashlib.md5(body).hexdigest()
    root = object_root(idempotency_key("landing", key, etag))
    oid = object_id("landing", key, etag)
    entry = lake.state.runs()[0]
    chunks = entry["chunks"]
    assert chunks == 3
    raw_id, ingested_id = node_id(root, "RAW_DATA_INPUT"), node_id(root, "FILE_INGESTED")
    landing = str(home / "zones" / "landing" / key)
    silver_files = sorted(i.key for i in lake.store.list("silver") if i.key.endswith(".parquet"))
    # 3 chunks x 2 days of shipments, and the invoice line in the last chunk
    assert len(silver_files) == 7
    counts = lake.lineage.counts(root)
    assert counts == {"BATCH_WRITTEN": 7, "FILE_INGESTED": 1, "RAW_DATA_INPUT": 1, "REJECTS_WRITTEN": 1,
                      "RUN_COMPLETE": 1}
    tree = lake.lineage.tree(root)
    by_action = {n.action_taken: n for n in tree}
    raw = by_action["RAW_DATA_INPUT"]
    assert (raw.node_id, raw.parent_id, raw.storage_location) == (raw_id, root, landing)
    assert raw.attrs == {"pipeline": "shipments", "key": key, "etag": etag, "size": len(body)}
    ing = by_action["FILE_INGESTED"]
    assert (ing.node_id, ing.parent_id, ing.storage_location) == (ingested_id, raw_id, landing)
    assert ing.attrs == {"records": 31, "chunks": 3, "format": "jsonl", "run_key": entry["run_key"]}
    batches = [n for n in tree if n.action_taken == "BATCH_WRITTEN"]
    assert sorted(n.storage_location for n in batches) == \
        sorted(str(home / "zones" / "silver" / k) for k in silver_files)
    assert {n.parent_id for n in batches} == {ingested_id}
    assert sum(n.attrs["rows"] for n in batches) == 30
    assert sorted((n.attrs["record_type"], n.attrs["dt"]) for n in batches) == sorted(
        [("shipments", "2026-01-05")] * 3 + [("shipments", "2026-01-06")] * 3 + [("invoice_lines", "2026-01-05")])
    [rejects] = [n for n in tree if n.action_taken == "REJECTS_WRITTEN"]
    assert rejects.storage_location == str(home / "zones" / "error" / "rejects" / "shipments" /
                                           f"part-{oid}-c00000.parquet")
    assert rejects.attrs == {"chunk": 0, "rows": 1} and rejects.parent_id == ingested_id
    done = by_action["RUN_COMPLETE"]
    assert done.attrs == {"records": 31, "loaded": 30, "rejected": 1, "run_key": entry["run_key"]}
    # the trace from a written file back to its raw file
    invoice = next(n for n in batches if n.attrs["record_type"] == "invoice_lines")
    path = lake.lineage.trace(invoice.node_id)
    assert [n.action_taken for n in path] == ["BATCH_WRITTEN", "FILE_INGESTED", "RAW_DATA_INPUT"]
    assert path[-1].storage_location == landing
    assert query(lake, "SELECT count(*) FROM silver.invoice_lines") == [(invoice.attrs["rows"],)]
    [listed] = lake.lineage.roots()
    assert (listed["root_id"], listed["nodes"], listed["failed"]) == (root, 11, 0)


def test_shipments_redelivery_does_not_fork_and_new_bytes_are_a_new_root(home):
    s = settings(home)
    lake = Lake.open(s)
    body = jsonl(rec())
    land(lake, "shipments/x.jsonl", body)
    run(s)
    land(lake, "shipments/x.jsonl", body)  # the same bytes again: skipped by ingest
    run(s)
    [only] = lake.lineage.roots()
    assert only["counts"] == {"BATCH_WRITTEN": 1, "FILE_INGESTED": 1, "RAW_DATA_INPUT": 1, "RUN_COMPLETE": 1}
    # replay (force) of the same object version records over the same nodes
    from lakeline.events import parse_events, s3_event
    from lakeline.stages.ingest import Ingester, IngestResult

    info = lake.store.head("landing", "shipments/x.jsonl")
    [ev] = parse_events(s3_event("landing", "shipments/x.jsonl", info.size, info.etag))
    Ingester(lake, registry(lake.settings).route).ingest_object(ev, IngestResult(), force=True)
    run(s)
    assert [r["root_id"] for r in lake.lineage.roots()] == [only["root_id"]]
    assert lake.lineage.counts(only["root_id"]) == only["counts"]
    land(lake, "shipments/x.jsonl", jsonl(rec(shipment_id="v2")))
    run(s)
    assert len(lake.lineage.roots()) == 2


def test_shipments_iceberg_batch_nodes_name_the_table(home):
    s = settings(home, pipelines__shipments__table_format="iceberg")
    lake = Lake.open(s)
    land(lake, "shipments/i.jsonl", jsonl(rec(), rec(shipment_id="b", event_time="2026-01-06T01:00:00Z"),
                                          rec("tracking_events")))
    run(s)
    [root] = lake.lineage.roots()
    batches = lake.lineage.by_action("BATCH_WRITTEN", root["root_id"])
    assert sorted((n.storage_location, n.attrs["rows"]) for n in batches) == [
        ("iceberg:silver.shipments", 2), ("iceberg:silver.tracking_events", 1)]
    assert all(n.attrs["format"] == "iceberg" and n.attrs["chunk"] == 0 for n in batches)


def test_refused_object_is_a_failed_branch(home):
    s = settings(home)
    lake = Lake.open(s)
    land(lake, "shipments/broken.json", b'[{"record_type": "shipments",')
    run(s)
    [root] = lake.lineage.roots()
    assert root["counts"] == {"FILE_FAILED": 1, "RAW_DATA_INPUT": 1} and root["failed"] == 1
    [failed] = lake.lineage.by_action("FILE_FAILED")
    assert failed.storage_location == str(home / "zones" / "error" / "objects" / "shipments" / "broken.json")
    assert failed.attrs["reason"] == "MALFORMED_JSON"
    assert failed.attrs["message"].startswith("object is not a valid JSON array")
    assert [n.action_taken for n in lake.lineage.trace(failed.node_id)] == ["FILE_FAILED", "RAW_DATA_INPUT"]


def test_a_failing_ledger_never_fails_the_data_path(home, monkeypatch, caplog):
    def broken(self, *args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(SqliteLedger, "_put", broken)
    monkeypatch.setattr(SqliteLedger, "record_many", broken)
    s = settings(home)
    lake = Lake.open(s)
    land(lake, "shipments/x.jsonl", jsonl(rec(), rec(shipment_id="b")) + b"not json\n")
    with caplog.at_level(logging.WARNING, logger="lakeline.lineage"):
        summary = run(s)
    assert (summary["loaded"], summary["rejected"]) == (2, 1)
    failures = [r.getMessage() for r in caplog.records if r.name == "lakeline.lineage"]
    assert failures == ["lineage object ingest failed; the data path continues",
                        "lineage chunk written failed; the data path continues",
                        "lineage run complete failed; the data path continues"]
    assert query(lake, "SELECT count(*) FROM silver.shipments") == [(2,)]
    assert lake.lineage.roots() == []


def test_missing_lineage_table_switches_lineage_off_once(home, caplog):
    from lakeline.errors import ConfigError
    from lakeline.lineage.hooks import enabled

    lake = Lake.open(settings(home))

    class Missing(SqliteLedger):
        def _put(self, node):
            raise ConfigError("DynamoDB lineage table 'x-lineage' does not exist")

    lake.__dict__["lineage"] = Missing(home / "state" / "other.db")
    land(lake, "shipments/x.jsonl", jsonl(rec()))
    with caplog.at_level(logging.WARNING, logger="lakeline.lineage"):
        from lakeline.stages.ingest import Ingester

        for m in lake.ingest_queue.receive(10):
            Ingester(lake, registry(lake.settings).route).handle_event(orjson.loads(m.body))
    assert not enabled(lake)
    assert [r.getMessage() for r in caplog.records].count(
        "lineage is off for this lake: DynamoDB lineage table 'x-lineage' does not exist") == 1


# ---- transactions: a root per run ---------------------------------------------------------------
HEADER = "TransactionID,CustomerID,TransactionAmount,Currency,TransactionTimestamp\n"
FILE_A = HEADER + (
    "TXN-1,C1,10.50,USD,2024-01-05T10:00:00Z\n"
    "TXN-2,C1,1.00,EUR,2024-02-05T10:00:00Z\n"
    "TXN-3,,1.00,EUR,2024-02-05T10:00:00Z\n"       # NULL_VALUE_ERROR
)
FILE_B = HEADER + (
    "TXN-4,C2,2.00,EUR,2024-02-06T10:00:00Z\n"
    "TXN-5,C2,abc,EUR,2024-02-06T10:00:00Z\n"      # TYPE_ERROR
    "TXN-1,C2,3.00,EUR,2024-02-06T10:00:00Z\n"     # DUPLICATE_FAILURE
)


def test_transactions_run_tree(home):
    lake = Lake.open(settings(home))
    for name, text in (("a.csv", FILE_A), ("b.csv", FILE_B)):
        lake.store.put("landing", f"transactions/{name}", text.encode())
    report = execute_run(lake, ["transactions/a.csv", "transactions/b.csv"],
                         now=datetime(2026, 1, 29, 12, tzinfo=UTC))
    assert (report.valid_rows, report.quarantined_rows) == (3, 3)
    root = derived_id("transactions", TABLE, report.run_id)
    led = lake.lineage
    assert led.counts(root) == {"BATCH_WRITTEN": 3, "RAW_DATA_INPUT": 2, "REJECTS_WRITTEN": 2, "RUN_COMPLETE": 1}
    files = {n.attrs["key"]: n for n in led.children(root, root, action_taken="RAW_DATA_INPUT")}
    a, b = files["transactions/a.csv"], files["transactions/b.csv"]
    assert a.storage_location == str(home / "zones" / "landing" / "transactions" / "a.csv")
    assert (a.attrs["valid_rows"], a.attrs["rejected_rows"]) == (2, 1)
    assert (b.attrs["valid_rows"], b.attrs["rejected_rows"]) == (1, 2)
    folder = {p["month"]: p["run_folder"] for p in report.partitions}
    silver = home / "zones" / "silver"
    assert shape(led.children(root, a.node_id)) == [
        ("BATCH_WRITTEN", a.node_id, str(silver / folder[1])),
        ("BATCH_WRITTEN", a.node_id, str(silver / folder[2])),
        ("REJECTS_WRITTEN", a.node_id, str(home / "zones" / "error" / report.rejects_key)),
    ]
    assert shape(led.children(root, b.node_id)) == [
        ("BATCH_WRITTEN", b.node_id, str(silver / folder[2])),
        ("REJECTS_WRITTEN", b.node_id, str(home / "zones" / "error" / report.rejects_key)),
    ]
    feb_b = next(n for n in led.children(root, b.node_id) if n.action_taken == "BATCH_WRITTEN")
    assert feb_b.attrs["rows"] == 1 and feb_b.attrs["partition"].endswith("year=2024/month=02/schema_v=v1")
    assert [n.action_taken for n in led.trace(feb_b.node_id)] == ["BATCH_WRITTEN", "RAW_DATA_INPUT"]
    [done] = led.by_action("RUN_COMPLETE", root)
    assert done.attrs == {"pipeline": "transactions", "run_id": report.run_id, "input_rows": 6,
                          "valid_rows": 3, "quarantined_rows": 3, "condemned_rows": 0}


# ---- retail: a root per orders file --------------------------------------------------------------
ORDERS = ("order_id,order_date,customer_id,product_id,qty,unit_price,channel\n"
          '1,24/07/2025,10,100,2,"1,50",web\n'
          '2,bad,10,100,1,"1,00",web\n'
          '3,25/07/2025,11,101,1,"2,00",store\n')


def test_retail_batch_tree(home, tmp_path):
    lake = Lake.open(settings(home))
    for name, text in (("customers.csv", "customer_id,region\n10,North\n11,South\n"),
                       ("products.csv", "product_id,category\n100,A\n101,B\n"), ("orders.csv", ORDERS)):
        path = tmp_path / name
        path.write_text(text)
        job.land_retail(lake, path, today=date(2025, 10, 4))
    out = job.run_retail(lake, on_violation="quarantine")
    [batch] = out["batches"]
    root = derived_id("retail", batch["run_id"])
    led = lake.lineage
    assert led.counts(root) == {"BATCH_WRITTEN": 1, "RAW_DATA_INPUT": 1, "REJECTS_WRITTEN": 1}
    [raw] = led.children(root, root)
    assert raw.storage_location == str(home / "zones" / "landing" / "retail" / "orders" /
                                       "ingest_date=2025-10-04" / "orders.csv")
    assert raw.attrs["input_rows"] == 3
    assert raw.attrs["customers_key"] == "retail/customers/ingest_date=2025-10-04/customers.csv"
    assert raw.attrs["products_key"] == "retail/products/ingest_date=2025-10-04/products.csv"
    written = {n.action_taken: n for n in led.children(root, raw.node_id)}
    assert written["BATCH_WRITTEN"].storage_location == "iceberg:retail_silver.orders_silver"
    assert iceberg.load_table(lake, job.TABLE).current_snapshot().snapshot_id == batch["snapshot_id"]
    assert written["BATCH_WRITTEN"].attrs == {"rows": 2, "snapshot_id": batch["snapshot_id"], "appended": True,
                                              "batch_id": batch["run_id"]}
    assert written["REJECTS_WRITTEN"].storage_location == str(home / "zones" / "error" / batch["rejects_key"])
    assert written["REJECTS_WRITTEN"].attrs == {"rows": 1}
    assert [n.action_taken for n in led.trace(written["BATCH_WRITTEN"].node_id)] == \
        ["BATCH_WRITTEN", "RAW_DATA_INPUT"]
