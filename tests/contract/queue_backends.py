"""Queue backend fixture for the queue contract suite.

``queue_backend`` is parametrised by backend name and yields a :class:`QueueFactory`: calling
it builds a queue (with its DLQ attached) on that backend. Time moves through
``factory.clock.advance(seconds)``:

* ``local`` — the clock is injected into the queue, so nothing sleeps.
* ``aws`` — SQS takes no clock; the queues live on the in-process moto server, whose SQS
  clock :class:`MotoSqsClock` shifts forward on ``advance`` (real time keeps flowing, so
  timestamps cannot be compared exactly and long polls still wait for real). Each test gets
  fresh queues with unique names: the queue and its DLQ are wired with a ``RedrivePolicy``
  (``maxReceiveCount`` from the factory argument), exactly as the deploy template does.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from lakeline.adapters.local.queue import SqliteQueue, open_queue_pair
from lakeline.config import QueueSettings
from lakeline.ports import Queue
from tests.aws_server import boto_client, moto_endpoint, unique  # noqa: F401
from tests.contract.store_backends import aws_clients

QUEUE_BACKENDS = ["local", "aws"]
START = 1_700_000_000.0


class FakeClock:
    """A settable clock (epoch seconds) injected into the local queue."""

    fake = True

    def __init__(self, start: float = START) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


class MotoSqsClock:
    """Moto's SQS clock: real time plus an offset that :meth:`advance` grows.

    :meth:`install` patches the two time functions ``moto.sqs.models`` reads (the server runs
    in this process), so visibility timeouts, delays and retention expire without sleeping.
    """

    fake = False

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> float:
        self.offset += seconds
        return self()

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        import moto.sqs.models as sqs_models

        real_seconds = sqs_models.unix_time
        real_millis = sqs_models.unix_time_millis

        def unix_time(dt: Any = None) -> float:
            return float(real_seconds(dt)) + (self.offset if dt is None else 0.0)

        def unix_time_millis(dt: Any = None) -> float:
            return float(real_millis(dt)) + (self.offset * 1000 if dt is None else 0.0)

        monkeypatch.setattr(sqs_models, "unix_time", unix_time)
        monkeypatch.setattr(sqs_models, "unix_time_millis", unix_time_millis)


class QueueFactory:
    """``make(name, ...) -> Queue`` for one backend; every queue gets ``<name>-dlq`` as DLQ."""

    clock: Any

    def __init__(self, backend: str, tmp_path: Path, endpoint: str | None = None) -> None:
        self.backend = backend
        self.tmp_path = tmp_path
        self.endpoint = endpoint
        self.clock = FakeClock() if backend == "local" else MotoSqsClock()
        self.db_path = tmp_path / "queue.db"
        self._made: list[SqliteQueue] = []

    def skip_on(self, backend: str, reason: str) -> None:
        """Skip the running test on ``backend``, with the reason."""
        if self.backend == backend:
            pytest.skip(f"{backend} backend: {reason}")

    def __call__(
        self,
        name: str,
        *,
        visibility_timeout: int = 2,
        max_receive_count: int = 5,
        retention_seconds: int = 345_600,
        clock: Callable[[], float] | None = None,
        dlq: bool = True,
    ) -> Queue:
        if self.backend == "aws":
            return self._make_sqs(name, visibility_timeout, max_receive_count,
                                  retention_seconds, dlq)
        if self.backend != "local":
            raise NotImplementedError(self.backend)
        settings = QueueSettings(
            visibility_timeout=visibility_timeout,
            max_receive_count=max_receive_count,
            retention_seconds=retention_seconds,
        )
        queue = open_queue_pair(self.db_path, name, settings, clock=clock or self.clock)
        if not dlq:
            queue.dlq = None
        self._made.append(queue)
        return queue

    def _make_sqs(self, name: str, visibility_timeout: int, max_receive_count: int,
                  retention_seconds: int, dlq: bool) -> Queue:
        from lakeline.adapters.aws.queue import SqsQueue

        assert self.endpoint is not None
        sqs = boto_client("sqs", self.endpoint)
        base = unique(name)
        attributes = {
            "VisibilityTimeout": str(visibility_timeout),
            "MessageRetentionPeriod": str(retention_seconds),
        }
        dead: SqsQueue | None = None
        client = aws_clients(self.endpoint).sqs
        if dlq:
            dlq_url = sqs.create_queue(
                QueueName=f"{base}-dlq", Attributes={"MessageRetentionPeriod": "1209600"}
            )["QueueUrl"]
            arn = sqs.get_queue_attributes(
                QueueUrl=dlq_url, AttributeNames=["QueueArn"]
            )["Attributes"]["QueueArn"]
            attributes["RedrivePolicy"] = orjson.dumps(
                {"deadLetterTargetArn": arn, "maxReceiveCount": str(max_receive_count)}
            ).decode()
            dead = SqsQueue(client, dlq_url, name=f"{name}-dlq")
        url = sqs.create_queue(QueueName=base, Attributes=attributes)["QueueUrl"]
        return SqsQueue(client, url, name=name, dlq=dead)

    def close(self) -> None:
        for queue in self._made:
            queue.db.close()


@pytest.fixture(params=QUEUE_BACKENDS)
def queue_backend(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[QueueFactory]:
    endpoint = request.getfixturevalue("moto_endpoint") if request.param == "aws" else None
    factory = QueueFactory(request.param, tmp_path, endpoint)
    if isinstance(factory.clock, MotoSqsClock):
        factory.clock.install(monkeypatch)
    yield factory
    factory.close()
