"""Queue backend fixture for the queue contract suite.

``queue_backend`` is parametrised by backend name and yields a :class:`QueueFactory`: calling
it builds a queue (with its DLQ attached) on that backend. Time moves through
``factory.clock.advance(seconds)``: on the local backend the clock is injected, so nothing
sleeps; a backend that cannot take an injected clock (e.g. ``"aws"``) would make ``advance``
sleep for real, which is why the contract tests use short timeouts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from lakeline.adapters.local.queue import SqliteQueue, open_queue_pair
from lakeline.config import QueueSettings
from lakeline.ports import Queue

QUEUE_BACKENDS = ["local"]
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


class QueueFactory:
    """``make(name, ...) -> Queue`` for one backend; every queue gets ``<name>-dlq`` as DLQ."""

    def __init__(self, backend: str, tmp_path: Path) -> None:
        self.backend = backend
        self.tmp_path = tmp_path
        self.clock = FakeClock()
        self.db_path = tmp_path / "queue.db"
        self._made: list[SqliteQueue] = []

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

    def close(self) -> None:
        for queue in self._made:
            queue.db.close()


@pytest.fixture(params=QUEUE_BACKENDS)
def queue_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[QueueFactory]:
    factory = QueueFactory(request.param, tmp_path)
    yield factory
    factory.close()
