"""Kill workers with SIGKILL at random points; `lakeline run` again loses and duplicates nothing.

Each round starts `lakeline run --workers 2` in its own process group and SIGKILLs the whole
group after a random delay, so kills land in ingest, transform, file moves, SQLite commits
and queue deletes. After the rounds one clean `lakeline run` must leave every line of every
file either loaded exactly once or rejected exactly once, and both databases intact.
Set LAKELINE_SOAK_KILLS for the long soak (`make soak`).

`make test` kills 12 times over 8 files of 750 lines: small enough that the rounds get through
ingest into transform (the kills land in both) and the clean run after has little left to do.
The soak kills 200 times over 24 files of 1,500 lines.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from lakeline.adapters.local.sqlite import Database
from lakeline.lake import Lake
from tests.functional.helpers import land, query, rec, settings

LAKELINE = str(Path(sys.executable).with_name("lakeline"))


def _files(lake: Lake, n_files: int, per_file: int) -> tuple[int, int]:
    rng = random.Random(7)
    good = bad = 0
    for f in range(n_files):
        lines = []
        for i in range(per_file):
            if rng.random() < 0.02:
                lines.append(b'{"record_type": "shipments", broken')
                bad += 1
            else:
                lines.append(orjson.dumps(rec(shipment_id=f"f{f:03d}-{i:05d}",
                                              event_time=f"2026-01-0{1 + i % 7}T10:00:00Z")))
                good += 1
        land(lake, f"shipments/crash/f{f:03d}.jsonl", b"\n".join(lines) + b"\n")
    return good, bad


def _kill_rounds(home: Path, kills: int, env: dict[str, str]) -> int:
    rng = random.Random(11)
    finished_early = 0
    for _ in range(kills):
        proc = subprocess.Popen(
            [LAKELINE, "--home", str(home), "run", "--workers", "2"], env=env,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        time.sleep(rng.uniform(0.3, 1.6))
        if proc.poll() is not None:
            finished_early += 1
            continue
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    return finished_early


def _check(home: Path, lake: Lake, good: int, bad: int) -> None:
    rows = query(lake, "SELECT count(*), count(DISTINCT shipment_id), "
                       "count(DISTINCT (_source.key, _source.line_no)) FROM silver.shipments")
    assert rows == [(good, good, good)]
    rej = query(lake, "SELECT count(*), count(DISTINCT (key, line_no)) FROM quarantine.rejects")
    assert rej == [(bad, bad)]
    for db in ("queue.db", "state.db"):
        assert Database(home / "state" / db, "").integrity_check() == "ok"
    assert lake.transform_queue.counts().total == 0 and lake.ingest_queue.counts().total == 0
    assert lake.transform_queue.dlq.counts().total == 0


@pytest.mark.slow
def test_sigkill_at_random_points_loses_and_duplicates_nothing(home, fault):
    kills = int(os.environ.get("LAKELINE_SOAK_KILLS", "12"))  # make soak: 200
    fault(f"SIGKILL storm: {kills} kills of `run --workers 2` (whole process group) at random points",
          expected="one clean run after: every line loaded or rejected exactly once, both SQLite "
                   "databases intact, queues and DLQ empty")
    s = settings(home, ingest__chunk_bytes=16384)
    lake = Lake.open(s)
    n_files, per_file = (8, 750) if kills <= 12 else (24, 1500)
    good, bad = _files(lake, n_files=n_files, per_file=per_file)
    env = dict(os.environ, LAKELINE__QUEUE__RETRY_DELAY="0", LAKELINE__RUNNER__POLL_INTERVAL="0.01",
               LAKELINE__INGEST__CHUNK_BYTES="16384")
    finished_early = _kill_rounds(home, kills, env)
    final = subprocess.run([LAKELINE, "--home", str(home), "run", "--json"], env=env,
                           capture_output=True, text=True, timeout=300)
    [(rows, distinct)] = query(lake, "SELECT count(*), count(DISTINCT shipment_id) FROM silver.shipments")
    [(rejects,)] = query(lake, "SELECT count(*) FROM quarantine.rejects")
    fault.saw(f"{kills - finished_early} of {kills} kills interrupted a live run; after: {rows} rows "
              f"({distinct} distinct) of {good}, {rejects} rejects of {bad}, final run exit {final.returncode}")
    assert finished_early <= kills // 2, "most kills must interrupt a live run"
    assert final.returncode == 0, final.stderr
    _check(home, lake, good, bad)


@pytest.mark.soak
def test_soak_many_kills(home, fault):
    test_sigkill_at_random_points_loses_and_duplicates_nothing(home, fault)


@pytest.mark.parametrize("point", ["ingest.after_send", "transform.after_silver", "transform.after_ledger"])
def test_crash_at_each_named_point_then_rerun(home, point):
    s = settings(home, ingest__chunk_bytes=2048)
    lake = Lake.open(s)
    good, bad = _files(lake, n_files=2, per_file=200)
    env = dict(os.environ, LAKELINE__QUEUE__RETRY_DELAY="0", LAKELINE__INGEST__CHUNK_BYTES="2048",
               LAKELINE_CRASH_AT=f"{point}:2")
    crashed = subprocess.run([LAKELINE, "--home", str(home), "run"], env=env, capture_output=True)
    assert crashed.returncode == 137
    env.pop("LAKELINE_CRASH_AT")
    again = subprocess.run([LAKELINE, "--home", str(home), "run"], env=env, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    _check(home, lake, good, bad)
