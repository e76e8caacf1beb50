"""`lakeline lineage`: list, show (counts, fan-out summary, failures in red), trace and export,
run as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.e2e.helpers import Cli

IN_PROCESS = True  # the commands run in this process (tests/e2e/conftest.py)
RED = "\x1b[1;31m"


def test_shipments_lineage_list_show_trace_export(lake: Cli) -> None:
    lake.ok("gen", "shipments", "--count", "500", "--days", "7", "--seed", "3", "--out", "s.jsonl")
    lake.ok("put", "s.jsonl", "--pipeline", "shipments", "--key", "shipments/2026-01-05/s.jsonl")
    lake.ok("run")
    [root] = lake.json("lineage", "list")["roots"]
    rid = root["root_id"]
    assert root["first_node"]["action_taken"] == "RAW_DATA_INPUT"
    assert root["first_node"]["storage_location"] == str(lake.home.resolve() / "zones" / "landing" / "shipments" /
                                                         "2026-01-05" / "s.jsonl")
    assert root["counts"] == {"BATCH_WRITTEN": 7, "FILE_INGESTED": 1, "RAW_DATA_INPUT": 1, "RUN_COMPLETE": 1}
    assert (root["nodes"], root["failed"]) == (10, 0)

    shown = lake.json("lineage", "show", rid)
    assert (shown["nodes"], shown["failed"], shown["fanout"]) == (10, 0, 5)
    [raw] = shown["children"]
    [ingested] = raw["children"]
    assert [c["action_taken"] for c in ingested["children"]] == ["BATCH_WRITTEN"] * 5 + ["RUN_COMPLETE"]
    assert ingested["more"] == {"BATCH_WRITTEN": 2}
    everything = lake.json("lineage", "show", rid, "--fanout", "0")
    assert len(everything["children"][0]["children"][0]["children"]) == 8

    text = lake.ok("lineage", "show", rid).stdout
    assert f"root {rid}  10 nodes" in text
    assert "RAW_DATA_INPUT" in text and "FILE_INGESTED" in text
    assert "… and 2 more BATCH_WRITTEN" in text
    assert "nodes per action" in text

    batch = ingested["children"][0]
    trace = lake.json("lineage", "trace", batch["node_id"])
    assert [n["action_taken"] for n in trace["path"]] == ["BATCH_WRITTEN", "FILE_INGESTED", "RAW_DATA_INPUT"]
    assert trace["complete"] is True and trace["root_id"] == rid
    assert trace["path"][-1]["storage_location"] == root["first_node"]["storage_location"]
    text = lake.ok("lineage", "trace", batch["node_id"]).stdout
    assert "trace of" in text and "RAW_DATA_INPUT" in text

    out = lake.json("lineage", "export", rid, "--file", "ol.jsonl")
    assert out["events"] == ["START", "COMPLETE"]
    events = [json.loads(x) for x in (lake.home / "ol.jsonl").read_text().splitlines()]
    assert [e["eventType"] for e in events] == ["START", "COMPLETE"]
    assert len(events[1]["outputs"]) == 7

    assert "no lineage recorded for root nope" in lake.fails(1, "lineage", "show", "nope")
    assert "no lineage node nope" in lake.fails(1, "lineage", "trace", "nope")
    assert "no OpenLineage sink" in lake.fails(2, "lineage", "export", rid)


def test_failed_branch_is_red_and_large_fanout_is_summarised(lake: Cli) -> None:
    # a carbon-shaped root written through the API: 1,000 record nodes under one batch
    script = """
import sys, pyarrow as pa
from lakeline.config import load_settings
from lakeline.lake import Lake
led = Lake.open(load_settings(sys.argv[1])).lineage
r = "c" * 32
led.record(r, r, "RAW_DATA_INPUT", "s3://landing/carbon/a.csv", node_id="raw")
led.record(r, "raw", "DQ_CHECK_PASS", "s3://raw/carbon/a.csv", node_id="dq")
led.record(r, "dq", "GLUE_BATCH_SPLIT", "s3://tmp/transformed/part_0.json", node_id="b0")
ids = [f"evt-{i:04d}" for i in range(1000)]
led.record_many(r, "CALCULATION_COMPLETE", pa.table({"node_id": ids, "parent_id": ["b0"] * 1000,
                                                      "storage_location": ["s3://gold/emissions"] * 1000}))
led.record(r, "b0", "CALCULATION_FAILED", "", node_id="evt-bad", attrs={"reason": "NO_FACTOR"})
"""
    subprocess.run([sys.executable, "-c", script, str(lake.home)], check=True, env=lake.env())
    rid = "c" * 32
    shown = lake.json("lineage", "show", rid)
    batch = shown["children"][0]["children"][0]["children"][0]
    assert batch["more"] == {"CALCULATION_COMPLETE": 995}
    assert [c["node_id"] for c in batch["children"]] == [
        "evt-0000", "evt-0001", "evt-0002", "evt-0003", "evt-0004", "evt-bad"]
    assert shown["failed"] == 1 and batch["children"][-1]["failed"] is True

    text = lake.ok("lineage", "show", rid, env={"FORCE_COLOR": "1"}).stdout
    assert "… and 995 more CALCULATION_COMPLETE" in text
    assert f"{RED}CALCULATION_FAILED" in text  # the failed branch is red
    assert f"{RED}1 failed" in text.replace(", ", "")  # the header counts it, in red
    assert f"{RED}DQ_CHECK_PASS" not in text

    trace = lake.json("lineage", "trace", "evt-0999")["path"]
    assert [n["node_id"] for n in trace] == ["evt-0999", "b0", "dq", "raw"]
    assert trace[-1]["storage_location"] == "s3://landing/carbon/a.csv"
    listed = lake.json("lineage", "list", "--limit", "1")["roots"]
    assert [(r["root_id"], r["nodes"], r["failed"]) for r in listed] == [(rid, 1004, 1)]


def test_help_lists_the_commands(lake: Cli, tmp_path: Path) -> None:
    text = lake.ok("lineage", "--help").stdout
    for cmd in ("list", "show", "trace", "export"):
        assert cmd in text
