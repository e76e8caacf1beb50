"""``lakeline deploy local``: the AWS path on a laptop. The resources of the SAM template that an
AWS-compatible endpoint (moto's server, LocalStack) can hold are created there from the
template itself — the same definitions `deploy sam` writes — and the lake's ``[aws]`` settings
are written to point at them.

Created, in dependency order (a queue after its dead-letter queue): the zone buckets, every
SQS queue (DLQs, redrive policies, FIFO job queues), the DynamoDB tables (keys, indexes), the
SNS topic, the Glue database and tables, the Athena workgroup, and the state machines (their
task ARNs resolved as the template resolves them; skipped with a note where the endpoint lacks
Step Functions). Lambda functions, IAM roles, alarms and schedules run only on AWS: they are
listed as skipped. The intrinsics
(``Ref``, ``Fn::GetAtt``, ``Fn::Sub``) are resolved against what was created.

It is idempotent (an existing resource is kept) and remembers what it made in
``HOME/state/deploy-local.json``; ``--teardown`` deletes exactly that, buckets emptied first.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from lakeline import log
from lakeline.adapters.aws.session import clients, error_code
from lakeline.config import ZONES, AwsSettings, Settings
from lakeline.deploy.cfn import bucket_logical, queue_logical
from lakeline.deploy.sam import TemplateOptions, build_template
from lakeline.errors import ConfigError, UsageError
from lakeline.pipelines.registry import Registry

_log = log.get("deploy.local")
MANIFEST = "deploy-local.json"
ACCOUNT = "000000000000"  # what moto and LocalStack answer when asked, unless told otherwise
CREATED_TYPES = ("AWS::S3::Bucket", "AWS::SQS::Queue", "AWS::DynamoDB::Table", "AWS::SNS::Topic",
                 "AWS::Serverless::StateMachine", "AWS::Glue::Database", "AWS::Glue::Table",
                 "AWS::Athena::WorkGroup")
_SUB = re.compile(r"\$\{([^}!][^}]*)\}")
_QUEUE_ATTRIBUTES = ("VisibilityTimeout", "MessageRetentionPeriod", "RedrivePolicy", "FifoQueue",
                     "ContentBasedDeduplication")
#: error codes of a resource that is gone already (teardown goes on)
_GONE = ("NoSuchBucket", "ResourceNotFoundException", "AWS.SimpleQueueService.NonExistentQueue",
         "QueueDoesNotExist", "StateMachineDoesNotExist", "NotFound", "EntityNotFoundException")
_MARK = "# written by `lakeline deploy local`\n"


@dataclass
class Deployed:
    """What one ``deploy local`` made: physical ids and attributes by logical id."""

    endpoint: str
    region: str
    account: str
    name: str
    resources: dict[str, dict[str, str]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {"endpoint": self.endpoint, "region": self.region, "account": self.account, "name": self.name,
                "resources": self.resources, "skipped": self.skipped}


class _Resolver:
    """Resolves the template's intrinsics against the resources made so far."""

    def __init__(self, deployed: Deployed, template: dict[str, Any]) -> None:
        self.d = deployed
        self.template = template

    def _pseudo(self, name: str) -> str:
        return {"AWS::Region": self.d.region, "AWS::AccountId": self.d.account, "AWS::Partition": "aws",
                "AWS::StackName": self.d.name, "AWS::URLSuffix": "amazonaws.com"}[name]

    def attribute(self, logical: str, attr: str | None) -> str:
        if logical.startswith("AWS::"):
            return self._pseudo(logical)
        made = self.d.resources.get(logical)
        if made is not None:
            return made["ref"] if attr is None else made[attr]
        kind = self.template["Resources"].get(logical, {}).get("Type", "")
        props = self.template["Resources"].get(logical, {}).get("Properties", {})
        if kind == "AWS::Serverless::Function":  # not created: the ARN it would have on AWS
            name = props.get("FunctionName") or f"{self.d.name}-{logical}"
            return f"arn:aws:lambda:{self.d.region}:{self.d.account}:function:{self.value(name)}"
        if kind == "AWS::IAM::Role":
            return f"arn:aws:iam::{self.d.account}:role/{self.d.name}-{logical}"
        if kind and kind not in CREATED_TYPES:  # AWS only (a KMS key, a log group): the ARN as a name
            service = kind.split("::")[1].lower()
            return f"arn:aws:{service}:{self.d.region}:{self.d.account}:{self.d.name}-{logical}"
        raise _NotYet(logical)

    def value(self, v: Any) -> Any:
        if isinstance(v, dict) and len(v) == 1:
            (key, arg), = v.items()
            if key == "Ref":
                return self.attribute(arg, None)
            if key == "Fn::GetAtt":
                return self.attribute(arg[0], arg[1])
            if key == "Fn::Sub":
                text = arg if isinstance(arg, str) else arg[0]
                done = _SUB.sub(lambda m: self.attribute(*self._split(m.group(1))), text)
                return done.replace("${!", "${")  # Fn::Sub's escape of a literal ${…}
        if isinstance(v, dict):
            return {k: self.value(x) for k, x in v.items()}
        if isinstance(v, list):
            return [self.value(x) for x in v]
        return v

    @staticmethod
    def _split(ref: str) -> tuple[str, str | None]:
        logical, _, attr = ref.partition(".")
        return logical, attr or None


