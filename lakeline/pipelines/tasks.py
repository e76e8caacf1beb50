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

``lakeline-process`` loads what a replay landed, so the ops workflow stands alone: locally it
drives the queues until idle through the runner (``drive``, which the runner, the CLI and the
API pass to :func:`lake_tasks`: this layer cannot import the runner), under the runner lock:
beside a running ``lakeline run`` / ``serve`` it leaves the work to that runner and says so. On
AWS the queue functions load the copies and the step only reports that.
``lakeline-compact`` compacts one Parquet partition (``output_prefix``: the seed's safe output).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from lakeline.dq.gate import result_prefix
from lakeline.dq.partitions import quarantine, run_expectations
from lakeline.errors import ConfigError, NotFoundError, UsageError
from lakeline.lake import Lake
from lakeline.pipelines.base import TaskSpec, task_registry
from lakeline.pipelines.registry import Registry
from lakeline.pipelines.stream import StreamPipeline
from lakeline.ports.objectstore import validate_key
from lakeline.stages.replay import pipeline_of, replay
from lakeline.workflow import shipped
from lakeline.workflow.engine import TaskRegistry

#: ``drive(lake)``: process the lake's queues until idle (the local runner); its counters.
Drive = Callable[[Lake], dict[str, Any]]


def _notify(lake: Lake, payload: dict[str, Any]) -> dict[str, Any]:
    sent = lake.notifier.notify(str(payload.get("subject", "lakeline workflow")), str(payload),
                                {"execution": payload.get("execution")})
    return {"message_id": sent.message_id}


def _quality_check(lake: Lake, payload: dict[str, Any]) -> dict[str, Any]:
    since = datetime.fromisoformat(str(payload["since"]).replace("Z", "+00:00"))
    given = payload.get("input") or {}
    silver = lake.store.bucket("silver")
    bucket = given.get("silver_bucket")
    if bucket is not None and str(bucket).removeprefix("s3://").strip("/") != silver:
        raise NotFoundError(f"silver_bucket {bucket!r} is not this lake's silver bucket {silver!r}")
    # the seed's silver_prefix "silver" is the silver zone itself; anything below it stays a prefix
    parts = [p for p in str(given.get("silver_prefix") or "silver").split("/") if p]
    below = "/".join(parts[1:] if parts[:1] == ["silver"] else parts)
    prefix = f"{below}/{payload['record_type']}/" if below else f"{payload['record_type']}/"
    validate_key(prefix.rstrip("/"))  # a silver_prefix with ".." would leave the zone
    fresh = [i.key for i in lake.store.list("silver", prefix)
             if i.key.endswith(".parquet") and i.last_modified >= since]
    wanted = int(payload.get("min_parquet_objects", 1))
    return {"ok": len(fresh) >= wanted, "new_parquet_objects": len(fresh), "min_parquet_objects": wanted}


def _quarantine(lake: Lake, payload: dict[str, Any]) -> dict[str, Any]:
    result = payload.get("result", {}).get("value", {})
    key = quarantine(lake, str(payload.get("record_type", "")), str(payload.get("dt", "")),
                     str(result.get("run_id", "manual")), result)
    return {"marker": key}


def _compact(lake: Lake, payload: dict[str, Any]) -> dict[str, Any]:
    from lakeline.tables.parquet_compact import compact_partition  # heavy: loads pyarrow

    table = str(payload.get("record_type") or payload.get("table") or "").removeprefix("silver.")
    if not table or not payload.get("dt"):
        raise UsageError("lakeline-compact needs record_type (or table) and dt")
    age = payload.get("min_age_seconds")
    return compact_partition(lake, table, str(payload["dt"]), output_prefix=payload.get("output_prefix"),
                             min_age_seconds=None if age is None else float(age))


def core_tasks(reg: Registry, drive: Drive | None = None) -> list[TaskSpec]:
    """The generic steps, bound to ``reg`` where they need a pipeline's tables or router
    (``drive``: what ``lakeline-process`` runs; without one it fails with a UsageError)."""

    def quality_gate(lake: Lake, payload: dict[str, Any]) -> dict[str, Any]:
        table = str(payload["record_type"])
        prefix = result_prefix((payload.get("input") or {}).get("result_prefix"))
        p, spec = reg.table(f"silver.{table}")
        ruleset = p.ruleset(lake.settings, table) if isinstance(p, StreamPipeline) else None
        if ruleset is None:
            raise UsageError(f"silver.{table} has no quality rules (pipeline {p.name})")
        return run_expectations(lake, table, str(payload["dt"]), str(payload["run_id"]), ruleset,
                                fields=spec.fields, result_prefix=prefix)

    def do_replay(lake: Lake, payload: dict[str, Any]) -> dict[str, Any]:
        end = datetime.now(UTC)
        start = end - timedelta(hours=float(payload.get("window_hours", 24)))
        src = payload.get("src_prefix")
        name = str(payload.get("pipeline") or (pipeline_of(str(src)) if src else ""))
        if not name:
            raise UsageError("replay needs pipeline or src_prefix (the seed's 'bronze/shipments/')")
        reg.get(name)
        # the execution's name: a retried Replay copies to the same keys (exactly once)
        label = payload.get("name") or (payload.get("state") or {}).get("name")
        out = replay(lake, reg.route, name, start, end, mode=str(payload.get("mode", "copy")),
                     name=None if label is None else str(label), src_prefix=None if src is None else str(src),
                     dest_prefix_base=payload.get("dest_prefix_base"), bucket=payload.get("bronze_bucket"))
        return dict(out, pipeline=name)

    def process(lake: Lake, payload: dict[str, Any]) -> dict[str, Any]:
        if not lake.is_local:
            return {"processed": False, "reason": "on AWS the queue functions load landed objects"}
        if drive is None:
            raise UsageError("lakeline-process needs the local runner: run the workflow with `lakeline "
                             "workflow`, or pass drive=lakeline.runner.process_queues to lake_tasks")
        return dict(drive(lake), copies=payload.get("copies"))

    return [
        TaskSpec("lakeline-quality-gate", "Workflow task: the quality rules of a silver partition",
                 quality_gate, timeout=300, memory=1024, s3_read=("silver",), s3_write=("gold",)),
        TaskSpec("lakeline-quarantine", "Workflow task: write a partition's quarantine marker", _quarantine,
                 timeout=60, s3_write=("silver",), state_write=False),
        TaskSpec("lakeline-quality-check", "Workflow task: count new silver Parquet objects", _quality_check,
                 timeout=60, s3_read=("silver",), state_write=False),
        TaskSpec("lakeline-replay", "Workflow task: replay landed objects of a time window", do_replay,
                 timeout=300, s3_write=("landing",), sends=("IngestQueue",)),
        TaskSpec("lakeline-process", "Workflow task: load what landed (locally: drive the queues until idle)",
                 process, timeout=900, state_write=False),
        TaskSpec("lakeline-compact", "Workflow task: compact one Parquet partition", _compact,
                 timeout=900, memory=2048, s3_read=("silver",), s3_write=("silver",), state_write=False),
        TaskSpec("lakeline-notify", "Workflow task: publish a notification", _notify, timeout=30,
                 state_write=False),
    ]


def all_tasks(reg: Registry, drive: Drive | None = None) -> list[TaskSpec]:
    """Every step of the lake: generic first, then each pipeline's (names are unique)."""
    found: dict[str, tuple[TaskSpec, str]] = {}
    for owner, specs in [("lakeline", core_tasks(reg, drive)), *((p.name, p.tasks()) for p in reg)]:
        for spec in specs:
            if spec.name in found:
                raise ConfigError(f"pipeline {owner}: workflow task {spec.name!r} is already provided by "
                                  f"{found[spec.name][1]}")
            found[spec.name] = (spec, owner)
    return [spec for spec, _ in found.values()]


def lake_tasks(lake: Lake, reg: Registry, *, drive: Drive | None = None) -> TaskRegistry:
    """A task registry binding every step to ``lake`` (what the local engine runs);
    ``drive``: what ``lakeline-process`` runs (:func:`lakeline.runner.process_queues` locally)."""
    return task_registry(lake, all_tasks(reg, drive))


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
