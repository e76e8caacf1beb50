"""What the ingest function starts on AWS when a job pipeline's object lands.

``lakeline deploy sam`` puts the plan in :data:`lakeline.envvars.TRIGGERS` (generated from each
pipeline's :meth:`~lakeline.pipelines.base.Pipeline.triggers`, see :mod:`lakeline.deploy.jobs`):
per pipeline a list of ``{"prefix", "queue"}`` (send ``{pipeline, key, etag}`` to the
pipeline's FIFO job queue, one message group per pipeline, deduplicated by object version) or
``{"prefix", "state_machine", "input"}`` (start one execution with ``{"key": …}`` merged into
``input``, named by the object version, so a repeat is refused by Step Functions instead of
running twice). Ingest records each landing once per object version before it gets here.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from collections.abc import Callable
from typing import Any

import orjson

from lakeline import log
from lakeline.adapters.aws.session import AwsClients, error_code, translate_errors
from lakeline.envvars import TRIGGERS
from lakeline.errors import ConfigError

_log = log.get("aws.triggers")
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def plan_from_env() -> dict[str, list[dict[str, Any]]]:
    """The trigger plan of this function (empty when none is set)."""
    raw = os.environ.get(TRIGGERS, "")
    if not raw:
        return {}
    try:
        plan = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ConfigError(f"{TRIGGERS} is not JSON: {exc}") from None
    if not isinstance(plan, dict) or not all(isinstance(v, list) for v in plan.values()):
        raise ConfigError(f"{TRIGGERS} must map pipeline names to lists of triggers, got {raw[:200]!r}")
    return plan


def execution_name(pipeline: str, key: str, etag: str) -> str:
    """A Step Functions execution name (at most 80 of ``A-Z a-z 0-9 - _``) unique per object
    version: the pipeline, the end of the key, a hash of key and etag."""
    digest = hashlib.sha256(f"{key}#{etag}".encode()).hexdigest()[:16]
    tail = _UNSAFE.sub("-", key.rsplit("/", 1)[-1])[-40:]
    return f"{pipeline[:20]}-{tail}-{digest}"


def dispatch(clients: AwsClients, plan: dict[str, list[dict[str, Any]]],
             landed: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Start the work of each landed object; returns what was started (``pipeline``, ``key``,
    ``queue`` or ``execution``)."""
    started: list[dict[str, Any]] = []
    for item in landed:
        pipeline, key, etag = str(item["pipeline"]), str(item["key"]), str(item["etag"])
        for entry in plan.get(pipeline, []):
            if not key.startswith(str(entry.get("prefix", ""))):
                continue
            if "queue" in entry:
                with translate_errors(f"SQS SendMessage {entry['queue']}"):
                    clients.client("sqs").send_message(
                        QueueUrl=entry["queue"], MessageBody=orjson.dumps(item).decode(),
                        MessageGroupId=pipeline,
                        MessageDeduplicationId=hashlib.sha256(f"{key}#{etag}".encode()).hexdigest())
                started.append({"pipeline": pipeline, "key": key, "queue": entry["queue"]})
            elif "state_machine" in entry:
                payload = {**dict(entry.get("input") or {}), "key": key}
                name = execution_name(pipeline, key, etag)
                sfn = clients.client("stepfunctions")
                try:
                    with translate_errors(f"Step Functions StartExecution {name}"):
                        arn = sfn.start_execution(stateMachineArn=entry["state_machine"], name=name,
                                                  input=orjson.dumps(payload).decode())["executionArn"]
                except Exception as exc:
                    if error_code(exc) != "ExecutionAlreadyExists":
                        raise
                    _log.info("execution %s exists already: %s was started before", name, key)
                    continue
                started.append({"pipeline": pipeline, "key": key, "execution": arn})
            else:
                raise ConfigError(f"{TRIGGERS}: pipeline {pipeline}: a trigger needs a queue or a "
                                  f"state_machine, got {entry!r}")
    return started


def start_and_wait(clients: AwsClients, plan: list[dict[str, Any]], landed: list[dict[str, Any]], *,
                   deadline_s: float, poll: float = 2.0,
                   sleep: Callable[[float], None] = time.sleep) -> dict[str, Any]:
    """A serial workflow trigger's job: start one execution for the ``landed`` objects (named by
    the first one's version, so a redelivered batch does not start another) and wait for it to
    end, at most ``deadline_s`` seconds. Returns its ``execution`` ARN, ``status`` (RUNNING when
    the deadline came first) and ``key``."""
    first = landed[0]
    entry = next((e for e in plan if str(first["key"]).startswith(str(e.get("prefix", "")))), plan[0])
    name = execution_name(str(first["pipeline"]), str(first["key"]), str(first["etag"]))
    sfn = clients.client("stepfunctions")
    machine = str(entry["state_machine"])
    arn = f"{machine.replace(':stateMachine:', ':execution:')}:{name}"
    try:
        with translate_errors(f"Step Functions StartExecution {name}"):
            arn = sfn.start_execution(stateMachineArn=machine, name=name, input=orjson.dumps(
                {**dict(entry.get("input") or {}), "key": first["key"]}).decode())["executionArn"]
    except Exception as exc:
        if error_code(exc) != "ExecutionAlreadyExists":
            raise
    waited, status = 0.0, "RUNNING"
    while True:
        with translate_errors(f"Step Functions DescribeExecution {name}"):
            status = str(sfn.describe_execution(executionArn=arn)["status"])
        if status != "RUNNING" or waited >= deadline_s:
            break
        sleep(poll)
        waited += poll
    return {"execution": arn, "status": status, "key": first["key"], "objects": len(landed)}


__all__ = ["dispatch", "execution_name", "plan_from_env", "start_and_wait"]
