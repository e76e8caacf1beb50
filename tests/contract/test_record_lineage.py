"""Record-level lineage as data (:class:`RecordLedger`): records in Parquet files of the object
store, the tree above them in the ledger — one suite over the local backend (SQLite ledger,
directories) and the AWS backend (DynamoDB ledger, S3 objects read as an Arrow dataset)."""
# ruff: noqa: F811  (pytest fixtures imported from store_backends are redefined as arguments)

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest

from lakeline.adapters.record_lineage import PREFIX, SEALED, ZONE, RecordLedger
from lakeline.errors import UsageError
from tests.aws_server import boto_client, unique
from tests.contract.store_backends import (  # noqa: F401
    BACKENDS,
    aws_clients,
    aws_zones,
    moto_endpoint,
)

ROOT = "root-0001"


@pytest.fixture(params=BACKENDS)
def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RecordLedger]:
    if request.param == "local":
        from lakeline.adapters.local.lineage import SqliteLedger
        from lakeline.adapters.local.objectstore import FsObjectStore

        led = RecordLedger(SqliteLedger(tmp_path / "lineage.db"), FsObjectStore(tmp_path / "zones"),
                           tmp_path / "work")
        yield led
        led.close()
        return
    from lakeline.adapters.aws.lineage import TABLE_SCHEMA, DynamoLedger
    from lakeline.adapters.aws.objectstore import S3ObjectStore

    endpoint = request.getfixturevalue("moto_endpoint")
    request.getfixturevalue("monkeypatch").setenv("AWS_ACCESS_KEY_ID", "testing")
    request.getfixturevalue("monkeypatch").setenv("AWS_SECRET_ACCESS_KEY", "testing")
    table = unique("lineage")
    boto_client("dynamodb", endpoint).create_table(TableName=table, **TABLE_SCHEMA)
    clients = aws_clients(endpoint)
    yield RecordLedger(DynamoLedger(clients.dynamodb, table), S3ObjectStore(clients.s3, aws_zones(endpoint)),
                       tmp_path / "work")


def records(ids: list[str], parent: str, actions: list[str], lines: list[int],
            attrs: list[str | None] | None = None) -> pa.Table:
    return pa.table({
        "node_id": pa.array(ids, pa.string()), "parent_id": pa.array([parent] * len(ids), pa.string()),
        "action_taken": pa.array(actions, pa.string()),
        "storage_location": pa.array(["s3://gold/emissions"] * len(ids), pa.string()),
        "attrs": pa.array(attrs if attrs is not None else [None] * len(ids), pa.string()),
        "source_key": pa.array(["carbon/a.csv"] * len(ids), pa.string()),
        "line_no": pa.array(lines, pa.int64()),
    })


def carbon_root(led: RecordLedger) -> None:
    """RAW → DQ → two batches in the ledger; five records in two batch files (one failed)."""
    raw = led.record(ROOT, ROOT, "RAW_DATA_INPUT", "s3://landing/carbon/a.csv", node_id="raw")
    led.record(ROOT, raw.node_id, "DQ_CHECK_PASS", "s3://raw/carbon/a.csv", node_id="dq")
    led.record_many(ROOT, "GLUE_BATCH_SPLIT", pa.table({
        "node_id": ["b0", "b1"], "parent_id": ["dq", "dq"],
        "storage_location": ["s3://silver/transformed/part_0", "s3://silver/transformed/part_1"]}))
    assert led.write_records(ROOT, "part_0", records(["e3", "e1", "e2"], "b0", ["CALCULATION_COMPLETE"] * 3,
                                                    [4, 2, 3])) == 3
    assert led.write_records(ROOT, "part_1", records(
        ["e5", "e4"], "b1", ["CALCULATION_COMPLETE", "CALCULATION_FAILED"], [6, 5],
        [None, '{"reason": "FACTOR_NOT_FOUND", "line_no": 5}'])) == 2


def answers(led: RecordLedger) -> dict[str, object]:
    """What every query of the ledger interface answers for the carbon root."""
    return {
        "counts": led.counts(ROOT),
        "b0": led.child_counts(ROOT, "b0"),
        "children": [n.node_id for n in led.children(ROOT, "b0")],
        "first2": [n.node_id for n in led.children(ROOT, "b0", limit=2)],
        "failed": [(n.node_id, n.attrs) for n in led.by_action("CALCULATION_FAILED", ROOT)],
        "complete": [n.node_id for n in led.by_action("CALCULATION_COMPLETE", limit=3)],
        "tree": sorted(n.node_id for n in led.tree(ROOT)),
        "trace": [(n.node_id, n.action_taken) for n in led.trace("e4")],
        "roots": [(r["root_id"], r["nodes"], r["failed"]) for r in led.roots()],
    }


