"""The AWS side of job pipelines, generated from what each pipeline declares
(:meth:`~lakeline.pipelines.base.Pipeline.triggers`, :meth:`~lakeline.pipelines.base.Pipeline.schedules`,
:meth:`~lakeline.pipelines.base.Pipeline.job_function`) and from the lake's ``[[rules]]``.
No pipeline is named here.

* **Job functions.** A pipeline whose work a trigger or a schedule starts without a workflow
  gets one function (``job_<pipeline>``, handler
  :func:`lakeline.aws.handlers.pipeline_job_handler`) with its own least-privilege role.
* **Landing triggers.** Every landed object reaches the ingest function through the landing
  bucket's one S3 notification (no per-prefix configurations that S3 could refuse as
  overlapping). Ingest records the landing once per object version and then starts the work
  the pipeline declares (:data:`lakeline.envvars.TRIGGERS`): a message on the pipeline's FIFO job
  queue (one message group: one run of a pipeline at a time; a DLQ after 3 receives), or an
  execution of one of its state machines with ``{"key": …}`` merged into the trigger's input. A
  *serial* workflow trigger goes through the job queue too: the job function starts the
  execution when something is pending and waits for it, so executions never overlap.
* **Triggers in other zones** (packets in ``raw``) invoke the job function through an S3
  notification on that prefix; prefixes of one zone must not overlap.
* **Schedules.** Each schedule a pipeline declares and each ``[[rules]]`` schedule becomes an
  EventBridge Scheduler schedule with the same expression (UTC), invoking the job function with
  ``{"schedule": name}`` or starting the rule's state machine with the rule's input, with a
  retry policy and a dead-letter queue (alarmed like every DLQ).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lakeline.config import ZONES
from lakeline.deploy.cfn import (
    FunctionSpec,
    camel,
    dead_letter_queue,
    get_att,
    iam_role,
    queue_logical,
    ref,
    state_machine_logical,
    sub,
)
from lakeline.envvars import TRIGGERS
from lakeline.errors import UsageError
from lakeline.pipelines.base import Pipeline, Trigger
from lakeline.pipelines.registry import Registry
from lakeline.pipelines.tasks import workflows
from lakeline.workflow.rules import validate

JOB_HANDLER = "lakeline.aws.handlers.pipeline_job_handler"
JOB_QUEUE_RECEIVES = 3
SCHEDULE_RETRIES = 3
SCHEDULE_MAX_EVENT_AGE = 3600
SCHEDULES_DLQ = "SchedulesDeadLetterQueue"
#: how often the catalog function registers new gold tables and partitions in Glue
CATALOG_SYNC = "rate(1 hour)"
#: where an S3 "Object Created" event holds what a rule's workflow gets
_S3_PATHS = {"bucket": "$.detail.bucket.name", "key": "$.detail.object.key", "size": "$.detail.object.size",
             "etag": "$.detail.object.etag"}


@dataclass(frozen=True)
class ScheduleTarget:
    """One schedule of the deployment: its name, expression, what it invokes, with what."""

    name: str
    expression: str
    target: str  # the logical id of the job function or state machine
    is_workflow: bool
    input: dict[str, Any]


def job_logical(pipeline: str) -> str:
    """The logical id of a pipeline's job function: ``retail`` → ``JobRetailFunction``."""
    return camel(f"job_{pipeline}") + "Function"


def job_queue(pipeline: str) -> str:
    """The logical id stem of a pipeline's job queue: ``job_retail`` → ``JobRetailQueue``."""
    return f"job_{pipeline}"


def _triggers(reg: Registry) -> list[tuple[Pipeline, Trigger]]:
    found = [(p, t) for p in sorted(reg, key=lambda p: p.name) for t in p.triggers(reg.settings)]
    for p, t in found:
        if t.zone not in ZONES:
            raise UsageError(f"pipeline {p.name}: trigger zone {t.zone!r} is not a zone ({', '.join(ZONES)})")
        if t.workflow is not None and t.workflow not in p.workflows():
            raise UsageError(f"pipeline {p.name}: its trigger starts workflow {t.workflow!r}, which it does "
                             f"not ship (its workflows: {', '.join(sorted(p.workflows())) or 'none'})")
        if t.workflow is not None and t.zone != "landing":
            raise UsageError(f"pipeline {p.name}: a trigger in zone {t.zone} cannot start a workflow on AWS "
                             "(only landing objects do, through ingest); let its job function run it")
    _check_overlaps([(p.name, t) for p, t in found if t.zone != "landing"])
    return found


