"""Shared pieces of the workflow suites: the differential corpus and an executing moto Step Functions.

Corpus files live in ``machines/NN_name.json``; each is a JSON object::

    {"description": "...", "definition": {...ASL...}, "input": ...,
     "expected_aws": {"status": "SUCCEEDED" | "FAILED", "output": ..., "error": ..., "cause": ...},
     "compare": "output" | "status_error" | "status"}      # optional, default "output"

``expected_aws`` is what AWS Step Functions does according to its documentation; ``compare`` says
which parts of it are deterministic enough to compare (``status`` only for UUID/MathRandom).
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.aws_server import boto_client, moto_endpoint, unique  # noqa: F401

MACHINES_DIR = Path(__file__).parent / "machines"
MACHINE_FILES = sorted(MACHINES_DIR.glob("*.json"))
ROLE_ARN = "arn:aws:iam::123456789012:role/x"
POLL_SECONDS = 10.0


def load_machine(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


@dataclass(frozen=True)
class Outcome:
    """What one run produced, normalised for comparison."""

    status: str
    output: Any
    error: str | None
    cause: str | None
    raw_output: str | None = None  # moto only: the output text exactly as DescribeExecution returned it

    @classmethod
    def expected(cls, machine: dict[str, Any]) -> Outcome:
        """The documented AWS behaviour recorded in the machine file."""
        exp = machine["expected_aws"]
        return cls(exp["status"], exp.get("output"), exp.get("error"), exp.get("cause"))

    def view(self, machine: dict[str, Any]) -> dict[str, Any]:
        """The parts the machine's ``compare`` mode checks: status always; error (and cause when the
        machine records one) of a failed run unless ``compare`` is "status"; output if "output"."""
        compare = machine.get("compare", "output")
        v: dict[str, Any] = {"status": self.status}
        if self.status != "SUCCEEDED" and compare != "status":
            v["error"] = self.error
            if "cause" in machine["expected_aws"]:
                v["cause"] = self.cause
        if compare == "output":
            v["output"] = self.output
        return v


def _moto_config(endpoint: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(
        f"{endpoint}/moto-api/config", data=data, method="POST" if data else "GET",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        return dict(json.loads(resp.read()))


@pytest.fixture(scope="module")
def executing_sfn(moto_endpoint: str) -> Iterator[Any]:  # noqa: F811
    """A Step Functions client on moto with state-machine *execution* switched on.

    moto 5 only interprets definitions when ``{"stepfunctions": {"execute_state_machine": true}}``
    is set through its config API (``POST /moto-api/config``); otherwise executions just echo their
    input. The setting is process-global, so it is restored afterwards.
    """
    before = _moto_config(moto_endpoint).get("stepfunctions", {"execute_state_machine": False})
    _moto_config(moto_endpoint, {"stepfunctions": {"execute_state_machine": True}})
    try:
        yield boto_client("stepfunctions", moto_endpoint)
    finally:
        _moto_config(moto_endpoint, {"stepfunctions": before})


def run_on_moto(sfn: Any, machines: dict[str, dict[str, Any]]) -> dict[str, Outcome]:
    """Start every machine on moto, then poll each until it leaves RUNNING (bounded)."""
    started: dict[str, str] = {}
    for name, machine in machines.items():
        arn = sfn.create_state_machine(
            name=unique(name[:60]), definition=json.dumps(machine["definition"]), roleArn=ROLE_ARN,
        )["stateMachineArn"]
        started[name] = sfn.start_execution(stateMachineArn=arn, input=json.dumps(machine["input"]))[
            "executionArn"]
    results: dict[str, Outcome] = {}
    for name, execution_arn in started.items():
        deadline = time.monotonic() + POLL_SECONDS
        d = sfn.describe_execution(executionArn=execution_arn)
        while d["status"] == "RUNNING" and time.monotonic() < deadline:
            time.sleep(0.05)
            d = sfn.describe_execution(executionArn=execution_arn)
        raw = d.get("output")
        try:
            output = json.loads(raw) if raw is not None else None
        except ValueError:
            output = {"<moto: not JSON>": raw}
        results[name] = Outcome(d["status"], output, d.get("error"), d.get("cause"), raw)
    return results
