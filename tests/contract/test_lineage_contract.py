"""Lineage ledger contract: the specs §4 request, node queries, trace, bulk writes — one suite
for the SQLite ledger and the DynamoDB ledger (moto server)."""
# ruff: noqa: F811  (pytest fixtures imported from store_backends are redefined as arguments)

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pyarrow as pa
import pytest

from lakeline.errors import UsageError
from lakeline.ports import Ledger
from lakeline.ports.lineage_model import Node
from tests.aws_server import boto_client, unique
from tests.contract.store_backends import BACKENDS, aws_clients, moto_endpoint  # noqa: F401

ROOT = "root-0001"


@pytest.fixture(params=BACKENDS)
def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Ledger]:
    if request.param == "local":
        from lakeline.adapters.local.lineage import SqliteLedger

        led = SqliteLedger(tmp_path / "lineage.db")
        yield led
        led.close()
        return
    if request.param == "aws":
        from lakeline.adapters.aws.lineage import TABLE_SCHEMA, DynamoLedger

        endpoint = request.getfixturevalue("moto_endpoint")
        table = unique("lineage")
        boto_client("dynamodb", endpoint).create_table(TableName=table, **TABLE_SCHEMA)
        yield DynamoLedger(aws_clients(endpoint).dynamodb, table)
        return
    raise NotImplementedError(request.param)


def node_table(ids: list[str], parents: list[str], locations: list[str] | None = None,
               attrs: list[str | None] | None = None) -> pa.Table:
    cols = {"node_id": ids, "parent_id": parents,
            "storage_location": locations if locations is not None else [f"s3://b/{i}" for i in ids]}
    if attrs is not None:
        cols["attrs"] = attrs
    return pa.table({k: pa.array(v, pa.string()) for k, v in cols.items()})


def carbon_tree(ledger: Ledger) -> dict[str, str]:
    """RAW → PROFILE → DQ pass → 2 batches → 3 records (1 failed) — the carbon shape."""
    raw = ledger.request({"root_id": ROOT, "parent_id": ROOT, "action_taken": "RAW_DATA_INPUT",
                          "record": {"storage_location": "s3://landing/carbon/a.csv"}})
    raw_id = raw["data_lineage"]["node_id"]
    prof = ledger.record(ROOT, raw_id, "PROFILE_COMPLETE", "s3://tmp/profile/a.json", node_id="prof")
    ledger.record(ROOT, prof.node_id, "DQ_CHECK_PASS", "s3://raw/carbon/a.csv", node_id="dq")
    split = ledger.request({"root_id": ROOT, "parent_id": "dq", "action_taken": "GLUE_BATCH_SPLIT",
                            "records": [{"storage_location": "s3://tmp/transformed/r/part_0.json",
                                         "node_id": "b0"},
                                        {"storage_location": "s3://tmp/transformed/r/part_1.json",
                                         "node_id": "b1"}]})
    assert [n["node_id"] for n in split["data_lineage"]] == ["b0", "b1"]
    ledger.request({"root_id": ROOT, "parent_id": "b0", "action_taken": "CALCULATION_COMPLETE",
                    "records": [{"storage_location": "s3://gold/emissions/e1", "node_id": "evt-1"},
                                {"storage_location": "s3://gold/emissions/e2", "node_id": "evt-2"}]})
    ledger.request({"root_id": ROOT, "parent_id": "b1", "action_taken": "CALCULATION_FAILED",
                    "record": {"storage_location": "", "node_id": "evt-3",
                               "attrs": {"reason": "NO_FACTOR"}}})
    return {"raw": raw_id}


# ---- the specs §4 request contract ------------------------------------------------------------
def test_request_record_response_shape(ledger: Ledger) -> None:
    out = ledger.request({"root_id": ROOT, "parent_id": ROOT, "action_taken": "RAW_DATA_INPUT",
                          "record": {"storage_location": "s3://landing/carbon/a.csv"}})
    lineage = out["data_lineage"]
    assert set(out) == {"data_lineage"}
    assert set(lineage) == {"root_id", "action_taken", "storage_location", "node_id"}
    assert lineage["root_id"] == ROOT and lineage["action_taken"] == "RAW_DATA_INPUT"
    assert lineage["storage_location"] == "s3://landing/carbon/a.csv"
    assert len(lineage["node_id"]) == 32 and int(lineage["node_id"], 16) >= 0  # uuid4 hex
    node = ledger.get(lineage["node_id"])
    assert node is not None and node.is_first and node.parent_id == ROOT
    assert node.recorded_at.endswith("Z") and node.recorded_at[10] == "T"


