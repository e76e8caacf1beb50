"""The AWS SAM template of a lakeline deployment, built from Python data.

:func:`build_template` returns the template as a dict in CloudFormation's long form
(``{"Ref": …}``, ``{"Fn::GetAtt": […]}``, ``{"Fn::Sub": …}``), so no YAML tags are needed;
:func:`dump_yaml` writes it as block YAML (every string JSON-quoted unless plainly safe).

Design choices a reader should know:

* Bucket names and ARNs are spelled out with ``Fn::Sub`` from the lake name, account and
  region instead of ``Ref``-ing the buckets. The landing bucket's notification depends on the
  ingest function, whose role names the landing bucket: with ``Ref`` that is a cycle.
* One IAM role per function, every statement scoped to the created resources; no ``*``
  action or resource anywhere. X-Ray is therefore off (``xray:PutTraceSegments`` only
  accepts ``*``).
* The SNS topic is encrypted with a customer managed key: CloudWatch alarms cannot publish
  to a topic encrypted with the AWS managed ``alias/aws/sns`` key (its policy cannot grant
  ``cloudwatch.amazonaws.com``). The key is the one fixed monthly cost (about $1).
* Queue settings come from :class:`lakeline.config.QueueSettings` (specs §3): visibility
  180 s, retention 4 days, DLQ after 5 receives, batch 10; a queue consumer's timeout is
  visibility / 6.
* checkov findings the design accepts are suppressed in each resource's ``Metadata`` with
  the reason (:data:`SKIPS`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from lakeline.adapters.aws.lineage import TABLE_SCHEMA
from lakeline.config import ZONES, QueueSettings, Settings
from lakeline.deploy import jobs
from lakeline.deploy.cfn import (
    FunctionSpec,
    bucket_logical,
    dead_letter_queue,
    get_att,
    iam_role,
    queue_logical,
    ref,
    state_machine_logical,
    sub,
)
from lakeline.deploy.cfn import camel as _camel
from lakeline.envvars import PIPELINE, TRIGGERS, WORKFLOW_TASK
from lakeline.errors import UsageError
from lakeline.pipelines.registry import Registry, load
from lakeline.pipelines.tasks import all_tasks, workflows
from lakeline.tables.schema import GLUE_PARQUET, Field, hive_type
from lakeline.workflow.shipped import export

RUNTIME = "python3.12"
DEFAULT_NAME = "lakeline"
DEFAULT_CODE_URI = "package/lakeline-lambda.zip"
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9-]{1,18}[a-z0-9]$")
VERSIONED_ZONES = ("landing", "raw")
TMP_EXPIRATION_DAYS = 7
NONCURRENT_EXPIRATION_DAYS = 30
ACCESS_LOG_EXPIRATION_DAYS = 90
LOG_RETENTION_DAYS = 30
ATHENA_BYTES_SCANNED_CUTOFF = 10 * 1024**3
ATHENA_MIN_CUTOFF = 10 * 1024**2
ATHENA_RESULTS_PREFIX = "athena-results/"
PROJECTION_START = "2020-01-01"
SOURCE_STRUCT = "struct<bucket:string,key:string,etag:string,line_no:bigint>"

#: checkov checks the design does not satisfy on purpose, with the reason, by resource kind.
SKIPS: dict[str, dict[str, str]] = {
    "zone_bucket": {
        "CKV_AWS_21": "Versioning is on for landing and raw (the inputs). The other zones hold "
                      "data derived from them and rewritten in place by design (exactly-once "
                      "rewrites, tmp scratch); old versions would only add cost.",
    },
    "access_log_bucket": {
        "CKV_AWS_18": "This is the access-log target; logging it to itself would log every "
                      "log delivery.",
        "CKV_AWS_21": "Access logs are append-only and expire after 90 days; versioning adds "
                      "nothing.",
    },
    "function": {
        "CKV_AWS_115": "No reserved concurrency: reserving capacity fails on accounts with the "
                       "default concurrency quota. Queue consumers are capped with the event "
                       "source mapping's ScalingConfig.MaximumConcurrency instead.",
        "CKV_AWS_116": "Invoked synchronously (SQS event source mapping, workflows): failures "
                       "go to the queue's redrive DLQ or back to the caller, not to an async DLQ.",
        "CKV_AWS_117": "No VPC: the functions use only public AWS APIs; a VPC would need NAT or "
                       "interface endpoints that cost money while idle.",
        "CKV_AWS_173": "The environment holds resource names and URLs only, no secrets; Lambda "
                       "encrypts it at rest with the AWS managed key.",
    },
    "log_group": {
        "CKV_AWS_158": "CloudWatch Logs encrypts log data at rest with service keys; a customer "
                       "managed key would add a fixed monthly cost for operational logs.",
    },
    "queue": {
        "CKV_AWS_27": "Encrypted at rest with SQS-managed SSE (SqsManagedSseEnabled); checkov's "
                      "CloudFormation check only looks for KmsMasterKeyId. A KMS key would add "
                      "KMS request costs and key permissions for every sender and consumer.",
    },
    "state_table": {
        "CKV_AWS_119": "Encrypted with the AWS managed key (SSEEnabled); a customer managed key "
                       "would add a fixed monthly cost and needs no extra control here.",
    },
}


@dataclass(frozen=True)
class TemplateOptions:
    """What ``lakeline deploy sam`` varies: the lake name, CPU architecture, code location."""

    name: str = DEFAULT_NAME
    arm64: bool = False
    code_uri: str = DEFAULT_CODE_URI
    queue: QueueSettings = field(default_factory=QueueSettings)

    def __post_init__(self) -> None:
        if not NAME_PATTERN.match(self.name):
            raise UsageError(
                f"--name {self.name!r}: use 3-20 characters a-z, 0-9 and '-', starting with a "
                "letter (it prefixes bucket names, which must be globally unique and short)"
            )

    @property
    def architecture(self) -> str:
        return "arm64" if self.arm64 else "x86_64"

    @property
    def consumer_timeout(self) -> int:
        """Timeout of a queue-driven function: AWS asks for visibility >= 6 x timeout."""
        return max(3, self.queue.visibility_timeout // 6)


# ------------------------------------------------------------------ intrinsics and helpers


def _skips(kind: str, *, drop: Iterable[str] = ()) -> dict[str, Any]:
    reasons = {k: v for k, v in SKIPS[kind].items() if k not in set(drop)}
    return {"checkov": {"skip": [{"id": k, "comment": v} for k, v in reasons.items()]}}


class _Names:
    """Physical names derived from the lake name (``Fn::Sub`` strings)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def bucket(self, zone: str) -> str:
        return f"{self.name}-{zone}-${{AWS::AccountId}}-${{AWS::Region}}"

    def bucket_arn(self, zone: str) -> dict[str, Any]:
        return sub(f"arn:${{AWS::Partition}}:s3:::{self.bucket(zone)}")

    def objects_arn(self, zone: str) -> dict[str, Any]:
        return sub(f"arn:${{AWS::Partition}}:s3:::{self.bucket(zone)}/*")

    def zone_uri(self, zone: str) -> dict[str, Any]:
        return sub(f"s3://{self.bucket(zone)}/")

    @property
    def glue_database(self) -> str:
        return self.name.replace("-", "_")


# ------------------------------------------------------------------ the functions


def builtin_registry() -> Registry:
    """The built-in pipelines (and installed ones), without a lake's pipeline files."""
    return load(Settings(home=Path("/nonexistent/lakeline-home")))


