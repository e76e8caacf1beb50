"""Queue contract: SQS semantics every backend must honour (visibility, redrive, retention)."""
# ruff: noqa: F811  (the fixture imported from queue_backends is redefined as an argument)

from __future__ import annotations

import dataclasses
import sqlite3
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from lakeline.adapters.local.queue import SCHEMA, SqliteQueue, open_queue_pair
from lakeline.adapters.local.sqlite import Database
from lakeline.config import QueueSettings
from lakeline.errors import NotFoundError, UsageError
from lakeline.ports import Message, Queue, QueueCounts
from lakeline.ports.queue import DEAD_LETTER_REASON, MAX_REASON_CHARS
from tests.contract.queue_backends import QueueFactory, moto_endpoint, queue_backend  # noqa: F401

VT = 2  # visibility timeout of the test queues, seconds


def receive_one(queue: Queue, **kwargs: object) -> Message:
    got = queue.receive(1, **kwargs)  # type: ignore[arg-type]
    assert len(got) == 1, got
    return got[0]


def dlq_of(queue: Queue) -> Queue:
    assert queue.dlq is not None
    return queue.dlq


# -- send, receive, delete ------------------------------------------------------------------


def test_send_receive_delete(queue_backend: QueueFactory) -> None:
    queue_backend.skip_on(
        "aws",
        "SQS stamps SentTimestamp with its own clock, which the test compares exactly with the "
        "injected clock (covered with a tolerance in tests/integration/test_aws_faults.py)"
    )
    q = queue_backend("orders")
    mid = q.send('{"key": "a.csv"}')
    assert str(uuid.UUID(mid)) == mid and uuid.UUID(mid).version == 4
    msg = receive_one(q)
    assert msg.message_id == mid
    assert msg.body == '{"key": "a.csv"}'
    assert msg.receive_count == 1
    assert msg.receipt_handle != ""
    assert msg.sent_at == datetime.fromtimestamp(queue_backend.clock(), tz=UTC)
    assert msg.attributes["SentTimestamp"] == str(int(queue_backend.clock() * 1000))
    assert msg.attributes["ApproximateReceiveCount"] == "1"
    assert "DeadLetterSourceQueue" not in msg.attributes
    assert q.counts() == QueueCounts(visible=0, in_flight=1, delayed=0)
    q.delete(msg.receipt_handle)
    assert q.counts() == QueueCounts(visible=0, in_flight=0, delayed=0)
    queue_backend.clock.advance(VT + 1)
    assert q.receive(10) == []


def test_receive_on_empty_queue(queue_backend: QueueFactory) -> None:
    q = queue_backend("orders")
    assert q.receive() == []
    assert q.receive(10) == []
    assert q.counts() == QueueCounts(0, 0, 0)
    assert q.counts().total == 0


def test_oldest_first_and_max_messages(queue_backend: QueueFactory) -> None:
    q = queue_backend("orders")
    ids = [q.send(f"m{i}") for i in range(15)]
    first = q.receive(10)
    assert [m.body for m in first] == [f"m{i}" for i in range(10)]
    assert [m.message_id for m in first] == ids[:10]
    assert len({m.receipt_handle for m in first}) == 10
    rest = q.receive(10)
    assert [m.body for m in rest] == [f"m{i}" for i in range(10, 15)]
    assert q.receive(10) == []
    assert q.counts() == QueueCounts(visible=0, in_flight=15, delayed=0)


def test_send_batch(queue_backend: QueueFactory) -> None:
    q = queue_backend("orders")
    ids = q.send_batch([f"b{i}" for i in range(10)])
    assert len(ids) == 10 and len(set(ids)) == 10
    got = q.receive(10)
    assert [(m.message_id, m.body) for m in got] == [(ids[i], f"b{i}") for i in range(10)]
    assert q.send_batch(["only"]) != []