class _NotYet(Exception):
    """A resource refers to one not created yet (or never created)."""


def _attribute(value: Any) -> str:
    """An SQS attribute value as the API takes it (text; JSON for a redrive policy)."""
    if isinstance(value, dict):
        return json.dumps(value)
    return str(value).lower() if isinstance(value, bool) else str(value)


def _create(c: Any, kind: str, props: dict[str, Any], d: Deployed) -> dict[str, str]:
    if kind == "AWS::S3::Bucket":
        name = props["BucketName"]
        try:
            where = {} if d.region == "us-east-1" else {
                "CreateBucketConfiguration": {"LocationConstraint": d.region}}
            c.client("s3").create_bucket(Bucket=name, **where)
        except Exception as exc:
            if error_code(exc) not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise
        if props.get("VersioningConfiguration", {}).get("Status") == "Enabled":
            c.client("s3").put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        return {"ref": name, "Arn": f"arn:aws:s3:::{name}"}
    if kind == "AWS::SQS::Queue":
        attrs = {k: _attribute(v) for k, v in props.items() if k in _QUEUE_ATTRIBUTES}
        sqs = c.client("sqs")
        url = sqs.create_queue(QueueName=props["QueueName"], Attributes=attrs)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        return {"ref": url, "Arn": arn, "QueueName": props["QueueName"], "QueueUrl": url}
    if kind == "AWS::DynamoDB::Table":
        keep = ("TableName", "KeySchema", "AttributeDefinitions", "GlobalSecondaryIndexes",
                "LocalSecondaryIndexes", "BillingMode")
        ddb = c.client("dynamodb")
        try:
            made = ddb.create_table(**{k: v for k, v in props.items() if k in keep})
            arn = made["TableDescription"]["TableArn"]
        except Exception as exc:
            if error_code(exc) != "ResourceInUseException":
                raise
            arn = ddb.describe_table(TableName=props["TableName"])["Table"]["TableArn"]
        return {"ref": props["TableName"], "Arn": arn}
    if kind == "AWS::SNS::Topic":
        arn = c.client("sns").create_topic(Name=props["TopicName"])["TopicArn"]
        return {"ref": arn, "TopicArn": arn, "TopicName": props["TopicName"]}
    if kind == "AWS::Serverless::StateMachine":
        text = json.dumps(props["Definition"])
        for key, value in (props.get("DefinitionSubstitutions") or {}).items():
            text = text.replace("${" + key + "}", str(value))
        sfn = c.client("stepfunctions")
        arn = f"arn:aws:states:{d.region}:{d.account}:stateMachine:{props['Name']}"
        try:
            arn = sfn.create_state_machine(name=props["Name"], definition=text, roleArn=props["Role"],
                                           type=props.get("Type", "STANDARD"))["stateMachineArn"]
        except Exception as exc:
            if error_code(exc) != "StateMachineAlreadyExists":
                raise
        return {"ref": arn, "Arn": arn, "Name": props["Name"]}
    if kind == "AWS::Glue::Database":
        glue = c.client("glue")
        name = props["DatabaseInput"]["Name"]
        try:
            glue.create_database(DatabaseInput=props["DatabaseInput"])
        except Exception as exc:
            if error_code(exc) != "AlreadyExistsException":
                raise
        return {"ref": name}
    if kind == "AWS::Glue::Table":
        glue = c.client("glue")
        try:
            glue.create_table(DatabaseName=props["DatabaseName"], TableInput=props["TableInput"])
        except Exception as exc:
            if error_code(exc) != "AlreadyExistsException":
                raise
            glue.update_table(DatabaseName=props["DatabaseName"], TableInput=props["TableInput"])
        return {"ref": f"{props['DatabaseName']}|{props['TableInput']['Name']}"}
    if kind == "AWS::Athena::WorkGroup":
        athena = c.client("athena")
        try:
            athena.create_work_group(Name=props["Name"], Description=props.get("Description", ""),
                                     Configuration=props["WorkGroupConfiguration"])
        except Exception as exc:
            if error_code(exc) != "InvalidRequestException":
                raise
        return {"ref": props["Name"]}
    raise AssertionError(kind)