def function_specs(opts: TemplateOptions) -> list[FunctionSpec]:
    """The stage functions and their permissions (least privilege, by zone and queue)."""
    t = opts.consumer_timeout
    return [
        FunctionSpec(
            "ingest", "lakeline.aws.handlers.ingest_handler",
            "Object-created event -> idempotency claim -> chunk messages on the transform queue",
            memory=1024, timeout=t, s3_read=("landing",), s3_write=("raw", "error", "tmp"),
            consumes="IngestQueue", sends=("TransformQueue", "IngestDeadLetterQueue"),
        ),
        FunctionSpec(
            "transform", "lakeline.aws.handlers.transform_handler",
            "SQS batch of chunk messages -> typed silver Parquet and rejects (partial batch failure)",
            memory=2048, timeout=t, s3_read=("landing", "raw"), s3_write=("silver", "error", "tmp"),
            consumes="TransformQueue",
        ),
        FunctionSpec(
            "promote", "lakeline.aws.handlers.promote_handler",
            "Promote a finished silver run: current/ and _LATEST.json",
            memory=1024, timeout=300, s3_write=("silver", "gold"),
        ),
        FunctionSpec(
            "catalog", "lakeline.aws.handlers.catalog_handler",
            "Hourly: register new gold tables and partitions in Glue from their Parquet (catalog sync)",
            memory=1024, timeout=300, s3_read=("silver", "gold"), state_write=False, catalog_write=True,
        ),
        FunctionSpec(
            "run_summary", "lakeline.aws.handlers.run_summary_handler",
            "Summarise recent runs and queue depths; publish to the notification topic",
            memory=512, timeout=60, s3_read=("error",), state_write=False,
            inspects=("IngestQueue", "TransformQueue", "IngestDeadLetterQueue",
                      "TransformDeadLetterQueue"),
        ),
    ]


def task_specs(opts: TemplateOptions, reg: Registry) -> list[FunctionSpec]:
    """One function per workflow task (the generic ones and every pipeline's), each with its
    own role.

    They share the package and one handler (:func:`lakeline.aws.handlers.workflow_task_handler`)
    which runs the step named by ``LAKELINE_WORKFLOW_TASK``; separate functions keep each
    task's permissions to what that step touches (the grants its :class:`TaskSpec` declares).
    """
    return [
        FunctionSpec(
            "task_" + t.name.removeprefix("lakeline-").replace("-", "_"),
            "lakeline.aws.handlers.workflow_task_handler", t.description, memory=t.memory,
            timeout=t.timeout, task=t.name, s3_read=t.s3_read, s3_write=t.s3_write, sends=t.sends,
            state_write=t.state_write,
        )
        for t in all_tasks(reg)
    ]


def _environment(opts: TemplateOptions, names: _Names) -> dict[str, Any]:
    env: dict[str, Any] = {
        "LAKELINE_HOME": "/tmp/lakeline",  # noqa: S108 - Lambda's only writable directory
        "LAKELINE_LOG_LEVEL": "INFO",
        "POWERTOOLS_SERVICE_NAME": "lakeline",
        "LAKELINE__LAKE__PROFILE": "aws",
        "LAKELINE__LAKE__NAME": opts.name,
        "LAKELINE__AWS__REGION": ref("AWS::Region"),
    }
    for zone in ZONES:
        env[f"LAKELINE__AWS__ZONE_{zone.upper()}"] = names.zone_uri(zone)
    for q in ("ingest", "transform"):
        env[f"LAKELINE__AWS__{q.upper()}_QUEUE_URL"] = ref(queue_logical(q))
        env[f"LAKELINE__AWS__{q.upper()}_DLQ_URL"] = ref(queue_logical(q, dlq=True))
    env["LAKELINE__AWS__STATE_TABLE"] = ref("StateTable")
    env["LAKELINE__AWS__LINEAGE_TABLE"] = ref("LineageTable")
    env["LAKELINE__AWS__TOPIC_ARN"] = ref("NotificationTopic")
    return env


def _role(spec: FunctionSpec, opts: TemplateOptions, names: _Names) -> dict[str, Any]:
    statements: list[dict[str, Any]] = [{
        "Sid": "WriteOwnLogs",
        "Effect": "Allow",
        "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
        "Resource": get_att(spec.logical + "LogGroup", "Arn"),
    }]
    if spec.s3_read:
        statements.append({
            "Sid": "ReadZoneObjects", "Effect": "Allow", "Action": ["s3:GetObject"],
            "Resource": [names.objects_arn(z) for z in spec.s3_read],
        })
    if spec.s3_write:
        statements.append({
            "Sid": "ReadWriteZoneObjects", "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
            "Resource": [names.objects_arn(z) for z in spec.s3_write],
        })
    zones = [z for z in ZONES if z in spec.s3_read or z in spec.s3_write]
    if zones:
        statements.append({
            "Sid": "ListZoneBuckets", "Effect": "Allow", "Action": ["s3:ListBucket"],
            "Resource": [names.bucket_arn(z) for z in zones],
        })
    if spec.consumes:
        statements.append({
            "Sid": "ConsumeQueue", "Effect": "Allow",
            "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility",
                       "sqs:GetQueueAttributes"],
            "Resource": get_att(spec.consumes, "Arn"),
        })
    if spec.sends:
        statements.append({
            "Sid": "SendMessages", "Effect": "Allow", "Action": ["sqs:SendMessage", "sqs:GetQueueAttributes"],
            "Resource": [get_att(q, "Arn") for q in spec.sends],
        })
    if spec.starts:
        statements.append({
            "Sid": "StartWorkflows", "Effect": "Allow", "Action": ["states:StartExecution"],
            "Resource": [ref(m) for m in spec.starts],
        })
    if spec.starts and spec.waits:
        statements.append({
            "Sid": "WatchExecutions", "Effect": "Allow", "Action": ["states:DescribeExecution"],
            "Resource": [sub("arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:execution:"
                             "${" + m + ".Name}:*") for m in spec.starts],
        })
    if spec.inspects:
        statements.append({
            "Sid": "InspectQueues", "Effect": "Allow", "Action": ["sqs:GetQueueAttributes"],
            "Resource": [get_att(q, "Arn") for q in spec.inspects],
        })
    table_actions = ["dynamodb:GetItem", "dynamodb:Query", "dynamodb:BatchGetItem"]
    if spec.state_write:
        table_actions += ["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem",
                          "dynamodb:BatchWriteItem", "dynamodb:ConditionCheckItem"]
    statements += [
        {
            "Sid": "StateTable", "Effect": "Allow", "Action": table_actions,
            "Resource": [get_att("StateTable", "Arn"), sub("${StateTable.Arn}/index/*")],
        },
        {
            "Sid": "LineageTable", "Effect": "Allow", "Action": table_actions,
            "Resource": [get_att("LineageTable", "Arn"), sub(
                f"arn:${{AWS::Partition}}:dynamodb:${{AWS::Region}}:${{AWS::AccountId}}:table/{opts.name}-lineage/index/*")],
        },
        {
            "Sid": "ReadParameters", "Effect": "Allow",
            "Action": ["ssm:GetParameter", "ssm:GetParameters", "ssm:GetParametersByPath"],
            "Resource": [
                sub(f"arn:${{AWS::Partition}}:ssm:${{AWS::Region}}:${{AWS::AccountId}}:parameter/{opts.name}"),
                sub(f"arn:${{AWS::Partition}}:ssm:${{AWS::Region}}:${{AWS::AccountId}}:parameter/{opts.name}/*"),
            ],
        },
        *([{
            "Sid": "RegisterTables", "Effect": "Allow",
            "Action": ["glue:GetDatabase", "glue:GetTable", "glue:GetTables", "glue:CreateTable",
                       "glue:UpdateTable", "glue:GetPartitions", "glue:BatchCreatePartition"],
            "Resource": [
                sub("arn:${AWS::Partition}:glue:${AWS::Region}:${AWS::AccountId}:catalog"),
                *(sub(f"arn:${{AWS::Partition}}:glue:${{AWS::Region}}:${{AWS::AccountId}}:{kind}/{db}{tail}")
                  for db in (names.glue_database, *spec.glue_databases)
                  for kind, tail in (("database", ""), ("table", "/*"))),
            ],
        }] if spec.catalog_write else []),
        *([{
            "Sid": "IcebergNamespaces", "Effect": "Allow", "Action": ["glue:CreateDatabase"],
            "Resource": [
                sub("arn:${AWS::Partition}:glue:${AWS::Region}:${AWS::AccountId}:catalog"),
                *(sub(f"arn:${{AWS::Partition}}:glue:${{AWS::Region}}:${{AWS::AccountId}}:database/{db}")
                  for db in spec.glue_databases),
            ],
        }] if spec.glue_databases else []),
        *([{
            "Sid": "WriteParameters", "Effect": "Allow", "Action": ["ssm:PutParameter"],
            "Resource": sub("arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter/"
                            f"{opts.name}/*"),
        }] if spec.params_write else []),
        {"Sid": "PublishNotifications", "Effect": "Allow", "Action": ["sns:Publish"],
         "Resource": ref("NotificationTopic")},
        {"Sid": "EncryptNotifications", "Effect": "Allow",
         "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
         "Resource": get_att("NotificationKey", "Arn")},
    ]
    return iam_role(f"lakeline {spec.key} function ({opts.name}): least privilege", "lambda.amazonaws.com",
                    f"{spec.key}-access", statements)