@pytest.mark.parametrize("size", [0, 11, 50])
def test_send_batch_limits(queue_backend: QueueFactory, size: int) -> None:
    q = queue_backend("orders")
    with pytest.raises(UsageError, match=rf"1\.\.10 messages, got {size}"):
        q.send_batch(["x"] * size)
    assert q.counts() == QueueCounts(0, 0, 0)


@pytest.mark.parametrize("n", [0, 11, -1])
def test_receive_max_messages_limits(queue_backend: QueueFactory, n: int) -> None:
    q = queue_backend("orders")
    q.send("x")
    with pytest.raises(UsageError, match="max_messages"):
        q.receive(n)
    assert q.counts() == QueueCounts(visible=1, in_flight=0, delayed=0)


def test_body_size_limit(queue_backend: QueueFactory) -> None:
    q = queue_backend("orders")
    q.send("x" * 262_144)  # exactly 256 KiB is allowed
    with pytest.raises(UsageError, match="262145 bytes"):
        q.send("x" * 262_145)
    with pytest.raises(UsageError, match="262146 bytes"):
        q.send("é" * 131_073)  # two UTF-8 bytes each: the limit is in bytes, not characters
    with pytest.raises(UsageError, match="262145 bytes"):
        q.send_batch(["ok", "x" * 262_145])
    with pytest.raises(UsageError, match="batch is 262146 bytes"):
        q.send_batch(["x" * 131_073, "y" * 131_073])
    with pytest.raises(UsageError, match="empty"):
        q.send("")
    assert q.counts() == QueueCounts(visible=1, in_flight=0, delayed=0)


def test_argument_ranges(queue_backend: QueueFactory) -> None:
    q = queue_backend("orders")
    with pytest.raises(UsageError, match="delay_seconds"):
        q.send("x", delay_seconds=901)
    with pytest.raises(UsageError, match="delay_seconds"):
        q.send("x", delay_seconds=-1)
    with pytest.raises(UsageError, match="visibility_timeout"):
        q.receive(visibility_timeout=43_201)
    with pytest.raises(UsageError, match="wait_seconds"):
        q.receive(wait_seconds=21)
    q.send("x")
    msg = receive_one(q)
    with pytest.raises(UsageError, match="timeout"):
        q.change_visibility(msg.receipt_handle, -1)
    with pytest.raises(UsageError, match="timeout"):
        q.change_visibility(msg.receipt_handle, 43_201)


def test_queues_are_separate(queue_backend: QueueFactory) -> None:
    a = queue_backend("alpha")
    b = queue_backend("beta")
    a.send("for a")
    assert b.receive(10) == []
    assert b.counts() == QueueCounts(0, 0, 0)
    msg = receive_one(a)
    b.delete(msg.receipt_handle)  # another queue's handle is ignored
    assert a.counts() == QueueCounts(visible=0, in_flight=1, delayed=0)
    assert b.purge() == 0
    assert a.counts().total == 1


# -- visibility -----------------------------------------------------------------------------


def test_visibility_timeout_and_redelivery(queue_backend: QueueFactory) -> None:
    queue_backend.skip_on(
        "aws",
        "asserts ApproximateFirstReceiveTimestamp exactly against the injected clock; SQS takes no "
        "clock (redelivery is covered by test_receive_count_increments and tests/integration)"
    )
    q = queue_backend("orders")
    mid = q.send("job")
    first = receive_one(q)
    assert q.receive(10) == []  # invisible while in flight
    queue_backend.clock.advance(VT - 0.5)
    assert q.receive(10) == []
    queue_backend.clock.advance(0.5)  # exactly VT after the receive: visible again
    assert q.counts() == QueueCounts(visible=1, in_flight=0, delayed=0)
    second = receive_one(q)
    assert second.message_id == mid
    assert second.receive_count == 2
    assert second.receipt_handle != first.receipt_handle
    assert second.attributes["ApproximateReceiveCount"] == "2"
    assert second.attributes["ApproximateFirstReceiveTimestamp"] == str(
        int((queue_backend.clock() - VT) * 1000)
    )


