"""S3 / EventBridge object-created events: shapes, URL-encoded keys, test events."""

from __future__ import annotations

import pytest

from lakeline.errors import MessageError
from lakeline.events import parse_events, s3_event


@pytest.mark.parametrize("key", ["a/b.jsonl", "sp ace/x+y.json", "pct/%2B.json", "données/été 2024.jsonl"])
def test_s3_event_round_trips_keys_exactly(key):
    event = s3_event("landing", key, 12, "abc")
    raw_key = event["Records"][0]["s3"]["object"]["key"]
    assert " " not in raw_key  # URL-encoded as S3 does (spaces become '+')
    [parsed] = parse_events(event)
    assert (parsed.bucket, parsed.key, parsed.size, parsed.etag) == ("landing", key, 12, "abc")


def test_aws_shaped_record_with_quoted_etag_and_plus_for_space():
    event = {"Records": [{"eventName": "ObjectCreated:Put", "eventTime": "2026-01-01T00:00:00.000Z",
                          "s3": {"bucket": {"name": "b"}, "object": {
                              "key": "dir/my+file%2B1.json", "size": 5, "eTag": '"e1"', "sequencer": "0A"}}}]}
    [parsed] = parse_events(event)
    assert (parsed.key, parsed.etag, parsed.sequencer) == ("dir/my file+1.json", "e1", "0A")


def test_test_event_and_removals_are_ignored():
    assert parse_events({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "b"}) == []
    removed = {"Records": [{"eventName": "ObjectRemoved:Delete", "s3": {"bucket": {"name": "b"}, "object": {"key": "k"}}}]}
    assert parse_events(removed) == []


def test_eventbridge_object_created():
    event = {"detail-type": "Object Created", "time": "2026-01-01T00:00:00Z",
             "detail": {"bucket": {"name": "b"}, "object": {"key": "raw key.json", "size": 3, "etag": "e"},
                        "reason": "PutObject"}}
    [parsed] = parse_events(event)
    assert (parsed.bucket, parsed.key, parsed.size, parsed.etag) == ("b", "raw key.json", 3, "e")


@pytest.mark.parametrize("event", [{"nothing": 1}, {"Records": [{"eventName": "ObjectCreated:Put"}]}, []])
def test_malformed_events_raise_message_error(event):
    with pytest.raises(MessageError):
        parse_events(event)