def _check_overlaps(triggers: list[tuple[str, Trigger]]) -> None:
    """S3 refuses a notification configuration whose filters overlap for one event type."""
    for i, (a, ta) in enumerate(triggers):
        for b, tb in triggers[i + 1:]:
            if ta.zone == tb.zone and (ta.prefix.startswith(tb.prefix) or tb.prefix.startswith(ta.prefix)):
                raise UsageError(f"pipelines {a} and {b}: triggers on {ta.zone}/{ta.prefix} and "
                                 f"{tb.zone}/{tb.prefix} overlap, which one S3 notification configuration "
                                 "cannot hold; give them disjoint prefixes")


def schedule_targets(reg: Registry) -> list[ScheduleTarget]:
    """Every schedule of the deployment: the pipelines' and the ``[[rules]]`` schedules."""
    out = [ScheduleTarget((p.name if s.name == p.name else f"{p.name}-{s.name}").replace("_", "-"),
                          s.expression, job_logical(p.name), False, {"schedule": s.name})
           for p in sorted(reg, key=lambda p: p.name) for s in p.schedules(reg.settings)]
    # gold tables written by workflows (carbon's emissions) or models: registered within the hour
    out.append(ScheduleTarget("catalog-sync", CATALOG_SYNC, "CatalogFunction", False, {}))
    shipped = set(workflows(reg))
    for rule in validate(reg.settings.rules):
        if "schedule" not in rule:
            continue  # event rules: EventBridge rules (event_rules)
        if "workflow" not in rule or rule["workflow"] not in shipped:
            raise UsageError(f"rule {rule['name']}: on AWS a scheduled rule starts a shipped workflow "
                             f"({', '.join(sorted(shipped))}); a definition file is not deployed")
        out.append(ScheduleTarget(f"rule-{rule['name']}", rule["schedule"],
                                  state_machine_logical(rule["workflow"]), True, dict(rule["input"])))
    return out


def event_rules(reg: Registry, bucket_name: Callable[[str], dict[str, Any]], lake: str) -> dict[str, Any]:
    """Each ``[[rules]]`` event rule as an EventBridge rule on S3 "Object Created" in its zone's
    bucket (prefix and suffix as a wildcard), starting its state machine with the rule's input
    merged with ``{bucket, key, size, etag}`` — what ``serve`` gives it locally — and the
    buckets that must send their events to EventBridge."""
    rules = [r for r in validate(reg.settings.rules) if "event" in r]
    if not rules:
        return {}
    shipped = set(workflows(reg))
    out: dict[str, Any] = {}
    machines = []
    for rule in rules:
        if rule.get("workflow") not in shipped:
            raise UsageError(f"rule {rule['name']}: on AWS an event rule starts a shipped workflow "
                             f"({', '.join(sorted(shipped))}); a definition file is not deployed")
        event = rule["event"]
        machine = state_machine_logical(rule["workflow"])
        machines.append(machine)
        pattern = f"{event.get('prefix', '')}*{event.get('suffix', '')}"
        fields = ", ".join(f'"{k}": {json.dumps(v)}' for k, v in sorted(rule["input"].items())
                           if k not in ("bucket", "key", "size", "etag"))
        template = "{" + (fields + ", " if fields else "") + \
            '"bucket": "<bucket>", "key": "<key>", "size": <size>, "etag": "<etag>"}'
        out[camel(f"rule-{rule['name']}") + "EventRule"] = {"Type": "AWS::Events::Rule", "Properties": {
            "Description": f"lakeline {lake}: rule {rule['name']} (objects created in {event['zone']})",
            "State": "ENABLED",
            "EventPattern": {"source": ["aws.s3"], "detail-type": ["Object Created"], "detail": {
                "bucket": {"name": [bucket_name(event["zone"])]},
                "object": {"key": [{"wildcard": pattern}]}}},
            "Targets": [{"Id": "workflow", "Arn": ref(machine), "RoleArn": get_att("EventRulesRole", "Arn"),
                         "InputTransformer": {"InputPathsMap": dict(_S3_PATHS), "InputTemplate": template}}],
        }}
    out["EventRulesRole"] = iam_role(f"lakeline event rules ({lake}): start their workflows only",
                                     "events.amazonaws.com", "start-workflows", [{
                                         "Sid": "StartWorkflows", "Effect": "Allow",
                                         "Action": ["states:StartExecution"],
                                         "Resource": [ref(m) for m in sorted(set(machines))]}])
    return out


