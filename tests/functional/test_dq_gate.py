"""The file gate on a real local lake: pass → raw, fail → error + notification, both keeping the
full key; re-running after a crash between copy and delete."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lakeline.config import load_settings
from lakeline.dq.engine import evaluate_path
from lakeline.dq.gate import file_gate, result_keys, result_prefix
from lakeline.errors import NotFoundError, UsageError
from lakeline.lake import Lake
from lakeline.pipelines.carbon.rules import RULES as CARBON_RULES

HEADER = "activity_event_id,asset_id,geo,origin_measurement_timestamp,scope,category,activity,source,raw_data,units\n"
ROW = '{},{},"[22.49,91.50]",2019-10,1,mobile-combustion,Motor Gasoline - Gasoline Passenger Cars,db,9,gal\n'
KEY = "carbon/2026-01-05/fleet/activity.csv"


@pytest.fixture
def lake(home: Path) -> Lake:
    return Lake.open(load_settings(home))


def _land(lake: Lake, tmp_path: Path, rows: list[tuple[str, str]]) -> Path:
    body = ("\ufeff" + HEADER + "".join(ROW.format(e, a) for e, a in rows)).encode()
    lake.store.put("landing", KEY, body)
    local = tmp_path / "activity.csv"
    local.write_bytes(body)
    return local


def _notes(home: Path) -> list[dict[str, object]]:
    path = home / "outbox" / "notifications.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_pass_moves_landing_to_raw_keeping_the_full_key(lake: Lake, home: Path, tmp_path: Path) -> None:
    local = _land(lake, tmp_path, [("e1", "v1"), ("e2", "v2")])
    etag = lake.store.head("landing", KEY).etag
    result = evaluate_path(str(local), CARBON_RULES, profile=True, run_id="r1")
    out = file_gate(lake, KEY, result)
    assert (out.passed, out.action, out.source_key, out.dest_zone, out.dest_key) == (
        True, "DQ_CHECK_PASS", KEY, "raw", KEY)
    assert (out.result_key, out.report_key) == (f"_quality/results/{KEY}/run_r1.json",
                                                f"_quality/results/{KEY}/run_r1.html")
    assert not lake.store.exists("landing", KEY)
    assert lake.store.head("raw", KEY).etag == etag
    stored = json.loads(lake.store.get("gold", out.result_key))
    assert (stored["success"], stored["statistics"]["rows"], stored["gate"]["action"]) == (True, 2, "DQ_CHECK_PASS")
    assert stored["profile"]["asset_id"]["distinct"] == 2
    assert b"PASS" in lake.store.get("gold", out.report_key)
    assert _notes(home) == []


def test_fail_moves_to_error_and_notifies_naming_the_file(lake: Lake, home: Path, tmp_path: Path) -> None:
    local = _land(lake, tmp_path, [("e1", "v1"), ("e1", "v2"), ("e3", "")])
    out = file_gate(lake, KEY, evaluate_path(str(local), CARBON_RULES, run_id="r2"))
    assert (out.passed, out.action, out.dest_zone, out.dest_key) == (False, "DQ_CHECK_FAIL", "error", KEY)
    assert lake.store.exists("error", KEY) and not lake.store.exists("landing", KEY)
    assert not lake.store.exists("raw", KEY)
    [note] = _notes(home)
    assert note["subject"] == "Data Quality check failed"
    assert note["message"] == (
        f"Data Quality check failed for landing/{KEY}: 2 of 3 rules failed (ruleset carbon, 3 rows). "
        f"The file was moved to error/{KEY}.\n"
        "- expect_column_values_to_be_unique on activity_event_id: 1 unexpected (33.333333 %)\n"
        "- expect_column_values_to_not_be_null on asset_id: 1 unexpected (33.333333 %)\n"
        f"Report: gold/_quality/results/{KEY}/run_r2.html")
    assert note["attributes"] == {  # type: ignore[comparison-overlap]
        "action": "DQ_CHECK_FAIL", "key": KEY, "pipeline": "carbon", "source": f"landing/{KEY}",
        "dest": f"error/{KEY}", "result_key": out.result_key, "report_key": out.report_key,
        "failed_rules": ["expect_column_values_to_be_unique", "expect_column_values_to_not_be_null"]}
    page = lake.store.get("gold", out.report_key).decode()
    assert "FAILED" in page and "e1" in page and "DQ_CHECK_FAIL: error/" + KEY in page


def test_rerun_after_a_crash_between_copy_and_delete(lake: Lake, home: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    local = _land(lake, tmp_path, [("e1", "v1"), ("e1", "v1")])
    result = evaluate_path(str(local), CARBON_RULES, run_id="r3")
    etag = lake.store.head("landing", KEY).etag

    def crash(zone: str, key: str) -> None:
        raise RuntimeError("killed")

    monkeypatch.setattr(lake.store, "delete", crash)
    with pytest.raises(RuntimeError, match="killed"):
        file_gate(lake, KEY, result)
    assert lake.store.exists("landing", KEY) and lake.store.exists("error", KEY)  # copied, not deleted
    monkeypatch.undo()
    out = file_gate(lake, KEY, result)  # the retry finishes the move
    assert (out.dest_zone, lake.store.head("error", KEY).etag) == ("error", etag)
    assert not lake.store.exists("landing", KEY)
    assert len(_notes(home)) == 2  # sent before the crash and again by the retry: at least once
    again = file_gate(lake, KEY, result)  # a third run finds the move done: no copy, no new notification
    assert again == out and len(_notes(home)) == 2
    assert [i.key for i in lake.store.list("gold", "_quality/")] == [f"_quality/results/{KEY}/run_r3.html",
                                                                     f"_quality/results/{KEY}/run_r3.json"]


def test_gate_of_a_missing_file(lake: Lake, tmp_path: Path) -> None:
    local = _land(lake, tmp_path, [("e1", "v1")])
    lake.store.delete("landing", KEY)
    with pytest.raises(NotFoundError, match=f"landing/{KEY} does not exist"):
        file_gate(lake, KEY, evaluate_path(str(local), CARBON_RULES))


def test_custom_zones_and_result_keys(lake: Lake, tmp_path: Path) -> None:
    local = _land(lake, tmp_path, [("e1", "v1")])
    lake.store.copy("landing", KEY, "tmp", KEY)
    out = file_gate(lake, KEY, evaluate_path(str(local), CARBON_RULES, run_id="x"), source_zone="tmp",
                    pass_zone="silver")
    assert (out.dest_zone, lake.store.exists("silver", KEY), lake.store.exists("tmp", KEY)) == ("silver", True, False)
    assert result_keys("a/b.csv", "7") == ("_quality/results/a/b.csv/run_7.json", "_quality/results/a/b.csv/run_7.html")


@pytest.mark.parametrize(("given", "expected"), [
    (None, "_quality/results"), ("ge/results", "ge/results"), ("ge/results/", "ge/results")])
def test_result_prefix_defaults_and_trailing_slash(given, expected) -> None:
    assert result_prefix(given) == expected


@pytest.mark.parametrize(("given", "reason"), [
    ("../raw", "result_prefix '../raw' escapes the gold zone: object key '../raw' has an empty, '.' or '..' segment"),
    ("/tmp/x", "result_prefix '/tmp/x' escapes the gold zone: object key '/tmp/x' is absolute"),
    ("ge/../../x", "result_prefix 'ge/../../x' escapes the gold zone"),
    ("s3://bucket/ge", "result_prefix 's3://bucket/ge' names a bucket: give a prefix inside the gold zone"),
])
def test_result_prefix_that_escapes_gold_is_refused(given, reason) -> None:
    with pytest.raises(UsageError) as err:
        result_prefix(given)
    assert str(err.value).startswith(reason)


def test_file_gate_results_under_another_prefix(lake: Lake, tmp_path: Path) -> None:
    local = _land(lake, tmp_path, [("e1", "v1")])
    result = evaluate_path(str(local), CARBON_RULES, run_id="r9")
    out = file_gate(lake, KEY, result, results_under="ge/results")
    assert (out.result_key, out.report_key) == (f"ge/results/{KEY}/run_r9.json", f"ge/results/{KEY}/run_r9.html")
    assert json.loads(lake.store.get("gold", out.result_key))["gate"]["report_key"] == out.report_key
    assert list(lake.store.list("gold", "_quality/")) == []
    with pytest.raises(UsageError, match="escapes the gold zone"):
        file_gate(lake, KEY, result, results_under="../x")
