"""The carbon pipeline end to end on the embedded lake: put → run drives the workflow."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from lakeline.errors import NotFoundError
from lakeline.lake import Lake
from lakeline.pipelines.carbon.job import RESULTS_TABLE, result_of
from lakeline.workflow.engine import load_execution
from tests.functional.helpers import land, query, run, settings

HEADER = "activity_event_id,asset_id,geo,origin_measurement_timestamp,scope,category,activity,source,raw_data,units"
ROWS = [
    'e1,vehicle101,"[22.4937132,91.5015009]",2019-10,1,mobile-combustion,Motor Gasoline - Gasoline Passenger Cars,'
    "fleet,9,gal",
    'e2,facility1,"[1.5,2.5]",2019-10-01T00:00:00Z,2,grid-region-location-based,AKGD,bills,1000,kwh',
    'e3,trip1,"[1,2]",2020-01,3,transport,Average Car - Battery Electric Vehicle,travel,160.9344,km',
    'e4,vehicle2,"[1,2]",2019-10,1,mobile-combustion,Rocket Fuel,fleet,9,gal',
    'e5,vehicle3,"[1,2]",2019-10,1,mobile-combustion,Motor Gasoline - Gasoline Passenger Cars,fleet,9,kg',
]
KEY = "carbon/2026/11/activities.csv"


def _csv(rows: list[str]) -> bytes:
    return ("\ufeff" + HEADER + "\n" + "\n".join(rows) + "\n").encode()


@pytest.fixture
def lake_and_settings(home: Path):  # type: ignore[no-untyped-def]
    s = settings(home, pipelines__carbon__batch_size=2, pipelines__carbon__max_concurrency=2)
    return Lake.open(s), s


def test_put_and_run_calculates_into_gold_with_lineage_and_rejects(lake_and_settings) -> None:  # type: ignore[no-untyped-def]
    lake, s = lake_and_settings
    land(lake, KEY, _csv(ROWS))
    summary = run(s)
    [report] = [b for b in summary["batch_runs"] if b.get("pipeline") == "carbon"]
    assert (report["status"], report["records"], report["batches"], report["calculated"], report["failed"]) == (
        "SUCCEEDED", 5, 3, 3, 2)
    # the gate moved the file landing -> raw with its full key
    assert not lake.store.exists("landing", KEY) and lake.store.exists("raw", KEY)
    got = query(lake, "SELECT activity_event_id, emissions_output.calculated_emissions.co2e.ar4.amount, "
                      "emissions_output.calculated_emissions.co2e.ar5.unit, scope, raw_data "
                      "FROM gold.emissions ORDER BY 1")
    assert [r[0] for r in got] == ["e1", "e2", "e3"]
    assert got[0][1] == pytest.approx(0.07932482325, rel=1e-12)
    assert got[1][1] == pytest.approx(0.473987524, rel=1e-12)
    assert got[2][1] == pytest.approx(0.025708, rel=1e-12)
    assert (got[0][2], got[0][3], got[0][4]) == ("tonnes", 1, 9.0)
    rejects = query(lake, "SELECT line_no, reason_code FROM quarantine.rejects WHERE pipeline = 'carbon' ORDER BY 1")
    assert rejects == [(5, "FACTOR_NOT_FOUND"), (6, "UNIT_MISMATCH")]
    # results by activity_event_id: a lookup over gold (no state store copy by default)
    stored = result_of(lake, "e1")
    assert stored["emissions_output"]["calculated_emissions"]["co2"]["amount"] == pytest.approx(0.07902)
    assert sorted(stored) == ["_factors", "_lineage", "_source", "activity_event_id", "emissions_output"]
    assert (stored["activity_event_id"], stored["_source"]["line_no"]) == ("e1", 2)
    assert len(lake.state.query(RESULTS_TABLE)) == 0
    with pytest.raises(NotFoundError, match="e4"):
        result_of(lake, "e4")  # rejected: no result

    # lineage: one tree per root, record nodes keyed by activity_event_id
    root = report["root_id"]
    assert lake.lineage.counts(root) == {
        "RAW_DATA_INPUT": 1, "PROFILE_COMPLETE": 1, "DQ_CHECK_PASS": 1, "GLUE_BATCH_SPLIT": 3,
        "CALCULATION_COMPLETE": 3, "CALCULATION_FAILED": 2}
    trace = lake.lineage.trace("e3", root)
    assert [n.action_taken for n in trace] == [
        "CALCULATION_COMPLETE", "GLUE_BATCH_SPLIT", "DQ_CHECK_PASS", "PROFILE_COMPLETE", "RAW_DATA_INPUT"]
    assert trace[2].storage_location == lake.store.scan_uri("raw", KEY)  # the raw file
    assert trace[1].storage_location.endswith(f"transformed/{root}/part_1.parquet")
    assert trace[-1].parent_id == root
    failed = lake.lineage.get("e4", root)
    assert failed is not None and failed.action_taken == "CALCULATION_FAILED"
    assert failed.attrs == {"reason": "FACTOR_NOT_FOUND", "line_no": 5}
    # record-level nodes are data: one sealed Parquet file per root, none in the ledger itself
    assert lake.lineage.inner.counts(root) == {
        "RAW_DATA_INPUT": 1, "PROFILE_COMPLETE": 1, "DQ_CHECK_PASS": 1, "GLUE_BATCH_SPLIT": 3}
    assert [i.key for i in lake.store.list("silver", "_lineage/")] == [f"_lineage/records/{root}/records.parquet"]
    records = pq.read_table(lake.store.local_path("silver", f"_lineage/records/{root}/records.parquet"))
    assert records.select(["node_id", "action_taken", "source_key", "line_no"]).to_pylist() == [
        {"node_id": f"e{n}", "action_taken": action, "source_key": KEY, "line_no": n + 1}
        for n, action in enumerate(["CALCULATION_COMPLETE"] * 3 + ["CALCULATION_FAILED"] * 2, start=1)]
    # nothing staged is left behind; the batches stay under transformed/<root_id>/
    assert [i.key for i in lake.store.list("tmp", "carbon/")] == []
    assert sorted(i.key for i in lake.store.list("silver", f"transformed/{root}/")) == [
        f"transformed/{root}/part_{n}.parquet" for n in range(3)]
    ex = load_execution(lake.state, report["execution"])
    assert ex is not None and ex.status == "SUCCEEDED"
    assert sum(1 for e in ex.history if e["type"] == "MapIterationSucceeded") == 3


def test_store_results_keeps_a_state_store_copy_written_in_bulk(home: Path) -> None:
    s = settings(home, pipelines__carbon__batch_size=2, pipelines__carbon__store_results=True)
    lake = Lake.open(s)
    land(lake, KEY, _csv(ROWS))
    run(s)
    items = {i.key: i.data for i in lake.state.query(RESULTS_TABLE)}
    assert sorted(items) == ["e1", "e2", "e3"]
    for key, data in items.items():  # the copy is what the gold lookup answers
        assert data == result_of(lake, key)
    assert items["e2"]["_source"] == {"key": KEY, "line_no": 3}


def test_rerun_of_the_same_file_is_a_new_root_and_never_duplicates(lake_and_settings) -> None:  # type: ignore[no-untyped-def]
    from lakeline.pipelines.carbon.job import waiting

    lake, s = lake_and_settings
    land(lake, KEY, _csv(ROWS))
    assert waiting(lake) == {"files": [KEY], "interrupted": []}
    first = [b for b in run(s)["batch_runs"] if b.get("pipeline") == "carbon"][0]
    changed = [ROWS[0].replace(",9,gal", ",18,gal"), *ROWS[1:]]
    land(lake, KEY, _csv(changed))
    second = [b for b in run(s)["batch_runs"] if b.get("pipeline") == "carbon"][0]
    assert second["status"] == "SUCCEEDED" and second["root_id"] != first["root_id"]
    rows = query(lake, "SELECT activity_event_id, count(*), any_value(emissions_output.calculated_emissions.co2.amount) "
                       "FROM gold.emissions GROUP BY 1 ORDER BY 1")
    assert [(r[0], r[1]) for r in rows] == [("e1", 1), ("e2", 1), ("e3", 1)]
    assert rows[0][2] == pytest.approx(0.15804)  # the repeat overwrote e1
    assert result_of(lake, "e1")["_lineage"]["root_id"] == second["root_id"]
    # a third run with nothing landed does nothing
    assert [b for b in run(s)["batch_runs"] if b.get("pipeline") == "carbon"] == []
    assert waiting(lake) == {"files": [], "interrupted": []}


@pytest.mark.parametrize(("rows", "failing"), [
    ([ROWS[0], ROWS[0].replace("vehicle101", "vehicle9")], "expect_column_values_to_be_unique"),
    ([ROWS[0], ROWS[1].replace("e2,", ",", 1)], "expect_column_values_to_not_be_null"),
    ([ROWS[0], ROWS[1].replace("facility1", "")], "expect_column_values_to_not_be_null"),
])
def test_a_file_failing_a_dq_rule_goes_to_error_and_notifies(lake_and_settings, rows, failing) -> None:  # type: ignore[no-untyped-def]
    lake, s = lake_and_settings
    land(lake, KEY, _csv(rows))
    [report] = [b for b in run(s)["batch_runs"] if b.get("pipeline") == "carbon"]
    assert (report["status"], report["error"]) == ("FAILED", "DataQualityCheckFailed")
    assert lake.store.exists("error", KEY) and not lake.store.exists("landing", KEY)
    assert not lake.store.exists("raw", KEY)
    notes = [json.loads(line) for line in (s.outbox_dir / "notifications.jsonl").read_text().splitlines()]
    assert notes[-1]["subject"] == "Data Quality check failed" and KEY in json.dumps(notes[-1])
    assert query(lake, "SELECT count(*) FROM information_schema.tables WHERE table_name = 'emissions'") == [(0,)]
    ex = load_execution(lake.state, report["execution"])
    assert ex is not None
    dq = next(e for e in ex.history if e["type"] == "TaskSucceeded" and "DQ_CHECK_FAIL" in json.dumps(e, default=str))
    assert failing in json.dumps(dq, default=str)
    root = json.loads(json.dumps(ex.output or {})).get("root_id") or ex.input["root_id"]
    assert lake.lineage.counts(root) == {"RAW_DATA_INPUT": 1, "PROFILE_COMPLETE": 1, "DQ_CHECK_FAIL": 1}


@pytest.mark.parametrize(("body", "failing"), [
    (HEADER.replace(",units", "").encode() + b"\ne1,a,[1],2019-10,1,c,a,s,9\n", "expect_table_columns_to_match_set"),
    (b"\xff\xfe\x00 not text at all \x00\x01", "expect_file_to_be_readable_csv"),
])
def test_a_file_without_the_columns_or_not_csv_is_gated_to_error(lake_and_settings, body, failing) -> None:  # type: ignore[no-untyped-def]
    lake, s = lake_and_settings
    land(lake, KEY, body)
    [report] = [b for b in run(s)["batch_runs"] if b.get("pipeline") == "carbon"]
    assert (report["status"], report["error"]) == ("FAILED", "DataQualityCheckFailed")
    assert lake.store.exists("error", KEY) and not lake.store.exists("landing", KEY)
    ex = load_execution(lake.state, report["execution"])
    assert ex is not None
    assert failing in json.dumps([e for e in ex.history if e["type"] == "TaskSucceeded"], default=str)


def test_a_header_only_file_publishes_nothing(lake_and_settings) -> None:  # type: ignore[no-untyped-def]
    lake, s = lake_and_settings
    land(lake, KEY, _csv([]))
    [report] = [b for b in run(s)["batch_runs"] if b.get("pipeline") == "carbon"]
    assert (report["status"], report["records"], report["batches"], report["calculated"]) == ("SUCCEEDED", 0, 0, 0)
    assert lake.store.exists("raw", KEY)
