"""AWS Lambda handlers: thin wrappers over the stages.

``ingest_handler``
    S3 ``ObjectCreated`` notification (or EventBridge "Object Created", or an SQS message
    carrying either) → chunk messages on the transform queue. Returns the ingest result
    ``{objects, records, enqueued, skipped, dropped, request_id}``.
``transform_handler``
    SQS event (event source mapping with ``ReportBatchItemFailures``) → silver Parquet.
    Returns ``{"batchItemFailures": [{"itemIdentifier": id}, …]}``; an empty list means the
    whole batch succeeded.

The lake (clients, DuckDB) is built once per execution environment and reused across
invocations. Heavy modules (DuckDB, Arrow) load on the first transform, so the ingest
function's cold start stays small; importing this module must not import pandas.
Logs are JSON lines (Powertools Logger) with ``request_id`` and ``run_id``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from lakeline import envvars, transient
from lakeline.adapters.aws.queue import deferrals, deferred_for, lambda_record_message
from lakeline.adapters.aws.session import AwsClients, clients
from lakeline.aws import triggers
from lakeline.config import load_settings
from lakeline.errors import ConfigError, NotFoundError, TerminalError
from lakeline.lake import Lake
from lakeline.lakefiles import install_lake_files, packaged_dir
from lakeline.pipelines.registry import Registry, registry
from lakeline.pipelines.tasks import lake_tasks
from lakeline.promotion.gate import read_run_summary
from lakeline.promotion.promote import promote
from lakeline.stages.ingest import Ingester
from lakeline.stages.messages import ChunkMessage
from lakeline.workflow.engine import LAMBDA_INVOKE

if TYPE_CHECKING:
    from lakeline.stages.transform import Transformer

logger = Logger(service="lakeline")
# Report every failed record, even when all of them failed (the default raises instead, which
# makes Lambda retry the batch anyway, but hides which records failed).
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)

_cache: dict[str, Any] = {}
DEFAULT_HOME = "/tmp/lakeline"  # noqa: S108 - Lambda's only writable directory


def lake() -> Lake:
    """The lake of this execution environment (profile from the environment: ``aws``)."""
    if "lake" not in _cache:
        home = os.environ.get(envvars.HOME, DEFAULT_HOME)
        os.makedirs(home, exist_ok=True)
        # the lake's declared pipelines and models, shipped in the package by `deploy package`
        install_lake_files(packaged_dir(), Path(home))
        _cache["lake"] = Lake.open(load_settings(home))
    lk: Lake = _cache["lake"]
    return lk


def pipelines() -> Registry:
    """The pipelines of this execution environment's lake."""
    return registry(lake().settings)


def transformer() -> Transformer:
    """The DuckDB-backed transformer, created on first use."""
    if "transformer" not in _cache:
        from lakeline.stages.transform import Transformer  # heavy: DuckDB, loaded on the first transform

        _cache["transformer"] = Transformer(lake(), pipelines().stream)
    tr: Transformer = _cache["transformer"]
    return tr


def reset() -> None:
    """Forget cached clients (tests change the environment between invocations)."""
    tr = _cache.pop("transformer", None)
    if tr is not None:
        tr.close()
    _cache.clear()


def _request_id(context: Any) -> str | None:
    return getattr(context, "aws_request_id", None)


@logger.inject_lambda_context(clear_state=True)
def ingest_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """S3 / EventBridge object-created event → chunk messages; returns the ingest result."""
    events = [event]
    if event.get("Records") and event["Records"][0].get("eventSource") == "aws:sqs":
        events = [orjson.loads(r["body"]) for r in event["Records"]]  # S3 → SQS → Lambda
    ingester = Ingester(lake(), pipelines().route)
    total: dict[str, Any] = {}
    for ev in events:
        result = ingester.handle_event(ev, request_id=_request_id(context)).to_dict()
        for k, v in result.items():
            total[k] = total.get(k, 0) + v if isinstance(v, int) else v
    landed = ingester.take_landed()
    if landed:  # job pipelines' objects: start the work their triggers declare
        started = triggers.dispatch(aws_clients(), triggers.plan_from_env(), landed)
        logger.info("pipeline work started", extra={"started": started})
    logger.info("ingest done", extra={"result": total})
    return total