def test_receive_count_increments(queue_backend: QueueFactory) -> None:
    q = queue_backend("orders", max_receive_count=10)
    q.send("job")
    counts = []
    for _ in range(4):
        counts.append(receive_one(q).receive_count)
        queue_backend.clock.advance(VT)
    assert counts == [1, 2, 3, 4]


def test_receive_visibility_override(queue_backend: QueueFactory) -> None:
    q = queue_backend("orders")
    q.send("job")
    receive_one(q, visibility_timeout=10)
    queue_backend.clock.advance(VT)
    assert q.receive() == []
    queue_backend.clock.advance(10 - VT)
    assert receive_one(q, visibility_timeout=0).receive_count == 2
    # visibility 0: visible again at once
    assert receive_one(q).receive_count == 3


def test_change_visibility_to_zero(queue_backend: QueueFactory) -> None:
    q = queue_backend("orders")
    mid = q.send("job")
    msg = receive_one(q)
    q.change_visibility(msg.receipt_handle, 0)
    assert q.counts() == QueueCounts(visible=1, in_flight=0, delayed=0)
    again = receive_one(q)
    assert (again.message_id, again.receive_count) == (mid, 2)


def test_change_visibility_extends(queue_backend: QueueFactory) -> None:
    q = queue_backend("orders")
    q.send("job")
    msg = receive_one(q)
    queue_backend.clock.advance(1)
    q.change_visibility(msg.receipt_handle, 5)  # counted from now, not from the receive
    queue_backend.clock.advance(4.5)
    assert q.receive() == []
    assert q.counts() == QueueCounts(visible=0, in_flight=1, delayed=0)
    queue_backend.clock.advance(0.5)
    assert receive_one(q).receive_count == 2


def test_change_visibility_needs_current_in_flight_handle(queue_backend: QueueFactory) -> None:
    queue_backend.skip_on(
        "aws",
        "SQS accepts an older receipt handle of a message, and moto does not emulate "
        "MessageNotInflight for a visible one (unknown and deleted handles raise NotFoundError: "
        "tests/integration)"
    )
    q = queue_backend("orders")
    q.send("job")
    old = receive_one(q)
    with pytest.raises(NotFoundError):
        q.change_visibility("no-such-handle", 10)
    queue_backend.clock.advance(VT)
    with pytest.raises(NotFoundError):  # visible again: no longer in flight
        q.change_visibility(old.receipt_handle, 10)
    new = receive_one(q)
    with pytest.raises(NotFoundError):  # stale handle
        q.change_visibility(old.receipt_handle, 10)
    q.delete(new.receipt_handle)
    with pytest.raises(NotFoundError):  # deleted
        q.change_visibility(new.receipt_handle, 10)


def test_stale_receipt_delete_is_ignored(queue_backend: QueueFactory) -> None:
    queue_backend.skip_on(
        "aws",
        "SQS may delete a message given an older receipt handle ('the request succeeds, but the "
        "message might not be deleted'); moto always deletes it"
    )
    q = queue_backend("orders")
    q.send("job")
    old = receive_one(q)
    queue_backend.clock.advance(VT)
    new = receive_one(q)
    q.delete(old.receipt_handle)
    q.delete("never-issued")
    assert q.counts() == QueueCounts(visible=0, in_flight=1, delayed=0)
    q.delete(new.receipt_handle)
    assert q.counts() == QueueCounts(0, 0, 0)
    q.delete(new.receipt_handle)  # twice is fine too


def test_delete_after_visibility_expired_but_not_received(queue_backend: QueueFactory) -> None:
    q = queue_backend("orders")
    q.send("job")
    msg = receive_one(q)
    queue_backend.clock.advance(VT + 5)
    q.delete(msg.receipt_handle)  # still the current handle
    assert q.counts() == QueueCounts(0, 0, 0)