def test_request_defaults_parent_to_root_and_keeps_given_node_id(ledger: Ledger) -> None:
    out = ledger.request({"root_id": ROOT, "action_taken": "RAW_DATA_INPUT",
                          "record": {"storage_location": "x", "node_id": "first"}})
    assert out["data_lineage"]["node_id"] == "first"
    node = ledger.get("first", ROOT)
    assert node is not None and node.parent_id == ROOT


def test_request_records_list_in_order(ledger: Ledger) -> None:
    out = ledger.request({"root_id": ROOT, "parent_id": "batch", "action_taken": "CALCULATION_COMPLETE",
                          "records": [{"storage_location": "a", "node_id": "n2"},
                                      {"storage_location": "b"},
                                      {"storage_location": "c", "node_id": "n0", "parent_id": "other",
                                       "attrs": {"co2e": 1.5}}]})
    answers = out["data_lineage"]
    assert [a["storage_location"] for a in answers] == ["a", "b", "c"]
    assert answers[0]["node_id"] == "n2" and answers[2]["node_id"] == "n0"
    assert all(set(a) == {"root_id", "action_taken", "storage_location", "node_id"} for a in answers)
    generated = answers[1]["node_id"]
    assert len(generated) == 32
    n0 = ledger.get("n0", ROOT)
    assert n0 is not None and n0.parent_id == "other" and n0.attrs == {"co2e": 1.5}
    g = ledger.get(generated, ROOT)
    assert g is not None and g.parent_id == "batch" and g.attrs == {}
    assert ledger.request({"root_id": ROOT, "parent_id": "p", "action_taken": "BATCH_WRITTEN",
                           "records": []}) == {"data_lineage": []}


@pytest.mark.parametrize("bad, words", [
    ({"parent_id": "p", "action_taken": "RAW_DATA_INPUT", "record": {"storage_location": "x"}}, "root_id"),
    ({"root_id": "", "action_taken": "RAW_DATA_INPUT", "record": {"storage_location": "x"}}, "root_id"),
    ({"root_id": "r", "action_taken": "raw data", "record": {"storage_location": "x"}}, "action_taken"),
    ({"root_id": "r", "record": {"storage_location": "x"}}, "action_taken"),
    ({"root_id": "r", "action_taken": "RAW_DATA_INPUT"}, "exactly one of"),
    ({"root_id": "r", "action_taken": "RAW_DATA_INPUT", "record": {"storage_location": "x"},
      "records": []}, "exactly one of"),
    ({"root_id": "r", "action_taken": "RAW_DATA_INPUT", "record": {}}, "record.storage_location"),
    ({"root_id": "r", "action_taken": "RAW_DATA_INPUT", "record": "s3://x"}, "record must be"),
    ({"root_id": "r", "action_taken": "RAW_DATA_INPUT", "records": [{"storage_location": "a"}, {}]},
     "records[1].storage_location"),
    ({"root_id": "r", "action_taken": "RAW_DATA_INPUT", "records": {"storage_location": "a"}}, "list"),
    ({"root_id": "r", "action_taken": "RAW_DATA_INPUT",
      "record": {"storage_location": "x", "attrs": [1]}}, "attrs"),
    ({"root_id": "r", "action_taken": "RAW_DATA_INPUT", "record": {"storage_location": "x", "node_id": ""}},
     "record.node_id"),
    ({"root_id": "r" * 1025, "action_taken": "RAW_DATA_INPUT", "record": {"storage_location": "x"}}, "1024"),
])
def test_request_refuses_bad_input(ledger: Ledger, bad: dict[str, object], words: str) -> None:
    with pytest.raises(UsageError, match=words.replace("[", r"\[").replace("]", r"\]")):
        ledger.request(bad)
    assert ledger.counts("r") == {}


