"""`serve` wakes when work arrives and sleeps when there is none (issue 18, part 5).

Serve's work loop waits on the local queue database (``runner.QueueBell``, inotify) instead of
sleeping ``runner.poll_interval``. These tests set that interval to an hour, so a loop that
only slept could not pick anything up while the test runs, and count the loop's iterations
through ``runner.run``'s own ``stop_flag`` (called once per iteration) to show that an idle
serve does not spin. How fast it is, is measured by ``bench/bench_latency.py``, not here.
"""

from __future__ import annotations

import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import lakeline
from lakeline import runner
from lakeline.pipelines.shipments import gen

HOUR = 3600.0
#: how long the tests wait for something that should happen (never asserted as a time)
PATIENCE_S = 60.0



def _has_inotify() -> bool:
    bell = runner.QueueBell(Path(tempfile.gettempdir()) / "queue.db")
    try:
        return bell.fd >= 0
    finally:
        bell.close()


pytestmark = pytest.mark.skipif(not _has_inotify(), reason="no inotify here: the loop sleeps poll_interval")


class Loop:
    """``runner.run(forever=True)`` -- what ``lakeline serve`` runs -- in a thread, counting the
    iterations of its work loop (each calls ``stop_flag`` once)."""

    def __init__(self, lake: Any) -> None:
        self.lake = lake
        self.iterations = 0
        self.stop = threading.Event()
        self.summary: dict[str, Any] = {}
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _stop_flag(self) -> bool:
        self.iterations += 1
        return self.stop.is_set()

    def _run(self) -> None:
        self.summary = runner.run(self.lake.settings, forever=True, stop_flag=self._stop_flag)

    def __enter__(self) -> Loop:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        # the loop may be waiting for an hour: a write to the queue wakes it, and it stops
        self.lake.transform_queue.send('{"wake": "stop"}')
        self.thread.join(PATIENCE_S)
        assert not self.thread.is_alive(), "serve's loop did not stop after a queue write"


def count(lake: Any) -> int:
    return int(lakeline.query(lake, "SELECT count(*) AS n FROM silver.shipments").column("n")[0].as_py())


def wait_until(predicate: Any) -> bool:
    deadline = time.monotonic() + PATIENCE_S
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def lake(home: Path) -> Any:
    return lakeline.open_lake(home, create=True, settings={
        "runner.poll_interval": HOUR, "runner.watch_interval": HOUR, "runner.settle_seconds": 0.0})


def test_a_put_file_is_published_without_waiting_for_the_poll_interval(lake: Any, tmp_path: Path) -> None:
    with Loop(lake) as loop:
        assert wait_until(lambda: loop.iterations >= 2)  # started: first look, first landing scan
        for i, n in enumerate((1000, 250)):
            path = tmp_path / f"shipments-{i}.jsonl"
            gen.write("shipments", n, path, seed=i)
            lakeline.put(lake, path, pipeline="shipments")
            expected = 1000 if i == 0 else 1250
            assert wait_until(lambda e=expected: _count_or_zero(lake) == e), \
                f"serve (poll interval: one hour) did not publish file {i}"
    assert loop.summary["loaded"] == 1250
    assert loop.summary["failures"] == 0


def test_idle_serve_does_not_spin(lake: Any, tmp_path: Path) -> None:
    with Loop(lake) as loop:
        path = tmp_path / "shipments.jsonl"
        gen.write("shipments", 100, path, seed=3)
        lakeline.put(lake, path, pipeline="shipments")
        assert wait_until(lambda: _count_or_zero(lake) == 100)
        time.sleep(2 * runner.QueueBell.HOT)  # past the short re-checks that follow the last write
        before = loop.iterations
        time.sleep(1.0)
        idle = loop.iterations - before
    # with an hour to wait and nothing written, the loop does not go round; a loop that polled
    # the queue every few milliseconds would have gone round hundreds of times
    assert idle <= 2, f"the idle loop went round {idle} times in a second"


def test_the_bell_rings_on_a_queue_write_and_not_otherwise(lake: Any) -> None:
    bell = runner.QueueBell(lake.ingest_queue.db.path)
    try:
        assert bell.fd >= 0
        assert bell.wait(0.05) is False  # nothing written: the wait runs out
        writer = threading.Timer(0.05, lambda: lakeline.open_lake(lake.settings.home).ingest_queue.send("{}"))
        writer.start()
        assert bell.wait(PATIENCE_S) is True  # another connection's write ends the wait
        writer.join()
        assert bell.rings == 1
        while bell.wait(0.05):  # whatever else that write touched (the WAL's index, a checkpoint)
            pass
        lake.state.put("seen", "some key", {"at": 0})  # another database in the same directory
        assert bell.wait(0.05) is False
    finally:
        bell.close()


def _count_or_zero(lake: Any) -> int:
    try:
        return count(lake)
    except Exception:  # the table does not exist before the first file is published
        return 0
