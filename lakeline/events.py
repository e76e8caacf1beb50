"""Object-created events in the S3 notification shape.

``put`` emits exactly what S3 would send to a Lambda, so the ingest stage handles local and
AWS events with one parser. Also accepted: the EventBridge "Object Created" shape and the
``s3:TestEvent`` S3 sends when a notification is configured (ignored: it has no Records).
Keys in S3 events are URL-encoded with ``+`` for spaces; :func:`parse_events` decodes them
with ``unquote_plus``. Duplicated and out-of-order events are expected; idempotency on
``bucket/key#etag`` makes them harmless.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote_plus, unquote_plus

from lakeline.errors import MessageError


@dataclass(frozen=True)
class ObjectCreated:
    """One object-created notification, decoded."""

    bucket: str
    key: str
    size: int
    etag: str
    sequencer: str
    event_time: str
    event_name: str = "ObjectCreated:Put"


def s3_event(bucket: str, key: str, size: int, etag: str, *, region: str = "local") -> dict[str, Any]:
    """Build the S3 notification (``Records`` shape) for one created object."""
    now = datetime.now(UTC)
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": region,
                "eventTime": now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z",
                "eventName": "ObjectCreated:Put",
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
                    "object": {
                        "key": quote_plus(key, safe="/"),
                        "size": size,
                        "eTag": etag,
                        "sequencer": f"{time.time_ns():016X}",
                    },
                },
            }
        ]
    }


def parse_events(event: dict[str, Any]) -> list[ObjectCreated]:
    """Decode an S3 notification, an EventBridge Object Created event, or a test event.

    Non-create records (e.g. ``ObjectRemoved:*``) are ignored; a malformed event raises
    :class:`MessageError` naming what is missing.
    """
    if not isinstance(event, dict):
        raise MessageError("event must be a JSON object")
    if event.get("Event") == "s3:TestEvent":
        return []
    if event.get("detail-type") == "Object Created" and "detail" in event:
        detail = event["detail"]
        try:
            return [
                ObjectCreated(
                    bucket=str(detail["bucket"]["name"]),
                    key=str(detail["object"]["key"]),  # EventBridge keys are not URL-encoded
                    size=int(detail["object"].get("size", 0)),
                    etag=str(detail["object"].get("etag", "")).strip('"'),
                    sequencer=str(detail["object"].get("sequencer", "")),
                    event_time=str(event.get("time", "")),
                    event_name="ObjectCreated:" + str(detail.get("reason", "PutObject")),
                )
            ]
        except (KeyError, TypeError) as exc:
            raise MessageError(f"EventBridge Object Created event is missing {exc}") from None
    records = event.get("Records")
    if records is None:
        raise MessageError("not an S3 event: no 'Records' (and not s3:TestEvent or EventBridge)")
    out: list[ObjectCreated] = []
    for i, record in enumerate(records):
        try:
            name = str(record["eventName"])
            if not name.startswith("ObjectCreated:"):
                continue
            obj = record["s3"]["object"]
            out.append(
                ObjectCreated(
                    bucket=str(record["s3"]["bucket"]["name"]),
                    key=unquote_plus(str(obj["key"])),
                    size=int(obj.get("size", 0)),
                    etag=str(obj.get("eTag", "")).strip('"'),
                    sequencer=str(obj.get("sequencer", "")),
                    event_time=str(record.get("eventTime", "")),
                    event_name=name,
                )
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise MessageError(f"S3 event record {i} is missing or has a bad {exc}") from None
    return out
