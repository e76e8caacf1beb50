"""`lakeline models list | run | validate` through click's CliRunner on a real local lake."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner, Result

from lakeline.cli import main as cli_main
from lakeline.cli.models import models
from lakeline.errors import ConfigError, UsageError
from lakeline.lake import Lake
from tests.functional.helpers import land, rec, run, settings

DAILY = "SELECT carrier, count(*) AS n FROM silver.shipments GROUP BY ALL\n"


def invoke(home: Path, *args: str) -> Result:
    return CliRunner().invoke(models, list(args), env={"LAKELINE_HOME": str(home)})


def model(home: Path, name: str, sql: str) -> Path:
    (home / "models").mkdir(exist_ok=True)
    path = home / "models" / f"{name}.sql"
    path.write_text(sql)
    return path


@pytest.fixture
def lake(home: Path) -> Lake:
    lake = Lake.open(settings(home))
    body = b"".join(orjson.dumps(rec(shipment_id=f"shp_{i:012d}", carrier=c)) + b"\n"
                    for i, c in enumerate(["UPS", "DHL", "UPS"]))
    land(lake, "shipments/a.jsonl", body)
    assert run(lake.settings)["loaded"] == 3
    return lake


def test_help_teaches_with_an_example(home):
    out = invoke(home, "--help")
    assert out.exit_code == 0
    assert "  HOME/models/daily_counts.sql:\n    -- shipments per day and carrier\n" in out.stdout
    assert "lakeline models run daily_counts materialise this one now" in out.stdout
    assert "Exit code 1 when a model failed" in invoke(home, "run", "--help").stdout


def test_no_models(home, lake):
    assert json.loads(invoke(home, "list", "--json").stdout) == []
    out = invoke(home, "run")
    assert (out.exit_code, out.stdout) == (0, f"no models: write one SELECT per file in {home / 'models'}/NAME.sql\n")
    assert json.loads(invoke(home, "validate", "--json").stdout) == {
        "valid": True, "order": [], "models": [], "problems": []}


def test_run_list_and_validate(home, lake):
    daily = model(home, "daily", DAILY)
    model(home, "total", "SELECT sum(n) AS n FROM gold.daily")
    out = invoke(home, "validate")
    assert (out.exit_code, out.stdout) == (0, "model daily: reads silver.shipments\nmodel total: reads gold.daily\n"
                                              "2 model(s) valid; run order: daily, total\n")
    assert json.loads(invoke(home, "validate", "--json").stdout) == {
        "valid": True, "order": ["daily", "total"], "problems": [],
        "models": [{"name": "daily", "file": str(daily), "inputs": ["silver.shipments"]},
                   {"name": "total", "file": str(home / "models" / "total.sql"), "inputs": ["gold.daily"]}]}
    listed = json.loads(invoke(home, "list", "--json").stdout)
    assert [(m["name"], m["inputs"], m["status"], m["rows"], m["materialised_at"], m["error"]) for m in listed] == [
        ("daily", ["silver.shipments"], "NEW", None, None, None), ("total", ["gold.daily"], "NEW", None, None, None)]

    out = invoke(home, "run")
    assert (out.exit_code, out.stdout) == (0, "model daily: 2 rows into gold.daily (inputs silver.shipments)\n"
                                              "model total: 1 row into gold.total (inputs gold.daily)\n")
    out = invoke(home, "run", "--json")
    results = json.loads(out.stdout)
    assert out.exit_code == 0
    assert [set(r) for r in results] == [{"name", "status", "rows", "inputs", "error", "location", "elapsed_s",
                                          "reason", "materialised_at"}] * 2
    assert [(r["name"], r["status"], r["rows"], r["inputs"], r["reason"], r["location"]) for r in results] == [
        ("daily", "SKIPPED", 2, ["silver.shipments"], "up to date",
         str(home / "zones" / "gold" / "daily" / "data.parquet")),
        ("total", "SKIPPED", 1, ["gold.daily"], "up to date", str(home / "zones" / "gold" / "total" / "data.parquet"))]
    out = invoke(home, "run", "total")
    assert (out.exit_code, out.stdout) == (0, "model total: 1 row into gold.total (inputs gold.daily)\n")
    listed = json.loads(invoke(home, "list", "--json").stdout)
    state = Lake.open(settings(home)).state
    assert [(m["name"], m["status"], m["rows"], m["materialised_at"]) for m in listed] == [
        ("daily", "SUCCEEDED", 2, state.get("models", "daily").data["materialised_at"]),
        ("total", "SUCCEEDED", 1, state.get("models", "total").data["materialised_at"])]
    table = invoke(home, "list")
    assert table.exit_code == 0
    assert "daily" in table.output and "silver.shipments" in table.output and "SUCCEEDED" in table.output
    out = invoke(home, "run", "nope")
    assert isinstance(out.exception, UsageError)
    assert str(out.exception) == f"no model 'nope'; models: daily, total (files {home / 'models'}/NAME.sql)"


def test_a_failing_model_exits_1_and_list_shows_its_error(home, lake):
    model(home, "daily", DAILY)
    model(home, "bad", "SELECT CAST(carrier AS INTEGER) AS c FROM silver.shipments WHERE carrier = 'DHL'")
    error = "Conversion Error: Could not convert string 'DHL' to INT32 when casting from source column carrier"
    out = invoke(home, "run")
    assert (out.exit_code, out.stdout) == (1, f"model bad FAILED: {error} (gold.bad keeps its previous data)\n"
                                              "model daily: 2 rows into gold.daily (inputs silver.shipments)\n")
    out = invoke(home, "run", "--json")
    assert out.exit_code == 1
    assert [(r["name"], r["status"], r["error"]) for r in json.loads(out.stdout)] == [
        ("bad", "FAILED", error), ("daily", "SKIPPED", None)]
    listed = json.loads(invoke(home, "list", "--json").stdout)
    assert [(m["name"], m["status"], m["rows"], m["error"]) for m in listed] == [
        ("bad", "FAILED", None, error), ("daily", "SUCCEEDED", 2, None)]


def test_validate_reports_every_bad_file_and_exits_2(home, lake, monkeypatch, capsys):
    model(home, "daily", DAILY)
    two = model(home, "two", "SELECT 1 AS a FROM silver.shipments;\nSELECT 2")
    late = model(home, "late", "SELECT * FROM silver.late")
    problems = [f"{late}:1:15: model late reads silver.late, which does not exist; tables: ",
                f"{two}:2:1: model two has more than one statement; "]
    out = invoke(home, "validate")
    assert isinstance(out.exception, ConfigError)
    lines = str(out.exception).split("\n")
    assert [line[:len(p)] for line, p in zip(lines, problems, strict=True)] == problems
    data = json.loads(invoke(home, "validate", "--json").stdout)
    assert (data["valid"], data["order"], [m["name"] for m in data["models"]]) == (False, [], ["daily"])
    assert [(p["name"], p["error"]) for p in data["problems"]] == [("late", lines[0]), ("two", lines[1])]
    listed = json.loads(invoke(home, "list", "--json").stdout)
    assert [(m["name"], m["status"], m["inputs"], m["error"]) for m in listed] == [
        ("daily", "NEW", ["silver.shipments"], None), ("late", "INVALID", ["silver.late"], lines[0]),
        ("two", "INVALID", [], lines[1])]
    # nothing runs while a file is bad
    assert isinstance(invoke(home, "run").exception, ConfigError)
    assert not (home / "zones" / "gold" / "daily").exists()

    # through lakeline's entry point: a configuration error is exit code 2
    monkeypatch.setitem(cli_main.cli.commands, "models", models)
    monkeypatch.setattr(sys, "argv", ["lakeline", "--home", str(home), "models", "validate"])
    with pytest.raises(SystemExit) as exited:
        cli_main.main()
    assert exited.value.code == 2
    assert capsys.readouterr().err == f"error: {lines[0]}\n{lines[1]}\n"