# ---- queries ------------------------------------------------------------------------------------
def test_tree_children_counts_and_trace(ledger: Ledger) -> None:
    ids = carbon_tree(ledger)
    tree = ledger.tree(ROOT)
    assert len(tree) == 8
    assert [n.recorded_at for n in tree] == sorted(n.recorded_at for n in tree)
    assert ledger.counts(ROOT) == {"CALCULATION_COMPLETE": 2, "CALCULATION_FAILED": 1, "DQ_CHECK_PASS": 1,
                                   "GLUE_BATCH_SPLIT": 2, "PROFILE_COMPLETE": 1, "RAW_DATA_INPUT": 1}
    assert ledger.counts("unknown-root") == {}
    assert [n.node_id for n in ledger.children(ROOT, ROOT)] == [ids["raw"]]
    assert [n.node_id for n in ledger.children(ROOT, "dq")] == ["b0", "b1"]
    assert [n.node_id for n in ledger.children(ROOT, "b0")] == ["evt-1", "evt-2"]
    assert [n.node_id for n in ledger.children(ROOT, "b0", limit=1)] == ["evt-1"]
    assert ledger.children(ROOT, "b0", action_taken="CALCULATION_FAILED") == []
    assert ledger.child_counts(ROOT, "b1") == {"CALCULATION_FAILED": 1}
    assert ledger.child_counts(ROOT, "evt-1") == {}
    path = ledger.trace("evt-3")
    assert [n.action_taken for n in path] == ["CALCULATION_FAILED", "GLUE_BATCH_SPLIT", "DQ_CHECK_PASS",
                                               "PROFILE_COMPLETE", "RAW_DATA_INPUT"]
    assert [n.node_id for n in path] == ["evt-3", "b1", "dq", "prof", ids["raw"]]
    assert path[0].attrs == {"reason": "NO_FACTOR"} and path[0].failed
    assert path[-1].storage_location == "s3://landing/carbon/a.csv" and path[-1].is_first
    assert ledger.trace("no-such-node") == []


def test_by_action(ledger: Ledger) -> None:
    carbon_tree(ledger)
    ledger.record("root-0000", "root-0000", "RAW_DATA_INPUT", "s3://landing/b.csv", node_id="raw-b")
    ledger.record("root-0000", "raw-b", "CALCULATION_COMPLETE", "s3://gold/x", node_id="evt-9")
    done = ledger.by_action("CALCULATION_COMPLETE")
    assert [n.root_id for n in done] == ["root-0000", ROOT, ROOT]
    assert sorted(n.node_id for n in done) == ["evt-1", "evt-2", "evt-9"]
    assert sorted(n.node_id for n in ledger.by_action("CALCULATION_COMPLETE", ROOT)) == ["evt-1", "evt-2"]
    assert len(ledger.by_action("CALCULATION_COMPLETE", limit=2)) == 2
    assert [n.node_id for n in ledger.by_action("CALCULATION_FAILED", ROOT)] == ["evt-3"]
    assert ledger.by_action("DQ_CHECK_FAIL") == []


def test_same_node_id_under_two_roots(ledger: Ledger) -> None:
    """A rerun is a new root; node ids (activity_event_id) repeat across roots."""
    for root in ("run-a", "run-b"):
        ledger.record(root, root, "RAW_DATA_INPUT", f"s3://landing/{root}.csv", node_id=f"raw-{root}")
        ledger.record(root, f"raw-{root}", "CALCULATION_COMPLETE", f"s3://gold/{root}", node_id="evt-1")
        time.sleep(0.002)  # distinct recorded_at
    latest = ledger.get("evt-1")
    assert latest is not None and latest.root_id == "run-b"
    first = ledger.get("evt-1", "run-a")
    assert first is not None and first.storage_location == "s3://gold/run-a"
    assert [n.node_id for n in ledger.trace("evt-1", "run-a")] == ["evt-1", "raw-run-a"]
    assert [n.node_id for n in ledger.trace("evt-1")] == ["evt-1", "raw-run-b"]


def test_rerecord_replaces(ledger: Ledger) -> None:
    ledger.record(ROOT, ROOT, "RAW_DATA_INPUT", "old", node_id="n", attrs={"v": 1})
    ledger.record(ROOT, ROOT, "FILE_FAILED", "new", node_id="n", attrs={"reason": "x"})
    assert [(n.node_id, n.action_taken, n.storage_location, n.attrs) for n in ledger.tree(ROOT)] == \
        [("n", "FILE_FAILED", "new", {"reason": "x"})]
    assert ledger.counts(ROOT) == {"FILE_FAILED": 1}
    assert ledger.by_action("RAW_DATA_INPUT") == []


