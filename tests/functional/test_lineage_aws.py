"""The pipelines' lineage on the aws profile (moto server over HTTP, like tests/integration):
`Lake.lineage` opens the DynamoDB ledger named by `aws.lineage_table` (default
`<lake.name>-lineage`), shipments record their tree with s3:// locations, and a lake without
the table still loads its data (lineage switches itself off after one warning)."""

from __future__ import annotations

import hashlib
import logging

import orjson

from lakeline.adapters.aws.lineage import DynamoLedger
from lakeline.lake import Lake
from lakeline.lineage.hooks import node_id, object_root
from lakeline.stages.messages import idempotency_key
from tests.aws_server import boto_client, moto_endpoint  # noqa: F401
from tests.functional.helpers import land, rec, run
from tests.integration.aws_lake import aws_settings, provision


def body() -> bytes:
    rows = [rec(shipment_id=f"s{i}", event_time=f"2026-01-0{5 + i % 2}T01:00:00Z") for i in range(10)]
    return b"".join(orjson.dumps(r) + b"\n" for r in rows) + b"not json\n"


def test_shipments_lineage_on_dynamodb(moto_endpoint, tmp_path):  # noqa: F811
    overrides = provision(moto_endpoint)
    name = overrides["lake.name"]  # provision() creates "<name>-lineage", as the template does
    s = aws_settings(tmp_path / "ws", overrides)
    lake = Lake.open(s)
    assert isinstance(lake.lineage.inner, DynamoLedger) and lake.lineage.inner.table_name == f"{name}-lineage"
    data = body()
    land(lake, "shipments/a.jsonl", data)
    summary = run(s)
    assert (summary["loaded"], summary["rejected"]) == (10, 1)
    bucket = f"{name}-landing"
    root = object_root(idempotency_key(bucket, "shipments/a.jsonl", hashlib.md5(data).hexdigest()))
    [listed] = lake.lineage.roots()
    assert listed["root_id"] == root
    assert listed["counts"] == {"BATCH_WRITTEN": 2, "FILE_INGESTED": 1, "RAW_DATA_INPUT": 1,
                                "REJECTS_WRITTEN": 1, "RUN_COMPLETE": 1}
    assert listed["first_node"]["storage_location"] == f"s3://{bucket}/shipments/a.jsonl"
    batches = lake.lineage.children(root, node_id(root, "FILE_INGESTED"), action_taken="BATCH_WRITTEN")
    assert sorted(b.storage_location.rsplit("/", 2)[-2] for b in batches) == ["dt=2026-01-05", "dt=2026-01-06"]
    assert all(b.storage_location.startswith(f"s3://{name}-silver/shipments/") for b in batches)
    assert [n.action_taken for n in lake.lineage.trace(batches[0].node_id)] == \
        ["BATCH_WRITTEN", "FILE_INGESTED", "RAW_DATA_INPUT"]


def test_named_table_and_a_missing_table(moto_endpoint, tmp_path, caplog):  # noqa: F811
    overrides = provision(moto_endpoint)
    s = aws_settings(tmp_path / "ws", overrides, **{"aws.lineage_table": "custom-lineage"})
    assert Lake.open(s).lineage.inner.table_name == "custom-lineage"
    # a lineage table that was never created
    lake = Lake.open(aws_settings(tmp_path / "ws2", overrides, **{"aws.lineage_table": "never-created"}))
    land(lake, "shipments/b.jsonl", body())
    with caplog.at_level(logging.WARNING, logger="lakeline.lineage"):
        summary = run(lake.settings)
    assert (summary["loaded"], summary["rejected"]) == (10, 1)
    off = [r.getMessage() for r in caplog.records if r.name == "lakeline.lineage"]
    assert len(off) >= 1 and all(m.startswith("lineage is off for this lake: DynamoDB lineage table") for m in off)
