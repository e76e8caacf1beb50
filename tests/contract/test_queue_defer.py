"""Queue contract, ``defer``: a message put back after a transient fault is not charged the
receive, so the redrive policy never dead-letters it for faults that were not its own."""
# ruff: noqa: F811  (the fixture imported from queue_backends is redefined as an argument)

from __future__ import annotations

import pytest

from lakeline.adapters.local.queue import SqliteQueue
from lakeline.errors import UsageError
from lakeline.ports import Message, Queue, QueueCounts
from tests.contract.queue_backends import QueueFactory, moto_endpoint, queue_backend  # noqa: F401


def receive_one(queue: Queue) -> Message:
    got = queue.receive(1)
    assert len(got) == 1, got
    return got[0]


def test_deferred_receives_are_not_charged(queue_backend: QueueFactory) -> None:
    q = queue_backend("orders", max_receive_count=2)
    mid = q.send("chunk")
    for _ in range(5):  # five transient faults in a row: more than max_receive_count
        msg = receive_one(q)
        assert (msg.message_id, msg.body, msg.receive_count) == (mid, "chunk", 1)
        q.defer(msg, 0)
    last = receive_one(q)
    assert (last.message_id, last.receive_count) == (mid, 1)
    q.delete(last.receipt_handle)
    assert q.dlq is not None and q.dlq.counts().total == 0
    assert q.counts().total == 0


def test_deferred_message_is_delayed_then_visible(queue_backend: QueueFactory) -> None:
    q = queue_backend("orders")
    mid = q.send("chunk")
    q.defer(receive_one(q), 5)
    assert q.counts() == QueueCounts(visible=0, in_flight=0, delayed=1)
    assert q.receive(1) == []
    queue_backend.clock.advance(6)
    again = receive_one(q)
    assert (again.message_id, again.receive_count) == (mid, 1)


def test_defer_ignores_a_stale_handle(queue_backend: QueueFactory) -> None:
    q = queue_backend("orders")
    q.send("chunk")
    msg = receive_one(q)
    q.delete(msg.receipt_handle)
    q.defer(msg, 0)  # deleted meanwhile: nothing comes back
    assert q.counts().total == 0


def test_defer_refuses_a_delay_sqs_cannot_take(queue_backend: QueueFactory) -> None:
    q = queue_backend("orders")
    q.send("chunk")
    msg = receive_one(q)
    with pytest.raises(UsageError, match="delay_seconds must be 0..900"):
        q.defer(msg, 901)


def test_local_release_deferred_skips_messages_sent_with_a_delay(queue_backend: QueueFactory) -> None:
    queue_backend.skip_on("aws", "local recovery only (a new `lakeline run` after a transient fault)")
    q = queue_backend("orders")
    assert isinstance(q, SqliteQueue)
    deferred = q.send("chunk")
    q.send("later", delay_seconds=60)
    q.defer(receive_one(q), 300)
    assert q.release_deferred() == 1
    assert q.counts() == QueueCounts(visible=1, in_flight=0, delayed=1)
    again = receive_one(q)
    assert (again.message_id, again.receive_count) == (deferred, 1)