def deploy_local(settings: Settings, reg: Registry, endpoint: str, *, name: str | None = None) -> Deployed:
    """Create the template's resources on ``endpoint`` (idempotent) and write the ``[aws]``
    settings that point the lake at them. Returns what exists now."""
    if not endpoint.startswith(("http://", "https://")):
        raise UsageError(f"--endpoint-url must be an http(s) URL, got {endpoint!r}")
    opts = TemplateOptions(name=name or settings.lake.name)
    template = build_template(opts, reg)
    aws = AwsSettings(region=settings.aws.region, endpoint_url=endpoint)
    c = clients(aws)
    account = _account(c)
    d = Deployed(endpoint, aws.region, account, opts.name)
    resolver = _Resolver(d, template)
    todo = {k: v for k, v in template["Resources"].items() if v["Type"] in CREATED_TYPES}
    d.skipped = {k: v["Type"] for k, v in template["Resources"].items() if v["Type"] not in CREATED_TYPES}
    while todo:
        progressed = False
        for logical, res in list(todo.items()):
            try:
                props = resolver.value(res.get("Properties", {}))
            except _NotYet:
                continue
            try:
                d.resources[logical] = _create(c, res["Type"], props, d)
            except Exception as exc:
                if res["Type"] != "AWS::Serverless::StateMachine":
                    raise
                d.skipped[logical] = f"{res['Type']} (the endpoint refused it: {error_code(exc) or exc})"
            del todo[logical]
            progressed = True
        if not progressed:
            raise ConfigError(f"deploy local: cannot resolve {', '.join(sorted(todo))} (circular references)")
    _write_manifest(settings, d)
    write_aws_settings(settings.home / "lakeline.toml", aws_settings(d))
    return d


def aws_settings(d: Deployed) -> dict[str, Any]:
    """The ``[aws]`` table for what ``d`` made."""
    r = d.resources
    out: dict[str, Any] = {"region": d.region, "endpoint_url": d.endpoint}
    for zone in ZONES:
        out[f"zone_{zone}"] = f"s3://{r[bucket_logical(zone)]['ref']}/"
    for q in ("ingest", "transform"):
        out[f"{q}_queue_url"] = r[queue_logical(q)]["ref"]
        out[f"{q}_dlq_url"] = r[queue_logical(q, dlq=True)]["ref"]
    out["state_table"] = r["StateTable"]["ref"]
    out["lineage_table"] = r["LineageTable"]["ref"]
    out["topic_arn"] = r["NotificationTopic"]["ref"]
    if "AthenaWorkGroup" in r:
        out["athena_workgroup"] = r["AthenaWorkGroup"]["ref"]
    if "GlueDatabase" in r:
        out["glue_database"] = r["GlueDatabase"]["ref"]
    return out