def test_delay_seconds(queue_backend: QueueFactory) -> None:
    q = queue_backend("orders")
    q.send("later", delay_seconds=10)
    q.send("now")
    assert [m.body for m in q.receive(10, visibility_timeout=60)] == ["now"]
    assert q.counts() == QueueCounts(visible=0, in_flight=1, delayed=1)
    queue_backend.clock.advance(9.5)
    assert q.receive(10) == []
    queue_backend.clock.advance(0.5)
    assert [m.body for m in q.receive(10)] == ["later"]


# -- long polling ---------------------------------------------------------------------------


def test_long_poll_waits_then_returns_empty(queue_backend: QueueFactory) -> None:
    q = queue_backend("orders")
    start = time.monotonic()
    assert q.receive(wait_seconds=0.3) == []
    assert time.monotonic() - start >= 0.3


def test_long_poll_returns_when_a_message_arrives(queue_backend: QueueFactory) -> None:
    q = queue_backend("orders")
    sender = threading.Timer(0.2, lambda: q.send("late"))
    sender.start()
    start = time.monotonic()
    try:
        got = q.receive(wait_seconds=5)
    finally:
        sender.join()
    assert [m.body for m in got] == ["late"]
    assert time.monotonic() - start < 4


# -- redrive policy and DLQ -----------------------------------------------------------------


def test_poison_message_reaches_dlq_after_max_receives(queue_backend: QueueFactory) -> None:
    queue_backend.skip_on(
        "aws",
        "SQS keeps the receive count when it moves a message to the DLQ, peek is a receive on SQS, "
        "and timestamps are compared exactly (covered in tests/integration)"
    )
    q = queue_backend("orders", max_receive_count=5)
    dlq = dlq_of(q)
    mid = q.send("poison")
    seen = []
    for _ in range(5):
        msg = receive_one(q)
        assert msg.message_id == mid
        seen.append(msg.receive_count)
        queue_backend.clock.advance(VT)  # not deleted: the visibility timeout runs out
    assert seen == [1, 2, 3, 4, 5]
    assert q.counts() == QueueCounts(visible=1, in_flight=0, delayed=0)
    assert q.receive(10) == []  # the 6th receive moves it instead of returning it
    assert q.counts() == QueueCounts(0, 0, 0)
    assert dlq.counts() == QueueCounts(visible=1, in_flight=0, delayed=0)
    [dead] = dlq.peek()
    assert (dead.message_id, dead.body, dead.receive_count) == (mid, "poison", 0)
    assert dead.attributes["DeadLetterSourceQueue"] == "orders"
    assert DEAD_LETTER_REASON not in dead.attributes  # the redrive policy records no reason
    assert dead.attributes["SentTimestamp"] == str(int((queue_backend.clock() - 5 * VT) * 1000))
    got = receive_one(dlq)
    assert (got.message_id, got.receive_count) == (mid, 1)
    assert got.attributes["DeadLetterSourceQueue"] == "orders"


def test_redrive_skips_poison_and_fills_the_batch(queue_backend: QueueFactory) -> None:
    q = queue_backend("orders", max_receive_count=1)
    bad = q.send("poison")
    receive_one(q)
    queue_backend.clock.advance(VT)
    good = q.send_batch(["g1", "g2"])
    got = q.receive(10)
    assert [m.message_id for m in got] == good
    assert [m.message_id for m in dlq_of(q).peek()] == [bad]


def test_in_flight_message_is_not_moved(queue_backend: QueueFactory) -> None:
    q = queue_backend("orders", max_receive_count=1)
    q.send("job")
    msg = receive_one(q)
    assert q.receive() == []
    assert dlq_of(q).counts().total == 0
    q.delete(msg.receipt_handle)  # processed on its last allowed receive: gone, not dead
    queue_backend.clock.advance(VT)
    assert q.receive() == []
    assert dlq_of(q).counts().total == 0


