"""[[rules]] in lakeline.toml start workflows: schedules once per tick, events once per object."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from lakeline.config import load_settings
from lakeline.errors import ConfigError, UsageError
from lakeline.lake import Lake
from lakeline.pipelines.registry import registry
from lakeline.pipelines.tasks import definition, lake_tasks
from lakeline.runner import process_queues
from lakeline.workflow.engine import list_executions
from lakeline.workflow.rules import RuleRunner
from tests.functional.helpers import land, query, rec, run


def _runner(lake: Lake) -> RuleRunner:
    reg = registry(lake.settings)
    return RuleRunner(lake, lake_tasks(lake, reg, drive=process_queues), lambda name: definition(reg, name))


def _config(home, tmp_path, rules: str) -> Lake:
    (tmp_path / "echo.asl.json").write_text(json.dumps(
        {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}))
    (home / "lakeline.toml").write_text(rules.replace("ECHO", str(tmp_path / "echo.asl.json")))
    return Lake.open(load_settings(home))


def test_schedule_and_event_rules(home, tmp_path):
    lake = _config(home, tmp_path, """
[[rules]]
name = "hourly"
schedule = "rate(1 hour)"
definition = "ECHO"
input = '{"why": "schedule"}'

[[rules]]
name = "on-land"
event = { zone = "landing", prefix = "shipments/", suffix = ".jsonl" }
definition = "ECHO"
input = '{"why": "event"}'
""")
    runner = _runner(lake)
    t0 = datetime(2026, 1, 1, 10, 30, tzinfo=UTC)
    assert runner.tick(t0) == []  # a new schedule rule starts counting now
    lake.store.put("landing", "shipments/a.jsonl", b"{}\n")
    lake.store.put("landing", "shipments/skip.csv", b"x")
    started = runner.tick(t0 + timedelta(minutes=1))
    assert len(started) == 1  # the event rule, once
    assert _runner(lake).tick(t0 + timedelta(hours=3)) and len(list_executions(lake.state)) == 2  # missed ticks fire once
    assert _runner(lake).tick(t0 + timedelta(hours=3, minutes=1)) == []
    outputs = sorted(e.output["why"] for e in list_executions(lake.state) if e.output)
    assert outputs == ["event", "schedule"]
    event_run = next(e for e in list_executions(lake.state) if e.output["why"] == "event")
    assert event_run.output["key"] == "shipments/a.jsonl" and event_run.output["bucket"] == "landing"


@pytest.mark.parametrize(("rules", "message"), [
    ('[[rules]]\nname = "x"\nworkflow = "etl_promote"\n', "exactly one of schedule or event"),
    ('[[rules]]\nname = "x"\nschedule = "rate(1 hour)"\n', "exactly one of workflow or definition"),
    ('[[rules]]\nname = "x"\nschedule = "rate(1 hours)"\nworkflow = "etl_promote"\n', "singular"),
    ('[[rules]]\nname = "x"\nschedule = "rate(1 hour)"\nworkflow = "etl_promote"\ninput = "{"\n', "input is not JSON"),
])
def test_bad_rules_are_refused(home, tmp_path, rules, message):
    lake = _config(home, tmp_path, rules)
    with pytest.raises(ConfigError, match=message):
        _runner(lake)


SEED_OPS_RULE = """
[queue]
retry_delay = 0
[runner]
poll_interval = 0.01

[[rules]]
name = "nightly-ops"
schedule = "rate(1 day)"
workflow = "ops_replay_quality"
input = '''{"bronze_bucket": "landing", "src_prefix": "bronze/shipments/", "dest_prefix_base": "bronze/replay",
          "window_hours": 24, "silver_bucket": "silver", "silver_prefix": "silver", "record_type": "shipments",
          "min_parquet_objects": 1, "poll_interval_seconds": 0, "max_attempts": 2}'''
"""


def test_scheduled_ops_workflow_with_the_seed_input_loads_its_replay(home, tmp_path):
    lake = _config(home, tmp_path, SEED_OPS_RULE)
    land(lake, "shipments/a.jsonl", b"".join(orjson.dumps(rec(shipment_id=f"shp_{i:012d}")) + b"\n"
                                             for i in range(7)))
    assert run(lake.settings)["loaded"] == 7
    t0 = datetime.now(UTC)
    assert _runner(lake).tick(t0) == []
    started = _runner(lake).tick(t0 + timedelta(days=1, minutes=1))
    assert len(started) == 1
    ex = next(e for e in list_executions(lake.state) if e.execution_arn == started[0])
    assert ex.status == "SUCCEEDED", (ex.error, ex.cause)
    assert (ex.output["replay"]["value"]["copied"], ex.output["process"]["value"]["loaded"]) == (1, 7)
    assert query(lake, "SELECT count(*) FROM silver.shipments") == [(7,)]


def test_process_step_without_a_runner_says_how_to_get_one(home, tmp_path, monkeypatch):
    lake = _config(home, tmp_path, "")
    reg = registry(lake.settings)  # lake_tasks without a drive: as a library caller might
    with pytest.raises(UsageError, match="lakeline-process needs the local runner: run the workflow with "
                                        "`lakeline workflow`, or pass drive=lakeline.runner.process_queues"):
        lake_tasks(lake, reg).resolve("arn:aws:states:::lambda:invoke",
                                      {"FunctionName": "lakeline-process", "Payload": {}})[0]({})