def event_rule_zones(reg: Registry) -> set[str]:
    """Zones whose bucket must send its events to EventBridge (an event rule watches it)."""
    return {r["event"]["zone"] for r in validate(reg.settings.rules) if "event" in r}


def job_specs(reg: Registry) -> list[FunctionSpec]:
    """One job function per pipeline whose work a trigger or a schedule starts without a workflow."""
    triggers = _triggers(reg)
    scheduled = {p.name for p in reg if p.schedules(reg.settings)}
    out = []
    for p in sorted(reg, key=lambda p: p.name):
        own = [t for q, t in triggers if q is p and (t.workflow is None or t.serial)]
        if not own and p.name not in scheduled:
            continue
        jf = p.job_function()
        landing = any(t.zone == "landing" for t in own)
        serial = [t for t in own if t.workflow is not None]
        out.append(FunctionSpec(
            f"job_{p.name}", JOB_HANDLER,
            f"Pipeline {p.name}: run its pending work (landed objects, schedules)",
            memory=jf.memory, timeout=jf.timeout, s3_read=jf.s3_read, s3_write=jf.s3_write,
            consumes=queue_logical(job_queue(p.name)) if landing else None, sends=jf.sends,
            state_write=jf.state_write, pipeline=p.name, params_write=jf.params_write, catalog_write=True,
            glue_databases=tuple(sorted({t.schema for t in p.tables(reg.settings) if t.layout == "iceberg"})),
            image_requirements=jf.requirements,
            starts=tuple(dict.fromkeys(state_machine_logical(str(t.workflow)) for t in serial)),
            waits=bool(serial),
            env=((TRIGGERS, sub(json.dumps({p.name: [_workflow_entry(t) for t in serial]}, sort_keys=True))),)
            if serial else (),
            s3_events=tuple((t.zone, t.prefix) for t in own if t.zone != "landing")))
    return out


def _workflow_entry(t: Trigger) -> dict[str, Any]:
    """A trigger plan entry that starts ``t``'s state machine (its ARN by ``Fn::Sub``)."""
    return {"prefix": t.prefix, "state_machine": "${" + state_machine_logical(str(t.workflow)) + "}",
            "input": dict(t.input)}


def ingest_dispatch(reg: Registry) -> tuple[dict[str, Any], tuple[str, ...], tuple[str, ...]]:
    """What the ingest function starts per landed job-pipeline object: the
    :data:`~lakeline.envvars.TRIGGERS` value (``Fn::Sub`` JSON: queue URLs and state machine
    ARNs), the job queues it sends to and the state machines it starts (logical ids)."""
    mapping: dict[str, list[dict[str, Any]]] = {}
    queues: list[str] = []
    machines: list[str] = []
    for p, t in _triggers(reg):
        if t.zone != "landing":
            continue
        if t.workflow is None or t.serial:  # the job function runs it (a serial workflow: starts it)
            logical = queue_logical(job_queue(p.name))
            entry: dict[str, Any] = {"prefix": t.prefix, "queue": "${" + logical + "}"}
            queues.append(logical)
        else:
            entry = _workflow_entry(t)
            machines.append(state_machine_logical(t.workflow))
        mapping.setdefault(p.name, []).append(entry)
    env = sub(json.dumps(mapping, sort_keys=True))
    return env, tuple(dict.fromkeys(queues)), tuple(dict.fromkeys(machines))


def job_queues(reg: Registry, specs: list[FunctionSpec], lake: str,
               queue_meta: dict[str, Any]) -> dict[str, Any]:
    """Each landing job's FIFO queue, its FIFO DLQ and the event source mapping to its function."""
    out: dict[str, Any] = {}
    for spec in specs:
        if spec.consumes is None:
            continue
        stem = job_queue(spec.pipeline)
        dlq, queue = queue_logical(stem, dlq=True), queue_logical(stem)
        name = f"{lake}-job-{spec.pipeline.replace('_', '-')}"
        out[dlq] = dead_letter_queue(f"{name}-dlq", queue_meta, fifo=True)
        out[queue] = {"Type": "AWS::SQS::Queue", "Metadata": queue_meta, "Properties": {
            "QueueName": f"{name}.fifo", "FifoQueue": True, "ContentBasedDeduplication": True,
            # AWS asks for a visibility timeout of at least 6 x the consumer's timeout
            "VisibilityTimeout": min(43200, 6 * spec.timeout), "SqsManagedSseEnabled": True,
            "RedrivePolicy": {"deadLetterTargetArn": get_att(dlq, "Arn"),
                              "maxReceiveCount": JOB_QUEUE_RECEIVES}}}
        out[queue + "EventSourceMapping"] = {"Type": "AWS::Lambda::EventSourceMapping", "Properties": {
            "EventSourceArn": get_att(queue, "Arn"), "FunctionName": ref(spec.logical), "BatchSize": 10}}
    return out