def test_without_dlq_messages_are_never_moved(queue_backend: QueueFactory) -> None:
    q = queue_backend("orders", max_receive_count=2, dlq=False)
    q.send("job")
    for expected in range(1, 8):
        assert receive_one(q).receive_count == expected
        queue_backend.clock.advance(VT)


def test_dlq_redrive(queue_backend: QueueFactory) -> None:
    q = queue_backend("orders", max_receive_count=1)
    dlq = dlq_of(q)
    ids = q.send_batch(["a", "b", "c"])
    assert len(q.receive(10)) == 3
    queue_backend.clock.advance(VT)
    assert q.receive(10) == []
    assert [m.message_id for m in dlq.peek()] == ids
    queue_backend.clock.advance(100)
    assert dlq.redrive(max_messages=2) == 2
    assert [m.message_id for m in dlq.peek()] == ids[2:]
    assert q.counts() == QueueCounts(visible=2, in_flight=0, delayed=0)
    back = q.receive(10)
    assert [(m.message_id, m.body, m.receive_count) for m in back] == [
        (ids[0], "a", 1), (ids[1], "b", 1)
    ]
    assert all("DeadLetterSourceQueue" not in m.attributes for m in back)
    assert dlq.redrive() == 1
    assert dlq.redrive() == 0
    assert dlq.counts() == QueueCounts(0, 0, 0)
    assert [m.message_id for m in q.receive(10)] == [ids[2]]


def test_redrive_on_source_queue_is_refused(queue_backend: QueueFactory) -> None:
    q = queue_backend("orders")
    with pytest.raises(UsageError, match="not a dead-letter queue"):
        q.redrive()


# -- dead_letter: to the DLQ now, whatever the receive count --------------------------------


def test_dead_letter_on_first_receive(queue_backend: QueueFactory) -> None:
    q = queue_backend("orders", max_receive_count=5)
    dlq = dlq_of(q)
    mid = q.send('{"not": "a chunk"}')
    msg = receive_one(q)
    assert msg.receive_count == 1
    q.dead_letter(msg, "MessageError: not a chunk message")
    assert q.counts() == QueueCounts(visible=0, in_flight=0, delayed=0)
    assert dlq.counts() == QueueCounts(visible=1, in_flight=0, delayed=0)
    queue_backend.clock.advance(VT + 1)  # gone for good, not merely hidden
    assert q.receive(10) == []
    dead = receive_one(dlq)
    assert (dead.message_id, dead.body, dead.receive_count) == (mid, '{"not": "a chunk"}', 1)
    assert dead.attributes[DEAD_LETTER_REASON] == "MessageError: not a chunk message"
    assert dead.attributes["DeadLetterSourceQueue"] == "orders"
    q.dead_letter(msg, "again")  # the handle of a message no longer in the queue: ignored
    assert dlq.counts() == QueueCounts(visible=0, in_flight=1, delayed=0)
    # redriven, it is an ordinary message again: no reason, no source
    dlq.change_visibility(dead.receipt_handle, 0)
    assert dlq.redrive() == 1
    back = receive_one(q)
    assert (back.message_id, back.body, back.receive_count) == (mid, '{"not": "a chunk"}', 1)
    assert DEAD_LETTER_REASON not in back.attributes
    assert "DeadLetterSourceQueue" not in back.attributes
    assert dlq.counts() == QueueCounts(0, 0, 0)


def test_dead_letter_moves_only_that_message(queue_backend: QueueFactory) -> None:
    q = queue_backend("orders")
    dlq = dlq_of(q)
    ids = q.send_batch(["a", "b", "c"])
    got = q.receive(10)
    assert [m.message_id for m in got] == ids
    q.dead_letter(got[1], "DataError: b is unusable")
    assert q.counts() == QueueCounts(visible=0, in_flight=2, delayed=0)
    q.delete(got[0].receipt_handle)
    q.delete(got[2].receipt_handle)
    assert q.counts() == QueueCounts(0, 0, 0)
    dead = receive_one(dlq)
    assert (dead.message_id, dead.body) == (ids[1], "b")
    assert dead.attributes[DEAD_LETTER_REASON] == "DataError: b is unusable"
    assert dlq.receive(10) == []


