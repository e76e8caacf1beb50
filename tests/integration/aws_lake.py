"""Provision a complete lakeline lake on the moto server, as the deploy template would."""

from __future__ import annotations

from typing import Any

import orjson

from lakeline.config import ZONES, Settings, load_settings
from tests.aws_server import boto_client, unique


def provision(endpoint: str, *, max_receive_count: int = 5) -> dict[str, Any]:
    """Create buckets, queues (+ DLQs with a redrive policy), the state and lineage tables and a
    topic.

    Returns the settings overrides (``aws.*`` keys) that point lakeline at them.
    """
    s3 = boto_client("s3", endpoint)
    sqs = boto_client("sqs", endpoint)
    ddb = boto_client("dynamodb", endpoint)
    sns = boto_client("sns", endpoint)
    name = unique("ll")
    out: dict[str, Any] = {"lake.profile": "aws", "aws.endpoint_url": endpoint, "lake.name": name}
    for zone in ZONES:
        bucket = f"{name}-{zone}"
        s3.create_bucket(Bucket=bucket)
        out[f"aws.zone_{zone}"] = f"s3://{bucket}/"
    for q in ("ingest", "transform"):
        dlq_url = sqs.create_queue(QueueName=f"{name}-{q}-dlq")["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        url = sqs.create_queue(QueueName=f"{name}-{q}", Attributes={
            "VisibilityTimeout": "180",
            "RedrivePolicy": orjson.dumps({"deadLetterTargetArn": dlq_arn,
                                           "maxReceiveCount": str(max_receive_count)}).decode(),
        })["QueueUrl"]
        out[f"aws.{q}_queue_url"] = url
        out[f"aws.{q}_dlq_url"] = dlq_url
    table = f"{name}-state"
    ddb.create_table(
        TableName=table, BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                              {"AttributeName": "sk", "AttributeType": "S"}],
    )
    out["aws.state_table"] = table
    from lakeline.adapters.aws.lineage import TABLE_SCHEMA

    ddb.create_table(TableName=f"{name}-lineage", **TABLE_SCHEMA)  # the default aws.lineage_table
    out["aws.topic_arn"] = sns.create_topic(Name=f"{name}-notify")["TopicArn"]
    return out


def aws_settings(home: Any, overrides: dict[str, Any], **extra: Any) -> Settings:
    merged = dict(overrides)
    merged.update({"queue.retry_delay": 0.0, "runner.poll_interval": 0.05})
    merged.update(extra)
    return load_settings(home, merged)


def as_env(overrides: dict[str, Any]) -> dict[str, str]:
    """The same overrides as LAKELINE__SECTION__KEY environment variables."""
    return {"LAKELINE__" + k.replace(".", "__").upper(): str(v) for k, v in overrides.items()}
