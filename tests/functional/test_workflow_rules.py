"""[[rules]] in lakeline.toml start workflows: schedules once per tick, events once per object."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from lakeline.config import load_settings
from lakeline.errors import ConfigError
from lakeline.lake import Lake
from lakeline.pipelines.registry import registry
from lakeline.pipelines.tasks import definition, lake_tasks
from lakeline.workflow.engine import list_executions
from lakeline.workflow.rules import RuleRunner


def _runner(lake: Lake) -> RuleRunner:
    reg = registry(lake.settings)
    return RuleRunner(lake, lake_tasks(lake, reg), lambda name: definition(reg, name))


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
