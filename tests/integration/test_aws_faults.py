"""AWS adapters on the moto server: faults, retries, odd keys and AWS-only semantics.

(a) ``ConditionalCheckFailedException`` is :class:`ConditionFailed` and ``begin()`` works on
DynamoDB; (b) throttling and 5xx answers are retried by botocore's standard mode (fake answers
injected through the client's event system); (c) S3 keys with ``+``, ``%2B``, spaces and
unicode round-trip, with every zone in one bucket. The rest are the AWS counterparts of the
contract tests skipped for ``aws`` (SQS stamps its own time, cannot peek, keeps receive
counts in the DLQ; SSM names are ASCII), and the transform Lambda's handling of a
:class:`TerminalError` (dead-lettered at once, not a batch item failure).
"""
# ruff: noqa: F811  (the moto_endpoint fixture is imported and redefined as an argument)

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.stub import Stubber

from lakeline.adapters.aws.notifier import SnsNotifier
from lakeline.adapters.aws.objectstore import S3ObjectStore
from lakeline.adapters.aws.params import SsmParameterStore
from lakeline.adapters.aws.queue import SqsQueue
from lakeline.adapters.aws.session import AwsClients, clients, error_code, parse_s3_uri
from lakeline.adapters.aws.state import TABLE_SCHEMA, DynamoStateStore
from lakeline.aws import handlers
from lakeline.config import ZONES, AwsSettings
from lakeline.errors import (
    ConditionFailed,
    ConfigError,
    DataError,
    MessageError,
    NotFoundError,
    TransientError,
    UsageError,
)
from lakeline.ports import BeginResult, Message, Queue, QueueCounts
from lakeline.ports.queue import DEAD_LETTER_REASON
from lakeline.stages.messages import ChunkMessage
from lakeline.stages.transform import ChunkResult
from tests.aws_server import REGION, boto_client, moto_endpoint, unique  # noqa: F401
from tests.contract.queue_backends import QueueFactory
from tests.contract.store_backends import FakeClock
from tests.integration.aws_lake import as_env, provision

TTL, LOCK = 100.0, 10.0


def fresh_clients(endpoint: str, max_attempts: int = 3) -> AwsClients:
    """Clients of our own, so event handlers registered on them leak into no other test."""
    session = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
    )
    settings = AwsSettings(region=REGION, endpoint_url=endpoint, max_attempts=max_attempts)
    return clients(settings, session)


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def receive_one(queue: Queue) -> Message:
    [msg] = queue.receive(1)
    return msg


class _Raw:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.body


def fake_response(status: int, body: bytes, content_type: str) -> AWSResponse:
    return AWSResponse("https://fake", status, {"Content-Type": content_type}, _Raw(body))


def ddb_error(code: str) -> bytes:
    return json.dumps({"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": code}).encode()


@pytest.fixture
def ddb(moto_endpoint: str) -> tuple[DynamoStateStore, FakeClock, str]:
    table = unique("state")
    boto_client("dynamodb", moto_endpoint).create_table(TableName=table, **TABLE_SCHEMA)
    clock = FakeClock()
    return DynamoStateStore(fresh_clients(moto_endpoint).dynamodb, table, clock=clock), clock, table


