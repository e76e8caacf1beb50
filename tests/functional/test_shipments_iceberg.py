"""The shipments pipeline writing Iceberg tables (`[pipelines.shipments] table_format = "iceberg"`)."""

from __future__ import annotations

import orjson

from lakeline.lake import Lake
from lakeline.pipelines.registry import registry
from lakeline.sql import connect, plan_query
from lakeline.stages.ingest import Ingester
from tests.functional.helpers import land, rec, run, settings


def _count(lake: Lake, sql: str) -> list[tuple]:
    con = connect(lake)
    query, _ = plan_query(lake, con, sql)
    return con.execute(query).fetchall()


def test_shipments_into_iceberg_exactly_once(home):
    s = settings(home, pipelines__shipments__table_format="iceberg", ingest__chunk_bytes=2048)
    lake = Lake.open(s)
    body = b"".join(orjson.dumps(rec(shipment_id=f"s{i}", event_time=f"2026-01-0{1 + i % 3}T10:00:00Z")) + b"\n"
                    for i in range(60)) + b'{"broken\n'
    land(lake, "shipments/ice.jsonl", body)
    # ingest only, then deliver every chunk message twice (at-least-once delivery)
    for m in lake.ingest_queue.receive(10):
        Ingester(lake, registry(lake.settings).route).handle_event(orjson.loads(m.body))
        lake.ingest_queue.delete(m.receipt_handle)
    for b in [m.body for m in lake.transform_queue.peek(100)]:
        lake.transform_queue.send(b)
    summary = run(s)
    assert summary["rejected"] == 2  # the broken line, once per delivery of its chunk
    assert _count(lake, "SELECT count(*), count(DISTINCT shipment_id) FROM silver.shipments") == [(60, 60)]
    assert _count(lake, "SELECT count(*) FROM silver.shipments WHERE event_time >= TIMESTAMPTZ '2026-01-03 00:00:00+00'") == [(20,)]
    assert not [i for i in lake.store.list("silver") if i.key.startswith("shipments/")]  # no Parquet layout
    assert _count(lake, 'SELECT count(*) > 1 FROM silver."shipments$snapshots"') == [(True,)]
