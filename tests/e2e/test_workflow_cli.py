"""`lakeline workflow`: the shipped ASL workflows on the local engine, bound to lakeline steps."""

from __future__ import annotations

import json
from pathlib import Path

from tests.e2e.helpers import Cli

IN_PROCESS = True  # the commands run in this process (tests/e2e/conftest.py)

ETL_INPUT = '{"silver_bucket": "silver", "silver_prefix": "mortgages/transactions"}'


def test_etl_promote_workflow_success_failure_history_export(lake: Cli, tmp_path: Path) -> None:
    lake.ok("gen", "transactions", "--count", "1000", "--dirty-rate", "0.01", "--out", "t.csv")
    lake.ok("put", "t.csv", "--pipeline", "transactions")
    ok = lake.json("workflow", "run", "etl_promote", "--input", ETL_INPUT)
    assert ok["status"] == "SUCCEEDED"
    out = ok["output"]
    assert (out["etl"]["value"]["input_rows"], out["validation"]["value"]["promotion_allowed"]) == (1000, True)
    assert out["promotion"]["value"]["status"] == "success"
    assert lake.count("silver.transactions") == 990  # the promoted run is what SQL sees

    # nothing new landed: RunETL fails → HandleFailure notifies → Fail state
    failed = lake("workflow", "run", "etl_promote", "--input", ETL_INPUT, "--json")
    assert failed.returncode == 1
    data = json.loads(failed.stdout)
    assert (data["status"], data["error"]) == ("FAILED", "PipelineFailed")
    outbox = (lake.home / "outbox" / "notifications.jsonl").read_text().splitlines()
    assert json.loads(outbox[-1])["subject"] == "lakeline workflow failed"

    history = lake.json("workflow", "history", data["executionArn"])["events"]
    types = [e["type"] for e in history]
    assert types[0] == "ExecutionStarted" and types[-1] == "ExecutionFailed"
    assert "TaskFailed" in types and types.count("TaskStateEntered") >= 2  # RunETL, HandleFailure
    assert lake.json("workflow", "status", data["executionArn"])["status"] == "FAILED"
    listed = lake.json("workflow", "list")
    assert {w["name"] for w in listed["workflows"]} == {"carbon", "etl_promote", "ops_replay_quality", "quality_gate"}
    assert len(listed["executions"]) == 2

    exported = json.loads(lake.ok("workflow", "export", "etl_promote", "--sam").stdout)
    assert exported["substitutions"]["LakelinePromoteArn"] == "lakeline-promote"
    assert '"${LakelinePromoteArn}"' in json.dumps(exported["definition"])


def test_adhoc_definition_and_ops_loop(lake: Cli, tmp_path: Path) -> None:
    (tmp_path / "m.asl.json").write_text(json.dumps({"StartAt": "P", "States": {"P": {
        "Type": "Pass", "Parameters": {"sum.$": "States.MathAdd($.a, $.b)"}, "End": True}}}))
    (tmp_path / "in.json").write_text('{"a": 2, "b": 40}')
    assert lake.json("workflow", "run", "--definition", "m.asl.json", "--input", "@in.json")["output"] == {"sum": 42}
    # the ops loop polls QualityCheck until max_attempts, then fails (nothing new reached silver)
    ops = lake("workflow", "run", "ops_replay_quality", "--json", "--input", json.dumps({
        "pipeline": "shipments", "window_hours": 1, "record_type": "shipments", "min_parquet_objects": 1,
        "poll_interval_seconds": 0, "max_attempts": 3}))
    data = json.loads(ops.stdout)
    assert (ops.returncode, data["status"], data["error"]) == (1, "FAILED", "QualityCheckFailed")
    events = lake.json("workflow", "history", data["executionArn"])["events"]
    assert sum(1 for e in events if e["type"] == "WaitStateEntered") == 3
    assert "no workflow" in lake.fails(2, "workflow", "run", "nope")


def test_quality_gate_workflow_pass_and_fail(lake: Cli, tmp_path: Path) -> None:
    good = [{"record_type": "shipments", "event_time": "2026-01-05T10:00:00Z", "shipment_id": f"shp_{i}",
             "origin": "SZX", "destination": "SEA", "carrier": "UPS", "weight_kg": 5.0} for i in range(3)]
    bad = [dict(good[0], event_time="2026-01-06T10:00:00Z"), dict(good[0], event_time="2026-01-06T11:00:00Z",
                                                                 weight_kg=250.0)]
    (tmp_path / "s.jsonl").write_text("\n".join(json.dumps(r) for r in good + bad) + "\n")
    lake.ok("put", "s.jsonl", "--pipeline", "shipments")
    ran = lake("run")  # the after-run rules quarantine dt=2026-01-06 (a duplicate id): exit 1
    assert ran.returncode == 1 and "1 quarantined (shipments dt=2026-01-06)" in ran.stdout, ran.stderr
    passed = lake.json("workflow", "run", "quality_gate", "--input",
                       '{"record_type": "shipments", "dt": "2026-01-05"}', "--execution-name", "gate-ok")
    result = passed["output"]["result"]["value"]
    assert (passed["status"], result["success"], len(result["results"])) == ("SUCCEEDED", True, 5)
    assert (lake.home / "zones/gold/_quality/results/shipments/dt=2026-01-05/run_gate-ok.json").exists()
    failed = lake("workflow", "run", "quality_gate", "--input", '{"record_type": "shipments", "dt": "2026-01-06"}',
                  "--execution-name", "gate-bad", "--json")
    data = json.loads(failed.stdout)
    assert (failed.returncode, data["status"], data["error"]) == (1, "FAILED", "QualityGateFailed")
    marker = json.loads((lake.home / "zones/silver/_quarantine/shipments/dt=2026-01-06/gate-bad.json").read_text())
    assert sorted(e["expectation_type"] for e in marker["failed_expectations"]) == [
        "expect_column_values_to_be_between", "expect_column_values_to_be_unique"]
    notes = (lake.home / "outbox" / "notifications.jsonl").read_text().splitlines()
    assert json.loads(notes[-1])["subject"] == "Data Quality check failed"
    assert lake.count() == 5  # the _quality and _quarantine files are not tables
