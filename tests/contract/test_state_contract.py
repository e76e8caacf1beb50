"""State store contract: CAS items with TTL, and the idempotency/run/event logs built on them."""
# ruff: noqa: F811  (pytest fixtures imported from store_backends are redefined as arguments)

from __future__ import annotations

import multiprocessing
from pathlib import Path
from typing import Any

import pytest

from lakeline.errors import ConditionFailed
from lakeline.ports import BeginResult, StateStore
from lakeline.ports.state import IDEMPOTENCY
from tests.contract.store_backends import FakeClock, clock, moto_endpoint, state_store  # noqa: F401

TTL = 30 * 86400.0
LOCK = 900.0


def test_get_put_versions(state_store: StateStore, clock: FakeClock) -> None:
    assert state_store.get("t", "k") is None
    first = state_store.put("t", "k", {"a": 1, "nested": {"b": [1, 2]}})
    assert first.version == 1 and first.data == {"a": 1, "nested": {"b": [1, 2]}}
    clock.advance(1)
    second = state_store.put("t", "k", {"a": 2})
    assert second.version == 2
    got = state_store.get("t", "k")
    assert got is not None
    assert (got.table, got.key, got.data, got.version) == ("t", "k", {"a": 2}, 2)
    assert got.expires_at is None
    assert got.updated_at == pytest.approx(clock())
    assert state_store.get("other", "k") is None  # tables are separate


def test_if_absent(state_store: StateStore) -> None:
    state_store.put("t", "k", {"v": 1}, if_absent=True)
    with pytest.raises(ConditionFailed):
        state_store.put("t", "k", {"v": 2}, if_absent=True)
    item = state_store.get("t", "k")
    assert item is not None and item.data == {"v": 1} and item.version == 1


def test_expected_version_cas(state_store: StateStore) -> None:
    state_store.put("t", "k", {"v": 1})
    state_store.put("t", "k", {"v": 2}, expected_version=1)
    with pytest.raises(ConditionFailed):
        state_store.put("t", "k", {"v": 3}, expected_version=1)  # lost the race
    with pytest.raises(ConditionFailed):
        state_store.put("t", "absent", {"v": 1}, expected_version=1)
    item = state_store.get("t", "k")
    assert item is not None and item.data == {"v": 2} and item.version == 2


def test_replace_is_a_swap_against_what_was_read(state_store: StateStore) -> None:
    assert state_store.get("t", "k") is None
    first = state_store.replace("t", "k", {"v": 1}, None)  # absent when read: created
    with pytest.raises(ConditionFailed):
        state_store.replace("t", "k", {"v": 9}, None)  # another reader also saw it absent
    second = state_store.replace("t", "k", {"v": 2}, first)
    with pytest.raises(ConditionFailed):
        state_store.replace("t", "k", {"v": 3}, first)  # read before the second write
    item = state_store.get("t", "k")
    assert item is not None and item.data == {"v": 2} and item.version == second.version == 2


def test_delete(state_store: StateStore) -> None:
    state_store.put("t", "k", {"v": 1})
    state_store.put("t", "k", {"v": 2})
    with pytest.raises(ConditionFailed):
        state_store.delete("t", "k", expected_version=1)
    assert state_store.get("t", "k") is not None
    state_store.delete("t", "k", expected_version=2)
    assert state_store.get("t", "k") is None
    state_store.delete("t", "k")  # absent is fine
    with pytest.raises(ConditionFailed):
        state_store.delete("t", "k", expected_version=2)
    assert state_store.put("t", "k", {"v": 3}, if_absent=True).version == 1


def test_expired_items_are_absent_before_purge(state_store: StateStore, clock: FakeClock) -> None:
    state_store.put("t", "gone", {"v": 1}, expires_at=clock() + 10)
    state_store.put("t", "kept", {"v": 1}, expires_at=clock() + 1000)
    state_store.put("t", "forever", {"v": 1})
    assert state_store.get("t", "gone") is not None
    clock.advance(10)  # expires_at <= now: expired
    assert state_store.get("t", "gone") is None
    assert [i.key for i in state_store.query("t")] == ["forever", "kept"]
    with pytest.raises(ConditionFailed):
        state_store.put("t", "gone", {"v": 2}, expected_version=1)
    with pytest.raises(ConditionFailed):
        state_store.delete("t", "gone", expected_version=1)
    fresh = state_store.put("t", "gone", {"v": 2}, if_absent=True)
    assert fresh.data == {"v": 2}
    item = state_store.get("t", "gone")
    assert item is not None and item.data == {"v": 2} and item.expires_at is None


def test_purge_expired(state_store: StateStore, clock: FakeClock) -> None:
    purge = getattr(state_store, "purge_expired", None)
    if purge is None:
        pytest.skip("backend purges by itself (DynamoDB TTL)")
    for i in range(5):
        state_store.put("t", f"k{i}", {"i": i}, expires_at=clock() + 10 * (i + 1))
    state_store.put("t", "forever", {})
    clock.advance(30)
    assert purge() == 3
    assert purge() == 0
    assert [i.key for i in state_store.query("t")] == ["forever", "k3", "k4"]