@pytest.fixture
def sqs(moto_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> QueueFactory:
    factory = QueueFactory("aws", tmp_path, moto_endpoint)
    factory.clock.install(monkeypatch)
    return factory


# ---- (a) DynamoDB conditions and idempotency ------------------------------------------------
def test_conditional_check_failed_is_condition_failed(ddb: Any) -> None:
    store, _, _ = ddb
    store.put("t", "k", {"v": 1}, if_absent=True)
    for attempt in (
        lambda: store.put("t", "k", {"v": 2}, if_absent=True),
        lambda: store.put("t", "k", {"v": 2}, expected_version=7),
        lambda: store.delete("t", "k", expected_version=7),
    ):
        with pytest.raises(ConditionFailed) as info:
            attempt()
        assert error_code(info.value.__cause__) == "ConditionalCheckFailedException"
    item = store.get("t", "k")
    assert item is not None and (item.data, item.version) == ({"v": 1}, 1)


def test_begin_on_dynamodb(ddb: Any, moto_endpoint: str) -> None:
    store, clock, table = ddb
    key = "landing/a b+c.csv#etag"
    assert store.begin(key, ttl_seconds=TTL, lock_seconds=LOCK, now=clock()) is BeginResult.STARTED
    assert store.begin(key, ttl_seconds=TTL, lock_seconds=LOCK, now=clock()) is BeginResult.IN_PROGRESS
    clock.advance(LOCK + 1)  # the lock expired: taken over by compare-and-swap
    assert store.begin(key, ttl_seconds=TTL, lock_seconds=LOCK, now=clock()) is BeginResult.STARTED
    store.complete(key, {"rows": 3})
    assert store.begin(key, ttl_seconds=TTL, lock_seconds=LOCK, now=clock()) is BeginResult.COMPLETED
    clock.advance(TTL)  # expired, though DynamoDB TTL has not deleted it
    raw = boto_client("dynamodb", moto_endpoint).get_item(
        TableName=table, Key={"pk": {"S": "idempotency"}, "sk": {"S": key}})["Item"]
    assert raw["version"] == {"N": "3"} and json.loads(raw["data"]["S"])["status"] == "COMPLETED"
    assert store.begin(key, ttl_seconds=TTL, lock_seconds=LOCK, now=clock()) is BeginResult.STARTED
    item = store.get("idempotency", key)
    assert item is not None and item.version == 1  # a new item, not version 4


@pytest.mark.skip(reason=(
    "moto's server runs concurrent requests against an unlocked DynamoDB backend, so conditional "
    "writes are not atomic under thread races there (this failed 1 run in ~30). Atomicity is "
    "DynamoDB's guarantee; the conditions themselves are covered by the sequential tests, and "
    "the race by the local backend's multi-process test."))
def test_threads_race_begin_and_plain_puts(ddb: Any) -> None:
    store, clock, _ = ddb
    keys = [f"raw/f{i:02d}.csv#e" for i in range(20)]
    won: list[str] = []
    barrier = threading.Barrier(6)

    def worker() -> None:
        barrier.wait()
        for k in keys:
            if store.begin(k, ttl_seconds=TTL, lock_seconds=LOCK, now=clock()) is BeginResult.STARTED:
                won.append(k)
        for _ in range(5):
            store.put("counter", "hot", {"x": 1})

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(won) == keys  # exactly one STARTED per key
    hot = store.get("counter", "hot")
    assert hot is not None and hot.version == 30  # every plain put counted once


def test_expired_items_are_skipped_by_paged_queries(ddb: Any) -> None:
    store, clock, _ = ddb
    for i in range(30):
        store.put("q", f"a{i:02d}", {"i": i}, expires_at=clock() + 5)
    for i in range(3):
        store.put("q", f"b{i}", {"i": i})
    clock.advance(5)
    assert [i.key for i in store.query("q", limit=2)] == ["b0", "b1"]  # pages past 30 expired
    assert [i.key for i in store.query("q", limit=2, reverse=True)] == ["b2", "b1"]
    assert [i.key for i in store.query("q", "a")] == []
    assert store.put("q", "a00", {"again": True}).version == 1  # expired: starts over
    assert store.put("q", "a00", {"again": 2}).version == 2


def test_missing_table_is_a_config_error(moto_endpoint: str) -> None:
    store = DynamoStateStore(fresh_clients(moto_endpoint).dynamodb, unique("no-such-table"))
    with pytest.raises(ConfigError, match="does not exist"):
        store.get("t", "k")


# ---- (b) retries of throttling and 5xx ------------------------------------------------------
def test_throttling_and_5xx_are_retried(ddb: Any) -> None:
    store, _, _ = ddb
    store.put("t", "k", {"v": 1})
    attempts: list[int] = []

    def flaky(request: Any, **_: Any) -> AWSResponse | None:
        attempts.append(1)
        if len(attempts) == 1:
            return fake_response(500, ddb_error("InternalServerError"), "application/x-amz-json-1.0")
        if len(attempts) == 2:
            return fake_response(400, ddb_error("ThrottlingException"), "application/x-amz-json-1.0")
        return None  # the third attempt goes to the server

    store.ddb.meta.events.register("before-send.dynamodb.GetItem", flaky)
    item = store.get("t", "k")
    assert item is not None and item.data == {"v": 1}
    assert len(attempts) == 3


def test_exhausted_retries_raise_transient_error(moto_endpoint: str) -> None:
    c = fresh_clients(moto_endpoint, max_attempts=2)
    store = DynamoStateStore(c.dynamodb, unique("state"))
    attempts: list[int] = []

    def throttled(request: Any, **_: Any) -> AWSResponse:
        attempts.append(1)
        return fake_response(400, ddb_error("ProvisionedThroughputExceededException"),
                             "application/x-amz-json-1.0")

    c.dynamodb.meta.events.register("before-send.dynamodb.GetItem", throttled)
    with pytest.raises(TransientError, match="ProvisionedThroughputExceeded"):
        store.get("t", "k")
    assert len(attempts) == 2


def test_s3_slow_down_is_retried(moto_endpoint: str) -> None:
    bucket = unique("lake")
    boto_client("s3", moto_endpoint).create_bucket(Bucket=bucket)
    c = fresh_clients(moto_endpoint)
    store = S3ObjectStore(c.s3, {"raw": (bucket, "")})
    attempts: list[int] = []

    def slow_down(request: Any, **_: Any) -> AWSResponse | None:
        attempts.append(1)
        if len(attempts) == 1:
            return fake_response(503, b"<Error><Code>SlowDown</Code><Message>x</Message></Error>",
                                 "application/xml")
        return None

    c.s3.meta.events.register("before-send.s3.PutObject", slow_down)
    assert store.put("raw", "k", b"data").etag == md5(b"data")
    assert store.get("raw", "k") == b"data" and len(attempts) == 2


# ---- (c) S3 keys and zone mappings ----------------------------------------------------------
ODD = ["plus+sign.csv", "pct%2Bencoded.csv", "with space/a b.csv", "ünïcødé/日本語/🙂.bin",
       "mixed + %2B é/x y+z%20.csv", "q?x=1&y=2#frag.csv"]


def test_s3_odd_keys_round_trip_with_all_zones_in_one_bucket(moto_endpoint: str) -> None:
    bucket = unique("lake")
    s3 = boto_client("s3", moto_endpoint)
    s3.create_bucket(Bucket=bucket)
    store = S3ObjectStore(fresh_clients(moto_endpoint).s3, {z: (bucket, f"lake/{z}") for z in ZONES})
    for key in ODD:
        info = store.put("landing", key, key.encode())
        assert (info.key, info.etag, info.size) == (key, md5(key.encode()), len(key.encode()))
    assert [i.key for i in store.list("landing")] == sorted(ODD)
    for key in ODD:
        assert store.get("landing", key) == key.encode()
        assert store.head("landing", key).etag == md5(key.encode())
        assert store.copy("landing", key, "raw", key).etag == md5(key.encode())
        assert store.get_range("raw", key, 1, 4) == key.encode()[1:4]
    assert [i.key for i in store.list("raw", "ünïcødé/")] == ["ünïcødé/日本語/🙂.bin"]
    stored = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
              for o in page.get("Contents", [])]
    assert sorted(stored) == sorted([f"lake/landing/{k}" for k in ODD] + [f"lake/raw/{k}" for k in ODD])
    assert list(store.list("silver")) == []  # zones sharing a bucket stay apart
    store.delete("raw", "plus+sign.csv")
    assert not store.exists("raw", "plus+sign.csv") and store.exists("raw", "pct%2Bencoded.csv")
    assert store.scan_uri("raw", "ünïcødé/") == f"s3://{bucket}/lake/raw/ünïcødé"
    assert store.scan_uri("gold") == f"s3://{bucket}/lake/gold/"
    assert store.bucket("gold") == bucket and store.local_path("raw", "x") is None