def _function(spec: FunctionSpec, opts: TemplateOptions, names: _Names) -> dict[str, Any]:
    props: dict[str, Any] = {
        "Description": spec.description,
        "CodeUri": opts.code_uri,
        "Handler": spec.handler,
        "Runtime": RUNTIME,
        "Architectures": [opts.architecture],
        "MemorySize": spec.memory,
        "Timeout": spec.timeout,
        "Role": get_att(spec.logical + "Role", "Arn"),
        "LoggingConfig": {"LogGroup": ref(spec.logical + "LogGroup")},
        "Environment": {"Variables": _environment(opts, names)},
    }
    for name, value in spec.env:
        props["Environment"]["Variables"][name] = value
    if spec.pipeline:
        props["Environment"]["Variables"][PIPELINE] = spec.pipeline
    if spec.s3_events:
        props["Events"] = {
            f"{_camel(zone)}ObjectCreated{i}": {"Type": "S3", "Properties": {
                "Bucket": ref(bucket_logical(zone)), "Events": "s3:ObjectCreated:*",
                **({"Filter": {"S3Key": {"Rules": [{"Name": "prefix", "Value": prefix}]}}}
                   if prefix else {})}}
            for i, (zone, prefix) in enumerate(spec.s3_events)}
    if spec.task:
        # A fixed name (`<lake>-notify`) so operators can invoke a task by hand.
        props["FunctionName"] = f"{opts.name}-{spec.task.removeprefix('lakeline-')}"
        props["Environment"]["Variables"][WORKFLOW_TASK] = spec.task
    drop: list[str] = []
    metadata = _skips("function", drop=drop)
    if spec.image_requirements:  # beyond the zip package: a container image `sam build` builds
        for key in ("CodeUri", "Handler", "Runtime"):
            del props[key]
        props["PackageType"] = "Image"
        context = str(Path(opts.code_uri).parent)
        return {"Type": "AWS::Serverless::Function", "Properties": props, "Metadata": {
            **metadata, "Dockerfile": jobs.dockerfile_name(spec), "DockerContext": context,
            "DockerTag": "python3.12"}}
    if spec.key == "ingest":
        # S3 invokes ingest asynchronously: after Lambda's retries the original event lands in
        # the ingest DLQ, where `lakeline dlq redrive` moves it to the ingest queue.
        props["DeadLetterQueue"] = {"Type": "SQS", "TargetArn": get_att("IngestDeadLetterQueue", "Arn")}
        props["Events"] = {
            "LandingObjectCreated": {
                "Type": "S3",
                "Properties": {"Bucket": ref(bucket_logical("landing")), "Events": "s3:ObjectCreated:*"},
            },
        }
        drop.append("CKV_AWS_116")
    return {"Type": "AWS::Serverless::Function", "Metadata": _skips("function", drop=drop),
            "Properties": props}


def _event_source_mappings(opts: TemplateOptions) -> dict[str, Any]:
    return {
        # Spec §3: batch 10, partial batch response. MaximumConcurrency caps parallel
        # transforms (the alternative to reserved concurrency).
        "TransformQueueEventSourceMapping": {
            "Type": "AWS::Lambda::EventSourceMapping",
            "Properties": {
                "EventSourceArn": get_att("TransformQueue", "Arn"),
                "FunctionName": ref("TransformFunction"),
                "BatchSize": opts.queue.batch_size,
                "FunctionResponseTypes": ["ReportBatchItemFailures"],
                "ScalingConfig": {"MaximumConcurrency": 10},
            },
        },
        # Redriven or hand-sent object-created events. One event per invocation: the ingest
        # handler reports no partial failures, so a bad event must not hold nine good ones.
        "IngestQueueEventSourceMapping": {
            "Type": "AWS::Lambda::EventSourceMapping",
            "Properties": {
                "EventSourceArn": get_att("IngestQueue", "Arn"),
                "FunctionName": ref("IngestFunction"),
                "BatchSize": 1,
                "ScalingConfig": {"MaximumConcurrency": 5},
            },
        },
    }


# ------------------------------------------------------------------ workflows


def _state_machines(opts: TemplateOptions, tasks: list[FunctionSpec], reg: Registry) -> dict[str, Any]:
    """Every shipped workflow as a Step Functions state machine, its definition unchanged
    except that each ``FunctionName`` becomes the deployed task function's ARN."""
    by_task = {spec.task: spec for spec in tasks}
    out: dict[str, Any] = {}
    for workflow, machine in sorted(workflows(reg).items()):
        exported = export(machine)
        subs: dict[str, str] = exported["substitutions"]
        unknown = sorted(set(subs.values()) - set(by_task))
        if unknown:
            raise UsageError(f"workflow {workflow!r} invokes {', '.join(unknown)}, which no "
                             "deployed task function provides (add it to task_specs)")
        logical = state_machine_logical(workflow)
        invoked = sorted({by_task[fn].logical for fn in subs.values()})
        out[logical + "Role"] = iam_role(
            f"lakeline workflow {workflow} ({opts.name}): invoke its tasks only", "states.amazonaws.com",
            f"{workflow}-tasks", [{
                "Sid": "InvokeTaskFunctions", "Effect": "Allow", "Action": ["lambda:InvokeFunction"],
                "Resource": [get_att(fn, "Arn") for fn in invoked],
            }])
        out[logical] = {
            # No X-Ray tracing and no CloudWatch log delivery: both need '*' resources, which
            # the design refuses. STANDARD workflows keep each execution's full event history
            # for 90 days (what `lakeline workflow history` shows locally).
            "Type": "AWS::Serverless::StateMachine",
            "Properties": {
                "Name": f"{opts.name}-{workflow.replace('_', '-')}",
                "Type": "STANDARD",
                "Definition": exported["definition"],
                "DefinitionSubstitutions": {
                    key: get_att(by_task[fn].logical, "Arn") for key, fn in sorted(subs.items())
                },
                "Role": get_att(logical + "Role", "Arn"),
            },
        }
    return out