def schedules(reg: Registry, lake: str, queue_meta: dict[str, Any]) -> dict[str, Any]:
    """The EventBridge Scheduler schedules, their role and their dead-letter queue."""
    targets = schedule_targets(reg)
    if not targets:
        return {}
    functions = sorted({t.target for t in targets if not t.is_workflow})
    machines = sorted({t.target for t in targets if t.is_workflow})
    statements: list[dict[str, Any]] = [{
        "Sid": "DeadLetters", "Effect": "Allow", "Action": ["sqs:SendMessage"],
        "Resource": get_att(SCHEDULES_DLQ, "Arn")}]
    if functions:
        statements.append({"Sid": "InvokeJobFunctions", "Effect": "Allow",
                           "Action": ["lambda:InvokeFunction"],
                           "Resource": [get_att(f, "Arn") for f in functions]})
    if machines:
        statements.append({"Sid": "StartWorkflows", "Effect": "Allow", "Action": ["states:StartExecution"],
                           "Resource": [ref(m) for m in machines]})
    out: dict[str, Any] = {
        SCHEDULES_DLQ: dead_letter_queue(f"{lake}-schedules-dlq", queue_meta),
        "SchedulerRole": iam_role(f"lakeline schedules ({lake}): invoke their targets only",
                                  "scheduler.amazonaws.com", "schedule-targets", statements),
    }
    for t in targets:
        out[camel(t.name) + "Schedule"] = {"Type": "AWS::Scheduler::Schedule", "Properties": {
            "Name": f"{lake}-{t.name}", "ScheduleExpression": t.expression,
            "ScheduleExpressionTimezone": "UTC", "FlexibleTimeWindow": {"Mode": "OFF"}, "State": "ENABLED",
            "Target": {
                "Arn": ref(t.target) if t.is_workflow else get_att(t.target, "Arn"),
                "RoleArn": get_att("SchedulerRole", "Arn"), "Input": json.dumps(t.input, sort_keys=True),
                "RetryPolicy": {"MaximumRetryAttempts": SCHEDULE_RETRIES,
                                "MaximumEventAgeInSeconds": SCHEDULE_MAX_EVENT_AGE},
                "DeadLetterConfig": {"Arn": get_att(SCHEDULES_DLQ, "Arn")},
            }}}
    return out


def dead_letter_queues(reg: Registry, specs: list[FunctionSpec]) -> list[tuple[str, str]]:
    """(logical id, what) of the DLQs this module adds, for their alarms."""
    out = [(queue_logical(job_queue(s.pipeline), dlq=True), f"{s.pipeline} job") for s in specs if s.consumes]
    if schedule_targets(reg):
        out.append((SCHEDULES_DLQ, "schedules"))
    return out


def dockerfile(spec: FunctionSpec, python: str = "3.12") -> str:
    """The Dockerfile of a job function packaged as an image: Lambda's Python base image, the zip
    package's tree (``deploy package`` leaves it in ``code/``) and what the pipeline needs beyond it."""
    reqs = " ".join(f"'{r}'" for r in spec.image_requirements)
    return (f"# Generated by `lakeline deploy sam`: the {spec.pipeline} job function's image\n"
            f"FROM public.ecr.aws/lambda/python:{python}\n"
            "COPY code/ ${LAMBDA_TASK_ROOT}/\n"
            f'RUN pip install --no-cache-dir --target "${{LAMBDA_TASK_ROOT}}" {reqs}\n'
            f'CMD ["{spec.handler}"]\n')


def dockerfile_name(spec: FunctionSpec) -> str:
    """The file name of a job function's Dockerfile, beside the package's ``code/``."""
    return f"Dockerfile.job-{spec.pipeline.replace('_', '-')}"
