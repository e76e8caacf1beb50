"""Faults injected at random points of put, ingest, transform, publish and promotion (issue 16,
part 10): whatever write fails, the lake ends exactly once.

:class:`RandomFaults` wraps the lake's real store adapter and makes each write (``put``,
``put_file``, ``copy``, ``delete``, in any zone) fail with ``OSError(ENOSPC)`` at random (seeded).
Each round lands a shipments file and a transactions file through that store, drives a real
worker (ingest, transform, publish: a transient fault defers the message, uncharged) until the
queues are empty, runs the transactions batch and promotes it — a step that fails is simply run
again, as the next ``lakeline run`` would. When the faults stop, every shipments line is loaded
once or rejected once, the DLQ is empty, every valid transaction is in exactly one complete run
and ``current/`` holds the last run's rows once.

``make test`` runs a few rounds; ``make soak`` many (``LAKELINE_SOAK_ROUNDS``).
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import orjson
import pytest

from lakeline import landing
from lakeline.lake import Lake
from lakeline.pipelines.registry import registry
from lakeline.pipelines.transactions.job import TABLE, execute_run, pending_files
from lakeline.ports.objectstore import ObjectInfo, ObjectStore
from lakeline.promotion.promote import current_files, promote
from lakeline.promotion.runs import list_runs
from lakeline.runner import Worker
from tests.faults.conftest import Case
from tests.faults.test_commit_points import FailingStore
from tests.functional.helpers import query, rec, settings

T = TypeVar("T")
HEADER = "TransactionID,CustomerID,TransactionAmount,Currency,TransactionTimestamp\n"


class RandomFaults(FailingStore):
    """The lake's store adapter with every write failing at random with probability ``p``
    (``OSError(ENOSPC)``) while :attr:`armed`; counts writes and failures by operation."""

    def __init__(self, inner: ObjectStore, p: float, seed: int) -> None:
        super().__init__(inner, "", "")
        self.p, self.rng, self.armed = p, random.Random(seed), True
        self.writes = 0
        self.by_op: dict[str, int] = {}

    def _fail(self, op: str, zone: str, key: str) -> None:
        self.writes += 1
        if self.armed and self.rng.random() < self.p:
            self.by_op[op] = self.by_op.get(op, 0) + 1
            self.failed.append(f"{op} {zone}/{key}")
            raise OSError(28, "No space left on device (injected)", key)

    def put(self, zone: str, key: str, data: bytes) -> ObjectInfo:
        self._fail("put", zone, key)
        return self.inner.put(zone, key, data)

    def put_file(self, zone: str, key: str, path: Path, *, move: bool = False) -> ObjectInfo:
        self._fail("put_file", zone, key)
        return self.inner.put_file(zone, key, path, move=move)

    def copy(self, src_zone: str, src_key: str, dst_zone: str, dst_key: str) -> ObjectInfo:
        self._fail("copy", dst_zone, dst_key)
        return self.inner.copy(src_zone, src_key, dst_zone, dst_key)

    def delete(self, zone: str, key: str) -> None:
        self._fail("delete", zone, key)
        self.inner.delete(zone, key)


def _until_done(step: Callable[[], T], tries: int = 200) -> T:
    """Run ``step`` again after each injected fault (what the next `lakeline run` does)."""
    for _ in range(tries):
        try:
            return step()
        except OSError as exc:
            if "injected" not in str(exc):
                raise
    raise AssertionError(f"{step} failed {tries} times in a row")


def _drain(lake: Lake, worker: Worker, deadline_s: float = 120.0) -> None:
    """Step the worker until both queues are empty (deferred messages wait out their delay)."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if worker.step() == 0:
            if lake.ingest_queue.counts().total + lake.transform_queue.counts().total == 0:
                return
            time.sleep(0.1)
    raise AssertionError("the queues did not drain")


def _shipments(rng: random.Random, r: int) -> tuple[bytes, int, int]:
    lines, good, bad = [], 0, 0
    for i in range(rng.randint(200, 1500)):
        if rng.random() < 0.02:
            lines.append(b'{"record_type": "shipments", broken')
            bad += 1
        else:
            lines.append(orjson.dumps(rec(shipment_id=f"r{r:03d}-{i:05d}", event_time=f"2026-01-0{1 + i % 5}T10:00:00Z")))
            good += 1
    return b"\n".join(lines) + b"\n", good, bad