def test_s3_put_file_move_and_missing_bucket(moto_endpoint: str, tmp_path: Path) -> None:
    bucket = unique("lake")
    boto_client("s3", moto_endpoint).create_bucket(Bucket=bucket)
    c = fresh_clients(moto_endpoint)
    store = S3ObjectStore(c.s3, {"silver": (bucket, "s/"), "gold": (unique("absent"), "")})
    src = tmp_path / "part.parquet"
    src.write_bytes(b"x" * 1000)
    assert store.put_file("silver", "t/part.parquet", src, move=True).etag == md5(b"x" * 1000)
    assert not src.exists()
    with pytest.raises(ConfigError, match="does not exist"):
        store.put("gold", "k", b"1")
    with pytest.raises(ConfigError, match="no S3 location"):
        store.get("raw", "k")
    with pytest.raises(NotFoundError):
        store.get_range("silver", "missing", 3, 3)


# ---- SQS semantics the contract compares exactly on the local backend ----------------------
def test_sqs_send_receive_delete_and_handles(sqs: QueueFactory) -> None:
    q = sqs("orders")
    before = time.time()
    mid = q.send('{"key": "a.csv"}')
    msg = receive_one(q)
    assert (msg.message_id, msg.body, msg.receive_count) == (mid, '{"key": "a.csv"}', 1)
    assert abs(msg.sent_at.timestamp() - before) < 5 and msg.sent_at.tzinfo is not None
    assert msg.attributes["SentTimestamp"] == str(round(msg.sent_at.timestamp() * 1000))
    assert "DeadLetterSourceQueue" not in msg.attributes
    assert q.counts() == QueueCounts(visible=0, in_flight=1, delayed=0)
    sqs.clock.advance(2)
    again = receive_one(q)
    assert again.receive_count == 2 and again.receipt_handle != msg.receipt_handle
    assert int(again.attributes["ApproximateFirstReceiveTimestamp"]) <= int(
        again.attributes["SentTimestamp"]) + 60_000
    with pytest.raises(NotFoundError):
        q.change_visibility("no-such-handle", 10)
    q.delete(again.receipt_handle)
    assert q.counts() == QueueCounts(0, 0, 0)
    with pytest.raises(NotFoundError):  # deleted
        q.change_visibility(again.receipt_handle, 10)
    q.delete(again.receipt_handle)  # twice is fine