def test_dead_letter_with_unknown_or_deleted_handle_is_ignored_like_delete(
    queue_backend: QueueFactory,
) -> None:
    q = queue_backend("orders")
    dlq = dlq_of(q)
    q.send("job")
    msg = receive_one(q)
    q.dead_letter(dataclasses.replace(msg, receipt_handle="never-issued"), "TerminalError: x")
    assert q.counts() == QueueCounts(visible=0, in_flight=1, delayed=0)
    assert dlq.counts() == QueueCounts(0, 0, 0)
    q.delete(msg.receipt_handle)
    q.dead_letter(msg, "TerminalError: x")  # deleted: nothing to move, nothing copied
    assert q.counts() == QueueCounts(0, 0, 0)
    assert dlq.counts() == QueueCounts(0, 0, 0)


def test_dead_letter_with_stale_handle_is_ignored(queue_backend: QueueFactory) -> None:
    queue_backend.skip_on(
        "aws",
        "SQS may act on an older receipt handle of a message, as its DeleteMessage does; moto "
        "always does (unknown and deleted handles are covered on every backend)"
    )
    q = queue_backend("orders")
    dlq = dlq_of(q)
    mid = q.send("job")
    old = receive_one(q)
    queue_backend.clock.advance(VT)
    new = receive_one(q)
    q.dead_letter(old, "TerminalError: stale")
    assert q.counts() == QueueCounts(visible=0, in_flight=1, delayed=0)
    assert dlq.counts() == QueueCounts(0, 0, 0)
    q.dead_letter(new, "TerminalError: current")
    assert q.counts() == QueueCounts(0, 0, 0)
    [dead] = dlq.peek()
    assert (dead.message_id, dead.receive_count) == (mid, 0)
    assert dead.attributes[DEAD_LETTER_REASON] == "TerminalError: current"


def test_dead_letter_without_dlq_is_refused(queue_backend: QueueFactory) -> None:
    q = queue_backend("orders", dlq=False)
    q.send("job")
    msg = receive_one(q)
    with pytest.raises(UsageError, match="'orders' has no dead-letter queue"):
        q.dead_letter(msg, "MessageError: x")
    assert q.counts() == QueueCounts(visible=0, in_flight=1, delayed=0)
    with_dlq = queue_backend("alpha")
    dlq = dlq_of(with_dlq)
    dlq.send("dead already")
    dead = receive_one(dlq)
    with pytest.raises(UsageError, match="'alpha-dlq' has no dead-letter queue"):
        dlq.dead_letter(dead, "MessageError: x")  # a DLQ has no DLQ of its own
    assert dlq.counts() == QueueCounts(visible=0, in_flight=1, delayed=0)


def test_dead_letter_reason_is_normalised(queue_backend: QueueFactory) -> None:
    q = queue_backend("orders")
    dlq = dlq_of(q)
    q.send("job")
    msg = receive_one(q)
    with pytest.raises(UsageError, match="needs a reason"):
        q.dead_letter(msg, " ")
    assert q.counts() == QueueCounts(visible=0, in_flight=1, delayed=0)
    # characters SQS refuses in an attribute (NUL, a lone surrogate) become "?"; cut to 1024
    q.dead_letter(msg, "DataError: bad\x00byte \udcff " + "x" * 2000)
    assert q.counts() == QueueCounts(0, 0, 0)
    reason = receive_one(dlq).attributes[DEAD_LETTER_REASON]
    assert reason == ("DataError: bad?byte ? " + "x" * 2000)[:MAX_REASON_CHARS]
    assert len(reason) == MAX_REASON_CHARS == 1024