_AWS_TABLE = re.compile(r"(?ms)^\[aws\][^\n]*\n.*?(?=^\[|\Z)")


def write_aws_settings(path: Path, values: dict[str, Any]) -> None:
    """Replace the ``[aws]`` table of ``lakeline.toml`` (comments elsewhere kept)."""
    text = path.read_text("utf-8") if path.exists() else ""
    block = _MARK + tomli_w.dumps({"aws": values})
    text = _AWS_TABLE.sub("", text).rstrip("\n")
    path.write_text((text + "\n\n" if text else "") + block, "utf-8")


def _account(c: Any) -> str:
    try:
        return str(c.client("sts").get_caller_identity()["Account"])
    except Exception:  # an endpoint without STS: the usual emulator account
        return ACCOUNT


def _manifest_path(settings: Settings) -> Path:
    return settings.state_dir / MANIFEST


def _write_manifest(settings: Settings, d: Deployed) -> None:
    path = _manifest_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(d.to_dict(), indent=2, sort_keys=True), "utf-8")


def teardown_local(settings: Settings) -> Deployed:
    """Delete what the last ``deploy local`` of this lake made (buckets emptied, versions too),
    and its ``[aws]`` settings."""
    path = _manifest_path(settings)
    if not path.exists():
        raise UsageError(f"nothing to tear down: {path} is missing (no `lakeline deploy local` here)")
    data = json.loads(path.read_text("utf-8"))
    d = Deployed(data["endpoint"], data["region"], data["account"], data["name"], data["resources"],
                 data["skipped"])
    c = clients(AwsSettings(region=d.region, endpoint_url=d.endpoint))
    for logical, made in sorted(d.resources.items(), key=lambda kv: "DeadLetter" in kv[0]):
        ref = made["ref"]
        try:
            if ref.startswith("arn:aws:states:"):
                c.client("stepfunctions").delete_state_machine(stateMachineArn=ref)
            elif ref.startswith("arn:aws:sns:"):
                c.client("sns").delete_topic(TopicArn=ref)
            elif ref.startswith("http"):
                c.client("sqs").delete_queue(QueueUrl=ref)
            elif logical == "AthenaWorkGroup":
                c.client("athena").delete_work_group(WorkGroup=ref, RecursiveDeleteOption=True)
            elif "|" in ref:
                database, table = ref.split("|", 1)
                c.client("glue").delete_table(DatabaseName=database, Name=table)
            elif logical == "GlueDatabase":
                c.client("glue").delete_database(Name=ref)
            elif logical.endswith("Bucket"):
                _empty_bucket(c.client("s3"), ref)
                c.client("s3").delete_bucket(Bucket=ref)
            else:
                c.client("dynamodb").delete_table(TableName=ref)
        except Exception as exc:
            if error_code(exc) not in _GONE:
                raise
    path.unlink()
    toml = settings.home / "lakeline.toml"
    if toml.exists():
        text = _AWS_TABLE.sub("", toml.read_text("utf-8")).replace(_MARK, "")
        toml.write_text(text.rstrip("\n") + "\n", "utf-8")
    return d


def _empty_bucket(s3: Any, bucket: str) -> None:
    paginator = s3.get_paginator("list_object_versions")
    for page in paginator.paginate(Bucket=bucket):
        items = [{"Key": v["Key"], "VersionId": v["VersionId"]}
                 for v in page.get("Versions", []) + page.get("DeleteMarkers", [])]
        for i in range(0, len(items), 1000):
            s3.delete_objects(Bucket=bucket, Delete={"Objects": items[i:i + 1000], "Quiet": True})


__all__ = ["Deployed", "aws_settings", "deploy_local", "teardown_local", "write_aws_settings"]