def test_sqs_poison_message_moves_to_the_dlq_and_back(sqs: QueueFactory) -> None:
    q = sqs("orders", max_receive_count=2)
    dlq = q.dlq
    assert dlq is not None
    mid = q.send("poison")
    for expected in (1, 2):
        assert receive_one(q).receive_count == expected
        sqs.clock.advance(2)
    assert q.receive(10) == []  # the third receive moves it (RedrivePolicy)
    assert dlq.counts() == QueueCounts(visible=1, in_flight=0, delayed=0)
    [dead] = dlq.peek()
    assert (dead.message_id, dead.body, dead.receipt_handle) == (mid, "poison", "")
    assert dead.attributes["DeadLetterSourceQueue"] == "orders"
    assert dead.receive_count == 2  # SQS keeps the count; peek reports it as before the peek
    assert dlq.counts() == QueueCounts(visible=1, in_flight=0, delayed=0)  # released at once
    assert dlq.redrive() == 1
    back = receive_one(q)
    assert (back.message_id, back.body, back.receive_count) == (mid, "poison", 1)
    assert "DeadLetterSourceQueue" not in back.attributes
    assert dlq.counts().total == 0


def test_sqs_peek_pages_without_duplicates(sqs: QueueFactory) -> None:
    q = sqs("orders")
    ids = q.send_batch([f"a{i}" for i in range(10)]) + q.send_batch([f"b{i}" for i in range(10)])
    in_flight = receive_one(q)
    peeked = q.peek(25)
    assert sorted(m.message_id for m in peeked) == sorted(set(ids) - {in_flight.message_id})
    assert all(m.receipt_handle == "" and m.receive_count == 0 for m in peeked)
    assert q.counts() == QueueCounts(visible=19, in_flight=1, delayed=0)
    assert len(q.peek(5)) == 5 and q.peek(0) == []
    q.delete(in_flight.receipt_handle)  # peeking did not disturb the in-flight message
    assert q.counts() == QueueCounts(visible=19, in_flight=0, delayed=0)