# -- retention, counts, peek, purge ---------------------------------------------------------


def test_retention_drops_old_messages(queue_backend: QueueFactory) -> None:
    queue_backend.skip_on(
        "aws",
        "peek cannot see in-flight messages on SQS and the exact 60 s boundary needs the injected "
        "clock (SQS enforces MessageRetentionPeriod itself)"
    )
    q = queue_backend("orders", retention_seconds=60)
    in_flight = q.send("old, in flight")
    q.send("old, waiting")
    assert receive_one(q, visibility_timeout=120).message_id == in_flight
    queue_backend.clock.advance(30)
    young = q.send("young")
    queue_backend.clock.advance(30)  # exactly 60 s old: kept
    assert [m.body for m in q.peek()] == ["old, in flight", "old, waiting", "young"]
    assert q.counts() == QueueCounts(visible=2, in_flight=1, delayed=0)
    queue_backend.clock.advance(1)
    assert [m.message_id for m in q.peek()] == [young]
    assert q.counts() == QueueCounts(visible=1, in_flight=0, delayed=0)
    got = q.receive(10)
    assert [m.message_id for m in got] == [young]
    assert in_flight not in {m.message_id for m in got}


def test_counts_are_exact(queue_backend: QueueFactory) -> None:
    q = queue_backend("orders")
    q.send_batch(["v1", "v2", "v3"])
    q.send("d1", delay_seconds=60)
    q.send("d2", delay_seconds=60)
    assert q.counts() == QueueCounts(visible=3, in_flight=0, delayed=2)
    msg = receive_one(q, visibility_timeout=120)
    counts = q.counts()
    assert counts == QueueCounts(visible=2, in_flight=1, delayed=2)
    assert counts.total == 5
    queue_backend.clock.advance(60)
    assert q.counts() == QueueCounts(visible=4, in_flight=1, delayed=0)
    q.delete(msg.receipt_handle)
    assert q.counts() == QueueCounts(visible=4, in_flight=0, delayed=0)
    assert dlq_of(q).counts() == QueueCounts(0, 0, 0)


def test_peek_changes_nothing(queue_backend: QueueFactory) -> None:
    queue_backend.skip_on(
        "aws",
        "SQS cannot peek: peek() receives (counting a receive) and cannot see in-flight messages "
        "(peek is covered in tests/integration)"
    )
    q = queue_backend("orders")
    ids = q.send_batch(["p1", "p2", "p3"])
    received = receive_one(q)
    before = q.counts()
    peeked = q.peek()
    assert [m.message_id for m in peeked] == ids
    assert [m.receive_count for m in peeked] == [1, 0, 0]
    assert all(m.receipt_handle == "" for m in peeked)
    assert [m.body for m in q.peek(2)] == ["p1", "p2"]
    assert q.peek(0) == []
    assert q.counts() == before == QueueCounts(visible=2, in_flight=1, delayed=0)
    q.delete(received.receipt_handle)  # peek did not replace the receipt handle
    assert [m.body for m in q.receive(10)] == ["p2", "p3"]


def test_purge(queue_backend: QueueFactory) -> None:
    q = queue_backend("orders")
    q.send_batch(["a", "b"])
    q.send("c", delay_seconds=30)
    msg = receive_one(q)
    assert q.purge() == 3
    assert q.counts() == QueueCounts(0, 0, 0)
    q.delete(msg.receipt_handle)  # handle of a purged message: ignored
    assert q.purge() == 0


# -- local backend specifics ----------------------------------------------------------------


