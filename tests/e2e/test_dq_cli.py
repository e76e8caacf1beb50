"""`lakeline dq run | report | rules` through click's CliRunner on a real local lake."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from lakeline.cli.main import cli
from lakeline.errors import ConfigError, NotFoundError, UsageError
from lakeline.lake import Lake
from tests.functional.helpers import land, rec, run, settings

HEADER = "activity_event_id,asset_id,geo,origin_measurement_timestamp,scope,category,activity,source,raw_data,units\n"
ROW = '{},{},"[22.49,91.50]",2019-10,1,mobile-combustion,Motor Gasoline - Gasoline Passenger Cars,db,9,gal\n'


def invoke(home: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--home", str(home), "dq", *args])


def carbon_csv(path: Path, rows: list[tuple[str, str]]) -> Path:
    path.write_bytes(("\ufeff" + HEADER + "".join(ROW.format(e, a) for e, a in rows)).encode())
    return path


def test_rules_lists_builtin_and_configured_rulesets(home: Path) -> None:
    out = invoke(home, "rules", "--pipeline", "carbon")
    assert out.exit_code == 0, out.output
    assert "ruleset carbon (the pipeline)" in out.output and "activity_event_id" in out.output
    data = json.loads(invoke(home, "rules", "--pipeline", "carbon", "--json").output)
    assert data == {"ruleset": "carbon", "builtin": True, "rules": [
        {"name": "expect_column_values_to_not_be_null", "kind": "not_null", "column": "activity_event_id",
         "params": {}, "mostly": 1.0},
        {"name": "expect_column_values_to_be_unique", "kind": "unique", "column": "activity_event_id",
         "params": {}, "mostly": 1.0},
        {"name": "expect_column_values_to_not_be_null", "kind": "not_null", "column": "asset_id",
         "params": {}, "mostly": 1.0}]}
    shipments = json.loads(invoke(home, "rules", "--pipeline", "shipments", "--json").output)
    assert [(d["ruleset"], len(d["rules"])) for d in shipments] == [
        ("shipments.shipments", 5), ("shipments.tracking_events", 4), ("shipments.invoice_lines", 5)]
    with (home / "lakeline.toml").open("a") as f:
        f.write('\n[pipelines.carbon.dq]\nrules = [{kind = "in_set", column = "scope", values = [1, 2, 3], '
                'name = "scopes"}]\n')
    configured = json.loads(invoke(home, "rules", "--pipeline", "carbon", "--json").output)
    assert (configured["builtin"], configured["rules"][0]["params"]) == (False, {"values": [1, 2, 3]})


def test_run_a_passing_file(home: Path, tmp_path: Path) -> None:
    good = carbon_csv(tmp_path / "activity.csv", [("e1", "v1"), ("e2", "v2")])
    out = invoke(home, "run", "--pipeline", "carbon", str(good), "--html", str(tmp_path / "r.html"),
                 "--run-id", "run1")
    assert out.exit_code == 0, out.output
    assert "PASSED: 3 of 3 rules passed on 2 rows" in out.output
    stored = home / "zones/gold/_quality/results/carbon/activity.csv/run_run1"
    assert f"result: {stored}.json" in out.output
    assert f"report: {(tmp_path / 'r.html').resolve()}" in out.output
    result = json.loads(Path(f"{stored}.json").read_text())
    assert (result["success"], result["source"], result["profile"]["asset_id"]["distinct"]) == (True, str(good), 2)
    assert "PASS" in Path(f"{stored}.html").read_text() and "PASS" in (tmp_path / "r.html").read_text()


def test_run_a_failing_file_exits_1(home: Path, tmp_path: Path) -> None:
    bad = carbon_csv(tmp_path / "bad.csv", [("e1", "v1"), ("e1", ""), ("", "v3")])
    out = invoke(home, "run", "--pipeline", "carbon", str(bad), "--no-column-profile")
    assert out.exit_code == 1
    assert "FAILED: 0 of 3 rules passed on 3 rows" in out.output
    assert out.output.count("FAIL") == 4  # 3 rules and the verdict
    data = json.loads(invoke(home, "run", "--pipeline", "carbon", str(bad), "--json", "--run-id", "r2").output)
    assert [r["result"]["unexpected_count"] for r in data["results"]] == [1, 1, 1]
    assert (data["result_key"], data["profile"]["activity_event_id"]["duplicates"]) == (
        "_quality/results/carbon/bad.csv/run_r2.json", 1)
    assert json.loads(invoke(home, "run", "--pipeline", "carbon", str(bad), "--json", "--no-column-profile").output)[
        "profile"] is None


@pytest.fixture
def shipments_lake(home: Path) -> Path:
    s = settings(home)
    lake = Lake.open(s)
    good = [rec(shipment_id=f"shp_{i}", weight_kg=5.0) for i in range(3)]
    bad = [rec(shipment_id="shp_9", event_time="2026-01-06T10:00:00Z"),
           rec(shipment_id="shp_9", event_time="2026-01-06T11:00:00Z", weight_kg=250.0),
           rec(shipment_id="shp_8", event_time="2026-01-06T12:00:00Z", weight_kg=-1.0)]
    land(lake, "shipments/a.jsonl", b"\n".join(json.dumps(r).encode() for r in good + bad) + b"\n")
    run(s)
    return home


def test_shipments_table_uses_specs_3_and_quarantines_failures(shipments_lake: Path) -> None:
    home = shipments_lake
    ok = invoke(home, "run", "--pipeline", "shipments", "silver.shipments", "--dt", "2026-01-05", "--run-id", "ok")
    assert ok.exit_code == 0, ok.output
    assert "PASSED: 5 of 5 rules passed on 3 rows" in ok.output
    assert (home / "zones/gold/_quality/results/shipments/dt=2026-01-05/run_ok.json").exists()
    bad = invoke(home, "run", "--pipeline", "shipments", "silver.shipments", "--dt", "2026-01-06", "--json",
                 "--run-id", "bad")
    assert bad.exit_code == 1
    data = json.loads(bad.output)
    assert (data["record_type"], data["dt"], data["statistics"]["rows"]) == ("shipments", "2026-01-06", 3)
    failed = {r["expectation_type"]: r["result"] for r in data["results"] if not r["success"]}
    assert {k: (v["unexpected_count"], v["partial_unexpected_list"]) for k, v in failed.items()} == {
        "expect_column_values_to_be_unique": (1, ["shp_9"]),
        "expect_column_values_to_be_between": (2, [-1.0, 250.0])}
    assert data["quarantine_marker"] == "_quarantine/shipments/dt=2026-01-06/bad.json"
    marker = json.loads((home / "zones/silver" / data["quarantine_marker"]).read_text())
    assert len(marker["failed_expectations"]) == 2
    note = json.loads((home / "outbox/notifications.jsonl").read_text().splitlines()[-1])
    assert note["subject"] == "Data Quality check failed"
    assert note["message"].startswith("Data Quality check failed for silver table silver.shipments partition "
                                      "dt=2026-01-06: 2 of 5 rules failed (3 rows)")
    whole = json.loads(invoke(home, "run", "--pipeline", "shipments", "silver.shipments", "--json").output)
    assert (whole["dt"], whole["statistics"]["rows"], whole["success"]) == ("all", 6, False)
    empty = invoke(home, "run", "--pipeline", "shipments", "silver.shipments", "--dt", "2030-01-01", "--json")
    assert [r["success"] for r in json.loads(empty.output)["results"]] == [False, True, True, True, True]


def test_report_renders_a_stored_or_local_result(shipments_lake: Path, tmp_path: Path) -> None:
    home = shipments_lake
    invoke(home, "run", "--pipeline", "shipments", "silver.shipments", "--dt", "2026-01-06", "--run-id", "x")
    key = "_quality/results/shipments/dt=2026-01-06/run_x.json"
    (home / "zones/gold" / key.replace(".json", ".html")).unlink()
    out = invoke(home, "report", key)
    assert out.exit_code == 0, out.output
    assert out.output.strip() == str(home / "zones/gold" / key.replace(".json", ".html"))
    assert "shp_9" in Path(out.output.strip()).read_text()
    local = tmp_path / "copy.json"
    local.write_bytes((home / "zones/gold" / key).read_bytes())
    assert invoke(home, "report", str(local)).output.strip() == str(tmp_path / "copy.html")
    assert invoke(home, "report", "gold/" + key, "--out", str(tmp_path / "o.html")).output.strip() == str(
        tmp_path / "o.html")
    assert isinstance(invoke(home, "report", "_quality/nope.json").exception, NotFoundError)
    (tmp_path / "not.json").write_text('{"a": 1}')
    assert "not a data quality result" in str(invoke(home, "report", str(tmp_path / "not.json")).exception)


def test_usage_and_config_errors(home: Path, tmp_path: Path) -> None:
    assert isinstance(invoke(home, "run", "--pipeline", "carbon", "nope.csv").exception, UsageError)
    assert isinstance(invoke(home, "run", "--pipeline", "shipments", "silver.shipments").exception, NotFoundError)
    assert "--dt must be YYYY-MM-DD" in str(invoke(home, "run", "--pipeline", "shipments", "silver.shipments",
                                                   "--dt", "x'; --").exception)
    no_rules = invoke(home, "run", "--pipeline", "retail", str(carbon_csv(tmp_path / "a.csv", [("e", "a")])))
    assert "no data quality rules for retail" in str(no_rules.exception)
    with (home / "lakeline.toml").open("a") as f:
        f.write('\n[pipelines.carbon.dq]\nrules = [{kind = "between", column = "raw_data"}]\n')
    err = invoke(home, "rules", "--pipeline", "carbon").exception
    assert isinstance(err, ConfigError)
    assert str(err) == (f"{home / 'lakeline.toml'} [pipelines.carbon.dq]: ruleset 'carbon': rules[0] (between): "
                        "needs min and/or max")