def test_trace_stops_at_a_missing_parent(ledger: Ledger) -> None:
    ledger.record(ROOT, "never-recorded", "BATCH_WRITTEN", "s3://silver/x.parquet", node_id="b")
    ledger.record(ROOT, "b", "CALCULATION_COMPLETE", "s3://gold/y", node_id="r")
    assert [n.node_id for n in ledger.trace("r")] == ["r", "b"]


def test_trace_refuses_a_cycle(ledger: Ledger) -> None:
    ledger.record(ROOT, "y", "BATCH_WRITTEN", "", node_id="x")
    ledger.record(ROOT, "x", "BATCH_WRITTEN", "", node_id="y")
    with pytest.raises(UsageError, match="cycle"):
        ledger.trace("x")


def test_roots_newest_first_with_counts(ledger: Ledger) -> None:
    assert ledger.roots() == []
    for i in range(3):
        root = f"root-{i}"
        ledger.record(root, root, "RAW_DATA_INPUT", f"s3://landing/{i}.csv", node_id=f"raw-{i}")
        ledger.record(root, f"raw-{i}", "BATCH_WRITTEN", "s3://silver/p", node_id=f"b-{i}")
        if i == 1:
            ledger.record(root, f"raw-{i}", "DQ_CHECK_FAIL", "s3://error/1.csv", node_id="fail")
        time.sleep(0.002)
    found = ledger.roots()
    assert [r["root_id"] for r in found] == ["root-2", "root-1", "root-0"]
    one = found[1]
    assert one["first_node"]["node_id"] == "raw-1"
    assert one["first_node"]["storage_location"] == "s3://landing/1.csv"
    assert one["counts"] == {"BATCH_WRITTEN": 1, "DQ_CHECK_FAIL": 1, "RAW_DATA_INPUT": 1}
    assert (one["nodes"], one["failed"]) == (3, 1)
    assert one["recorded_at"] == one["first_node"]["recorded_at"]
    assert [r["root_id"] for r in ledger.roots(limit=2)] == ["root-2", "root-1"]
    assert orjson.loads(orjson.dumps(found)) == found  # JSON-ready


# ---- bulk ---------------------------------------------------------------------------------------
def test_record_many(ledger: Ledger) -> None:
    n = 1234
    ids = [f"evt-{i:05d}" for i in range(n)]
    attrs = [orjson.dumps({"i": i}).decode() if i % 2 else None for i in range(n)]
    assert ledger.record_many(ROOT, "CALCULATION_COMPLETE", node_table(ids, ["b0"] * n, attrs=attrs)) == n
    assert ledger.counts(ROOT) == {"CALCULATION_COMPLETE": n}
    assert ledger.child_counts(ROOT, "b0") == {"CALCULATION_COMPLETE": n}
    first = ledger.children(ROOT, "b0", limit=3)
    assert [x.node_id for x in first] == ["evt-00000", "evt-00001", "evt-00002"]
    assert [x.attrs for x in first] == [{}, {"i": 1}, {}]
    assert first[0].storage_location == "s3://b/evt-00000"
    one = ledger.get("evt-00777")
    assert one is not None and (one.root_id, one.parent_id, one.action_taken) == \
        (ROOT, "b0", "CALCULATION_COMPLETE")
    # idempotent rerun: same keys replace, nothing doubles
    assert ledger.record_many(ROOT, "CALCULATION_COMPLETE", node_table(ids, ["b1"] * n)) == n
    assert ledger.counts(ROOT) == {"CALCULATION_COMPLETE": n}
    assert ledger.child_counts(ROOT, "b0") == {}
    assert ledger.child_counts(ROOT, "b1") == {"CALCULATION_COMPLETE": n}
    got = ledger.get("evt-00001", ROOT)
    assert got is not None and got.attrs == {}  # replaced as a whole


def test_record_many_duplicates_in_one_table_last_wins(ledger: Ledger) -> None:
    table = node_table(["a", "b", "a"], ["p", "p", "q"], ["1", "2", "3"])
    assert ledger.record_many(ROOT, "BATCH_WRITTEN", table) == 3
    a = ledger.get("a", ROOT)
    assert a is not None and (a.parent_id, a.storage_location) == ("q", "3")
    assert ledger.counts(ROOT) == {"BATCH_WRITTEN": 2}


