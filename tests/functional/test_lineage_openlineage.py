"""OpenLineage export: run events of a root to a JSON-lines file and to a real HTTP endpoint on
127.0.0.1, written automatically when a root completes."""

from __future__ import annotations

import http.server
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import orjson
import pytest

from lakeline.errors import NotFoundError, TransientError, UsageError
from lakeline.lake import Lake
from lakeline.lineage import openlineage
from lakeline.pipelines.transactions.job import TABLE, execute_run
from lakeline.ports.lineage_model import derived_id
from tests.functional.helpers import land, rec, run, settings

SCHEMA = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"


class Endpoint:
    """A real HTTP server collecting POSTed JSON bodies (answers ``status``)."""

    def __init__(self, status: int = 201) -> None:
        self.bodies: list[dict] = []
        self.paths: list[str] = []
        self.types: list[str] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                n = int(self.headers["Content-Length"])
                outer.bodies.append(orjson.loads(self.rfile.read(n)))
                outer.paths.append(self.path)
                outer.types.append(self.headers["Content-Type"])
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/api/v1/lineage"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def endpoint() -> Iterator[Endpoint]:
    e = Endpoint()
    yield e
    e.close()


def test_file_sink_after_a_shipments_object(home):
    s = settings(home, lineage__openlineage_file="openlineage/events.jsonl")
    lake = Lake.open(s)
    body = b"".join(orjson.dumps(r) + b"\n" for r in (rec(), rec("invoice_lines"))) + b"oops\n"
    land(lake, "shipments/a.jsonl", body)
    run(s)
    [root] = lake.lineage.roots()
    lines = (home / "openlineage" / "events.jsonl").read_bytes().splitlines()
    start, end = (orjson.loads(x) for x in lines)
    zones = home / "zones"
    assert start["eventType"] == "START" and end["eventType"] == "COMPLETE"
    for e in (start, end):
        assert e["schemaURL"] == SCHEMA and e["producer"].startswith("https://pypi.org/project/lakeline/")
        assert e["run"]["runId"] == str(uuid.UUID(hex=root["root_id"]))
        assert e["job"] == {"namespace": "lakeline", "name": "shipments", "facets": {}}
        assert e["inputs"] == [{"namespace": "file", "name": str(zones / "landing" / "shipments" / "a.jsonl"),
                                "facets": {}}]
    assert start["outputs"] == [] and start["eventTime"] == root["recorded_at"]
    assert sorted(o["name"] for o in end["outputs"]) == sorted(
        [str(zones / "silver" / i.key) for i in lake.store.list("silver") if i.key.endswith(".parquet")]
        + [str(zones / "error" / i.key) for i in lake.store.list("error", "rejects/")])
    assert len(end["outputs"]) == 3
    facet = end["run"]["facets"]["lakeline_lineage"]
    assert facet["counts"] == {"BATCH_WRITTEN": 2, "FILE_INGESTED": 1, "RAW_DATA_INPUT": 1,
                               "REJECTS_WRITTEN": 1, "RUN_COMPLETE": 1}
    assert (facet["root_id"], facet["nodes"]) == (root["root_id"], 6)
    assert facet["_schemaURL"].startswith("https://openlineage.io/spec/")
    assert end["eventTime"] >= start["eventTime"]


def test_http_sink_after_a_transactions_run(home, endpoint):
    s = settings(home, lineage__openlineage_url=endpoint.url, lineage__namespace="acme-lake")
    lake = Lake.open(s)
    lake.store.put("landing", "transactions/a.csv",
                   b"TransactionID,CustomerID,TransactionAmount,Currency,TransactionTimestamp\n"
                   b"T1,C1,1.00,EUR,2024-03-01T00:00:00Z\nT2,,1.00,EUR,2024-03-01T00:00:00Z\n")
    report = execute_run(lake, ["transactions/a.csv"], now=datetime(2026, 1, 29, tzinfo=UTC))
    root = derived_id("transactions", TABLE, report.run_id)
    assert endpoint.paths == ["/api/v1/lineage", "/api/v1/lineage"]
    assert endpoint.types == ["application/json", "application/json"]
    start, end = endpoint.bodies
    assert (start["eventType"], end["eventType"]) == ("START", "COMPLETE")
    assert end["job"] == {"namespace": "acme-lake", "name": "transactions", "facets": {}}
    assert end["run"]["runId"] == str(uuid.UUID(hex=root))
    folder = report.partitions[0]["run_folder"]
    assert sorted(o["name"] for o in end["outputs"]) == sorted(
        [str(home / "zones" / "silver" / folder), str(home / "zones" / "error" / report.rejects_key)])
    assert end["run"]["facets"]["lakeline_lineage"]["counts"] == {
        "BATCH_WRITTEN": 1, "RAW_DATA_INPUT": 1, "REJECTS_WRITTEN": 1, "RUN_COMPLETE": 1}


def test_failed_root_is_a_fail_event(home, endpoint):
    s = settings(home, lineage__openlineage_url=endpoint.url)
    lake = Lake.open(s)
    land(lake, "shipments/broken.json", b"[{")
    run(s)
    assert [b["eventType"] for b in endpoint.bodies] == ["START", "FAIL"]
    fail = endpoint.bodies[1]
    assert [o["name"] for o in fail["outputs"]] == [
        str(home / "zones" / "error" / "objects" / "shipments" / "broken.json")]


def test_endpoint_errors(home):
    lake = Lake.open(settings(home))
    lake.lineage.record("r1", "r1", "RAW_DATA_INPUT", "s3://landing/x.csv", node_id="n")
    bad = Endpoint(status=500)
    try:
        with pytest.raises(TransientError, match=r"answered 500"):
            openlineage.export_root(lake.lineage, lake.settings, "r1", url=bad.url)
    finally:
        bad.close()
    with pytest.raises(TransientError, match="unreachable"):
        openlineage.export_root(lake.lineage, lake.settings, "r1", url=bad.url)
    with pytest.raises(UsageError, match="no OpenLineage sink"):
        openlineage.export_root(lake.lineage, lake.settings, "r1")
    with pytest.raises(UsageError, match="http"):
        openlineage.export_root(lake.lineage, lake.settings, "r1", url="ftp://x")
    with pytest.raises(NotFoundError):
        openlineage.export_root(lake.lineage, lake.settings, "nope", file="x.jsonl")
    # s3 datasets and a non-uuid root id
    out = openlineage.export_root(lake.lineage, lake.settings, "r1", file="ol.jsonl")
    assert out == {"root_id": "r1", "events": ["START", "COMPLETE"], "file": str(home / "ol.jsonl"), "url": None}
    start = orjson.loads((home / "ol.jsonl").read_bytes().splitlines()[0])
    assert start["inputs"] == [{"namespace": "s3://landing", "name": "x.csv", "facets": {}}]
    assert start["run"]["runId"] == str(uuid.uuid5(uuid.NAMESPACE_URL, "r1"))


def test_unreachable_endpoint_never_fails_the_pipeline(home):
    dead = Endpoint()
    dead.close()
    s = settings(home, lineage__openlineage_url=dead.url, lineage__timeout_seconds=2.0)
    lake = Lake.open(s)
    land(lake, "shipments/x.jsonl", orjson.dumps(rec()) + b"\n")
    summary = run(s)
    assert summary["loaded"] == 1
    assert len(lake.lineage.roots()) == 1