@logger.inject_lambda_context(clear_state=True)
def pipeline_job_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """A job pipeline's function (``LAKELINE_PIPELINE``): ``{"schedule": NAME}`` (an EventBridge
    Scheduler schedule) runs that schedule of the pipeline; anything else — a batch of its job
    queue's messages, an S3 notification of a packet — runs :meth:`Pipeline.run` once over
    everything pending (so a batch of ten landings is one run). Returns the reports; a report
    that FAILED was already recorded and notified by the pipeline, so it is no retry; an
    exception is (the job queue redelivers, the schedule retries)."""
    name = os.environ.get(envvars.PIPELINE, "")
    if not name:
        raise ConfigError(f"{envvars.PIPELINE} is not set: this function runs no pipeline")
    pipeline = pipelines().get(name)
    logger.append_keys(pipeline=name)
    schedule = event.get("schedule") if isinstance(event, dict) else None
    serial = [e for e in triggers.plan_from_env().get(name, []) if "state_machine" in e]
    if schedule is None and serial and isinstance(event, dict) and event.get("Records"):
        # a serial workflow trigger: one execution at a time, none when nothing is pending
        landed = [orjson.loads(r["body"]) for r in event["Records"] if r.get("eventSource") == "aws:sqs"]
        if not pipeline.pending(lake()):
            logger.info("nothing pending: no execution", extra={"landed": len(landed)})
            return {"pipeline": name, "schedule": None, "reports": [], "execution": None}
        remaining = getattr(context, "get_remaining_time_in_millis", lambda: 900_000)
        done = triggers.start_and_wait(aws_clients(), serial, landed,
                                       deadline_s=max(0.0, remaining() / 1000 - 60))
        logger.info("workflow execution", extra={"execution": done})
        return {"pipeline": name, "schedule": None, "reports": [], "execution": done}
    if schedule is not None:
        found = {s.name: s for s in pipeline.schedules(lake().settings)}
        if schedule not in found:
            raise ConfigError(f"pipeline {name} has no schedule {schedule!r} (it has: "
                              f"{', '.join(sorted(found)) or 'none'})")
        reports = found[schedule].run(lake())
    else:
        reports = pipeline.run(lake())
    out = [r.to_dict() for r in reports]
    logger.info("pipeline job done", extra={"schedule": schedule, "reports": [r.summary for r in reports]})
    synced: list[dict[str, Any]] = []
    if reports:  # new data: its tables in Glue for Athena (never fails the job)
        from lakeline.aws.catalog import sync_catalog  # heavy: pyarrow, only after a run

        try:
            tables = pipeline.tables(lake().settings)
            synced = [d.to_dict() for d in sync_catalog(lake(), aws_clients(), tables)]
        except Exception:
            logger.exception("glue catalog sync failed (run `lakeline catalog sync --profile aws`)")
    return {"pipeline": name, "schedule": schedule, "reports": out, "catalog": synced}


@logger.inject_lambda_context(clear_state=True)
def catalog_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The hourly schedule: every table the template cannot define (gold tables, models) in the
    lake's Glue database, from its Parquet (``lakeline catalog sync``)."""
    from lakeline.aws.catalog import lake_tables, sync_catalog  # heavy: pyarrow

    done = [d.to_dict() for d in sync_catalog(lake(), aws_clients(), lake_tables(lake(), pipelines()))]
    logger.info("glue catalog synced", extra={"tables": done})
    return {"tables": done}


def aws_clients() -> AwsClients:
    """boto3 clients of this execution environment (for what has no port: job queues, Step
    Functions)."""
    if "clients" not in _cache:
        _cache["clients"] = clients(lake().settings.aws)
    made: AwsClients = _cache["clients"]
    return made


