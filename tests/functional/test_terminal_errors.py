"""The error tree at run time on the local lake: a TerminalError goes to the DLQ on the receive
that failed; a TransientError (or any other failure) is retried until it succeeds."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from lakeline.adapters.local.queue import SqliteQueue
from lakeline.errors import DataError, MessageError, TransientError
from lakeline.lake import Lake
from lakeline.ports import Message, QueueCounts
from lakeline.ports.queue import DEAD_LETTER_REASON
from lakeline.stages.messages import ChunkMessage
from lakeline.stages.transform import PendingChunk, Transformer
from tests.functional.helpers import land, query, rec, run, settings


def jsonl(prefix: str, n: int) -> bytes:
    return b"".join(orjson.dumps(rec(shipment_id=f"{prefix}{i}")) + b"\n" for i in range(n))


def reason_of(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"


class Collect(logging.Handler):
    """Keeps every record it is given."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def runner_warnings() -> Iterator[list[logging.LogRecord]]:
    """Warnings of the runner's logger. The handler sits on that logger itself: ``lakeline``
    stops propagating to the root logger (and pytest's caplog) once ``log.setup`` has run in
    this process."""
    logger = logging.getLogger("lakeline.runner")
    handler = Collect()
    logger.addHandler(handler)
    try:
        yield handler.records
    finally:
        logger.removeHandler(handler)


def test_garbage_on_the_transform_queue_is_dead_lettered_on_its_first_receive(
    home: Path, runner_warnings: list[logging.LogRecord]
) -> None:
    s = settings(home, queue__max_receive_count=5)
    lake = Lake.open(s)
    mid = lake.transform_queue.send("not json")
    land(lake, "shipments/good.jsonl", jsonl("g", 20))
    with pytest.raises(MessageError) as raised:
        ChunkMessage.from_json("not json")
    reason = reason_of(raised.value)
    assert reason.startswith("MessageError: not a chunk message: ")

    summary = run(s)

    # one failure, not max_receive_count (5): the first receive sent it to the DLQ
    assert summary["failures"] == 1
    assert summary["errors"] == [f"transform {mid}: {reason}"]
    assert (summary["ingested_objects"], summary["loaded"], summary["rejected"]) == (1, 20, 0)
    assert query(lake, "SELECT count(*), count(DISTINCT shipment_id) FROM silver.shipments") == [(20, 20)]
    assert lake.transform_queue.counts() == QueueCounts(0, 0, 0)
    dlq = lake.transform_queue.dlq
    assert dlq is not None
    assert dlq.counts() == QueueCounts(visible=1, in_flight=0, delayed=0)
    [dead] = dlq.peek()
    assert (dead.message_id, dead.body) == (mid, "not json")
    assert dead.attributes[DEAD_LETTER_REASON] == reason
    assert dead.attributes["DeadLetterSourceQueue"] == "transform"
    warned = [r for r in runner_warnings if r.getMessage() == "message dead-lettered"]
    assert len(warned) == 1
    assert warned[0].levelno == logging.WARNING
    assert warned[0].data == {  # type: ignore[attr-defined]
        "queue": "transform", "message_id": mid, "receive_count": 1, "reason": reason}
    assert lake.ingest_queue.dlq is not None and lake.ingest_queue.dlq.counts().total == 0


def test_a_failed_move_to_the_dlq_falls_back_to_a_retry(
    home: Path, monkeypatch: pytest.MonkeyPatch, runner_warnings: list[logging.LogRecord]
) -> None:
    s = settings(home, queue__max_receive_count=5)
    lake = Lake.open(s)
    mid = lake.transform_queue.send("not json")
    original = SqliteQueue.dead_letter
    receive_counts: list[int] = []

    def dead_letter(self: SqliteQueue, message: Message, reason: str) -> None:
        receive_counts.append(message.receive_count)
        if len(receive_counts) == 1:
            raise TransientError("the queue database is busy")
        original(self, message, reason)

    monkeypatch.setattr(SqliteQueue, "dead_letter", dead_letter)
    summary = run(s)
    assert receive_counts == [1, 2]  # retried (not lost, not stuck), then dead-lettered
    assert summary["failures"] == 2
    assert lake.transform_queue.counts() == QueueCounts(0, 0, 0)
    assert lake.transform_queue.dlq is not None
    [dead] = lake.transform_queue.dlq.peek()
    assert dead.message_id == mid and dead.attributes[DEAD_LETTER_REASON].startswith("MessageError: ")
    messages = [r.getMessage() for r in runner_warnings]
    assert messages == ["dead-lettering failed; the message will be retried", "message failed",
                        "message dead-lettered"]