EXPECTED = {
    "counts": {"CALCULATION_COMPLETE": 4, "CALCULATION_FAILED": 1, "DQ_CHECK_PASS": 1, "GLUE_BATCH_SPLIT": 2,
               "RAW_DATA_INPUT": 1},
    "b0": {"CALCULATION_COMPLETE": 3},
    "children": ["e1", "e2", "e3"],
    "first2": ["e1", "e2"],
    "failed": [("e4", {"reason": "FACTOR_NOT_FOUND", "line_no": 5})],
    "complete": ["e1", "e2", "e3"],
    "tree": ["b0", "b1", "dq", "e1", "e2", "e3", "e4", "e5", "raw"],
    "trace": [("e4", "CALCULATION_FAILED"), ("b1", "GLUE_BATCH_SPLIT"), ("dq", "DQ_CHECK_PASS"),
              ("raw", "RAW_DATA_INPUT")],
    "roots": [(ROOT, 9, 1)],
}


def keys(led: RecordLedger) -> list[str]:
    return sorted(i.key.removeprefix(f"{PREFIX}{ROOT}/") for i in led.store.list(ZONE, PREFIX))


def test_records_answer_every_query_before_and_after_the_seal(ledger: RecordLedger) -> None:
    carbon_root(ledger)
    assert keys(ledger) == ["batch-part_0.parquet", "batch-part_1.parquet"]
    assert ledger.inner.counts(ROOT) == {"DQ_CHECK_PASS": 1, "GLUE_BATCH_SPLIT": 2, "RAW_DATA_INPUT": 1}
    assert answers(ledger) == EXPECTED
    assert ledger.seal_records(ROOT) == 5
    assert keys(ledger) == [SEALED]
    assert answers(ledger) == EXPECTED
    assert ledger.seal_records(ROOT) == 5  # idempotent
    record = ledger.get("e2", ROOT)
    assert record is not None and (record.parent_id, record.storage_location, record.attrs) == (
        "b0", "s3://gold/emissions", {})
    assert ledger.get("nope") is None and ledger.trace("nope") == []


def test_a_rewritten_batch_replaces_its_records(ledger: RecordLedger) -> None:
    carbon_root(ledger)  # a retried calculation writes its batch again: no duplicate
    ledger.write_records(ROOT, "part_1", records(["e5", "e4"], "b1", ["CALCULATION_COMPLETE"] * 2, [6, 5]))
    assert ledger.counts(ROOT)["CALCULATION_COMPLETE"] == 5 and "CALCULATION_FAILED" not in ledger.counts(ROOT)
    assert ledger.write_records(ROOT, "part_1", records([], "b1", [], [])) == 0  # an empty batch: no file
    assert keys(ledger) == ["batch-part_0.parquet"]


def test_an_interrupted_seal_is_read_once_and_finished_by_the_next(ledger: RecordLedger) -> None:
    carbon_root(ledger)
    ledger.seal_records(ROOT)
    # the seal wrote its file, then stopped before removing the batch files
    ledger.write_records(ROOT, "part_0", records(["e3", "e1", "e2"], "b0", ["CALCULATION_COMPLETE"] * 3,
                                                 [4, 2, 3]))
    assert ledger.counts(ROOT)["CALCULATION_COMPLETE"] == 4
    assert ledger.seal_records(ROOT) == 5
    assert keys(ledger) == [SEALED]


def test_a_node_in_two_roots_resolves_to_the_latest(ledger: RecordLedger) -> None:
    carbon_root(ledger)
    ledger.record("root-0002", "root-0002", "RAW_DATA_INPUT", "s3://landing/carbon/a.csv", node_id="raw2")
    ledger.write_records("root-0002", "part_0", records(["e1"], "raw2", ["CALCULATION_COMPLETE"], [2]))
    found = ledger.get("e1")
    assert found is not None and found.root_id == "root-0002"
    assert [n.node_id for n in ledger.trace("e1")] == ["e1", "raw2"]
    assert [n.node_id for n in ledger.trace("e1", ROOT)] == ["e1", "b0", "dq", "raw"]


@pytest.mark.parametrize(("batch", "table", "match"), [
    ("a/b", records(["e1"], "b0", ["CALCULATION_COMPLETE"], [2]), "plain file name"),
    ("records", records(["e1"], "b0", ["CALCULATION_COMPLETE"], [2]), "plain file name"),
    ("p0", records(["e1"], "b0", ["calculated"], [2]), "upper-case identifier"),
    ("p0", records([""], "b0", ["CALCULATION_COMPLETE"], [2]), "row 0: node_id"),
    ("p0", records(["e1"], "b0", ["CALCULATION_COMPLETE"], [2]).drop_columns(["action_taken"]),
     "action_taken column"),
])
def test_bad_record_batches_are_refused_and_write_nothing(ledger: RecordLedger, batch: str, table: pa.Table,
                                                          match: str) -> None:
    with pytest.raises(UsageError, match=match):
        ledger.write_records(ROOT, batch, table)
    assert keys(ledger) == []
