"""The JSONata variant of the shipped ``quality_gate`` (docs/examples/quality_gate.jsonata.asl.json,
shown in docs/how-to/jsonata-workflow.md) does what the JSONPath original does: locally with the
real lakeline tasks in a real lake, and on moto's executing Step Functions, where both variants
send the same Lambda payloads and end the same way.

moto's Step Functions interpreter is LocalStack's, which evaluates JSONata on a JVM that moto does
not ship (its evaluator is a stub); the test plugs jsonata-python in there, so moto runs the state
machine semantics (``$states``, ``Arguments``, ``Assign``, ``Output``, ``Condition``) its own way.
moto's Lambda runs without Docker: each invocation returns the next queued result.
"""

from __future__ import annotations

import contextlib
import io
import json
import time
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonata
import orjson
import pytest
from click.testing import CliRunner
from moto.stepfunctions.parser.asl.jsonata import jsonata as moto_jsonata

from lakeline.cli.main import cli
from lakeline.lake import Lake
from lakeline.workflow import shipped
from lakeline.workflow.engine import TaskRegistry, run_definition
from tests.aws_server import boto_client, moto_endpoint, unique  # noqa: F401
from tests.functional.helpers import land, rec, run, settings

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "docs" / "examples" / "quality_gate.jsonata.asl.json"
GUIDE = ROOT / "docs" / "how-to" / "jsonata-workflow.md"
FAST = {"LAKELINE__QUEUE__RETRY_DELAY": "0", "LAKELINE__RUNNER__POLL_INTERVAL": "0.01"}
FUNCTIONS = ("lakeline-quality-gate", "lakeline-quarantine", "lakeline-notify")

pytestmark = pytest.mark.xdist_group("workflow_differential")  # moto's config is process-global


def example() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(EXAMPLE.read_text())
    return data


def test_the_guide_shows_the_example() -> None:
    text = GUIDE.read_text()
    assert '--8<-- "examples/quality_gate.jsonata.asl.json"' in text
    assert example()["QueryLanguage"] == "JSONata"