def test_sqs_partial_batch_failure_and_purge_in_progress() -> None:
    client = boto3.client("sqs", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
    q = SqsQueue(client, "https://sqs.us-east-1.amazonaws.com/123456789012/q", name="q")
    with Stubber(client) as stub:
        stub.add_response("send_message_batch", {
            "Successful": [{"Id": "0", "MessageId": "m0", "MD5OfMessageBody": "x"}],
            "Failed": [{"Id": "1", "SenderFault": False, "Code": "InternalError", "Message": "x"}],
        })
        with pytest.raises(TransientError, match="1 of 2 batch entries"):
            q.send_batch(["a", "b"])
        stub.add_response("get_queue_attributes", {"Attributes": {
            "ApproximateNumberOfMessages": "3", "ApproximateNumberOfMessagesNotVisible": "0",
            "ApproximateNumberOfMessagesDelayed": "0"}})
        stub.add_client_error("purge_queue", "AWS.SimpleQueueService.PurgeQueueInProgress")
        with pytest.raises(TransientError, match="60 s"):
            q.purge()


# ---- the transform Lambda: a TerminalError is dead-lettered on its first receive -------------
class LambdaContext:
    """The attributes Powertools reads from a Lambda context."""

    aws_request_id = "req-1"
    function_name = "lakeline-transform"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:lakeline-transform"
    function_version = "$LATEST"


class ScriptedTransformer:
    """Stands in for the DuckDB transformer: a chunk whose key is in ``fail`` raises that error."""

    def __init__(self, fail: dict[str, Exception]) -> None:
        self.fail = fail
        self.processed: list[str] = []

    def process(self, msg: ChunkMessage) -> ChunkResult:
        self.processed.append(msg.key)
        if msg.key in self.fail:
            raise self.fail[msg.key]
        return ChunkResult(object_id=msg.object_id, chunk=msg.chunk, loaded=msg.records)


def chunk_body(key: str) -> str:
    return ChunkMessage(pipeline="shipments", bucket="landing", key=key, etag="e", object_id="o",
                        run_key="r", chunk=0, chunks=1, start=0, end=10, first_line=1,
                        records=3).to_json()


@pytest.fixture
def lambda_lake(moto_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """A provisioned lake on moto that the handlers open from the environment, as on Lambda."""
    overrides = provision(moto_endpoint, max_receive_count=3)
    for name, value in as_env(overrides).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("LAKELINE_HOME", str(tmp_path / "lambda"))
    handlers.reset()
    yield overrides
    handlers.reset()


def deliver(endpoint: str, url: str, bodies: list[str]) -> tuple[list[str], dict[str, Any]]:
    """Send ``bodies``, receive them as Lambda's poller does; returns their ids and the event."""
    sqs = boto_client("sqs", endpoint)
    ids = [sqs.send_message(QueueUrl=url, MessageBody=b)["MessageId"] for b in bodies]
    got: list[dict[str, Any]] = []
    while len(got) < len(bodies):
        got += sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                                   AttributeNames=["All"]).get("Messages", [])
    assert sorted(m["MessageId"] for m in got) == sorted(ids)
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    got.sort(key=lambda m: ids.index(m["MessageId"]))
    return ids, {"Records": [{
        "messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
        "attributes": m.get("Attributes", {}), "messageAttributes": {}, "md5OfBody": m["MD5OfBody"],
        "eventSource": "aws:sqs", "eventSourceARN": arn, "awsRegion": REGION,
    } for m in got]}


def test_transform_handler_dead_letters_terminal_errors_and_reports_the_rest(
    lambda_lake: dict[str, Any], moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = ScriptedTransformer({"flaky.jsonl": TransientError("throttled"),
                                "bad.jsonl": DataError("bad.jsonl: unusable")})
    monkeypatch.setattr(handlers, "transformer", lambda: fake)
    # the deferred message stays delayed while the test looks (the default 1 s passes on a busy machine)
    monkeypatch.setenv("LAKELINE__QUEUE__RETRY_DELAY", "120")
    url = lambda_lake["aws.transform_queue_url"]
    bodies = ["not json", chunk_body("good.jsonl"), chunk_body("flaky.jsonl"), chunk_body("bad.jsonl")]
    ids, event = deliver(moto_endpoint, url, bodies)
    with pytest.raises(MessageError) as raised:
        ChunkMessage.from_json("not json")

    response = handlers.transform_handler(event, LambdaContext())

    # no batch item failure: the terminal ones are dead-lettered, the transient one deferred
    assert response == {"batchItemFailures": []}
    assert fake.processed == ["good.jsonl", "flaky.jsonl", "bad.jsonl"]
    lake = handlers.lake()
    queue, dlq = lake.transform_queue, lake.transform_queue.dlq
    assert dlq is not None
    # good is in flight (Lambda deletes it); flaky was re-sent uncharged, with a delay
    assert queue.counts() == QueueCounts(visible=0, in_flight=1, delayed=1)
    for record in event["Records"]:  # Lambda deletes what was not reported as failed
        queue.delete(record["receiptHandle"])
    assert queue.counts() == QueueCounts(visible=0, in_flight=0, delayed=1)
    dead = {m.message_id: m for m in dlq.receive(10)}
    assert sorted(dead) == sorted([ids[0], ids[3]])
    assert dead[ids[0]].body == "not json"
    assert dead[ids[0]].attributes[DEAD_LETTER_REASON] == f"MessageError: {raised.value}"
    assert dead[ids[3]].body == bodies[3]
    assert dead[ids[3]].attributes[DEAD_LETTER_REASON] == "DataError: bad.jsonl: unusable"
    assert {m.attributes["DeadLetterSourceQueue"] for m in dead.values()} == {"transform"}
    assert all(m.receive_count == 1 for m in dead.values())  # the DLQ copies were never received before


def test_a_transient_fault_in_the_transform_handler_defers_uncharged_until_the_time_limit(
    lambda_lake: dict[str, Any], moto_endpoint: str, monkeypatch: pytest.MonkeyPatch, fault: Any
) -> None:
    fault("Lambda transform handler: a throttled call (transient) on every try",
          expected="re-sent with a growing delay and receive count 1 (never charged) while within "
                   "queue.transient_give_up_after; after it, a batch item failure (the redrive policy decides)")
    fake = ScriptedTransformer({"flaky.jsonl": TransientError("S3 GetObject: SlowDown")})
    monkeypatch.setattr(handlers, "transformer", lambda: fake)
    monkeypatch.setenv("LAKELINE__QUEUE__RETRY_DELAY", "0")
    monkeypatch.setenv("LAKELINE__QUEUE__TRANSIENT_BACKOFF_MAX", "1")  # 1 s delays: a quick test
    url = lambda_lake["aws.transform_queue_url"]
    sqs = boto_client("sqs", moto_endpoint)
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    ids, event = deliver(moto_endpoint, url, [chunk_body("flaky.jsonl")])
    seen: list[tuple[int, str, str]] = []
    for _ in range(4):  # more tries than maxReceiveCount (3)
        assert handlers.transform_handler(event, LambdaContext()) == {"batchItemFailures": []}
        got: list[dict[str, Any]] = []
        for _ in range(40):
            got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, AttributeNames=["All"],
                                      MessageAttributeNames=["All"], WaitTimeSeconds=1).get("Messages", [])
            if got:
                break
        [m] = got
        attrs = m["MessageAttributes"]
        seen.append((int(m["Attributes"]["ApproximateReceiveCount"]), attrs["LakelineMessageId"]["StringValue"],
                     attrs["LakelineDeferrals"]["StringValue"]))
        event = {"Records": [{"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
                              "attributes": m["Attributes"], "md5OfBody": m["MD5OfBody"],
                              "messageAttributes": {k: {"stringValue": v["StringValue"], "dataType": "String"}
                                                    for k, v in attrs.items()},
                              "eventSource": "aws:sqs", "eventSourceARN": arn, "awsRegion": REGION}]}
    monkeypatch.setenv("LAKELINE__QUEUE__TRANSIENT_GIVE_UP_AFTER", "0")
    handlers.reset()
    monkeypatch.setattr(handlers, "transformer", lambda: fake)
    time.sleep(1.1)
    last = handlers.transform_handler(event, LambdaContext())
    fault.saw(f"(receive count, id, deferrals) per try {seen}; after the limit {last}")
    assert seen == [(1, ids[0], "1"), (1, ids[0], "2"), (1, ids[0], "3"), (1, ids[0], "4")]
    assert last == {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]}