# ------------------------------------------------------------------ storage


def _lifecycle(zone: str) -> dict[str, Any]:
    rules: list[dict[str, Any]] = [{
        "Id": "abort-incomplete-uploads", "Status": "Enabled",
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7},
    }]
    if zone in VERSIONED_ZONES:
        rules.append({
            "Id": "expire-noncurrent-versions", "Status": "Enabled",
            "NoncurrentVersionExpiration": {"NoncurrentDays": NONCURRENT_EXPIRATION_DAYS},
            "ExpiredObjectDeleteMarker": True,
        })
    if zone == "tmp":
        rules.append({"Id": "expire-tmp", "Status": "Enabled", "ExpirationInDays": TMP_EXPIRATION_DAYS})
    if zone == "access-logs":
        rules.append({"Id": "expire-access-logs", "Status": "Enabled",
                      "ExpirationInDays": ACCESS_LOG_EXPIRATION_DAYS})
    return {"Rules": rules}


def _bucket(zone: str, names: _Names) -> dict[str, Any]:
    logs = zone == "access-logs"
    sse: dict[str, Any] = (
        # S3 delivers server access logs only to buckets with SSE-S3 default encryption.
        {"SSEAlgorithm": "AES256"} if logs else {"SSEAlgorithm": "aws:kms"}
    )
    props: dict[str, Any] = {
        "BucketName": sub(names.bucket(zone)),
        "BucketEncryption": {"ServerSideEncryptionConfiguration": [
            {"ServerSideEncryptionByDefault": sse, "BucketKeyEnabled": not logs},
        ]},
        "PublicAccessBlockConfiguration": {
            "BlockPublicAcls": True, "BlockPublicPolicy": True,
            "IgnorePublicAcls": True, "RestrictPublicBuckets": True,
        },
        "OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
        "LifecycleConfiguration": _lifecycle(zone),
    }
    if zone in VERSIONED_ZONES:
        props["VersioningConfiguration"] = {"Status": "Enabled"}
    if not logs:
        props["LoggingConfiguration"] = {"DestinationBucketName": ref("AccessLogsBucket"),
                                         "LogFilePrefix": f"{zone}/"}
    meta = _skips("access_log_bucket") if logs else (
        {} if zone in VERSIONED_ZONES else _skips("zone_bucket"))
    resource: dict[str, Any] = {"Type": "AWS::S3::Bucket", "Properties": props}
    if meta:
        resource["Metadata"] = meta
    return resource


def _bucket_policy(logical: str, zone: str, names: _Names) -> dict[str, Any]:
    statements: list[dict[str, Any]] = [{
        "Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
        "Resource": [names.bucket_arn(zone), names.objects_arn(zone)],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }]
    if zone == "access-logs":
        statements.append({
            "Sid": "AllowServerAccessLogDelivery", "Effect": "Allow",
            "Principal": {"Service": "logging.s3.amazonaws.com"}, "Action": "s3:PutObject",
            "Resource": names.objects_arn(zone),
            "Condition": {
                "StringEquals": {"aws:SourceAccount": ref("AWS::AccountId")},
                "ArnLike": {"aws:SourceArn": sub(f"arn:${{AWS::Partition}}:s3:::{names.name}-*")},
            },
        })
    return {"Type": "AWS::S3::BucketPolicy", "Properties": {
        "Bucket": ref(logical), "PolicyDocument": {"Version": "2012-10-17", "Statement": statements}}}


def _queues(opts: TemplateOptions) -> dict[str, Any]:
    out: dict[str, Any] = {}
    q = opts.queue
    for name in ("ingest", "transform"):
        meta = _skips("queue")
        out[queue_logical(name, dlq=True)] = dead_letter_queue(f"{opts.name}-{name}-dlq", meta)
        out[queue_logical(name)] = {"Type": "AWS::SQS::Queue", "Metadata": meta, "Properties": {
            "QueueName": f"{opts.name}-{name}",
            "VisibilityTimeout": q.visibility_timeout,
            "MessageRetentionPeriod": q.retention_seconds,
            "SqsManagedSseEnabled": True,
            "RedrivePolicy": {"deadLetterTargetArn": get_att(queue_logical(name, dlq=True), "Arn"),
                              "maxReceiveCount": q.max_receive_count},
        }}
    return out


def _state_table(opts: TemplateOptions) -> dict[str, Any]:
    return {"Type": "AWS::DynamoDB::Table", "Metadata": _skips("state_table"), "Properties": {
        "TableName": f"{opts.name}-state",
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"},
                                 {"AttributeName": "sk", "AttributeType": "S"}],
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"},
                      {"AttributeName": "sk", "KeyType": "RANGE"}],
        "TimeToLiveSpecification": {"AttributeName": "expires_at", "Enabled": True},
        "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
        "SSESpecification": {"SSEEnabled": True},
    }}


def _lineage_table(opts: TemplateOptions) -> dict[str, Any]:
    """The lineage ledger: keys root_id + node_id, LSI parent-index, GSIs node_id-index,
    action-index and the sparse roots-index (see lakeline.adapters.aws.lineage)."""

    return {"Type": "AWS::DynamoDB::Table", "Metadata": _skips("state_table"), "Properties": {
        "TableName": f"{opts.name}-lineage", **TABLE_SCHEMA,
        "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
        "SSESpecification": {"SSEEnabled": True},
    }}


def _notifications(opts: TemplateOptions) -> dict[str, Any]:
    key_policy = {"Version": "2012-10-17", "Statement": [
        {
            "Sid": "AccountAdministersKeyAndDelegatesToIam", "Effect": "Allow",
            "Principal": {"AWS": sub("arn:${AWS::Partition}:iam::${AWS::AccountId}:root")},
            "Action": "kms:*", "Resource": "*",
        },
        {
            "Sid": "CloudWatchAlarmsPublishToTopic", "Effect": "Allow",
            "Principal": {"Service": "cloudwatch.amazonaws.com"},
            "Action": ["kms:Decrypt", "kms:GenerateDataKey"], "Resource": "*",
            "Condition": {"StringEquals": {"aws:SourceAccount": ref("AWS::AccountId")}},
        },
        {
            "Sid": "WorkflowFailureRulePublishesToTopic", "Effect": "Allow",
            "Principal": {"Service": "events.amazonaws.com"},
            "Action": ["kms:Decrypt", "kms:GenerateDataKey"], "Resource": "*",
            "Condition": {"StringEquals": {"aws:SourceAccount": ref("AWS::AccountId")}},
        },
    ]}
    return {
        "NotificationKey": {"Type": "AWS::KMS::Key", "Properties": {
            "Description": f"lakeline {opts.name}: encrypts the notification topic",
            "EnableKeyRotation": True, "PendingWindowInDays": 7, "KeyPolicy": key_policy}},
        "NotificationKeyAlias": {"Type": "AWS::KMS::Alias", "Properties": {
            "AliasName": f"alias/{opts.name}-notify", "TargetKeyId": ref("NotificationKey")}},
        "NotificationTopic": {"Type": "AWS::SNS::Topic", "Properties": {
            "TopicName": f"{opts.name}-notify",
            "KmsMasterKeyId": get_att("NotificationKey", "Arn")}},
        "NotificationEmailSubscription": {
            "Type": "AWS::SNS::Subscription", "Condition": "HasNotificationEmail",
            "Properties": {"TopicArn": ref("NotificationTopic"), "Protocol": "email",
                           "Endpoint": ref("NotificationEmail")}},
    }


