"""`lakeline workflow export` writes ASL that Step Functions (and asl-validator) takes, `--sam`
the SAM form; execution commands take an ARN, a name or a unique name prefix; `workflow
redrive` finishes a failed carbon execution once its cause is fixed, without duplicates."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from lakeline.pipelines.carbon.factors import packaged_path
from lakeline.pipelines.carbon.pipeline import definition
from tests.e2e.helpers import Cli
from tests.functional.test_carbon_pipeline import ROWS, _csv
from tests.workflow.test_asl_validator import VALIDATOR, _validate


@pytest.fixture
def lake(tmp_path: Path) -> Cli:
    cli = Cli(tmp_path / "lake", tmp_path)
    cli.ok("init", cli.home)
    return cli


def test_export_writes_the_asl_definition_and_sam_writes_the_wrapper(lake: Cli, tmp_path: Path) -> None:
    lake.ok("workflow", "export", "carbon", "--out", "carbon.asl.json")
    exported = json.loads((tmp_path / "carbon.asl.json").read_text())
    assert exported == definition()  # the definition itself: StartAt, States, no wrapper
    assert json.loads(lake.ok("workflow", "export", "carbon").stdout) == exported
    sam = json.loads(lake.ok("workflow", "export", "carbon", "--sam").stdout)
    assert sorted(sam) == ["definition", "substitutions"]
    assert sam["substitutions"]["LakelineCarbonCalculateArn"] == "lakeline-carbon-calculate"
    assert len(sam["substitutions"]) == 5
    assert '"${LakelineCarbonCalculateArn}"' in json.dumps(sam["definition"])
    assert "no workflow 'nope'" in lake.fails(2, "workflow", "export", "nope")
    if not VALIDATOR.exists():
        pytest.skip("asl-validator missing: run `npm install`")
    for name in ("carbon", "etl_promote", "quality_gate", "ops_replay_quality"):
        lake.ok("workflow", "export", name, "--out", f"{name}.asl.json")
        result = _validate("--json-path", str(tmp_path / f"{name}.asl.json"))
        assert result.returncode == 0, result.stdout + result.stderr
    # the SAM wrapper is not a state machine definition: the validator refuses it
    (tmp_path / "sam.json").write_text(json.dumps(sam))
    assert _validate("--json-path", str(tmp_path / "sam.json")).returncode == 1


def test_execution_references_by_name_and_prefix(lake: Cli, tmp_path: Path) -> None:
    (tmp_path / "m.asl.json").write_text(json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}))
    arns = [lake.json("workflow", "run", "--definition", "m.asl.json", "--execution-name", n)["executionArn"]
            for n in ("nightly-0a1", "nightly-0b2")]
    assert lake.json("workflow", "status", "nightly-0a1")["executionArn"] == arns[0]
    assert lake.json("workflow", "status", "nightly-0b")["executionArn"] == arns[1]
    assert lake.json("workflow", "status", arns[1])["name"] == "nightly-0b2"
    assert lake.json("workflow", "history", "nightly-0a")["events"][0]["type"] == "ExecutionStarted"
    ambiguous = lake("workflow", "status", "nightly-0", "--json")
    assert ambiguous.returncode == 2
    assert json.loads(ambiguous.stdout)["code"] == "AMBIGUOUS_EXECUTION"
    assert "matches 2 executions: nightly-0a1, nightly-0b2" in ambiguous.stderr
    unknown = lake.fails(2, "workflow", "history", "weekly")
    assert "no execution 'weekly'" in unknown and "nightly-0b2" in unknown and "nightly-0a1" in unknown
    assert "cannot be redriven" in lake.fails(2, "workflow", "redrive", "nightly-0a1")
    assert "no execution 'x'" in lake.fails(2, "workflow", "redrive", "x")


def test_redrive_finishes_a_carbon_file_whose_factor_table_was_broken(lake: Cli, tmp_path: Path) -> None:
    env = {"LAKELINE__PIPELINES__CARBON__FACTORS": "factors.csv", "LAKELINE__PIPELINES__CARBON__BATCH_SIZE": "2"}
    (lake.home / "factors.csv").write_text("scope,category\n1,mobile-combustion\n")
    (tmp_path / "a.csv").write_bytes(_csv(ROWS))
    lake.ok("put", "a.csv", "--pipeline", "carbon", "--key", "carbon/a.csv", env=env)
    summary = json.loads(lake("run", "--json", env=env).stdout)
    [report] = [b for b in summary["batch_runs"] if b.get("pipeline") == "carbon"]
    name = report["execution_name"]
    assert (report["status"], report["state"]) == ("FAILED", "CalculateBatches")
    assert f"lakeline workflow redrive {name}" in report["summary"]
    short = name[: len("carbon-") + 8]
    still = lake("workflow", "redrive", short, "--json", env=env)  # the cause is not fixed yet
    assert still.returncode == 1 and json.loads(still.stdout)["status"] == "FAILED"
    shutil.copyfile(packaged_path(), lake.home / "factors.csv")
    done = lake.json("workflow", "redrive", short, env=env)
    assert (done["status"], done["redriveCount"], done["output"]["calculated"]) == ("SUCCEEDED", 2, 3)
    rows = lake.json("sql", "SELECT activity_event_id AS id, count(*) AS n FROM gold.emissions GROUP BY 1 ORDER BY 1",
                     env=env)
    assert rows == [{"id": "e1", "n": 1}, {"id": "e2", "n": 1}, {"id": "e3", "n": 1}]
    assert "is SUCCEEDED and cannot be redriven" in lake.fails(2, "workflow", "redrive", name, env=env)
    assert lake.json("workflow", "status", short, env=env)["status"] == "SUCCEEDED"
