"""CloudFormation building blocks shared by the template generators: long-form intrinsics,
logical ids, one IAM role per principal, and the function spec every Lambda is built from."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any


def ref(name: str) -> dict[str, Any]:
    """``{"Ref": name}``."""
    return {"Ref": name}


def get_att(resource: str, attribute: str) -> dict[str, Any]:
    """``{"Fn::GetAtt": [resource, attribute]}``."""
    return {"Fn::GetAtt": [resource, attribute]}


def sub(text: str) -> dict[str, Any]:
    """``{"Fn::Sub": text}``."""
    return {"Fn::Sub": text}


def camel(text: str) -> str:
    """``ingest_queue`` / ``etl-promote`` → ``IngestQueue`` / ``EtlPromote``."""
    return "".join(part.capitalize() for part in re.split(r"[_\-]", text))


def bucket_logical(zone: str) -> str:
    """Logical id of a zone's bucket: ``LandingBucket``."""
    return camel(zone) + "Bucket"


def queue_logical(queue: str, dlq: bool = False) -> str:
    """Logical id of a queue: ``IngestQueue`` / ``IngestDeadLetterQueue``."""
    return camel(queue) + ("DeadLetterQueue" if dlq else "Queue")


#: how long a dead-letter queue keeps a message (SQS's maximum)
DLQ_RETENTION_SECONDS = 14 * 24 * 3600


def dead_letter_queue(name: str, metadata: dict[str, Any], *, fifo: bool = False) -> dict[str, Any]:
    """An encrypted SQS dead-letter queue called ``name`` (``.fifo`` added for a FIFO one)."""
    props: dict[str, Any] = {"QueueName": f"{name}.fifo" if fifo else name,
                             "MessageRetentionPeriod": DLQ_RETENTION_SECONDS, "SqsManagedSseEnabled": True}
    if fifo:
        props["FifoQueue"] = True
    return {"Type": "AWS::SQS::Queue", "Metadata": metadata, "Properties": props}


def state_machine_logical(workflow: str) -> str:
    """Logical id of a shipped workflow's state machine: ``EtlPromoteStateMachine``."""
    return camel(workflow) + "StateMachine"


@dataclass(frozen=True)
class FunctionSpec:
    """One Lambda function and exactly what its role may touch."""

    key: str
    handler: str
    description: str
    memory: int
    timeout: int
    s3_read: tuple[str, ...] = ()
    s3_write: tuple[str, ...] = ()
    consumes: str | None = None
    sends: tuple[str, ...] = ()
    inspects: tuple[str, ...] = ()
    state_write: bool = True
    #: For a workflow task function: the ``FunctionName`` the shipped definitions use.
    task: str = ""
    #: For a pipeline's job function: the pipeline it runs (``LAKELINE_PIPELINE``).
    pipeline: str = ""
    #: State machines (logical ids) the function may start.
    starts: tuple[str, ...] = ()
    #: It waits for the executions it starts (may describe them).
    waits: bool = False
    #: S3 notifications that invoke the function: (zone, key prefix); ``""`` = the whole zone.
    s3_events: tuple[tuple[str, str], ...] = ()
    #: May write the lake's SSM parameters (watermarks), not only read them.
    params_write: bool = False
    #: Extra environment variables (CloudFormation values).
    env: tuple[tuple[str, Any], ...] = ()
    #: May register tables and partitions in the lake's Glue database (`catalog sync`).
    catalog_write: bool = False
    #: Further Glue databases it may create and write (a pipeline's Iceberg namespaces).
    glue_databases: tuple[str, ...] = ()
    #: Requirements beyond the zip package: the function is a container image with them.
    image_requirements: tuple[str, ...] = ()

    @property
    def logical(self) -> str:
        return camel(self.key) + "Function"


def iam_role(description: str, service: str, policy_name: str,
             statements: list[dict[str, Any]]) -> dict[str, Any]:
    """An IAM role ``service`` may assume from this account only, with one inline policy."""
    return {
        "Type": "AWS::IAM::Role",
        "Properties": {
            "Description": description,
            "AssumeRolePolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [{
                    "Effect": "Allow", "Principal": {"Service": service},
                    "Action": "sts:AssumeRole",
                    "Condition": {"StringEquals": {"aws:SourceAccount": ref("AWS::AccountId")}},
                }],
            },
            "Policies": [{
                "PolicyName": policy_name,
                "PolicyDocument": {"Version": "2012-10-17", "Statement": statements},
            }],
        },
    }