# ------------------------------------------------------------------ monitoring


def _alarm(description: str, namespace: str, metric: str, dimension: tuple[str, Any],
           statistic: str, period: int) -> dict[str, Any]:
    return {"Type": "AWS::CloudWatch::Alarm", "Properties": {
        "AlarmDescription": description,
        "Namespace": namespace, "MetricName": metric,
        "Dimensions": [{"Name": dimension[0], "Value": dimension[1]}],
        "Statistic": statistic, "Period": period, "EvaluationPeriods": 1,
        "Threshold": 0, "ComparisonOperator": "GreaterThanThreshold",
        "TreatMissingData": "notBreaching",
        "AlarmActions": [ref("NotificationTopic")], "OKActions": [ref("NotificationTopic")],
    }}


def _monitoring(opts: TemplateOptions, specs: list[FunctionSpec],
                more_dlqs: Sequence[tuple[str, str]] = ()) -> dict[str, Any]:
    out: dict[str, Any] = {}
    dlqs = [(queue_logical(q, dlq=True), q) for q in ("ingest", "transform")] + list(more_dlqs)
    for dlq, what in dlqs:
        out[dlq + "DepthAlarm"] = _alarm(
            f"lakeline {opts.name}: messages in the {what} DLQ (inspect with `lakeline dlq list`)",
            "AWS/SQS", "ApproximateNumberOfMessagesVisible",
            ("QueueName", get_att(dlq, "QueueName")), "Maximum", 60)
    for spec in specs:
        out[spec.logical + "ErrorsAlarm"] = _alarm(
            f"lakeline {opts.name}: the {spec.key} function reported errors",
            "AWS/Lambda", "Errors", ("FunctionName", ref(spec.logical)), "Sum", 300)
    for spec in specs:
        out[spec.logical + "LogGroup"] = {"Type": "AWS::Logs::LogGroup", "Metadata": _skips("log_group"),
                                          "Properties": {"RetentionInDays": LOG_RETENTION_DAYS}}
    out["Dashboard"] = {"Type": "AWS::CloudWatch::Dashboard", "Properties": {
        "DashboardName": f"{opts.name}-lake", "DashboardBody": sub(_dashboard_body(specs))}}
    return out


def _workflow_alerts(opts: TemplateOptions, reg: Registry) -> dict[str, Any]:
    """A failed, timed-out or aborted execution of any of the lake's state machines is
    published to the topic (what the local driver notifies for carbon and etl_promote)."""
    machines = [state_machine_logical(w) for w in sorted(workflows(reg))]
    if not machines:
        return {}
    return {
        "WorkflowFailedRule": {"Type": "AWS::Events::Rule", "Properties": {
            "Description": f"lakeline {opts.name}: a workflow execution failed, timed out or was aborted",
            "State": "ENABLED",
            "EventPattern": {
                "source": ["aws.states"], "detail-type": ["Step Functions Execution Status Change"],
                "detail": {"status": ["FAILED", "TIMED_OUT", "ABORTED"],
                           "stateMachineArn": [ref(m) for m in machines]}},
            "Targets": [{"Id": "notify", "Arn": ref("NotificationTopic"), "InputTransformer": {
                "InputPathsMap": {"name": "$.detail.name", "status": "$.detail.status",
                                  "machine": "$.detail.stateMachineArn"},
                "InputTemplate": '"lakeline: workflow execution <name> of <machine> ended <status>; its '
                                 'event history (Step Functions console, or aws stepfunctions '
                                 'get-execution-history) shows the failed state and cause"'}}],
        }},
        "NotificationTopicPolicy": {"Type": "AWS::SNS::TopicPolicy", "Properties": {
            "Topics": [ref("NotificationTopic")],
            "PolicyDocument": {"Version": "2012-10-17", "Statement": [{
                "Sid": "WorkflowFailureRulePublishes", "Effect": "Allow",
                "Principal": {"Service": "events.amazonaws.com"}, "Action": "sns:Publish",
                "Resource": ref("NotificationTopic"),
                "Condition": {"ArnEquals": {"aws:SourceArn": get_att("WorkflowFailedRule", "Arn")}},
            }]}}},
    }


def _dashboard_body(specs: list[FunctionSpec]) -> str:
    def widget(title: str, metrics: list[list[Any]], x: int, y: int, stat: str) -> dict[str, Any]:
        return {"type": "metric", "x": x, "y": y, "width": 12, "height": 6, "properties": {
            "title": title, "region": "${AWS::Region}", "stat": stat, "period": 60,
            "view": "timeSeries", "metrics": metrics}}

    def queue_metrics(metric: str, dlq: bool) -> list[list[Any]]:
        return [["AWS/SQS", metric, "QueueName", f"${{{queue_logical(q, dlq)}.QueueName}}"]
                for q in ("ingest", "transform")]

    def fn_metrics(metric: str) -> list[list[Any]]:
        return [["AWS/Lambda", metric, "FunctionName", f"${{{s.logical}}}"] for s in specs]

    widgets = [
        widget("Queue depth (visible messages)",
               queue_metrics("ApproximateNumberOfMessagesVisible", False), 0, 0, "Maximum"),
        widget("Oldest message age (s)", queue_metrics("ApproximateAgeOfOldestMessage", False),
               12, 0, "Maximum"),
        widget("DLQ depth", queue_metrics("ApproximateNumberOfMessagesVisible", True), 0, 6, "Maximum"),
        widget("Function errors", fn_metrics("Errors"), 12, 6, "Sum"),
        widget("Function duration p95 (ms)", fn_metrics("Duration"), 0, 12, "p95"),
        widget("Function invocations and throttles",
               fn_metrics("Invocations") + fn_metrics("Throttles"), 12, 12, "Sum"),
    ]
    return json.dumps({"widgets": widgets}, separators=(",", ":"))


# ------------------------------------------------------------------ catalog and SQL


def hive_columns(fields: Iterable[Field]) -> list[dict[str, str]]:
    """Glue columns of a silver table: its fields, then ``_source`` (``dt`` is the partition)."""
    cols = [{"Name": f.name, "Type": hive_type(f.type)} for f in fields]
    cols.append({"Name": "_source", "Type": SOURCE_STRUCT})
    return cols


def _runs_table(pipeline: str, t: Any, silver: str) -> dict[str, Any]:
    """The Glue table of a promoted-runs table: each partition's ``current/`` (the promoted run),
    by year/month/schema projection (no crawler, no partition to register)."""
    template = f"s3://{silver}/{t.prefix}/year=${{!year}}/month=${{!month}}/schema_v=${{!schema_v}}/current/"
    return {"Type": "AWS::Glue::Table", "Properties": {
        "CatalogId": ref("AWS::AccountId"), "DatabaseName": ref("GlueDatabase"),
        "TableInput": {
            "Name": t.table, "TableType": "EXTERNAL_TABLE",
            "Description": f"{t.name}: the promoted runs of the {pipeline} pipeline",
            "Parameters": {
                "classification": "parquet", "EXTERNAL": "TRUE", "projection.enabled": "true",
                "projection.year.type": "integer", "projection.year.range": "2000,2099",
                "projection.month.type": "integer", "projection.month.range": "1,12",
                "projection.month.digits": "2",
                "projection.schema_v.type": "enum", "projection.schema_v.values": "v1",
                "storage.location.template": sub(template),
            },
            "PartitionKeys": [{"Name": k, "Type": "string"} for k in ("year", "month", "schema_v")],
            "StorageDescriptor": {
                "Columns": [{"Name": f.name, "Type": hive_type(f.type)} for f in t.fields],
                "Location": sub(f"s3://{silver}/{t.prefix}/"), **GLUE_PARQUET,
            },
        },
    }}