# ---- locally, with the real tasks --------------------------------------------------------------
def _workflow(home: Path, args: list[str], name: str, payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    result = CliRunner().invoke(cli, ["workflow", "run", *args, "--json", "--execution-name", name,
                                      "--input", json.dumps(payload)],
                                env={"LAKELINE_HOME": str(home), **FAST}, catch_exceptions=False)
    return result.exit_code, json.loads(result.stdout)


def test_jsonata_variant_runs_like_the_shipped_gate_in_a_real_lake(home: Path) -> None:
    lake = Lake.open(settings(home))
    lines = [orjson.dumps(rec(shipment_id=f"shp_{i:012d}")) for i in range(30)]
    land(lake, "shipments/2026/a.jsonl", b"\n".join(lines) + b"\n")
    assert run(lake.settings)["loaded"] == 30
    partition = {"record_type": "shipments", "dt": "2026-01-05"}
    code_a, shipped_run = _workflow(home, ["quality_gate"], "gate-jsonpath", partition)
    code_b, jsonata_run = _workflow(home, ["--definition", str(EXAMPLE)], "gate-jsonata", partition)
    assert (code_a, code_b) == (0, 0), (shipped_run, jsonata_run)
    a, b = shipped_run["output"], jsonata_run["output"]
    assert a["result"]["value"]["result_key"] == "_quality/results/shipments/dt=2026-01-05/run_gate-jsonpath.json"
    assert b["result"]["value"]["result_key"] == "_quality/results/shipments/dt=2026-01-05/run_gate-jsonata.json"
    # the same output but for the run's own name and when it ran
    same = json.loads(json.dumps(b).replace("gate-jsonata", "gate-jsonpath"))
    assert {k for k in same["result"]["value"] if same["result"]["value"][k] != a["result"]["value"][k]} <= {
        "generated_at"}
    assert same["result"]["value"].keys() == a["result"]["value"].keys()
    assert (b["result"]["value"]["success"], b["result"]["value"]["statistics"]["rows"]) == (True, 30)


# ---- on moto ------------------------------------------------------------------------------------
def _post(endpoint: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    req = urllib.request.Request(f"{endpoint}{path}", data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        text = resp.read()
    return dict(json.loads(text)) if text.strip().startswith(b"{") else {}


@pytest.fixture
def moto_sfn(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, str]]:  # noqa: F811
    """An executing moto Step Functions whose JSONata runs on jsonata-python, and the three
    lakeline functions as Docker-free moto Lambdas (each call returns the next queued result)."""
    monkeypatch.setattr(moto_jsonata, "_eval_jsonata", lambda expression: jsonata.Jsonata(expression).evaluate(None))
    monkeypatch.setenv("MOTO_PORT", moto_endpoint.rsplit(":", 1)[1])  # where moto's Task states call Lambda
    with urllib.request.urlopen(f"{moto_endpoint}/moto-api/config", timeout=10) as resp:
        before = json.loads(resp.read())
    _post(moto_endpoint, "/moto-api/config", {"stepfunctions": {"execute_state_machine": True},
                                              "lambda": {"use_docker": False}})
    iam, lam = boto_client("iam", moto_endpoint), boto_client("lambda", moto_endpoint)
    role = iam.create_role(RoleName=unique("gate"), AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as z:
        z.writestr("handler.py", "def handler(event, context):\n    return event\n")
    for fn in FUNCTIONS:
        with contextlib.suppress(lam.exceptions.ResourceConflictException):  # an earlier test made it
            lam.create_function(FunctionName=fn, Runtime="python3.12", Role=role, Handler="handler.handler",
                                Code={"ZipFile": code.getvalue()})
    try:
        yield boto_client("stepfunctions", moto_endpoint), role
    finally:
        _post(moto_endpoint, "/moto-api/config", {k: before[k] for k in ("stepfunctions", "lambda") if k in before})


def _run_on_moto(endpoint: str, sfn: Any, role: str, definition: dict[str, Any], results: list[Any],
                 payload: dict[str, Any]) -> tuple[dict[str, Any], list[Any]]:
    _post(endpoint, "/moto-api/static/lambda-simple/response",
          {"results": [json.dumps(r) for r in results], "region": "us-east-1"})
    arn = sfn.create_state_machine(name=unique("gate"), definition=json.dumps(definition), roleArn=role)[
        "stateMachineArn"]
    execution = sfn.start_execution(stateMachineArn=arn, input=json.dumps(payload))["executionArn"]
    deadline = time.monotonic() + 20
    described = sfn.describe_execution(executionArn=execution)
    while described["status"] == "RUNNING" and time.monotonic() < deadline:
        time.sleep(0.05)
        described = sfn.describe_execution(executionArn=execution)
    events = sfn.get_execution_history(executionArn=execution)["events"]
    sent = [json.loads(e["taskScheduledEventDetails"]["parameters"]) for e in events
            if e["type"] == "TaskScheduled"]
    outcome = {k: described.get(k) for k in ("status", "error", "cause")}
    outcome["output"] = json.loads(described["output"]) if described.get("output") else None
    return outcome, sent


@pytest.mark.parametrize("verdict", [True, False], ids=["passes", "fails"])
def test_both_variants_send_the_same_payloads_and_end_the_same_on_moto(
        moto_endpoint: str, moto_sfn: tuple[Any, str], verdict: bool) -> None:  # noqa: F811
    sfn, role = moto_sfn
    # what the functions return, in the order they are called (passing calls only the gate)
    results = [{"success": verdict, "result_key": "k.json"}, {"quarantined": True}, {"sent": True}]
    results = results[:1] if verdict else results
    partition = {"record_type": "shipments", "dt": "2026-01-05"}
    outcomes = {}
    for name, definition in (("jsonpath", shipped.definition("quality_gate")), ("jsonata", example())):
        outcomes[name] = _run_on_moto(moto_endpoint, sfn, role, definition, results, partition)
    (jp, jp_sent), (ja, ja_sent) = outcomes["jsonpath"], outcomes["jsonata"]
    assert ja == jp
    # the lakeline engine runs the JSONata variant to the same end, sending the same payloads
    queue, local_sent = iter(results), []

    def invoke(payload: Any) -> Any:
        local_sent.append(payload)
        return next(queue)

    local = run_definition(example(), partition, tasks=TaskRegistry({fn: invoke for fn in FUNCTIONS}))
    assert {"status": local.status, "error": local.error, "cause": local.cause, "output": local.output} == ja
    assert local_sent[0]["run_id"] == local.name
    # payloads name the execution (run_id, the notification's ARN): equal but for those (moto 5.2
    # gives $states.context.Execution.Name as null in JSONata; AWS gives the execution's name)
    for payloads in (jp_sent, ja_sent, [{"Payload": p} for p in local_sent]):
        for p in payloads:
            if isinstance(p.get("Payload"), dict):
                p["Payload"].pop("run_id", None)
                assert ":execution:" in p["Payload"].pop("execution", ":execution:")
    assert ja_sent == jp_sent
    assert local_sent == [p["Payload"] for p in ja_sent]
    assert [p["FunctionName"] for p in ja_sent] == (["lakeline-quality-gate"] if verdict else list(FUNCTIONS))
    if verdict:
        assert ja == {"status": "SUCCEEDED", "error": None, "cause": None,
                      "output": {**partition, "result": {"value": results[0]}}}
    else:
        assert (ja["status"], ja["error"]) == ("FAILED", "QualityGateFailed")