def _transform_record(record: SQSRecord) -> None:
    """Transform one chunk message. A :class:`TerminalError` (not a chunk message, unusable
    data) moves the record to the transform DLQ on this receive and returns normally, so it is
    no batch item failure: Lambda deletes it from the queue instead of redelivering it until
    ``maxReceiveCount``. A transient fault re-sends it uncharged with a backoff (:func:`_defer`),
    up to a limit of time. Any other error propagates: a batch item failure, retried. So does a
    failed move to the DLQ or a failed re-send, which leave the message to the redrive policy."""
    try:
        msg = ChunkMessage.from_json(record.body)
        logger.append_keys(run_id=msg.run_key, pipeline=msg.pipeline)
        result = transformer().process(msg)
    except TerminalError as exc:
        reason = f"{type(exc).__name__}: {exc}"
        lake().transform_queue.dead_letter(lambda_record_message(record.raw_event), reason)
        logger.warning("message dead-lettered", extra={"message_id": record.message_id,
                                                       "reason": reason})
        return
    except Exception as exc:
        if not transient.is_transient(exc) or not _defer(record, exc):
            raise
        return
    logger.info("chunk done", extra={"chunk": msg.chunk, "loaded": result.loaded,
                                     "rejected": result.rejected})


def _defer(record: SQSRecord, exc: BaseException) -> bool:
    """A transient fault (throttling, a 5xx, …) is not the message's fault: re-send it uncharged
    after a jittered, growing backoff (``queue.retry_delay`` doubling up to
    ``queue.transient_backoff_max``) — while it has been deferred for less than
    ``queue.transient_give_up_after`` seconds. False past that limit: the failure is then
    charged (a batch item failure), and the redrive policy's ``maxReceiveCount`` decides."""
    message = lambda_record_message(record.raw_event)
    q = lake().settings.queue
    waited = deferred_for(message)
    if deferrals(message) and waited >= q.transient_give_up_after:
        logger.warning("transient fault outlasted queue.transient_give_up_after: the receive is charged",
                       extra={"message_id": message.message_id, "waited_s": round(waited, 1),
                              "error": f"{type(exc).__name__}: {exc}"})
        return False
    tries = deferrals(message) + 1
    delay = transient.backoff(tries, base=q.retry_delay, ceiling=q.transient_backoff_max)
    lake().transform_queue.defer(message, delay)
    logger.warning("transient fault: message deferred uncharged",
                   extra={"message_id": message.message_id, "try": tries, "retry_in_s": delay,
                          "error": f"{type(exc).__name__}: {exc}"})
    return True


@logger.inject_lambda_context(clear_state=True)
def transform_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """SQS batch of chunk messages → ``{"batchItemFailures": [...]}`` (partial failure).

    A record failing with a :class:`TerminalError` is dead-lettered at once and not listed."""
    response = process_partial_response(
        event=event, record_handler=_transform_record, processor=processor, context=context,
    )
    return dict(response)


@logger.inject_lambda_context(clear_state=True)
def promote_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Step Functions task: promote a complete silver run (input and output of specs §1).

    Errors come back as ``{"status": "error", …}`` (not raised) so the workflow's Choice
    state can route them to its failure state.
    """
    logger.append_keys(run_id=event.get("run_key"), execution_arn=event.get("execution_arn"))
    result = promote(lake(), event)
    logger.info("promotion", extra={"status": result.get("status"), "run_id": result.get("run_id")})
    return result


@logger.inject_lambda_context(clear_state=True)
def run_summary_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The promotion gate (``read_run_summary``) as a task: ``{run_id, quarantine_rate, …,
    promotion_allowed}``; input ``{"silver_prefix", "run_key"?, "schema_version"?}``."""
    try:
        return read_run_summary(
            lake(), str(event["silver_prefix"]), event.get("run_key"),
            schema_version=event.get("schema_version", "v1"),
        )
    except NotFoundError as exc:
        return {"promotion_allowed": False, "status": "error", "reason": str(exc)}


@logger.inject_lambda_context(clear_state=True)
def workflow_task_handler(event: dict[str, Any], context: Any) -> Any:
    """A shipped workflow's Lambda task on AWS: runs the bound lakeline step named by
    ``LAKELINE_WORKFLOW_TASK`` (the ``FunctionName`` of the definition, e.g.
    ``lakeline-quality-gate``) with the invocation payload, exactly as the local engine does.
    An error propagates so the state machine's ``Retry``/``Catch`` see it."""
    name = os.environ.get(envvars.WORKFLOW_TASK, "")
    if not name:
        raise ConfigError(f"{envvars.WORKFLOW_TASK} is not set: this function runs no workflow task")
    tasks = lake_tasks(lake(), pipelines())
    fn, payload, _ = tasks.resolve(LAMBDA_INVOKE, {"FunctionName": name, "Payload": event})
    logger.append_keys(workflow_task=name)
    return fn(payload)
