"""Durability of the local queue: concurrent worker processes and ``kill -9`` mid-send."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from lakeline.adapters.local.queue import SCHEMA, open_queue_pair
from lakeline.adapters.local.sqlite import Database
from lakeline.config import QueueSettings
from lakeline.ports import QueueCounts

REPO = Path(__file__).resolve().parents[2]
MESSAGES = 2_000
WORKERS = 4


def _consume(db_path: str, name: str, out_path: str, start: Any) -> None:
    """Worker process: receive and delete until nothing is visible; write the ids received."""
    queue = open_queue_pair(Path(db_path), name, QueueSettings(visibility_timeout=180))
    queue.counts()  # open the database before the race starts
    start.wait(60)  # a barrier: every worker starts receiving at the same moment
    got: list[str] = []
    while True:
        messages = queue.receive(10, wait_seconds=0.2)
        if not messages:
            # SQLite's lock is not fair: a worker may wait while others drain the queue, so
            # stop only once every message is deleted, not at the first empty receive.
            if queue.counts().total == 0:
                break
            continue
        for message in messages:
            got.append(message.message_id)
            time.sleep(0.001)  # "process" it: real workers do not hammer the lock
            queue.delete(message.receipt_handle)
    Path(out_path).write_text("\n".join(got), "utf-8")


def test_concurrent_processes_consume_each_message_once(tmp_path: Path) -> None:
    db_path = tmp_path / "queue.db"
    queue = open_queue_pair(db_path, "ingest", QueueSettings())
    sent: list[str] = []
    for start in range(0, MESSAGES, 10):
        sent += queue.send_batch([f"message {i}" for i in range(start, start + 10)])
    assert len(set(sent)) == MESSAGES
    assert queue.counts() == QueueCounts(visible=MESSAGES, in_flight=0, delayed=0)

    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(WORKERS)
    outs = [tmp_path / f"worker-{n}.txt" for n in range(WORKERS)]
    procs = [
        ctx.Process(target=_consume, args=(str(db_path), "ingest", str(out), barrier)) for out in outs
    ]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(60)
        assert proc.exitcode == 0
    per_worker = [[line for line in out.read_text("utf-8").splitlines() if line] for out in outs]
    consumed = [mid for ids in per_worker for mid in ids]
    assert len(consumed) == MESSAGES  # nobody got a message another worker had in flight
    assert sorted(consumed) == sorted(sent)
    assert all(per_worker)  # every worker took a share: they really ran concurrently
    assert queue.counts() == QueueCounts(visible=0, in_flight=0, delayed=0)
    assert queue.peek(10) == []
    assert queue.db.integrity_check() == "ok"
    queue.db.close()


SENDER = """
import sys
from pathlib import Path
from typing import Any
from lakeline.adapters.local.queue import open_queue_pair
from lakeline.config import QueueSettings

queue = open_queue_pair(Path(sys.argv[1]), "ingest", QueueSettings())
print("ready", flush=True)
i = 0
while True:
    if i % 2:
        ids = [queue.send(f"message {i}")]
    else:
        ids = queue.send_batch([f"message {i}.{j}" for j in range(3)])
    print("\\n".join(ids), flush=True)
    i += 1
"""


def test_kill_9_loses_no_acknowledged_send(tmp_path: Path) -> None:
    db_path = tmp_path / "queue.db"
    proc = subprocess.Popen(
        [sys.executable, "-c", SENDER, str(db_path)],
        stdout=subprocess.PIPE, text=True, cwd=REPO,
    )
    lines: list[str] = []
    assert proc.stdout is not None
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)  # type: ignore[arg-type]
    reader.start()
    deadline = time.monotonic() + 30
    while "ready\n" not in lines[:1] and time.monotonic() < deadline:
        time.sleep(0.01)
    assert lines[:1] == ["ready\n"], "the sender did not start"
    time.sleep(0.5)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    reader.join(10)
    assert proc.returncode == -signal.SIGKILL
    # Only whole lines were acknowledged: a line cut by the kill is not a report.
    reported = {line.strip() for line in lines[1:] if line.endswith("\n")}
    assert len(reported) > 10

    db = Database(db_path, SCHEMA)
    assert db.integrity_check() == "ok"
    queue = open_queue_pair(db_path, "ingest", QueueSettings())
    stored = {m.message_id for m in queue.peek(1_000_000)}
    assert reported <= stored  # every send that returned survived the kill
    assert len(stored - reported) <= 3  # at most one batch committed but not yet reported
    assert queue.counts() == QueueCounts(visible=len(stored), in_flight=0, delayed=0)
    got = queue.receive(10)
    assert len(got) == min(10, len(stored))  # the queue still works after recovery
    db.close()
    queue.db.close()
