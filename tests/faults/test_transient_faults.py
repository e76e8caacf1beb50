"""Transient faults heal themselves (issue 16, part 2).

A full disk, a read-only zone, a locked database or a throttled AWS call is not the message's
fault: its chunks wait, uncharged, with a growing jittered backoff instead of reaching the DLQ
within seconds. `lakeline run` gives up after `queue.transient_give_up_after` seconds, exits 1
and says what is waiting; once the fault is fixed the next `run` (or `serve` by itself) loads
everything exactly once, with no `dlq redrive`. The faults are real: an immutable silver zone
(`chattr +i`) and a full tmpfs mounted on it.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest

from lakeline import transient
from lakeline.config import ZONES
from lakeline.errors import ConfigError, DataError, LockedError, MessageError, TransientError
from lakeline.lake import Lake
from lakeline.runner import waiting, work_loop
from tests.faults.conftest import Case
from tests.functional.helpers import land, query, rec, settings

LAKELINE = str(Path(sys.executable).with_name("lakeline"))
GIVE_UP = 3  # seconds `run` keeps retrying in these tests
ENV = {"LAKELINE__QUEUE__RETRY_DELAY": "0", "LAKELINE__RUNNER__POLL_INTERVAL": "0.05",
       "LAKELINE__INGEST__CHUNK_BYTES": "4096", "LAKELINE__QUEUE__TRANSIENT_GIVE_UP_AFTER": str(GIVE_UP),
       "LAKELINE__QUEUE__TRANSIENT_BACKOFF_MAX": "2"}


def _land(home: Path, files: int = 2, per_file: int = 150) -> tuple[Lake, int]:
    lake = Lake.open(settings(home, ingest__chunk_bytes=4096))
    for f in range(files):
        lines = [orjson.dumps(rec(shipment_id=f"t{f}-{i:04d}")) for i in range(per_file)]
        land(lake, f"shipments/transient/f{f}.jsonl", b"\n".join(lines) + b"\n")
    return lake, files * per_file


def _cli(home: Path, *args: str, extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **ENV, **(extra or {})}
    return subprocess.run([LAKELINE, "--home", str(home), *args], env=env, capture_output=True, text=True,
                          timeout=120)


def _run_json(home: Path, workers: int = 1) -> tuple[int, dict[str, Any]]:
    p = _cli(home, "run", "--json", "--workers", str(workers))
    return p.returncode, json.loads(p.stdout)


def _status(home: Path) -> dict[str, Any]:
    p = _cli(home, "status", "--json")
    assert p.returncode == 0, p.stderr
    return dict(json.loads(p.stdout))


def _dlq_total(lake: Lake) -> int:
    return sum(q.dlq.counts().total for q in (lake.ingest_queue, lake.transform_queue) if q.dlq is not None)


def _loaded(lake: Lake) -> list[tuple[Any, ...]]:
    return query(lake, "SELECT count(*), count(DISTINCT shipment_id) FROM silver.shipments")


@contextmanager
def _immutable(path: Path) -> Iterator[None]:
    subprocess.run(["chattr", "+i", str(path)], check=True)
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


def _chunks(lake: Lake) -> int:
    return lake.transform_queue.counts().total


@pytest.mark.parametrize("workers", [1, 2])
def test_read_only_silver_zone_waits_then_loads_without_redrive(home: Path, fault: Case, workers: int) -> None:
    fault(f"silver zone immutable (chattr +i) during `run --workers {workers}`",
          expected="nothing in the DLQ; run exits 1 naming the waiting messages; after the fix the next "
                   "run loads every row once")
    lake, rows = _land(home)
    with _immutable(home / "zones" / "silver"):
        started = time.monotonic()
        code, summary = _run_json(home, workers)
        took = time.monotonic() - started
        waiting_chunks = _chunks(lake)
        status = _status(home)
        dead = _dlq_total(lake)
    waiting = [f for f in summary.get("failed", []) if "waiting" in f["what"]]
    fault.saw(f"run exit {code} after {took:.1f} s, waiting {summary.get('waiting')}, DLQ {dead}, "
              f"failures {summary['failures']}")
    assert code == 1
    assert dead == 0 and summary["dead_lettered"] == 0
    assert summary["failures"] == 0  # transient tries are not charged as message failures
    assert summary["waiting"] == waiting_chunks > 0
    assert summary["transient_retries"] >= waiting_chunks
    assert "Operation not permitted" in summary["transient_error"]
    assert len(waiting) == 1 and waiting[0]["what"] == f"{waiting_chunks} message(s) waiting"
    assert waiting[0]["command"] == "lakeline status"
    assert GIVE_UP <= took < GIVE_UP + 30
    health = [f for f in status["failures"] if "transient fault" in f["what"]]
    assert len(health) == 1, status["failures"]
    assert health[0]["what"].startswith(f"{waiting_chunks} message(s) waiting on a transient fault since ")
    assert "Operation not permitted" in health[0]["error"]
    # the fault is fixed: the next run loads everything, exactly once, with no redrive
    code, summary = _run_json(home, workers)
    assert code == 0, summary
    assert (summary["waiting"], summary["dead_lettered"], summary["failures"]) == (0, 0, 0)
    assert _loaded(lake) == [(rows, rows)]
    assert _dlq_total(lake) == 0 and lake.transform_queue.counts().total == 0
    assert not [f for f in _status(home)["failures"] if "transient fault" in f["what"]]


@contextmanager
def _full_tmpfs(path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs on ``path`` (the zone directories made again on it); fill it up with
    :func:`_fill` and remove the filler to fix the fault. The whole ``zones`` directory is
    mounted, not one zone: the local store renames its temp files (``zones/.tmp``) into place,
    which cannot cross filesystems."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(path)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr!r}")
    try:
        for zone in ZONES:
            (path / zone).mkdir()
        yield path / "filler"
    finally:
        subprocess.run(["umount", str(path)], check=True)


def _fill(filler: Path) -> None:
    with open(filler, "wb", buffering=0) as fh:  # unbuffered: close has nothing left to write
        try:
            while True:
                fh.write(b"\0" * 4096)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC


def test_full_disk_waits_then_loads_after_space_is_freed(home: Path, fault: Case) -> None:
    fault("zones on a full tmpfs during `run`",
          expected="ENOSPC is transient: nothing in the DLQ, run exits 1 with messages waiting; "
                   "after freeing space the next run loads every row once")
    with _full_tmpfs(home / "zones") as filler:
        lake, rows = _land(home)
        _fill(filler)
        code, summary = _run_json(home)
        dead = _dlq_total(lake)
        left = waiting(lake)
        fault.saw(f"run exit {code}, waiting {summary.get('waiting')}, DLQ {dead}, "
                  f"error {summary.get('transient_error', '')[-30:]!r}")
        assert code == 1
        assert dead == 0
        assert summary["waiting"] == left > 0
        assert "No space left on device" in summary["transient_error"]
        filler.unlink()  # space is back
        code, summary = _run_json(home)
        assert code == 0, summary
        assert _loaded(lake) == [(rows, rows)]
        assert _dlq_total(lake) == 0 and waiting(lake) == 0


@pytest.mark.soak
def test_serve_keeps_retrying_and_heals_by_itself(home: Path, fault: Case) -> None:
    fault("silver zone immutable while `serve` runs, then fixed",
          expected="serve keeps retrying, status shows the transient condition, nothing in the DLQ; "
                   "after the fix serve loads every row once by itself")
    lake, rows = _land(home)
    env = dict(os.environ, **ENV, LAKELINE__RUNNER__WATCH_INTERVAL="0.2")
    silver = home / "zones" / "silver"
    subprocess.run(["chattr", "+i", str(silver)], check=True)
    proc = subprocess.Popen([LAKELINE, "--home", str(home), "serve"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        health: list[dict[str, Any]] = []
        while time.monotonic() < deadline and not health:
            time.sleep(0.5)
            health = [f for f in _status(home)["failures"] if "transient fault" in f["what"]]
        time.sleep(GIVE_UP + 1)  # longer than `run` would have waited: serve must still be at it
        dead_while_broken = _dlq_total(lake)
        subprocess.run(["chattr", "-i", str(silver)], check=True)
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline and _chunks(lake):
            time.sleep(0.5)
        alive = proc.poll() is None
        left = _chunks(lake)
        fault.saw(f"status showed {len(health)} transient entry; DLQ {dead_while_broken}; "
                  f"{left} chunks left after the fix; serve alive {alive}")
        assert len(health) == 1
        assert dead_while_broken == 0
        assert left == 0 and alive
        assert _loaded(lake) == [(rows, rows)]
        assert not [f for f in _status(home)["failures"] if "transient fault" in f["what"]]
    finally:
        subprocess.run(["chattr", "-i", str(silver)], check=False)
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_poison_still_goes_to_the_dlq_at_once(home: Path, fault: Case) -> None:
    fault("a message that is not a chunk, beside a transient fault",
          expected="the message's own fault: DLQ on its first receive; the good file waits, uncharged")
    lake, rows = _land(home, files=1, per_file=50)
    lake.transform_queue.send('{"not": "a chunk"}')
    with _immutable(home / "zones" / "silver"):
        code, summary = _run_json(home)
        dead = lake.transform_queue.dlq.counts().total if lake.transform_queue.dlq else -1
        chunks = _chunks(lake)
    fault.saw(f"run exit {code}, dead-lettered {summary['dead_lettered']}, waiting {summary['waiting']}")
    assert code == 1
    assert (summary["dead_lettered"], dead, summary["failures"]) == (1, 1, 1)
    assert summary["waiting"] == chunks > 0  # the good file's chunks, none in the DLQ
    code, summary = _run_json(home)
    assert code == 0
    assert _loaded(lake) == [(rows, rows)]


def test_a_recorded_condition_ends_with_the_next_success(home: Path, fault: Case) -> None:
    fault("`serve` started after a `run` gave up, the fault fixed",
          expected="the first message through clears the condition `status` shows")
    lake, rows = _land(home, files=1, per_file=20)
    transient.record_waiting(lake.settings.state_dir, error="transform m1: OSError: disk full", retry_in_s=0,
                             waiting=1)
    before = transient.read_health(lake.settings.state_dir)
    stats = work_loop(lake.settings)  # what each worker of `serve` runs
    after = transient.read_health(lake.settings.state_dir)
    fault.saw(f"recorded {before is not None}; after {stats.loaded} rows loaded: {after}")
    assert before is not None and before["waiting"] == 1
    assert stats.loaded == rows
    assert after is None


@pytest.mark.parametrize(("exc", "expected"), [
    (OSError(errno.ENOSPC, "No space left on device"), True),
    (OSError(errno.EROFS, "Read-only file system"), True),
    (OSError(errno.EACCES, "Permission denied"), True),
    (OSError(errno.EDQUOT, "Disk quota exceeded"), True),
    (PermissionError(errno.EPERM, "Operation not permitted"), True),
    (sqlite3.OperationalError("database is locked"), True),
    (LockedError("claim held"), True),
    (TransientError("throttled"), True),
    (RuntimeError("IO Error: No space left on device"), True),  # DuckDB / Arrow wrap the errno text
    (FileNotFoundError(errno.ENOENT, "No such file or directory"), False),
    (sqlite3.OperationalError("no such table: x"), False),
    (ValueError("bad value"), False),
    (DataError("unusable", "SCHEMA_ERROR"), False),
    (MessageError("not a chunk"), False),
])
def test_classification(exc: BaseException, expected: bool, fault: Case) -> None:
    fault(f"classify {type(exc).__name__}: {exc}", expected="transient" if expected else "not transient")
    got = transient.is_transient(exc)
    fault.saw("transient" if got else "not transient")
    assert got is expected


def test_classification_follows_the_cause_chain(fault: Case) -> None:
    fault("an adapter error raised from ENOSPC", expected="transient (the cause counts)")
    try:
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError as inner:
            raise RuntimeError("writing the batch failed") from inner
    except RuntimeError as outer:
        got = transient.is_transient(outer)
    fault.saw("transient" if got else "not transient")
    assert got is True


def test_throttled_aws_call_is_transient(fault: Case) -> None:
    from botocore.exceptions import ClientError  # heavy: botocore

    fault("botocore ThrottlingException / HTTP 503", expected="transient")
    throttled = ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"},
                             "ResponseMetadata": {"HTTPStatusCode": 400}}, "PutItem")
    unavailable = ClientError({"Error": {"Code": "Whatever", "Message": "x"},
                               "ResponseMetadata": {"HTTPStatusCode": 503}}, "GetObject")
    denied = ClientError({"Error": {"Code": "AccessDenied", "Message": "no"},
                          "ResponseMetadata": {"HTTPStatusCode": 403}}, "GetObject")
    got = [transient.is_transient(e) for e in (throttled, unavailable, denied)]
    fault.saw(f"throttled, 503, 403 -> {got}")
    assert got == [True, True, False]


def test_backoff_grows_with_jitter_up_to_the_ceiling(fault: Case) -> None:
    import random

    fault("backoff of transient retries", expected="1, 2, 4, … s jittered down by up to half, capped at the ceiling")
    rng = random.Random(3)
    waits = [[transient.backoff(n, base=0.0, ceiling=300, rng=rng) for n in range(1, 13)] for _ in range(50)]
    fault.saw(f"first try {sorted({w[0] for w in waits})}, 10th {min(w[9] for w in waits)}.."
              f"{max(w[9] for w in waits)}, 12th max {max(w[11] for w in waits)}")
    assert {w[0] for w in waits} == {1}
    for n in range(2, 10):  # attempt n waits within [2**(n-1) / 2, 2**(n-1)]
        assert all(2 ** (n - 1) / 2 - 0.5 <= w[n - 1] <= 2 ** (n - 1) for w in waits)
    assert all(150 <= w[11] <= 300 for w in waits)  # 2**11 capped at 300, jittered
    assert len({w[8] for w in waits}) > 10  # jitter: workers do not retry in lockstep


@pytest.mark.parametrize(("key", "value"), [
    ("transient_backoff_max", "0"), ("transient_backoff_max", "nan"), ("transient_backoff_max", "901"),
    ("transient_give_up_after", "-1"), ("transient_give_up_after", "inf"),
])
def test_bad_transient_settings_are_config_errors(home: Path, key: str, value: str, fault: Case) -> None:
    fault(f"queue.{key} = {value}", expected="exit 2 naming the key")
    p = _cli(home, "status", extra={f"LAKELINE__QUEUE__{key.upper()}": value})
    fault.saw(f"exit {p.returncode}: {p.stderr.strip()[-90:]}")
    assert p.returncode == 2
    assert f"queue.{key} must be" in p.stderr
    assert "Traceback" not in p.stderr
    with pytest.raises(ConfigError, match=f"queue.{key} must be"):
        settings(home, **{f"queue__{key}": float(value)})