def athena_cutoff(max_bytes: int) -> int:
    """The workgroup's bytes-scanned cutoff: ``sql.max_bytes`` (what `lakeline sql` refuses to
    scan locally), at least Athena's minimum of 10 MB; 10 GiB when it is 0 (no limit)."""
    return max(ATHENA_MIN_CUTOFF, max_bytes) if max_bytes else ATHENA_BYTES_SCANNED_CUTOFF


def _catalog(opts: TemplateOptions, names: _Names, reg: Registry) -> dict[str, Any]:
    out: dict[str, Any] = {"GlueDatabase": {"Type": "AWS::Glue::Database", "Properties": {
        "CatalogId": ref("AWS::AccountId"),
        "DatabaseInput": {"Name": names.glue_database,
                          "Description": f"lakeline {opts.name}: silver tables"}}}}
    silver = names.bucket("silver")
    for p, t in reg.tables():
        if t.layout == "runs" and t.zone == "silver" and t.fields:
            out["Silver" + _camel(t.table) + "Table"] = _runs_table(p.name, t, silver)
            continue
        if t.layout != "parquet" or t.zone != "silver" or not t.fields:
            continue  # Iceberg tables register themselves; gold ones: `lakeline catalog sync`
        out["Silver" + _camel(t.table) + "Table"] = {"Type": "AWS::Glue::Table", "Properties": {
            "CatalogId": ref("AWS::AccountId"),
            "DatabaseName": ref("GlueDatabase"),
            "TableInput": {
                "Name": t.table,
                "Description": f"{t.name}: typed records of the {p.name} pipeline",
                "TableType": "EXTERNAL_TABLE",
                "Parameters": {
                    "classification": "parquet",
                    "parquet.compression": "ZSTD",
                    "EXTERNAL": "TRUE",
                    "projection.enabled": "true",
                    "projection.dt.type": "date",
                    "projection.dt.format": "yyyy-MM-dd",
                    "projection.dt.range": f"{PROJECTION_START},NOW",
                    "projection.dt.interval": "1",
                    "projection.dt.interval.unit": "DAYS",
                    # ${!dt} is Fn::Sub's escape for a literal ${dt} (Athena fills it in).
                    "storage.location.template": sub(f"s3://{silver}/{t.prefix}/dt=${{!dt}}/"),
                },
                "PartitionKeys": [{"Name": "dt", "Type": "string"}],
                "StorageDescriptor": {
                    "Columns": hive_columns(t.fields),
                    "Location": sub(f"s3://{silver}/{t.prefix}/"), **GLUE_PARQUET,
                },
            },
        }}
    out["AthenaWorkGroup"] = {"Type": "AWS::Athena::WorkGroup", "Properties": {
        "Name": opts.name,
        "Description": f"lakeline {opts.name}: SQL over the silver tables",
        "State": "ENABLED",
        "RecursiveDeleteOption": True,
        "WorkGroupConfiguration": {
            "BytesScannedCutoffPerQuery": athena_cutoff(reg.settings.sql.max_bytes),
            "EnforceWorkGroupConfiguration": True,
            "PublishCloudWatchMetricsEnabled": True,
            "EngineVersion": {"SelectedEngineVersion": "Athena engine version 3"},
            "ResultConfiguration": {
                "OutputLocation": sub(f"s3://{names.bucket('tmp')}/{ATHENA_RESULTS_PREFIX}"),
                "EncryptionConfiguration": {"EncryptionOption": "SSE_S3"},
            },
        },
    }}
    return out


# ------------------------------------------------------------------ outputs and assembly


def _outputs(opts: TemplateOptions, reg: Registry) -> dict[str, Any]:
    """Outputs; those whose Description is a LAKELINE__ variable configure a workstation."""
    out: dict[str, Any] = {
        "LakeName": {"Description": "LAKELINE__LAKE__NAME", "Value": opts.name},
        "Region": {"Description": "LAKELINE__AWS__REGION", "Value": ref("AWS::Region")},
    }
    for zone in ZONES:
        logical = bucket_logical(zone)
        out[logical + "Name"] = {"Description": f"Bucket of the {zone} zone", "Value": ref(logical)}
        out["Zone" + _camel(zone)] = {"Description": f"LAKELINE__AWS__ZONE_{zone.upper()}",
                                      "Value": sub(f"s3://${{{logical}}}/")}
    for q in ("ingest", "transform"):
        out[queue_logical(q) + "Url"] = {"Description": f"LAKELINE__AWS__{q.upper()}_QUEUE_URL",
                                         "Value": ref(queue_logical(q))}
        out[queue_logical(q, dlq=True) + "Url"] = {"Description": f"LAKELINE__AWS__{q.upper()}_DLQ_URL",
                                                   "Value": ref(queue_logical(q, dlq=True))}
    out["StateTableName"] = {"Description": "LAKELINE__AWS__STATE_TABLE", "Value": ref("StateTable")}
    out["LineageTableName"] = {"Description": "LAKELINE__AWS__LINEAGE_TABLE", "Value": ref("LineageTable")}
    out["NotificationTopicArn"] = {"Description": "LAKELINE__AWS__TOPIC_ARN",
                                   "Value": ref("NotificationTopic")}
    out["AccessLogsBucketName"] = {"Description": "S3 server access logs of the zone buckets",
                                   "Value": ref("AccessLogsBucket")}
    out["GlueDatabaseName"] = {"Description": "LAKELINE__AWS__GLUE_DATABASE", "Value": ref("GlueDatabase")}
    out["AthenaWorkGroupName"] = {"Description": "LAKELINE__AWS__ATHENA_WORKGROUP",
                                  "Value": ref("AthenaWorkGroup")}
    out["DashboardName"] = {"Description": "CloudWatch dashboard", "Value": ref("Dashboard")}
    for workflow in sorted(workflows(reg)):
        logical = state_machine_logical(workflow)
        out[logical + "Arn"] = {
            "Description": f"State machine of the {workflow} workflow (aws stepfunctions start-execution)",
            "Value": ref(logical)}
    return out