def test_transform_handler_reports_a_terminal_record_it_could_not_dead_letter(
    lambda_lake: dict[str, Any], moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(self: SqsQueue, message: Message, reason: str) -> None:
        raise TransientError("SQS SendMessage transform-dlq: ThrottlingException")

    monkeypatch.setattr(SqsQueue, "dead_letter", refuse)
    url = lambda_lake["aws.transform_queue_url"]
    ids, event = deliver(moto_endpoint, url, ["not json"])
    response = handlers.transform_handler(event, LambdaContext())
    # left to the redrive policy: a batch item failure, redelivered
    assert response == {"batchItemFailures": [{"itemIdentifier": ids[0]}]}
    lake = handlers.lake()
    assert lake.transform_queue.counts() == QueueCounts(visible=0, in_flight=1, delayed=0)
    assert lake.transform_queue.dlq is not None
    assert lake.transform_queue.dlq.counts() == QueueCounts(0, 0, 0)


# ---- SSM, SNS, session ----------------------------------------------------------------------
def test_ssm_names_values_and_prefixes(moto_endpoint: str) -> None:
    c = fresh_clients(moto_endpoint)
    a = SsmParameterStore(c.ssm, prefix="/" + unique("a"))
    b = SsmParameterStore(c.ssm, prefix="/" + unique("b"))
    assert a.put("/w/unicode", "værdi ✓\nline 2") == 1
    assert a.get("/w/unicode") == "værdi ✓\nline 2"
    assert a.get_by_path("/w") == {"/w/unicode": "værdi ✓\nline 2"}
    stored = boto_client("ssm", moto_endpoint).get_parameter(Name=f"{a.prefix}/w/unicode")
    assert stored["Parameter"]["Value"] == "værdi ✓\nline 2"
    assert b.get("/w/unicode") is None and b.get_by_path("/") == {}  # prefixes isolate
    for store, bad in [(a, "/données/été"), (a, "/with space"), (a, "/x/" + "y/" * 15 + "z"),
                       (SsmParameterStore(c.ssm), "/aws/x"), (SsmParameterStore(c.ssm), "/SSM-x")]:
        with pytest.raises(UsageError):
            store.put(bad, "1")
    with pytest.raises(UsageError, match="1..4096"):
        a.put("/empty", "")


def test_sns_publish_subject_attributes_and_log(moto_endpoint: str,
                                                caplog: pytest.LogCaptureFixture) -> None:
    sns, sqs_client = boto_client("sns", moto_endpoint), boto_client("sqs", moto_endpoint)
    arn = sns.create_topic(Name=unique("notify"))["TopicArn"]
    url = sqs_client.create_queue(QueueName=unique("sub"))["QueueUrl"]
    qarn = sqs_client.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=qarn["Attributes"]["QueueArn"])
    notifier = SnsNotifier(fresh_clients(moto_endpoint).sns, arn)
    subject = "Échec: lot\nrejeté — " + "x" * 150
    attrs = {"queue": "ingest-dlq", "n": 3, "bad name!": "x", "empty": ""}
    with caplog.at_level(logging.INFO, logger="lakeline.notify"):
        note = notifier.notify(subject, "body ✓", attrs)
    assert (note.subject, note.message, note.attributes) == (subject, "body ✓", attrs)
    [raw] = sqs_client.receive_message(QueueUrl=url, WaitTimeSeconds=1)["Messages"]
    envelope = json.loads(raw["Body"])
    assert (envelope["MessageId"], envelope["Message"]) == (note.message_id, "body ✓")
    sent = envelope["Subject"]
    assert sent.isascii() and len(sent) <= 100 and sent.startswith("Echec: lot rejete xxx")
    assert envelope["MessageAttributes"] == {
        "queue": {"Type": "String", "Value": "ingest-dlq"}, "n": {"Type": "String", "Value": "3"}}
    [record] = [r for r in caplog.records if r.name == "lakeline.notify"]
    logged = json.loads(record.getMessage())
    assert (logged["message_id"], logged["subject"], logged["topic_arn"]) == (note.message_id, subject, arn)
    assert notifier.sent() == [note]


def test_parse_s3_uri_and_clients() -> None:
    assert parse_s3_uri("s3://b/p/q/") == ("b", "p/q/")
    assert parse_s3_uri("s3://b/p") == ("b", "p/")
    assert parse_s3_uri("s3://b") == parse_s3_uri("s3://b/") == ("b", "")
    for bad in ["b/p", "s3:///p", "http://b/p", "s3://b/x//y"]:
        with pytest.raises(ConfigError):
            parse_s3_uri(bad)
    c = clients(AwsSettings(region="eu-west-1", endpoint_url="http://127.0.0.1:9", max_attempts=7))
    assert c.s3 is c.s3  # created once, on first use
    assert c.sqs.meta.config.retries == {"mode": "standard", "total_max_attempts": 7}
    assert (c.sqs.meta.region_name, c.sqs.meta.endpoint_url) == ("eu-west-1", "http://127.0.0.1:9")
    assert c.s3.meta.config.s3 == {"addressing_style": "path"}
    real = clients(AwsSettings(region="us-west-2"))
    assert real.dynamodb.meta.endpoint_url == "https://dynamodb.us-west-2.amazonaws.com"
