"""Workers die with their parent (issue 16, part 7).

SIGKILL on the `lakeline run --workers 2` parent alone (not its process group) must leave no
worker running: a worker that outlived its parent would go on taking messages while the next
`run` — which holds the runner lock and so believes every other worker dead — releases their
in-flight messages and claims. Then `run` again loads everything exactly once.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from lakeline.lake import Lake
from tests.faults.conftest import Case
from tests.functional.helpers import land, query, rec, settings

#: a parent that starts a grandchild calling die_with_parent, prints its pid, then waits
CHILD = r"""
import subprocess, sys, time
code = ("import os, time; from lakeline.runner import die_with_parent; die_with_parent(os.getppid()); "
        "print('ready', flush=True); time.sleep(60)")
grandchild = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
assert grandchild.stdout.readline() == b"ready\n"
print(grandchild.pid, flush=True)
time.sleep(60)
"""

LAKELINE = str(Path(sys.executable).with_name("lakeline"))
ENV = {"LAKELINE__QUEUE__RETRY_DELAY": "0", "LAKELINE__RUNNER__POLL_INTERVAL": "0.02",
       "LAKELINE__INGEST__CHUNK_BYTES": "16384", "LAKELINE__RUNNER__DUCKDB_THREADS": "1"}


def _stat(pid: int) -> tuple[str, int, int] | None:
    """(state, ppid, session id) of a live process, None when it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2:].split()
    return fields[0], int(fields[1]), int(fields[3])


def _running(pids: set[int]) -> set[int]:
    """The ones still running (a zombie has exited; only its exit status waits to be read)."""
    return {p for p in pids if (s := _stat(p)) is not None and s[0] != "Z"}


def _session(sid: int, but: int) -> set[int]:
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != but and (s := _stat(int(entry))) is not None and s[2] == sid:
            found.add(int(entry))
    return found


def _children(parent: int) -> set[int]:
    return {int(e) for e in os.listdir("/proc") if e.isdigit() and (s := _stat(int(e))) and s[1] == parent}


def test_a_worker_dies_when_its_parent_is_killed(fault: Case) -> None:
    fault("SIGKILL of a process whose child called die_with_parent",
          expected="the kernel kills the child at once (PR_SET_PDEATHSIG)")
    parent = subprocess.Popen([sys.executable, "-c", CHILD], stdout=subprocess.PIPE, start_new_session=True)
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        assert _running({child}) == {child}
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
        killed = time.monotonic()
        while _running({child}) and time.monotonic() - killed < 2:
            time.sleep(0.01)
        alive = _running({child})
        fault.saw(f"child alive {bool(alive)} {time.monotonic() - killed:.2f} s after the parent's SIGKILL")
        assert not alive
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(parent.pid, signal.SIGKILL)


def test_a_worker_started_after_its_parent_died_exits(fault: Case) -> None:
    fault("a worker whose parent died before it asked for the parent-death signal",
          expected="it sees it is orphaned and exits 1")
    code = "import os; from lakeline.runner import die_with_parent; die_with_parent(os.getppid() + 999999); print(1)"
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    fault.saw(f"exit {p.returncode}, stdout {p.stdout!r}")
    assert (p.returncode, p.stdout) == (1, "")


@pytest.mark.soak  # a real run with two workers: over 10 s
def test_sigkill_of_the_parent_leaves_no_worker(home: Path, fault: Case) -> None:
    fault("SIGKILL of the `run --workers 2` parent only",
          expected="no worker of that run left within 2 s; the next run loads everything exactly once")
    lake = Lake.open(settings(home, ingest__chunk_bytes=16384))
    good = 0
    for f in range(4):
        lines = [orjson.dumps(rec(shipment_id=f"k{f:02d}-{i:05d}", event_time=f"2026-01-0{1 + i % 7}T10:00:00Z"))
                 for i in range(1500)]
        land(lake, f"shipments/death/f{f:02d}.jsonl", b"\n".join(lines) + b"\n")
        good += len(lines)
    env = {**os.environ, **ENV}
    proc = subprocess.Popen([LAKELINE, "--home", str(home), "run", "--workers", "2"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        workers: set[int] = set()
        while time.monotonic() < deadline:  # wait until both workers exist and loading has begun
            workers = {p for p in _children(proc.pid)
                       if b"spawn_main" in Path(f"/proc/{p}/cmdline").read_bytes()}
            if len(workers) >= 2 and any((home / "zones" / "silver").rglob("*.parquet")):
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the run finished before it could be killed: land more data"
        os.kill(proc.pid, signal.SIGKILL)  # the parent only, not its process group
        proc.wait()
        killed = time.monotonic()
        left = _session(proc.pid, but=proc.pid)
        while _running(left) and time.monotonic() - killed < 2:
            time.sleep(0.05)
        alive = _running(left)
        fault.saw(f"{len(workers)} workers; {len(alive)} process(es) of the run alive "
                  f"{time.monotonic() - killed:.1f} s after the kill")
        assert len(workers) >= 2
        assert not alive, f"still running: {sorted(alive)}"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # whatever is left of the run, whatever happened
    again = subprocess.run([LAKELINE, "--home", str(home), "run", "--json"], env=env, capture_output=True,
                           text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    assert orjson.loads(again.stdout)["dead_lettered"] == 0
    rows = query(lake, "SELECT count(*), count(DISTINCT shipment_id), "
                       "count(DISTINCT (_source.key, _source.line_no)) FROM silver.shipments")
    assert rows == [(good, good, good)]
    assert lake.transform_queue.counts().total == 0 and lake.ingest_queue.counts().total == 0
