"""The shipments pipeline on AWS APIs (moto server over HTTP): Lambda handlers and
`lakeline run --profile aws` give the same rows as the local lake."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from lakeline.adapters.aws.queue import REASON_ATTRIBUTE
from lakeline.events import s3_event
from lakeline.lake import Lake
from lakeline.pipelines.shipments.gen import write
from tests.aws_server import REGION, boto_client, moto_endpoint  # noqa: F401
from tests.functional.helpers import land, query, run, settings
from tests.integration.aws_lake import as_env, aws_settings, provision

LAKELINE = str(Path(sys.executable).with_name("lakeline"))
KEY = "shipments/2026-01-05/data file+1%2B été.jsonl"


@dataclass
class FakeContext:
    """The attributes Powertools reads from a Lambda context."""

    aws_request_id: str = "req-1"
    function_name: str = "lakeline-test"
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:lakeline-test"
    function_version: str = "$LATEST"


def dataset(tmp_path: Path) -> bytes:
    path = tmp_path / "in.jsonl"
    write("shipments", 3000, path, seed=5)
    body = path.read_bytes()
    return body + b'{"record_type": "shipments", broken\n' + orjson.dumps(
        {"record_type": "shipments", "event_time": "2026-01-02T00:00:00Z", "weight_kg": "heavy"}) + b"\n"


def s3fs(endpoint: str) -> pafs.S3FileSystem:
    return pafs.S3FileSystem(endpoint_override=endpoint.removeprefix("http://"), scheme="http",
                             access_key="testing", secret_key="testing", region=REGION)  # noqa: S106


def silver_rows(endpoint: str, bucket: str) -> list[tuple]:
    table = pq.read_table(f"{bucket}/shipments", filesystem=s3fs(endpoint))
    cols = table.select(["shipment_id", "event_time", "weight_kg", "dt"]).to_pylist()
    return sorted((r["shipment_id"], r["event_time"], r["weight_kg"], str(r["dt"])) for r in cols)


def local_reference(tmp_path: Path, body: bytes) -> tuple[list[tuple], int]:
    home = tmp_path / "local"
    from lakeline.lake import init_home

    init_home(home)
    s = settings(home, lake__profile="local")
    lake = Lake.open(s)
    land(lake, KEY, body)
    run(s)
    rows = query(lake, "SELECT shipment_id, event_time, weight_kg, CAST(dt AS VARCHAR) FROM silver.shipments")
    rejects = query(lake, "SELECT count(*) FROM quarantine.rejects")[0][0]
    return sorted(rows), rejects


def sqs_event(messages: list[dict], queue_arn: str) -> dict:
    return {"Records": [{
        "messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
        "attributes": m.get("Attributes", {}), "messageAttributes": {}, "md5OfBody": m["MD5OfBody"],
        "eventSource": "aws:sqs", "eventSourceARN": queue_arn, "awsRegion": REGION,
    } for m in messages]}


@pytest.fixture
def aws_env(moto_endpoint, tmp_path, monkeypatch):  # noqa: F811
    overrides = provision(moto_endpoint, max_receive_count=3)
    for k, v in as_env(overrides).items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("LAKELINE__QUEUE__RETRY_DELAY", "0")
    monkeypatch.setenv("LAKELINE_HOME", str(tmp_path / "lambda"))
    from lakeline.aws import handlers

    handlers.reset()
    yield overrides
    handlers.reset()


def drain_transform(endpoint: str, overrides: dict, ctx: FakeContext) -> list[list[dict]]:
    """Deliver every transform message to the handler as Lambda's SQS poller would."""
    from lakeline.aws import handlers

    sqs = boto_client("sqs", endpoint)
    url = overrides["aws.transform_queue_url"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    failures = []
    for _ in range(50):
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0,
                                  AttributeNames=["All"]).get("Messages", [])
        if not got:
            break
        response = handlers.transform_handler(sqs_event(got, arn), ctx)
        failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
        failures.append(response["batchItemFailures"])
        for m in got:
            if m["MessageId"] not in failed:  # ReportBatchItemFailures: Lambda deletes the rest
                sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return failures


def test_handlers_on_moto_match_the_local_run(aws_env, moto_endpoint, tmp_path):  # noqa: F811
    from lakeline.aws import handlers

    body = dataset(tmp_path)
    landing = aws_env["aws.zone_landing"][5:].rstrip("/")
    s3 = boto_client("s3", moto_endpoint)
    s3.put_object(Bucket=landing, Key=KEY, Body=body)
    head = s3.head_object(Bucket=landing, Key=KEY)
    event = s3_event(landing, KEY, head["ContentLength"], head["ETag"].strip('"'))
    ctx = FakeContext()

    first = handlers.ingest_handler(event, ctx)
    assert (first["objects"], first["records"], first["skipped"], first["dropped"]) == (1, 3002, 0, 0)
    assert first["enqueued"] >= 1 and first["request_id"] == "req-1"
    again = handlers.ingest_handler(event, FakeContext(aws_request_id="req-2"))  # S3 redelivers
    assert (again["objects"], again["skipped"], again["enqueued"]) == (1, 1, 0)

    failures = drain_transform(moto_endpoint, aws_env, ctx)
    assert failures and all(f == [] for f in failures)

    expected_rows, expected_rejects = local_reference(tmp_path, body)
    silver = aws_env["aws.zone_silver"][5:].rstrip("/")
    assert silver_rows(moto_endpoint, silver) == expected_rows
    assert len(expected_rows) == 3000 and expected_rejects == 2
    error = aws_env["aws.zone_error"][5:].rstrip("/")
    rejects = pq.read_table(f"{error}/rejects", filesystem=s3fs(moto_endpoint)).to_pylist()
    assert sorted((r["key"], r["line_no"], r["reason_code"]) for r in rejects) == [
        (KEY, 3001, "MALFORMED_JSON"), (KEY, 3002, "TYPE_ERROR")]


