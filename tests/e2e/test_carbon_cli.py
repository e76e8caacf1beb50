"""The carbon pipeline through the CLI: gen → put → run → SQL, lineage, the DQ report."""

from __future__ import annotations

import json
from pathlib import Path

from tests.e2e.helpers import Cli

IN_PROCESS = True  # the commands run in this process (tests/e2e/conftest.py)


def test_gen_put_run_sql_lineage_and_report(lake: Cli, tmp_path: Path) -> None:
    lake.ok("gen", "carbon", "--count", "2500", "--dirty-rate", "0.01", "--seed", "5", "--out", "a.csv")
    header = (tmp_path / "a.csv").read_text().splitlines()[0]
    assert header.replace('"', "") == ("activity_event_id,asset_id,geo,origin_measurement_timestamp,scope,"
                                       "category,activity,source,raw_data,units")
    with (lake.home / "lakeline.toml").open("a") as config:
        config.write("\n[pipelines.carbon]\nbatch_size = 1000\n")  # a Map of several batches
    lake.ok("put", "a.csv", "--pipeline", "carbon", "--key", "carbon/site-a/a.csv")
    out = lake.ok("run").stdout
    assert "carbon carbon/site-a/a.csv: 2500 records in 3 batches" in out
    summary = lake.json("run")
    assert [b for b in summary["batch_runs"] if b.get("pipeline") == "carbon"] == []  # nothing left to do

    rows = lake.json("sql", "SELECT count(*) AS n, count(DISTINCT activity_event_id) AS ids, "
                            "round(sum(emissions_output.calculated_emissions.co2e.ar4.amount), 6) AS t "
                            "FROM gold.emissions")
    rejected = lake.json("sql", "SELECT count(*) AS n FROM quarantine.rejects WHERE pipeline = 'carbon'")
    assert rows[0]["n"] == rows[0]["ids"] and rows[0]["n"] + rejected[0]["n"] == 2500
    assert 0 < rejected[0]["n"] < 60 and rows[0]["t"] > 0

    trace = lake.json("lineage", "trace", "carbon-data-lake-0005-000000007")
    actions = [n["action_taken"] for n in (trace["path"] if isinstance(trace, dict) else trace)]
    assert actions[-1] == "RAW_DATA_INPUT" and actions[0] in {"CALCULATION_COMPLETE", "CALCULATION_FAILED"}
    assert "DQ_CHECK_PASS" in actions and "GLUE_BATCH_SPLIT" in actions

    results = sorted((lake.home / "zones" / "gold" / "_quality" / "results").rglob("*.json"))
    assert len(results) == 1 and "carbon/site-a/a.csv" in str(results[0])
    result = json.loads(results[0].read_text())
    assert result["success"] is True
    html = lake.ok("dq", "report", str(results[0]), "--out", "report.html")
    assert "report.html" in html.stdout + html.stderr
    assert "<html" in (tmp_path / "report.html").read_text().lower()


def test_a_failing_file_is_gated_to_error(lake: Cli, tmp_path: Path) -> None:
    lake.ok("gen", "carbon", "--count", "20", "--out", "a.csv")
    lines = (tmp_path / "a.csv").read_text().splitlines()
    (tmp_path / "dup.csv").write_text("\n".join([*lines, lines[1]]) + "\n")  # a duplicate id
    lake.ok("put", "dup.csv", "--pipeline", "carbon")
    done = lake("run")
    assert done.returncode == 1, done.stderr  # a failed workflow is a failure of the run
    assert "workflow FAILED: DataQualityCheckFailed" in done.stdout
    assert "FAILED carbon: " in done.stderr
    assert list((lake.home / "zones" / "error" / "carbon").rglob("dup.csv"))
    notes = (lake.home / "outbox" / "notifications.jsonl").read_text()
    assert "Data Quality check failed" in notes and "dup.csv" in notes


def test_a_run_killed_mid_workflow_is_resumed_by_the_next_run(lake: Cli, tmp_path: Path) -> None:
    lake.ok("gen", "carbon", "--count", "2500", "--seed", "9", "--out", "a.csv")
    lake.ok("put", "a.csv", "--pipeline", "carbon")
    env = {"LAKELINE__PIPELINES__CARBON__MAX_CONCURRENCY": "1", "LAKELINE__PIPELINES__CARBON__BATCH_SIZE": "1000"}
    for point in ("carbon.after_calculate:2", "carbon.after_merge"):
        killed = lake("run", env={**env, "LAKELINE_CRASH_AT": point})
        assert killed.returncode == 137, killed.stderr
    status = lake.json("status")["pipelines"]["carbon"]
    assert status["files"] == [] and len(status["interrupted"]) == 1
    assert "1 interrupted execution(s)" in lake.ok("status").stdout
    done = [b for b in lake.json("run", env=env)["batch_runs"] if b.get("pipeline") == "carbon"]
    assert [(b["status"], b["records"], b["calculated"] + b["failed"]) for b in done] == [("SUCCEEDED", 2500, 2500)]
    rows = lake.json("sql", "SELECT count(*) AS n, count(DISTINCT activity_event_id) AS ids FROM gold.emissions")
    assert rows == [{"n": 2500, "ids": 2500}]
    status = lake.json("workflow", "status", done[0]["execution"])
    assert status["status"] == "SUCCEEDED"
    history = [e["type"] for e in lake.json("workflow", "history", done[0]["execution"])["events"]]
    assert history.count("ExecutionStarted") == 1 and history[-1] == "ExecutionSucceeded"
    assert not list((lake.home / "zones" / "tmp").rglob("*.parquet"))