def build_template(opts: TemplateOptions | None = None, reg: Registry | None = None) -> dict[str, Any]:
    """The complete SAM template as a dict (long-form intrinsics only) for the pipelines of
    ``reg`` (default: the built-in ones)."""
    opts = opts or TemplateOptions()
    reg = reg or builtin_registry()
    names = _Names(opts.name)
    tasks = task_specs(opts, reg)
    job_fns = jobs.job_specs(reg)
    dispatch, job_queues, started = jobs.ingest_dispatch(reg)
    base = [replace(s, sends=s.sends + job_queues, starts=started, env=((TRIGGERS, dispatch),))
            if s.key == "ingest" else s for s in function_specs(opts)]
    specs = base + tasks + job_fns
    resources: dict[str, Any] = {}
    to_eventbridge = jobs.event_rule_zones(reg)
    for zone in (*ZONES, "access-logs"):
        logical = bucket_logical(zone)
        resources[logical] = _bucket(zone, names)
        if zone in to_eventbridge:  # an event [[rules]] entry watches this zone
            resources[logical]["Properties"]["NotificationConfiguration"] = {
                "EventBridgeConfiguration": {"EventBridgeEnabled": True}}
        resources[logical + "Policy"] = _bucket_policy(logical, zone, names)
    resources.update(_queues(opts))
    resources["StateTable"] = _state_table(opts)
    resources["LineageTable"] = _lineage_table(opts)
    resources.update(_notifications(opts))
    for spec in specs:
        resources[spec.logical + "Role"] = _role(spec, opts, names)
        resources[spec.logical] = _function(spec, opts, names)
    resources.update(_event_source_mappings(opts))
    resources.update(jobs.job_queues(reg, job_fns, opts.name, _skips("queue")))
    resources.update(_state_machines(opts, tasks, reg))
    resources.update(jobs.schedules(reg, opts.name, _skips("queue")))
    resources.update(jobs.event_rules(reg, lambda zone: sub(names.bucket(zone)), opts.name))
    resources.update(_monitoring(opts, specs, jobs.dead_letter_queues(reg, job_fns)))
    resources.update(_workflow_alerts(opts, reg))
    resources.update(_catalog(opts, names, reg))
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Transform": "AWS::Serverless-2016-10-31",
        "Description": f"lakeline lake '{opts.name}': zones on S3, SQS queues with DLQs, DynamoDB "
                       "state, Lambda stages, SNS notifications, alarms, Glue tables, Athena "
                       "(generated by `lakeline deploy sam`)",
        "Parameters": {"NotificationEmail": {
            "Type": "String", "Default": "",
            "Description": "E-mail address subscribed to alarms and notifications (empty: none)"}},
        "Conditions": {"HasNotificationEmail": {
            "Fn::Not": [{"Fn::Equals": [ref("NotificationEmail"), ""]}]}},
        "Resources": resources,
        "Outputs": _outputs(opts, reg),
    }


# ------------------------------------------------------------------ YAML


_PLAIN = re.compile(r"^[A-Za-z_/][A-Za-z0-9_./ -]*$")
_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_./-]+(::?[A-Za-z0-9_./-]+)*$")
_RESERVED = {"y", "n", "yes", "no", "on", "off", "true", "false", "null", "~"}


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    text = str(value)
    if (_PLAIN.match(text) or (_PLAIN_KEY.match(text) and text[0].isalpha())) \
            and text.lower() not in _RESERVED and not text.endswith(" ") \
            and " #" not in text:
        return text
    return json.dumps(text, ensure_ascii=False)  # a JSON string is a YAML double-quoted scalar


def _key(key: str) -> str:
    plain = _PLAIN_KEY.match(key) and key[0].isalpha() and key.lower() not in _RESERVED
    return key if plain else json.dumps(key)


def _yaml_lines(value: Any, indent: int) -> list[str]:
    pad = " " * indent
    lines: list[str] = []
    if isinstance(value, dict):
        for k, v in value.items():
            if isinstance(v, dict | list) and v:
                lines.append(f"{pad}{_key(str(k))}:")
                lines.extend(_yaml_lines(v, indent + 2))
            else:
                lines.append(f"{pad}{_key(str(k))}: {_inline(v)}")
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, dict | list) and item:
                inner = _yaml_lines(item, indent + 2)
                lines.append(f"{pad}- {inner[0].lstrip()}")
                lines.extend(inner[1:])
            else:
                lines.append(f"{pad}- {_inline(item)}")
    else:
        lines.append(pad + _scalar(value))
    return lines


def _inline(value: Any) -> str:
    if isinstance(value, dict):
        return "{}"
    if isinstance(value, list):
        return "[]"
    return _scalar(value)


def dump_yaml(data: dict[str, Any]) -> str:
    """Block-style YAML for plain data (dicts, lists, strings, numbers, booleans, None)."""
    return "\n".join(_yaml_lines(data, 0)) + "\n"


# ------------------------------------------------------------------ files


@dataclass(frozen=True)
class SamResult:
    """What ``write_sam`` wrote."""

    template: Path
    readme: Path
    resources: int
    functions: list[str]
    architecture: str
    code_uri: str

    def to_dict(self) -> dict[str, Any]:
        return {"template": str(self.template), "readme": str(self.readme),
                "resources": self.resources, "functions": self.functions,
                "architecture": self.architecture, "code_uri": self.code_uri}


def write_sam(out: Path, opts: TemplateOptions | None = None, reg: Registry | None = None) -> SamResult:
    """Write ``out/template.yaml`` and ``out/README.md`` for the pipelines of ``reg``."""
    opts = opts or TemplateOptions()
    template = build_template(opts, reg)
    out.mkdir(parents=True, exist_ok=True)
    tpl_path = out / "template.yaml"
    header = ("# Generated by `lakeline deploy sam`; edit the generator (lakeline/deploy/sam.py),\n"
              "# not this file. See README.md beside it.\n")
    tpl_path.write_text(header + dump_yaml(template), "utf-8")
    readme_path = out / "README.md"
    readme_path.write_text(render_readme(opts), "utf-8")
    for spec in jobs.job_specs(reg or builtin_registry()):
        if spec.image_requirements:  # beside the package's code/, where `sam build` looks
            docker = out / Path(opts.code_uri).parent / jobs.dockerfile_name(spec)
            docker.parent.mkdir(parents=True, exist_ok=True)
            docker.write_text(jobs.dockerfile(spec), "utf-8")
    functions = [spec.logical for spec in function_specs(opts)]
    return SamResult(tpl_path, readme_path, len(template["Resources"]), functions,
                     opts.architecture, opts.code_uri)