def _transactions(r: int) -> tuple[bytes, int]:
    rows = [f"T{r:03d}-{i},C{i},{i}.50,EUR,2024-0{1 + i % 3}-05T10:00:00Z\n" for i in range(20)]
    rows.append(f"T{r:03d}-x,C1,abc,EUR,2024-01-05T10:00:00Z\n")  # a TYPE_ERROR each round
    return (HEADER + "".join(rows)).encode(), 20


def _storm(home: Path, fault: Case, rounds: int, p: float) -> None:
    fault(f"{rounds} rounds of random write faults (p={p}) in put, ingest, transform, publish, "
          "transactions runs and promotion",
          expected="every failed step succeeds when run again; at the end every line loaded or rejected "
                   "exactly once, DLQ empty, every valid transaction in one complete run, the last run "
                   "promoted once")
    lake = Lake.open(settings(home, ingest__chunk_bytes=8192, queue__transient_backoff_max=1.0,
                              queue__retry_delay=0.0))
    store = RandomFaults(lake.store, p, seed=rounds)
    lake.store = store
    rng = random.Random(rounds + 1)
    worker = Worker(lake, registry(lake.settings))
    good = bad = valid = 0
    now = datetime(2026, 1, 29, 12, 0, 0, tzinfo=UTC)
    try:
        for r in range(rounds):
            body, g, b = _shipments(rng, r)
            good, bad = good + g, bad + b
            key = f"shipments/storm/r{r:03d}.jsonl"
            _until_done(lambda key=key, body=body: lake.store.put("landing", key, body))
            landing.announce(lake, key)
            csv, v = _transactions(r)
            valid += v
            _until_done(lambda r=r, csv=csv: lake.store.put("landing", f"transactions/r{r:03d}.csv", csv))
            _drain(lake, worker)
            when = now + timedelta(hours=r)
            _until_done(lambda when=when: execute_run(lake, pending_files(lake), now=when) if pending_files(lake)
                        else None)
            _until_done(lambda: promote(lake, {"silver_prefix": TABLE, "schema_version": "v1"}))
        store.armed = False
        _drain(lake, worker)
    finally:
        worker.close()
    [(rows, ids, lines)] = query(lake, "SELECT count(*), count(DISTINCT shipment_id), "
                                       "count(DISTINCT (_source.key, _source.line_no)) FROM silver.shipments")
    [(rejects, distinct_rejects)] = query(lake, "SELECT count(*), count(DISTINCT (key, line_no)) FROM "
                                                "quarantine.rejects WHERE pipeline = 'shipments'")
    promoted = current_files(lake, TABLE)
    [(t_rows, t_ids)] = query(lake, "SELECT count(*), count(DISTINCT \"TransactionID\") FROM read_parquet(["
                                    + ", ".join(f"'{lake.store.local_path('silver', k)}'" for k in promoted) + "])")
    complete = [k for r in list_runs(lake, TABLE) if r.complete for f in r.folders for k in f.parquet]
    [(runs_rows, runs_ids)] = query(lake, 'SELECT count(*), count(DISTINCT "TransactionID") FROM read_parquet(['
                                    + ", ".join(f"'{lake.store.local_path('silver', k)}'" for k in complete) + "])")
    dlq = lake.transform_queue.dlq
    fault.saw(f"{store.writes} writes, {len(store.failed)} failed {dict(sorted(store.by_op.items()))}; "
              f"shipments {rows}/{good} loaded, {rejects}/{bad} rejected; transactions {runs_rows}/{valid} in "
              f"complete runs, {t_rows}/20 promoted (the last run); "
              f"DLQ {dlq.counts().total if dlq else 0}")
    assert len(store.failed) >= rounds // 2, "the storm must actually inject faults"
    assert (rows, ids, lines) == (good, good, good)
    assert (rejects, distinct_rejects) == (bad, bad)
    assert dlq is not None and dlq.counts().total == 0
    assert (runs_rows, runs_ids) == (valid, valid)
    assert (t_rows, t_ids) == (20, 20)  # current/ holds the last run's partitions, once


def test_random_write_faults_end_exactly_once(home: Path, fault: Case) -> None:
    _storm(home, fault, rounds=4, p=0.06)


@pytest.mark.soak
def test_soak_random_write_faults(home: Path, fault: Case) -> None:
    _storm(home, fault, rounds=int(os.environ.get("LAKELINE_SOAK_ROUNDS", "60")), p=0.06)