def test_poison_message_reaches_the_dlq_on_its_first_receive(aws_env, moto_endpoint):  # noqa: F811
    """Not a chunk message: a MessageError (terminal), so the handler dead-letters it at once
    and reports no batch item failure (retrying cannot help; the redrive policy's
    maxReceiveCount is for transient failures)."""
    sqs = boto_client("sqs", moto_endpoint)
    sqs.send_message(QueueUrl=aws_env["aws.transform_queue_url"], MessageBody='{"v": 1, "not": "a chunk"}')
    failures = drain_transform(moto_endpoint, aws_env, FakeContext())
    assert failures == [[]]  # received once, dead-lettered, not reported for a retry
    dead = sqs.receive_message(QueueUrl=aws_env["aws.transform_dlq_url"], MessageAttributeNames=["All"]).get(
        "Messages", [])
    assert [m["Body"] for m in dead] == ['{"v": 1, "not": "a chunk"}']
    assert dead[0]["MessageAttributes"][REASON_ATTRIBUTE]["StringValue"].startswith("MessageError: ")


def test_run_profile_aws_and_replay_against_s3(aws_env, moto_endpoint, tmp_path):  # noqa: F811
    body = dataset(tmp_path)
    landing = aws_env["aws.zone_landing"][5:].rstrip("/")
    boto_client("s3", moto_endpoint).put_object(Bucket=landing, Key=KEY, Body=body)
    env = dict(os.environ, LAKELINE__RUNNER__SETTLE_SECONDS="0", LAKELINE__RUNNER__POLL_INTERVAL="0.05")
    home = tmp_path / "workstation"
    home.mkdir()
    cmd = [LAKELINE, "--home", str(home), "run", "--profile", "aws", "--json"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert (summary["announced"], summary["loaded"], summary["rejected"]) == (1, 3000, 2)
    silver = aws_env["aws.zone_silver"][5:].rstrip("/")
    assert len(silver_rows(moto_endpoint, silver)) == 3000

    from lakeline.pipelines.registry import registry
    from lakeline.stages.replay import replay

    lake = Lake.open(aws_settings(tmp_path / "ws2", aws_env))
    now = datetime.now(UTC)
    result = replay(lake, registry(lake.settings).route, "shipments", now - timedelta(hours=1),
                    now + timedelta(hours=1), name="r1")
    assert (result["scanned"], result["copied"], result["dest_prefix"]) == (1, 1, "shipments/replay/r1/")
    assert lake.store.exists("landing", "shipments/replay/r1/" + KEY)
    again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["loaded"] == 3000  # the copy is a new object, loaded again
    assert len(silver_rows(moto_endpoint, silver)) == 3000  # ... in place of the original's rows


def test_a_gzip_object_on_s3_loads_through_the_handlers_like_its_plain_twin(aws_env, moto_endpoint,  # noqa: F811
                                                                            tmp_path):
    """Issue 16, part 1 on AWS: ingest decompresses the gzip object into the tmp bucket, the
    transform reads the staged text by ranges, and the staged text is deleted when the load is
    complete; rejects name the landed key with the lines of the decompressed text."""
    import gzip

    from lakeline.aws import handlers

    body = dataset(tmp_path)
    key = KEY + ".gz"
    landing = aws_env["aws.zone_landing"][5:].rstrip("/")
    s3 = boto_client("s3", moto_endpoint)
    s3.put_object(Bucket=landing, Key=key, Body=gzip.compress(body))
    head = s3.head_object(Bucket=landing, Key=key)
    ctx = FakeContext()
    first = handlers.ingest_handler(s3_event(landing, key, head["ContentLength"], head["ETag"].strip('"')), ctx)
    assert (first["objects"], first["records"], first["dropped"]) == (1, 3002, 0)
    tmp_bucket = aws_env["aws.zone_tmp"][5:].rstrip("/")
    staged = [o["Key"] for o in s3.list_objects_v2(Bucket=tmp_bucket).get("Contents", [])
              if "gunzip/" in o["Key"]]
    assert len(staged) == 1 and staged[0].endswith("data file+1%2B été.jsonl")

    assert all(f == [] for f in drain_transform(moto_endpoint, aws_env, ctx))
    expected_rows, _ = local_reference(tmp_path, body)
    silver = aws_env["aws.zone_silver"][5:].rstrip("/")
    assert silver_rows(moto_endpoint, silver) == expected_rows
    error = aws_env["aws.zone_error"][5:].rstrip("/")
    rejects = pq.read_table(f"{error}/rejects", filesystem=s3fs(moto_endpoint)).to_pylist()
    assert sorted((r["key"], r["line_no"], r["reason_code"]) for r in rejects) == [
        (key, 3001, "MALFORMED_JSON"), (key, 3002, "TYPE_ERROR")]
    assert not [o["Key"] for o in s3.list_objects_v2(Bucket=tmp_bucket).get("Contents", [])
                if "gunzip/" in o["Key"]]