def render_readme(opts: TemplateOptions) -> str:
    """The deployment README for ``opts``."""
    platform = "manylinux2014_aarch64" if opts.arm64 else "manylinux2014_x86_64"
    code_dir = str(Path(opts.code_uri).parent) if opts.code_uri.endswith(".zip") else opts.code_uri
    values = {
        "@NAME@": opts.name,
        "@ARCH@": opts.architecture,
        "@PLATFORM@": platform,
        "@CODE_URI@": opts.code_uri,
        "@CODE_DIR@": code_dir,
        "@VIS@": str(opts.queue.visibility_timeout),
        "@TIMEOUT@": str(opts.consumer_timeout),
        "@RETENTION_DAYS@": str(opts.queue.retention_seconds // 86400),
        "@RECEIVES@": str(opts.queue.max_receive_count),
        "@BATCH@": str(opts.queue.batch_size),
        "@GLUE_DB@": _Names(opts.name).glue_database,
        "@CUTOFF_GB@": str(ATHENA_BYTES_SCANNED_CUTOFF // 1024**3),
    }
    text = README_TEMPLATE
    for token, value in values.items():
        text = text.replace(token, value)
    return text


README_TEMPLATE = """\
# Deploying lake `@NAME@` to AWS

`template.yaml` beside this file is an AWS SAM template generated by `lakeline deploy sam`
(architecture `@ARCH@`, code from `@CODE_URI@`). It creates:

- **Zones**: one S3 bucket per zone, `@NAME@-<zone>-<account>-<region>` for landing, raw,
  error, silver, gold and tmp. SSE-KMS with the AWS managed key (bucket keys on), all public
  access blocked, a TLS-only bucket policy, versioning on landing and raw (noncurrent
  versions expire after 30 days), tmp objects expire after 7 days, server access logs go to
  `@NAME@-access-logs-<account>-<region>` (kept 90 days).
- **Queues**: `@NAME@-ingest` and `@NAME@-transform`: visibility @VIS@ s, retention
  @RETENTION_DAYS@ days, SQS-managed encryption, DLQ `<queue>-dlq` after @RECEIVES@ receives
  (DLQs keep messages 14 days).
- **State**: DynamoDB `@NAME@-state` (`pk`/`sk`), on demand, TTL on `expires_at`,
  point-in-time recovery.
- **Functions** (python3.12, @ARCH@), one IAM role each, scoped to these resources:
  `ingest` (S3 notification of the landing bucket; events that still fail after Lambda's
  retries go to the ingest DLQ; it also consumes the ingest queue), `transform` (transform
  queue, batch @BATCH@, partial batch failures), `promote` and `run_summary` (no trigger:
  invoke them from a workflow or with `aws lambda invoke`). Queue consumers time out after
  @TIMEOUT@ s, so the visibility timeout is at least 6 times the function timeout.
- **Notifications**: SNS `@NAME@-notify`, encrypted with a customer managed KMS key
  (CloudWatch alarms cannot publish to a topic under the AWS managed `alias/aws/sns` key).
- **Monitoring**: alarms on both DLQs (any message) and on each function's errors, sent to
  the topic; dashboard `@NAME@-lake`; function logs kept 30 days.
- **SQL**: Glue database `@GLUE_DB@` with `shipments`, `tracking_events` and `invoice_lines`
  (Parquet, partition `dt` by projection from 2020-01-01 to today: no crawler, no
  `MSCK REPAIR`); Athena workgroup
  `@NAME@` (@CUTOFF_GB@ GiB scan limit per query, results encrypted under
  `s3://<tmp bucket>/athena-results/`).

## Prerequisites

- An AWS account and credentials for it (`aws sts get-caller-identity` works).
- [AWS SAM CLI](https://docs.aws.amazon.com/serverless-application-model/latest/developerguide/install-sam-cli.html)
  and the AWS CLI.
- lakeline with the AWS extra on the workstation: `pip install 'lakeline[aws]'` (Python ≥ 3.11).
  Building the Lambda package downloads manylinux wheels, so it works from macOS or Linux
  alike; no Docker needed.

## Build the Lambda package

From the directory holding `template.yaml`:

```console
$ lakeline deploy package --out @CODE_DIR@ --platform @PLATFORM@
```

This writes `@CODE_URI@` (lakeline and its runtime dependencies for CPython 3.12; boto3 comes
with the Lambda runtime). The platform must match the template's architecture (`@ARCH@`):
`manylinux2014_x86_64` for x86_64, `manylinux2014_aarch64` for `lakeline deploy sam --arm64`.

## Deploy

```console
$ sam build                # the code is already a zip: sam build leaves it as it is
$ sam deploy --guided      # stack name e.g. @NAME@; answer 'y' to "create IAM roles"
```

`sam deploy --guided` asks for `NotificationEmail` (leave empty for none; otherwise confirm
the subscription e-mail) and saves the answers in `samconfig.toml`; later deploys are plain
`sam build && sam deploy`. A landed object now flows: S3 notification → `ingest` → transform
queue → `transform` → silver Parquet, queryable in Athena:

```console
$ aws s3 cp shipments.jsonl s3://@NAME@-landing-<account>-<region>/shipments/2026-01-05/shipments.jsonl
$ aws athena start-query-execution --work-group @NAME@ \\
    --query-string "SELECT dt, count(*) FROM @GLUE_DB@.shipments GROUP BY dt"
```

## Run lakeline from a workstation against the deployed lake

Every stack output whose description is a `LAKELINE__…` variable is a setting. Export them all:

```console
$ eval "$(aws cloudformation describe-stacks --stack-name @NAME@ \\
    --query "Stacks[0].Outputs[?starts_with(Description, 'LAKELINE__')].[Description,OutputValue]" \\
    --output text | awk '{print "export " $1 "=" $2}')"
$ export LAKELINE__LAKE__PROFILE=aws LAKELINE_HOME=~/.lakeline-@NAME@   # local scratch only
$ mkdir -p "$LAKELINE_HOME"
$ lakeline run --profile aws          # ingest + transform from this machine, no Lambda needed
$ lakeline status                     # queue and DLQ depths (the profile comes from the env)
$ lakeline dlq redrive --queue all    # after fixing the cause of dead letters
```

or put the same values in `lakeline.toml` (`[lake] profile = "aws"`, `[aws] zone_landing = …`).
The variables are `LAKELINE__LAKE__NAME`, `LAKELINE__AWS__REGION`,
`LAKELINE__AWS__ZONE_<LANDING|RAW|ERROR|SILVER|GOLD|TMP>` (`s3://bucket/`),
`LAKELINE__AWS__<INGEST|TRANSFORM>_QUEUE_URL`, `LAKELINE__AWS__<INGEST|TRANSFORM>_DLQ_URL`,
`LAKELINE__AWS__STATE_TABLE` and `LAKELINE__AWS__TOPIC_ARN`. The workstation's credentials
need the same permissions as the functions (see the roles in `template.yaml`).

## Tuning

- The queues' visibility timeout (@VIS@ s) must stay at least 6 times the consuming
  function's timeout (@TIMEOUT@ s); raise both together (`lakeline.config.QueueSettings`)
  for very large chunks.
- `ScalingConfig.MaximumConcurrency` on the event source mappings caps parallel transforms (10)
  and queued ingests (5) without reserving account concurrency.
- Each role lists exactly the zones its function reads or writes (`function_specs` in
  `lakeline/deploy/sam.py`); widen them there, not in the console.

## Cost

Everything is pay per request: S3, SQS, DynamoDB on demand, Lambda, SNS, Athena (per TB
scanned, capped at @CUTOFF_GB@ GiB per query by the workgroup). Idle, the lake costs nearly
nothing: its S3 storage (including 30 days of noncurrent versions in landing and raw, and
90 days of access logs), DynamoDB storage and point-in-time-recovery backup of a small table,
and about $1 a month for the KMS key of the topic. CloudWatch alarms cost about $0.10 each a
month (6 here) and the dashboard is free up to three per account. No NAT gateway, VPC
endpoint or provisioned capacity exists.

## Teardown

CloudFormation cannot delete buckets that still hold objects, and landing and raw are
versioned: every object version and delete marker must go first. Empty all seven buckets,
then delete the stack:

```console
$ python - <<'EOF'
import boto3
s3 = boto3.resource("s3")
account = boto3.client("sts").get_caller_identity()["Account"]
region = boto3.session.Session().region_name
for zone in ("landing", "raw", "error", "silver", "gold", "tmp", "access-logs"):
    bucket = s3.Bucket(f"@NAME@-{zone}-{account}-{region}")
    bucket.object_versions.delete()   # every version and delete marker (versioned buckets)
    bucket.objects.all().delete()     # what remains in unversioned buckets
    print("emptied", bucket.name)
EOF
$ sam delete --stack-name @NAME@
```

With only the AWS CLI (and `jq`), for each bucket:

```console
$ B=@NAME@-landing-<account>-<region>
$ for kind in Versions DeleteMarkers; do
    while true; do
      OBJS=$(aws s3api list-object-versions --bucket "$B" --max-items 1000 --output json \\
        --query "{Objects: $kind[].{Key: Key, VersionId: VersionId}}")
      [ "$(echo "$OBJS" | jq '.Objects | length')" = "0" ] && break
      aws s3api delete-objects --bucket "$B" --delete "$OBJS" > /dev/null
    done
  done
```

Access logs for the last minutes may still arrive while you empty the log bucket; if
`sam delete` reports it is not empty, empty it again and rerun. The KMS key is scheduled for
deletion (7-day waiting period) rather than deleted at once.
"""