def test_query_prefix_limit_reverse(state_store: StateStore) -> None:
    keys = ["a#1", "a#2", "a#10", "ab", "b#1", "a", "é#1", "\U0010ffff"]
    for k in keys:
        state_store.put("q", k, {"k": k})
    state_store.put("other", "a#3", {})
    assert [i.key for i in state_store.query("q")] == sorted(keys)
    assert [i.key for i in state_store.query("q", "a#")] == ["a#1", "a#10", "a#2"]
    assert [i.key for i in state_store.query("q", "a#", reverse=True)] == ["a#2", "a#10", "a#1"]
    assert [i.key for i in state_store.query("q", "a#", limit=2)] == ["a#1", "a#10"]
    assert [i.key for i in state_store.query("q", "a#", limit=2, reverse=True)] == ["a#2", "a#10"]
    assert [i.key for i in state_store.query("q", "a")] == ["a", "a#1", "a#10", "a#2", "ab"]
    assert [i.key for i in state_store.query("q", "é")] == ["é#1"]
    assert [i.key for i in state_store.query("q", "\U0010ffff")] == ["\U0010ffff"]
    assert state_store.query("q", "zz") == []
    assert state_store.query("q", limit=0) == []
    assert [i.data["k"] for i in state_store.query("q", "b")] == ["b#1"]


def test_query_after_a_key(state_store: StateStore) -> None:
    keys = ["0001.5#b", "0001.5#a", "0002.0#c", "0010.0#d", "a#1", "a#2", "ab", "é#1"]
    for k in keys:
        state_store.put("q", k, {"k": k})
    state_store.put("other", "0003.0#x", {})
    assert [i.key for i in state_store.query("q", after="0001.5#a")] == [
        "0001.5#b", "0002.0#c", "0010.0#d", "a#1", "a#2", "ab", "é#1"]
    assert [i.key for i in state_store.query("q", after="0001.5#")] == [
        "0001.5#a", "0001.5#b", "0002.0#c", "0010.0#d", "a#1", "a#2", "ab", "é#1"]
    assert [i.key for i in state_store.query("q", "a#", after="a#1")] == ["a#2"]
    assert [i.key for i in state_store.query("q", "a", after="")] == ["a#1", "a#2", "ab"]
    assert [i.key for i in state_store.query("q", after="0002.0#c", limit=2)] == ["0010.0#d", "a#1"]
    assert [i.key for i in state_store.query("q", after="a#2", reverse=True)] == ["é#1", "ab"]
    assert state_store.query("q", after="é#1") == []


def test_events_after_a_place(state_store: StateStore, clock: FakeClock) -> None:
    first = state_store.emit_event("silver_partition_ready", {"dt": "2026-01-05"})
    state_store.emit_event("other", {"n": 1})
    keys = [k for k, _ in state_store.events_after("")]
    assert len(keys) == 2 and keys == sorted(keys)
    assert [e["id"] for _, e in state_store.events_after("", "silver_partition_ready")] == [first["id"]]
    assert state_store.events_after(keys[-1]) == []
    assert [e["detail"] for _, e in state_store.events_after(keys[0])] == [{"n": 1}]
    assert state_store.events_after(StateStore.event_mark(0.0), "other")[0][1]["detail"] == {"n": 1}
    assert StateStore.event_mark(12.5) == "0000000012.500000#"


# ---- idempotency, run log and event log (base class on the primitives) ----------------------
def test_begin_complete(state_store: StateStore, clock: FakeClock) -> None:
    key = "raw/a.csv#etag1"
    assert state_store.begin(key, ttl_seconds=TTL, lock_seconds=LOCK, now=clock()) is BeginResult.STARTED
    assert (
        state_store.begin(key, ttl_seconds=TTL, lock_seconds=LOCK, now=clock())
        is BeginResult.IN_PROGRESS
    )
    state_store.complete(key, {"rows": 3})
    assert (
        state_store.begin(key, ttl_seconds=TTL, lock_seconds=LOCK, now=clock())
        is BeginResult.COMPLETED
    )
    item = state_store.get(IDEMPOTENCY, key)
    assert item is not None
    assert item.data["status"] == "COMPLETED" and item.data["result"] == {"rows": 3}
    assert item.expires_at == pytest.approx(clock() + TTL)  # TTL kept


def test_lock_expiry_takeover(state_store: StateStore, clock: FakeClock) -> None:
    key = "k"
    assert state_store.begin(key, ttl_seconds=TTL, lock_seconds=LOCK, now=clock()) is BeginResult.STARTED
    clock.advance(LOCK - 1)
    assert (
        state_store.begin(key, ttl_seconds=TTL, lock_seconds=LOCK, now=clock())
        is BeginResult.IN_PROGRESS
    )
    clock.advance(2)  # the first worker's lock has expired
    assert state_store.begin(key, ttl_seconds=TTL, lock_seconds=LOCK, now=clock()) is BeginResult.STARTED
    item = state_store.get(IDEMPOTENCY, key)
    assert item is not None and item.version == 2
    assert (
        state_store.begin(key, ttl_seconds=TTL, lock_seconds=LOCK, now=clock())
        is BeginResult.IN_PROGRESS
    )