def test_record_many_input_checks(ledger: Ledger) -> None:
    assert ledger.record_many(ROOT, "BATCH_WRITTEN", node_table([], [])) == 0
    with pytest.raises(UsageError, match="lacks column"):
        ledger.record_many(ROOT, "BATCH_WRITTEN", pa.table({"node_id": ["a"]}))
    with pytest.raises(UsageError, match="row 1: node_id"):
        ledger.record_many(ROOT, "BATCH_WRITTEN", node_table(["a", ""], ["p", "p"]))
    with pytest.raises(UsageError, match="row 2: parent_id"):
        ledger.record_many(ROOT, "BATCH_WRITTEN", pa.table({
            "node_id": ["a", "b", "c"], "parent_id": ["p", "p", None], "storage_location": ["", "", ""]}))
    with pytest.raises(UsageError, match="row 0: attrs"):
        ledger.record_many(ROOT, "BATCH_WRITTEN", node_table(["a"], ["p"], attrs=["[1]"]))
    with pytest.raises(UsageError, match="action_taken"):
        ledger.record_many(ROOT, "batch written", node_table(["a"], ["p"]))
    assert ledger.counts(ROOT) == {}
    # a null storage location is an empty one; numbers cast to text
    ledger.record_many(ROOT, "BATCH_WRITTEN", pa.table({
        "node_id": pa.array([1, 2]), "parent_id": ["p", "p"], "storage_location": [None, "x"]}))
    got = ledger.get("1", ROOT)
    assert got is not None and got.storage_location == ""


def test_node_to_dict_round_trip(ledger: Ledger) -> None:
    node = ledger.record(ROOT, ROOT, "RAW_DATA_INPUT", "s3://x", node_id="n", attrs={"rows": 3, "ok": True})
    again = ledger.get("n", ROOT)
    assert again == node
    assert Node(**node.to_dict()) == node


def test_the_deployed_table_is_the_adapters_table(request: pytest.FixtureRequest) -> None:
    """`lakeline deploy sam` creates the lineage table with the keys and indexes the DynamoDB
    ledger queries: create it from the template's properties and use it."""
    from lakeline.adapters.aws.lineage import DynamoLedger
    from lakeline.deploy.sam import TemplateOptions, build_template

    tpl = build_template(TemplateOptions(name="acme-lake"))
    res = tpl["Resources"]["LineageTable"]
    assert res["Type"] == "AWS::DynamoDB::Table"
    props = dict(res["Properties"])
    assert props.pop("TableName") == "acme-lake-lineage"
    assert props.pop("PointInTimeRecoverySpecification") == {"PointInTimeRecoveryEnabled": True}
    assert props.pop("SSESpecification") == {"SSEEnabled": True}  # CloudFormation's spelling
    assert props["KeySchema"] == [{"AttributeName": "root_id", "KeyType": "HASH"},
                                  {"AttributeName": "node_id", "KeyType": "RANGE"}]
    assert {g["IndexName"]: [k["AttributeName"] for k in g["KeySchema"]] for g in props["GlobalSecondaryIndexes"]} == {
        "node_id-index": ["node_id", "recorded_at"], "action-index": ["action_taken", "root_id"],
        "roots-index": ["is_first", "recorded_at"]}
    env = tpl["Resources"]["IngestFunction"]["Properties"]["Environment"]["Variables"]
    assert env["LAKELINE__AWS__LINEAGE_TABLE"] == {"Ref": "LineageTable"}
    assert tpl["Outputs"]["LineageTableName"]["Description"] == "LAKELINE__AWS__LINEAGE_TABLE"
    endpoint = request.getfixturevalue("moto_endpoint")
    table = unique("deployed-lineage")
    boto_client("dynamodb", endpoint).create_table(TableName=table, **props)
    led = DynamoLedger(aws_clients(endpoint).dynamodb, table)
    carbon_tree(led)
    assert [n.action_taken for n in led.trace("evt-1")] == ["CALCULATION_COMPLETE", "GLUE_BATCH_SPLIT",
                                                            "DQ_CHECK_PASS", "PROFILE_COMPLETE", "RAW_DATA_INPUT"]
    assert [r["root_id"] for r in led.roots()] == [ROOT]