def test_open_queue_pair_wiring(tmp_path: Path) -> None:
    settings = QueueSettings(visibility_timeout=60, retention_seconds=3600, max_receive_count=3)
    q = open_queue_pair(tmp_path / "state" / "queue.db", "ingest", settings)
    assert not (tmp_path / "state").exists()  # constructors do no I/O
    assert (q.name, q.visibility_timeout, q.retention_seconds, q.max_receive_count) == (
        "ingest", 60, 3600, 3
    )
    assert q.source_name is None
    dlq = q.dlq
    assert dlq is not None
    assert (dlq.name, dlq.source_name, dlq.dlq) == ("ingest-dlq", "ingest", None)
    assert dlq.retention_seconds == 14 * 24 * 3600
    assert dlq.db is q.db
    q.send("x")
    assert (tmp_path / "state" / "queue.db").exists()
    q.db.close()


def test_queue_pairs_share_one_database_file(tmp_path: Path) -> None:
    path = tmp_path / "queue.db"
    ingest = open_queue_pair(path, "ingest", QueueSettings())
    transform = open_queue_pair(path, "transform", QueueSettings())
    ingest.send("i")
    transform.send_batch(["t1", "t2"])
    reopened = SqliteQueue(Database(path, SCHEMA), "transform")
    assert [m.body for m in reopened.peek()] == ["t1", "t2"]
    assert ingest.counts() == QueueCounts(visible=1, in_flight=0, delayed=0)
    assert ingest.db.integrity_check() == "ok"
    for q in (ingest, transform, reopened):
        q.db.close()


def test_constructor_validation(tmp_path: Path) -> None:
    db = Database(tmp_path / "queue.db", SCHEMA)
    with pytest.raises(UsageError, match="queue name"):
        SqliteQueue(db, "bad name!")
    with pytest.raises(UsageError, match="max_receive_count"):
        SqliteQueue(db, "q", max_receive_count=0)
    other = SqliteQueue(Database(tmp_path / "other.db", SCHEMA), "q-dlq", source_name="q")
    with pytest.raises(UsageError, match="same database"):
        SqliteQueue(db, "q", dlq=other)
    assert not (tmp_path / "queue.db").exists()


def test_local_dead_letter_upgrades_a_database_made_before_the_reason_column(tmp_path: Path) -> None:
    path = tmp_path / "queue.db"
    old = sqlite3.connect(path)
    old.executescript(SCHEMA.replace(",\n    dead_letter_reason TEXT", ""))
    now = time.time()
    old.execute("INSERT INTO queue_messages (queue, message_id, body, sent_at, visible_at)"
                " VALUES ('ingest', 'm-1', 'old body', ?, ?)", (now, now))
    old.commit()
    assert "dead_letter_reason" not in {r[1] for r in old.execute("PRAGMA table_info(queue_messages)")}
    old.close()
    q = open_queue_pair(path, "ingest", QueueSettings())
    msg = receive_one(q)
    assert (msg.message_id, msg.body, msg.receive_count) == ("m-1", "old body", 1)
    q.dead_letter(msg, "MessageError: old")
    assert q.dlq is not None
    [dead] = q.dlq.peek()
    assert (dead.message_id, dead.attributes[DEAD_LETTER_REASON]) == ("m-1", "MessageError: old")
    again = open_queue_pair(path, "ingest", QueueSettings())  # a second upgrade changes nothing
    assert again.dlq is not None and again.dlq.peek()[0].attributes[DEAD_LETTER_REASON] == "MessageError: old"
    q.db.close()
    again.db.close()


def test_local_release_in_flight_undoes_receives(tmp_path):
    """Runner crash recovery: a killed worker's receives do not count towards the DLQ."""
    from lakeline.adapters.local.queue import open_queue_pair
    from lakeline.config import QueueSettings

    q = open_queue_pair(tmp_path / "q.db", "t", QueueSettings(max_receive_count=2))
    q.send("a")
    for _ in range(5):  # five "kills" while the message is in flight
        assert [m.receive_count for m in q.receive(1)] == [1]
        assert q.release_in_flight() == 1
    assert q.counts().visible == 1 and q.dlq.counts().total == 0