def test_ttl_expiry_starts_again(state_store: StateStore, clock: FakeClock) -> None:
    key = "k"
    assert state_store.begin(key, ttl_seconds=100, lock_seconds=10, now=clock()) is BeginResult.STARTED
    state_store.complete(key)
    assert state_store.begin(key, ttl_seconds=100, lock_seconds=10, now=clock()) is BeginResult.COMPLETED
    clock.advance(100)
    assert state_store.begin(key, ttl_seconds=100, lock_seconds=10, now=clock()) is BeginResult.STARTED


def test_release(state_store: StateStore, clock: FakeClock) -> None:
    key = "k"
    assert state_store.begin(key, ttl_seconds=TTL, lock_seconds=LOCK, now=clock()) is BeginResult.STARTED
    state_store.release(key)
    assert state_store.get(IDEMPOTENCY, key) is None
    assert state_store.begin(key, ttl_seconds=TTL, lock_seconds=LOCK, now=clock()) is BeginResult.STARTED
    state_store.complete(key)
    state_store.release(key)  # a completed key is not released
    assert state_store.begin(key, ttl_seconds=TTL, lock_seconds=LOCK, now=clock()) is BeginResult.COMPLETED
    state_store.release("never-begun")


def test_run_log_newest_first(state_store: StateStore) -> None:
    for i in range(5):
        state_store.log_run(f"2024-01-0{i + 1}T00:00:00#run{i}", {"status": "RUNNING", "i": i})
    state_store.log_run("2024-01-03T00:00:00#run2", {"status": "SUCCEEDED", "i": 2})
    runs = state_store.runs()
    assert [r["i"] for r in runs] == [4, 3, 2, 1, 0]
    assert runs[2]["status"] == "SUCCEEDED"
    assert runs[0]["run_key"] == "2024-01-05T00:00:00#run4"
    assert [r["i"] for r in state_store.runs(limit=2)] == [4, 3]


def test_events_filter_by_detail_type(state_store: StateStore) -> None:
    a = state_store.emit_event("Object Ingested", {"key": "a"})
    state_store.emit_event("Batch Failed", {"key": "b"})
    c = state_store.emit_event("Object Ingested", {"key": "c"})
    assert a["source"] == "lakeline" and a["detail-type"] == "Object Ingested"
    events = state_store.events()
    assert [e["detail"]["key"] for e in events] == ["c", "b", "a"]
    ingested = state_store.events("Object Ingested")
    assert [e["id"] for e in ingested] == [c["id"], a["id"]]
    assert [e["detail"]["key"] for e in state_store.events("Batch Failed")] == ["b"]
    assert state_store.events("Nothing") == []
    assert len(state_store.events(limit=1)) == 1


# ---- many processes racing (local backend) --------------------------------------------------
KEYS = [f"raw/file-{i:02d}.csv#etag" for i in range(50)]


def _race_begin(db_path: str, barrier: Any) -> list[str]:
    from lakeline.adapters.local.sqlite import Database
    from lakeline.adapters.local.state import SCHEMA, SqliteStateStore

    store = SqliteStateStore(Database(Path(db_path), SCHEMA))
    barrier.wait()
    won = [k for k in KEYS if store.begin(k, ttl_seconds=TTL, lock_seconds=LOCK) is BeginResult.STARTED]
    store.close()
    return won


def test_processes_race_begin(tmp_path: Path) -> None:
    from lakeline.adapters.local.sqlite import Database
    from lakeline.adapters.local.state import SCHEMA, SqliteStateStore

    # Create the database first, as `lakeline init` does: several processes opening a brand-new
    # file at once can fail the helper's `PRAGMA journal_mode=WAL` with "database is locked".
    setup = SqliteStateStore(Database(tmp_path / "state.db", SCHEMA))
    assert setup.query(IDEMPOTENCY) == []
    setup.close()
    ctx = multiprocessing.get_context("spawn")
    with ctx.Manager() as manager:
        barrier = manager.Barrier(4)
        with ctx.Pool(4) as pool:
            results = pool.starmap(_race_begin, [(str(tmp_path / "state.db"), barrier)] * 4)
    winners = [k for won in results for k in won]
    assert sorted(winners) == sorted(KEYS)  # exactly one STARTED per key in total


def test_put_many_replaces_in_bulk(state_store: StateStore) -> None:
    state_store.put("results", "k0001", {"old": True})
    state_store.put("results", "k0001", {"old": True})
    pairs = ((f"k{i:04d}", f'{{"i": {i}}}') for i in range(60))  # a generator: > two DynamoDB batches
    assert state_store.put_many("results", pairs) == 60
    items = state_store.query("results")
    assert [i.key for i in items] == [f"k{i:04d}" for i in range(60)]
    assert items[1].data == {"i": 1} and items[1].version == 1  # replaced, version restarts
    assert state_store.put_many("results", []) == 0