def test_an_event_that_is_not_an_s3_event_is_dead_lettered_from_the_ingest_queue(home: Path) -> None:
    s = settings(home, queue__max_receive_count=5)
    lake = Lake.open(s)
    mid = lake.ingest_queue.send('{"not": "an event"}')
    summary = run(s)
    reason = "MessageError: not an S3 event: no 'Records' (and not s3:TestEvent or EventBridge)"
    assert (summary["failures"], summary["errors"]) == (1, [f"ingest {mid}: {reason}"])
    assert lake.ingest_queue.counts() == QueueCounts(0, 0, 0)
    assert lake.ingest_queue.dlq is not None
    [dead] = lake.ingest_queue.dlq.peek()
    assert (dead.message_id, dead.body, dead.attributes[DEAD_LETTER_REASON]) == (
        mid, '{"not": "an event"}', reason)


def test_a_data_error_in_a_stage_is_dead_lettered_and_loads_once_after_a_redrive(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = settings(home, queue__max_receive_count=5)
    lake = Lake.open(s)
    land(lake, "shipments/a.jsonl", jsonl("a", 30))
    land(lake, "shipments/b.jsonl", jsonl("b", 12))
    original = Transformer.start
    calls: list[str] = []

    def start(self: Transformer, msg: ChunkMessage) -> PendingChunk:
        calls.append(msg.key)
        if msg.key == "shipments/b.jsonl":
            raise DataError(f"{msg.key}: unusable", "SCHEMA_ERROR")
        return original(self, msg)

    monkeypatch.setattr(Transformer, "start", start)
    summary = run(s)
    assert calls == ["shipments/a.jsonl", "shipments/b.jsonl"]  # b was tried exactly once
    assert (summary["failures"], summary["loaded"]) == (1, 30)
    assert summary["errors"][0].endswith(": DataError: shipments/b.jsonl: unusable")
    assert lake.transform_queue.counts() == QueueCounts(0, 0, 0)
    dlq = lake.transform_queue.dlq
    assert dlq is not None
    [dead] = dlq.peek()
    assert dead.attributes[DEAD_LETTER_REASON] == "DataError: shipments/b.jsonl: unusable"
    assert ChunkMessage.from_json(dead.body).key == "shipments/b.jsonl"

    monkeypatch.setattr(Transformer, "start", original)  # the fix
    assert dlq.redrive() == 1
    again = run(s)
    assert (again["failures"], again["loaded"]) == (0, 12)
    assert dlq.counts() == QueueCounts(0, 0, 0)
    assert query(lake, "SELECT count(*), count(DISTINCT shipment_id) FROM silver.shipments") == [(42, 42)]


@pytest.mark.parametrize("error", [TransientError("the disk is busy"), OSError("flaky disk")])
def test_transient_and_unexpected_failures_are_retried_until_they_load(
    home: Path, monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    s = settings(home, queue__max_receive_count=5)
    lake = Lake.open(s)
    land(lake, "shipments/t.jsonl", jsonl("t", 25))
    original = Transformer.finish
    calls: list[str] = []

    def finish(self: Transformer, pending: PendingChunk) -> Any:
        calls.append(pending.msg.key)
        if len(calls) == 1:  # fails once, then works
            raise error
        return original(self, pending)

    monkeypatch.setattr(Transformer, "finish", finish)
    summary = run(s)
    assert calls == ["shipments/t.jsonl", "shipments/t.jsonl"]
    # a transient fault is not the message's: deferred uncharged, not counted as a failure
    failed = 0 if isinstance(error, TransientError) else 1
    assert (summary["failures"], summary["chunks"], summary["loaded"], summary["rejected"]) == (failed, 1, 25, 0)
    assert summary["transient_retries"] == 1 - failed
    assert (summary["transient_error"] if failed == 0 else summary["errors"][0]).endswith(f": {reason_of(error)}")
    assert query(lake, "SELECT count(*), count(DISTINCT shipment_id) FROM silver.shipments") == [(25, 25)]
    assert lake.transform_queue.counts() == QueueCounts(0, 0, 0)
    assert lake.transform_queue.dlq is not None
    assert lake.transform_queue.dlq.counts() == QueueCounts(0, 0, 0)
