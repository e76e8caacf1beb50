"""SQS queue: the Queue port on an SQS standard queue, its DLQ via the RedrivePolicy.

SQS itself implements visibility timeouts, receive counts, delays, retention and the move to
the dead-letter queue (the queue's ``RedrivePolicy.maxReceiveCount``, configured by whoever
creates the queue — the deploy template or a test fixture). Differences from the local
backend, all inherent to SQS:

* **peek** — SQS cannot look at messages without receiving them. :meth:`SqsQueue.peek`
  receives them (hidden for :data:`PEEK_HIDE_SECONDS` while it pages), then makes them
  visible again at once. Each peek therefore counts as one receive (the returned
  ``receive_count`` is the count before the peek) and in-flight messages are not seen. Peek
  DLQs, never a live source queue: there the extra receives count towards its
  ``maxReceiveCount``.
* **redrive** — messages are received from the DLQ, sent to the source queue and deleted
  from the DLQ (at least once: a crash in between leaves a duplicate). SQS gives the re-sent
  message a new id; the original id travels in the message attribute
  :data:`ORIGINAL_ID_ATTRIBUTE` and is reported as ``message_id``, so a message keeps its id
  across redrives as on the local backend.
* **dead_letter** — SQS has no "move to DLQ now": :meth:`SqsQueue.dead_letter` checks the
  receipt handle (ChangeMessageVisibility), sends the body to the DLQ with the reason, the
  source queue and the original id as message attributes, then deletes the original. Send
  first, delete second: a crash in between leaves a duplicate in the DLQ, never a loss.
* **receive counts** are not reset when SQS moves a message to the DLQ.
* **defer** — SQS cannot undo a receive: :meth:`SqsQueue.defer` re-sends the body with a
  delay and the original id, then deletes the received copy (a new message, receive count 0).
* **stale receipt handles** — SQS may act on an older receipt handle of a message.
* **counts** are approximate (eventually consistent, as the names say); a purge takes up to
  60 s and only one purge per queue per 60 s is allowed (:class:`TransientError` otherwise).
* **long polls** — ``wait_seconds`` is rounded up to whole seconds (SQS takes integers).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from lakeline.adapters.aws.session import error_code, translate_errors
from lakeline.errors import NotFoundError, TransientError, UsageError
from lakeline.ports.queue import (
    DEAD_LETTER_REASON,
    MAX_BATCH,
    Message,
    Queue,
    QueueCounts,
    body_size,
    check_batch,
    check_range,
    dead_letter_reason,
)

MAX_DELAY_SECONDS = 900
MAX_VISIBILITY_TIMEOUT = 43_200
MAX_WAIT_SECONDS = 20
#: How long :meth:`SqsQueue.peek` and :meth:`SqsQueue.redrive` hide what they received.
PEEK_HIDE_SECONDS = 30
#: Message attribute carrying a redriven message's original id.
ORIGINAL_ID_ATTRIBUTE = "LakelineMessageId"
#: Message attributes :meth:`SqsQueue.defer` sets on the re-sent copy: how many times the
#: message was deferred, and when first (epoch milliseconds). A stateless consumer (the Lambda
#: transform handler) reads them from :attr:`Message.attributes` to grow its backoff and to stop
#: deferring after a limit of time.
DEFERRALS_ATTRIBUTE = "LakelineDeferrals"
DEFERRED_SINCE_ATTRIBUTE = "LakelineDeferredSince"
_CARRIED = (DEFERRALS_ATTRIBUTE, DEFERRED_SINCE_ATTRIBUTE)
#: Message attributes :meth:`SqsQueue.dead_letter` sets on the DLQ copy: why, and from where.
REASON_ATTRIBUTE = "LakelineDeadLetterReason"
SOURCE_ATTRIBUTE = "LakelineDeadLetterSource"
logger = logging.getLogger(__name__)
_SYSTEM_ATTRIBUTES = [
    "SentTimestamp",
    "ApproximateReceiveCount",
    "ApproximateFirstReceiveTimestamp",
    "DeadLetterQueueSourceArn",
]
#: Characters outside SQS's set (#x9 | #xA | #xD | #x20-#xD7FF | #xE000-#xFFFD | #x10000-#x10FFFF).
_INVALID_HANDLE = frozenset({"ReceiptHandleIsInvalid", "AWS.SimpleQueueService.MessageNotInflight",
                             "MessageNotInflight"})


def _bad_handle(code: str, message: str) -> bool:
    """True when SQS refused a receipt handle (unknown, deleted or not in flight)."""
    if code in _INVALID_HANDLE:
        return True
    # SQS: "Value ... for parameter ReceiptHandle is invalid. Reason: Message does not exist
    # or is not available for visibility timeout change."
    return code == "InvalidParameterValue" and "ReceiptHandle" in message


def _error_message(exc: Exception) -> str:
    return str(getattr(exc, "response", {}).get("Error", {}).get("Message", ""))


def _name_from_url(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]


def _string_attribute(value: str) -> dict[str, str]:
    return {"DataType": "String", "StringValue": value}


def deferrals(message: Message) -> int:
    """How many times ``message`` was deferred (:meth:`SqsQueue.defer`) before this receive."""
    try:
        return int(message.attributes.get(DEFERRALS_ATTRIBUTE, "0"))
    except ValueError:
        return 0


def deferred_for(message: Message, now: float | None = None) -> float:
    """Seconds since ``message`` was first deferred (0 when it never was)."""
    try:
        since = int(message.attributes[DEFERRED_SINCE_ATTRIBUTE]) / 1000
    except (KeyError, ValueError):
        return 0.0
    return max(0.0, (time.time() if now is None else now) - since)


def lambda_record_message(record: Mapping[str, Any]) -> Message:
    """The :class:`Message` of one record of a Lambda SQS event (what the event source mapping
    received), so a handler can pass it to :meth:`SqsQueue.dead_letter`.

    Like :meth:`SqsQueue.receive`, a redriven message reports its original id.
    """
    attrs = record.get("attributes") or {}
    user = record.get("messageAttributes") or {}
    original = (user.get(ORIGINAL_ID_ATTRIBUTE) or {}).get("stringValue")
    count = int(attrs.get("ApproximateReceiveCount", "1"))
    sent_ms = int(attrs.get("SentTimestamp", "0"))
    attributes = {"SentTimestamp": str(sent_ms), "ApproximateReceiveCount": str(count)}
    if "ApproximateFirstReceiveTimestamp" in attrs:
        attributes["ApproximateFirstReceiveTimestamp"] = str(attrs["ApproximateFirstReceiveTimestamp"])
    for name in _CARRIED:
        if name in user:
            attributes[name] = str(user[name].get("stringValue"))
    return Message(
        message_id=str(original or record["messageId"]),
        receipt_handle=str(record["receiptHandle"]),
        body=str(record["body"]),
        receive_count=count,
        sent_at=datetime.fromtimestamp(sent_ms / 1000, tz=UTC),
        attributes=attributes,
    )


class SqsQueue(Queue):
    """:class:`Queue` on the SQS queue at ``queue_url``; ``name`` is its logical name.

    ``dlq`` is the queue's dead-letter queue (SQS moves poison messages there by itself);
    building a queue with a ``dlq`` tells that DLQ its source's logical name and, unless
    given, its ``source_url``. ``source_url`` marks this queue as a DLQ and is where
    :meth:`redrive` sends messages. The constructor makes no API call.
    """

    dlq: SqsQueue | None

    def __init__(
        self,
        sqs_client: Any,
        queue_url: str,
        *,
        name: str,
        dlq: SqsQueue | None = None,
        source_url: str | None = None,
    ) -> None:
        if not queue_url:
            raise UsageError(f"queue {name!r} has no SQS queue URL")
        self.sqs = sqs_client
        self.url = queue_url
        self.name = name
        self.dlq = dlq
        self.source_url = source_url
        self.source_name: str | None = None
        if dlq is not None:
            dlq.source_name = dlq.source_name or name
            dlq.source_url = dlq.source_url or queue_url
        members = sqs_client.meta.service_model.operation_model("ReceiveMessage").input_shape.members
        # MessageSystemAttributeNames replaced the deprecated AttributeNames (botocore 1.34.x).
        self._attr_param = (
            "MessageSystemAttributeNames" if "MessageSystemAttributeNames" in members
            else "AttributeNames"
        )

    def __repr__(self) -> str:
        return f"SqsQueue({self.name!r}, {self.url!r})"

    # -- sending ----------------------------------------------------------------------------

    def send(self, body: str, *, delay_seconds: int = 0) -> str:
        """SendMessage (visible after ``delay_seconds``, 0..900); returns the message id."""
        check_range("delay_seconds", delay_seconds, 0, MAX_DELAY_SECONDS)
        body_size(body)
        with translate_errors(f"SQS SendMessage {self.name}"):
            resp = self.sqs.send_message(
                QueueUrl=self.url, MessageBody=body, DelaySeconds=int(delay_seconds)
            )
        return str(resp["MessageId"])

    def send_batch(self, bodies: Sequence[str]) -> list[str]:
        """SendMessageBatch of 1..10 bodies; returns their ids in order. Raises
        :class:`TransientError` naming the entries SQS did not accept (the others were sent)."""
        check_batch(bodies)
        entries = [{"Id": str(i), "MessageBody": body} for i, body in enumerate(bodies)]
        return self._send_entries(entries)

    def _send_entries(self, entries: list[dict[str, Any]]) -> list[str]:
        with translate_errors(f"SQS SendMessageBatch {self.name}"):
            resp = self.sqs.send_message_batch(QueueUrl=self.url, Entries=entries)
        failed = resp.get("Failed") or []
        if failed:
            detail = "; ".join(f"#{f['Id']}: {f.get('Code')} {f.get('Message', '')}" for f in failed)
            raise TransientError(
                f"queue {self.name!r}: {len(failed)} of {len(entries)} batch entries not sent"
                f" ({detail})"
            )
        ids = {ok["Id"]: str(ok["MessageId"]) for ok in resp.get("Successful", [])}
        return [ids[e["Id"]] for e in entries]

    # -- receiving --------------------------------------------------------------------------

    def _receive_raw(self, max_messages: int, visibility_timeout: int | None,
                     wait_seconds: int) -> list[dict[str, Any]]:
        kwargs: dict[str, Any] = {
            "QueueUrl": self.url,
            "MaxNumberOfMessages": max_messages,
            "WaitTimeSeconds": wait_seconds,
            self._attr_param: _SYSTEM_ATTRIBUTES,
            "MessageAttributeNames": ["All"],
        }
        if visibility_timeout is not None:
            kwargs["VisibilityTimeout"] = visibility_timeout
        with translate_errors(f"SQS ReceiveMessage {self.name}"):
            resp = self.sqs.receive_message(**kwargs)
        return list(resp.get("Messages") or [])

    def receive(
        self,
        max_messages: int = 1,
        *,
        visibility_timeout: int | None = None,
        wait_seconds: float = 0,
    ) -> list[Message]:
        """ReceiveMessage: up to ``max_messages`` (1..10); ``visibility_timeout`` defaults to
        the queue's; ``wait_seconds`` (0..20, rounded up) long-polls."""
        check_range("max_messages", max_messages, 1, MAX_BATCH)
        check_range("wait_seconds", wait_seconds, 0, MAX_WAIT_SECONDS)
        if visibility_timeout is not None:
            check_range("visibility_timeout", visibility_timeout, 0, MAX_VISIBILITY_TIMEOUT)
        raw = self._receive_raw(max_messages, visibility_timeout, math.ceil(wait_seconds))
        return [self._message(m) for m in raw]

    def _message(self, raw: dict[str, Any], *, handle: str | None = None,
                 count_offset: int = 0) -> Message:
        attrs = dict(raw.get("Attributes") or {})
        count = max(int(attrs.get("ApproximateReceiveCount", "1")) - count_offset, 0)
        sent_ms = int(attrs.get("SentTimestamp", "0"))
        attributes = {"SentTimestamp": str(sent_ms), "ApproximateReceiveCount": str(count)}
        if "ApproximateFirstReceiveTimestamp" in attrs:
            attributes["ApproximateFirstReceiveTimestamp"] = attrs["ApproximateFirstReceiveTimestamp"]
        user = raw.get("MessageAttributes") or {}
        source = user.get(SOURCE_ATTRIBUTE, {}).get("StringValue") or self._dead_letter_source(
            attrs.get("DeadLetterQueueSourceArn")
        )
        if source is not None:
            attributes["DeadLetterSourceQueue"] = source
        reason = user.get(REASON_ATTRIBUTE, {}).get("StringValue")
        if reason is not None:
            attributes[DEAD_LETTER_REASON] = reason
        for name in _CARRIED:
            if name in user:
                attributes[name] = str(user[name].get("StringValue"))
        original = user.get(ORIGINAL_ID_ATTRIBUTE, {}).get("StringValue")
        return Message(
            message_id=str(original or raw["MessageId"]),
            receipt_handle=raw["ReceiptHandle"] if handle is None else handle,
            body=str(raw["Body"]),
            receive_count=count,
            sent_at=datetime.fromtimestamp(sent_ms / 1000, tz=UTC),
            attributes=attributes,
        )

    def _dead_letter_source(self, arn: str | None) -> str | None:
        """The logical name of the queue a dead letter came from (None if not a DLQ)."""
        source_queue = self.source_name or (
            _name_from_url(self.source_url) if self.source_url else None
        )
        if arn:
            arn_name = arn.rsplit(":", 1)[-1]
            if self.source_url and arn_name == _name_from_url(self.source_url):
                return source_queue
            return arn_name
        # Emulators (moto) omit DeadLetterQueueSourceArn; a lakeline DLQ serves one queue.
        return source_queue

    # -- received messages ------------------------------------------------------------------

    def delete(self, receipt_handle: str) -> None:
        """DeleteMessage; an invalid or foreign receipt handle is ignored."""
        from botocore.exceptions import ClientError

        try:
            with translate_errors(f"SQS DeleteMessage {self.name}"):
                self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=receipt_handle)
        except ClientError as exc:
            if not _bad_handle(error_code(exc), _error_message(exc)):
                raise

    def dead_letter(self, message: Message, reason: str) -> None:
        """Move a received message to the DLQ now (see :meth:`Queue.dead_letter`).

        Three calls, in this order: ChangeMessageVisibility checks the receipt handle (an
        invalid one, or a deleted message's, is ignored as by :meth:`delete`, so a stale
        handle never puts a copy in the DLQ) and hides the message for
        :data:`PEEK_HIDE_SECONDS` while it moves; SendMessage puts the body on the DLQ with
        the reason, the source queue and the original message id as message attributes;
        DeleteMessage removes the original. Send first, delete second — at least once: a
        crash between the two leaves the message in both queues (a duplicate, never a loss),
        and a failed send leaves it in the source queue, visible again when the hide runs out.
        SQS gives the DLQ copy a new id and its own SentTimestamp; :meth:`receive` and
        :meth:`peek` report the original id, as after :meth:`redrive`.
        """

        if self.dlq is None:
            raise UsageError(f"queue {self.name!r} has no dead-letter queue")
        text = dead_letter_reason(reason)
        try:
            self.change_visibility(message.receipt_handle, PEEK_HIDE_SECONDS)
        except NotFoundError:
            logger.info("queue %s: message %s not dead-lettered: its receipt handle is no longer"
                        " current", self.name, message.message_id)
            return
        attributes = {
            ORIGINAL_ID_ATTRIBUTE: _string_attribute(message.message_id),
            REASON_ATTRIBUTE: _string_attribute(text),
            SOURCE_ATTRIBUTE: _string_attribute(self.name),
        }
        with translate_errors(f"SQS SendMessage {self.dlq.name}"):
            self.dlq.sqs.send_message(
                QueueUrl=self.dlq.url, MessageBody=message.body, MessageAttributes=attributes
            )
        # a stale handle here (the hide ran out and another consumer received it) leaves the
        # copy in the DLQ: a duplicate
        self._delete_copied(message, "sent to the DLQ")

    def defer(self, message: Message, delay_seconds: int) -> None:
        """Put a received message back uncharged, visible after ``delay_seconds`` (0..900; see
        :meth:`Queue.defer`).

        SQS cannot undo a receive, so the message is re-sent: SendMessage of the same body
        with ``DelaySeconds`` and the original id (:data:`ORIGINAL_ID_ATTRIBUTE`), then
        DeleteMessage of the received copy; the copy counts its deferrals and keeps the time of
        the first (:data:`DEFERRALS_ATTRIBUTE`, :data:`DEFERRED_SINCE_ATTRIBUTE`). Send first,
        delete second — at least once: a crash in between leaves two copies (processing is
        idempotent), never none. The new copy starts at receive count 0, so earlier charged
        receives are forgotten too. A stale receipt handle is checked first
        (ChangeMessageVisibility) and ignored.
        """

        check_range("delay_seconds", delay_seconds, 0, MAX_DELAY_SECONDS)
        try:
            self.change_visibility(message.receipt_handle, PEEK_HIDE_SECONDS)
        except NotFoundError:
            logger.info("queue %s: message %s not deferred: its receipt handle is no longer current",
                        self.name, message.message_id)
            return
        since = message.attributes.get(DEFERRED_SINCE_ATTRIBUTE) or str(int(time.time() * 1000))
        attributes = {ORIGINAL_ID_ATTRIBUTE: _string_attribute(message.message_id),
                      DEFERRALS_ATTRIBUTE: _string_attribute(str(deferrals(message) + 1)),
                      DEFERRED_SINCE_ATTRIBUTE: _string_attribute(since)}
        with translate_errors(f"SQS SendMessage {self.name}"):
            self.sqs.send_message(QueueUrl=self.url, MessageBody=message.body,
                                  DelaySeconds=int(delay_seconds), MessageAttributes=attributes)
        self._delete_copied(message, "re-sent")

    def _delete_copied(self, message: Message, copied: str) -> None:
        """Delete a received message whose copy was just sent elsewhere; a handle that went
        stale after the check is logged (the copy stays: a duplicate, never a loss)."""
        from botocore.exceptions import ClientError

        try:
            with translate_errors(f"SQS DeleteMessage {self.name}"):
                self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=message.receipt_handle)
        except ClientError as exc:
            if not _bad_handle(error_code(exc), _error_message(exc)):
                raise
            logger.warning("queue %s: message %s was %s but not deleted: %s",
                           self.name, message.message_id, copied, exc)

    def change_visibility(self, receipt_handle: str, timeout: int) -> None:
        """ChangeMessageVisibility to ``timeout`` (0..43200) seconds from now; an invalid
        handle or a message no longer in flight raises :class:`NotFoundError`."""
        from botocore.exceptions import ClientError

        check_range("timeout", timeout, 0, MAX_VISIBILITY_TIMEOUT)
        try:
            with translate_errors(f"SQS ChangeMessageVisibility {self.name}"):
                self.sqs.change_message_visibility(
                    QueueUrl=self.url, ReceiptHandle=receipt_handle, VisibilityTimeout=int(timeout)
                )
        except ClientError as exc:
            if _bad_handle(error_code(exc), _error_message(exc)):
                raise NotFoundError(
                    f"queue {self.name!r}: receipt handle {receipt_handle!r} is not the current"
                    f" handle of an in-flight message ({error_code(exc)})"
                ) from exc
            raise

    # -- inspection and administration ------------------------------------------------------

    def counts(self) -> QueueCounts:
        """ApproximateNumberOfMessages / ...NotVisible / ...Delayed."""
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
                 "ApproximateNumberOfMessagesDelayed"]
        with translate_errors(f"SQS GetQueueAttributes {self.name}"):
            attrs = self.sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=names)
        values = attrs.get("Attributes", {})
        visible, in_flight, delayed = (int(values.get(n, 0)) for n in names)
        return QueueCounts(visible=visible, in_flight=in_flight, delayed=delayed)

    def purge(self) -> int:
        """PurgeQueue; returns the (approximate) number of messages it held. An empty queue
        is not purged at all (SQS allows one purge per 60 s)."""
        from botocore.exceptions import ClientError

        total = self.counts().total
        if total == 0:
            return 0
        try:
            with translate_errors(f"SQS PurgeQueue {self.name}"):
                self.sqs.purge_queue(QueueUrl=self.url)
        except ClientError as exc:
            if error_code(exc) in {"AWS.SimpleQueueService.PurgeQueueInProgress",
                                   "PurgeQueueInProgress"}:
                raise TransientError(
                    f"queue {self.name!r} was purged less than 60 s ago; try again later"
                ) from exc
            raise
        return total

    def _release(self, handles: list[str]) -> None:
        """Make received messages visible again at once. Best effort: if this fails they
        reappear when their :data:`PEEK_HIDE_SECONDS` run out."""
        from botocore.exceptions import BotoCoreError, ClientError

        for start in range(0, len(handles), MAX_BATCH):
            entries = [{"Id": str(i), "ReceiptHandle": h, "VisibilityTimeout": 0}
                       for i, h in enumerate(handles[start:start + MAX_BATCH])]
            try:
                self.sqs.change_message_visibility_batch(QueueUrl=self.url, Entries=entries)
            except (BotoCoreError, ClientError) as exc:
                logger.warning("queue %s: %d peeked messages stay hidden for up to %d s: %s",
                               self.name, len(entries), PEEK_HIDE_SECONDS, exc)

    def peek(self, limit: int = 10) -> list[Message]:
        """Up to ``limit`` visible messages with an empty ``receipt_handle``.

        SQS has no peek: the messages are received (hidden for :data:`PEEK_HIDE_SECONDS`
        while paging, so no message is returned twice), then made visible again at once. The
        reported ``receive_count`` is the count before this peek, but SQS counts the peek as
        a receive. In-flight messages cannot be seen.
        """
        if limit < 0:
            raise UsageError(f"limit must be >= 0, got {limit}")
        found: list[Message] = []
        handles: list[str] = []
        try:
            while len(found) < limit:
                raw = self._receive_raw(min(MAX_BATCH, limit - len(found)), PEEK_HIDE_SECONDS, 1)
                if not raw:
                    break
                for m in raw:
                    handles.append(m["ReceiptHandle"])
                    found.append(self._message(m, handle="", count_offset=1))
        finally:
            self._release(handles)
        return found

    def redrive(self, max_messages: int | None = None) -> int:
        """On a DLQ: move up to ``max_messages`` (default all) messages to ``source_url``
        (receive → send → delete, oldest first as SQS returns them); returns how many."""
        if self.source_url is None:
            raise UsageError(
                f"queue {self.name!r} is not a dead-letter queue; only a DLQ can be redriven"
            )
        if max_messages is not None and max_messages < 1:
            raise UsageError(f"max_messages must be >= 1 or None, got {max_messages}")
        source = SqsQueue(self.sqs, self.source_url, name=self.source_name or "source")
        moved = 0
        while max_messages is None or moved < max_messages:
            want = MAX_BATCH if max_messages is None else min(MAX_BATCH, max_messages - moved)
            raw = self._receive_raw(want, PEEK_HIDE_SECONDS, 1)
            if not raw:
                break
            entries = []
            for i, m in enumerate(raw):
                attributes = {
                    k: {f: v[f] for f in ("DataType", "StringValue", "BinaryValue") if f in v}
                    for k, v in (m.get("MessageAttributes") or {}).items()
                    # back in its queue a message is no longer a dead letter (as on local)
                    if k not in (REASON_ATTRIBUTE, SOURCE_ATTRIBUTE)
                }
                attributes.setdefault(
                    ORIGINAL_ID_ATTRIBUTE, {"DataType": "String", "StringValue": m["MessageId"]}
                )
                entries.append({"Id": str(i), "MessageBody": m["Body"],
                                "MessageAttributes": attributes})
            source._send_entries(entries)
            self._delete_batch([m["ReceiptHandle"] for m in raw])
            moved += len(raw)
        return moved

    def _delete_batch(self, handles: list[str]) -> None:
        entries = [{"Id": str(i), "ReceiptHandle": h} for i, h in enumerate(handles)]
        with translate_errors(f"SQS DeleteMessageBatch {self.name}"):
            resp = self.sqs.delete_message_batch(QueueUrl=self.url, Entries=entries)
        failed = [f for f in resp.get("Failed") or []
                  if not _bad_handle(str(f.get("Code")), str(f.get("Message", "")))]
        if failed:
            raise TransientError(
                f"queue {self.name!r}: {len(failed)} messages were redriven but not deleted"
                " from the DLQ (they will be redriven again)"
            )
