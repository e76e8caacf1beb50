"""The workflow steps and definitions of a lake: the generic ones and every pipeline's.

A Task whose resource is ``arn:aws:states:::lambda:invoke`` with ``FunctionName`` (or a
function ARN) runs the step of that name with Lambda's payload semantics; on AWS the same
names are the deployed functions (``lakeline deploy sam`` builds one per step from this list).

Generic steps, for every streaming pipeline (the shipped ``quality_gate`` and
``ops_replay_quality`` workflows use them): ``lakeline-quality-gate`` runs a table's quality
rules on one partition and ``lakeline-quarantine`` writes its quarantine marker,
``lakeline-quality-check`` counts new silver files, ``lakeline-replay`` replays a window of
landed objects, ``lakeline-notify`` publishes a notification. Pipelines add their own
(:meth:`~lakeline.pipelines.base.Pipeline.tasks`: ``lakeline-carbon-*``, ``lakeline-promote``…).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from lakeline.dq.partitions import quarantine, run_expectations
from lakeline.errors import ConfigError, UsageError
from lakeline.lake import Lake
from lakeline.pipelines.base import TaskSpec, task_registry
from lakeline.pipelines.registry import Registry
from lakeline.pipelines.stream import StreamPipeline
from lakeline.stages.replay import replay
from lakeline.workflow import shipped
from lakeline.workflow.engine import TaskRegistry


def _notify(lake: Lake, payload: dict[str, Any]) -> dict[str, Any]:
    sent = lake.notifier.notify(str(payload.get("subject", "lakeline workflow")), str(payload),
                                {"execution": payload.get("execution")})
    return {"message_id": sent.message_id}


def _quality_check(lake: Lake, payload: dict[str, Any]) -> dict[str, Any]:
    since = datetime.fromisoformat(str(payload["since"]).replace("Z", "+00:00"))
    prefix = f"{payload['record_type']}/"
    fresh = [i.key for i in lake.store.list("silver", prefix)
             if i.key.endswith(".parquet") and i.last_modified >= since]
    wanted = int(payload.get("min_parquet_objects", 1))
    return {"ok": len(fresh) >= wanted, "new_parquet_objects": len(fresh), "min_parquet_objects": wanted}


def _quarantine(lake: Lake, payload: dict[str, Any]) -> dict[str, Any]:
    result = payload.get("result", {}).get("value", {})
    key = quarantine(lake, str(payload.get("record_type", "")), str(payload.get("dt", "")),
                     str(result.get("run_id", "manual")), result)
    return {"marker": key}


def core_tasks(reg: Registry) -> list[TaskSpec]:
    """The generic steps, bound to ``reg`` where they need a pipeline's tables or router."""

    def quality_gate(lake: Lake, payload: dict[str, Any]) -> dict[str, Any]:
        table = str(payload["record_type"])
        p, spec = reg.table(f"silver.{table}")
        ruleset = p.ruleset(lake.settings, table) if isinstance(p, StreamPipeline) else None
        if ruleset is None:
            raise UsageError(f"silver.{table} has no quality rules (pipeline {p.name})")
        return run_expectations(lake, table, str(payload["dt"]), str(payload["run_id"]), ruleset,
                                fields=spec.fields)

    def do_replay(lake: Lake, payload: dict[str, Any]) -> dict[str, Any]:
        end = datetime.now(UTC)
        start = end - timedelta(hours=float(payload.get("window_hours", 24)))
        name = str(payload["pipeline"])
        reg.get(name)
        return replay(lake, reg.route, name, start, end, mode=str(payload.get("mode", "copy")))

    return [
        TaskSpec("lakeline-quality-gate", "Workflow task: the quality rules of a silver partition",
                 quality_gate, timeout=300, memory=1024, s3_read=("silver",), s3_write=("gold",)),
        TaskSpec("lakeline-quarantine", "Workflow task: write a partition's quarantine marker", _quarantine,
                 timeout=60, s3_write=("silver",), state_write=False),
        TaskSpec("lakeline-quality-check", "Workflow task: count new silver Parquet objects", _quality_check,
                 timeout=60, s3_read=("silver",), state_write=False),
        TaskSpec("lakeline-replay", "Workflow task: replay landed objects of a time window", do_replay,
                 timeout=300, s3_write=("landing",), sends=("IngestQueue",)),
        TaskSpec("lakeline-notify", "Workflow task: publish a notification", _notify, timeout=30,
                 state_write=False),
    ]


def all_tasks(reg: Registry) -> list[TaskSpec]:
    """Every step of the lake: generic first, then each pipeline's (names are unique)."""
    found: dict[str, tuple[TaskSpec, str]] = {}
    for owner, specs in [("lakeline", core_tasks(reg)), *((p.name, p.tasks()) for p in reg)]:
        for spec in specs:
            if spec.name in found:
                raise ConfigError(f"pipeline {owner}: workflow task {spec.name!r} is already provided by "
                                  f"{found[spec.name][1]}")
            found[spec.name] = (spec, owner)
    return [spec for spec, _ in found.values()]


def lake_tasks(lake: Lake, reg: Registry) -> TaskRegistry:
    """A task registry binding every step to ``lake`` (what the local engine runs)."""
    return task_registry(lake, all_tasks(reg))


def workflows(reg: Registry) -> dict[str, dict[str, Any]]:
    """Every workflow definition: the generic shipped ones, then each pipeline's."""
    out = {name: shipped.definition(name) for name in shipped.names()}
    for p in reg:
        for name, machine in p.workflows().items():
            if name in out:
                raise ConfigError(f"pipeline {p.name}: workflow {name!r} exists already")
            out[name] = machine
    return out


def definition(reg: Registry, name: str) -> dict[str, Any]:
    """A workflow definition by name; :class:`UsageError` listing the known ones."""
    found = workflows(reg)
    if name not in found:
        raise UsageError(f"no workflow {name!r}; workflows: {', '.join(sorted(found))}")
    return found[name]
