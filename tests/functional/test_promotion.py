"""Promotion of silver runs into ``current/`` (specs §1): output shape, every error, no-op,
partitions, and readers / promoters running concurrently."""

from __future__ import annotations

import multiprocessing
import re
import threading
import time
from pathlib import Path

import orjson
import pytest

from lakeline.lake import Lake
from lakeline.pipelines.transactions.job import execute_run
from lakeline.promotion.promote import LOCKS, PROMOTIONS, current_files, promote, read_latest
from tests.functional.helpers import settings

HEADER = "TransactionID,CustomerID,TransactionAmount,Currency,TransactionTimestamp\n"
PREFIX = "mortgages/transactions"
JAN = f"{PREFIX}/year=2024/month=01/schema_v=v1"
FEB = f"{PREFIX}/year=2024/month=02/schema_v=v1"
EVENT = {"silver_bucket": "silver", "silver_prefix": PREFIX, "schema_version": "v1"}
RUN_IN_NAME = re.compile(r"-(\d{8}T\d{6}Z)\.parquet$")


@pytest.fixture
def lake(home):
    return Lake.open(settings(home))


def make_run(lake, name, ids, months=("01",)):
    """One run whose rows fall in ``months`` of 2024 (ids must be new)."""
    lines = [f"{i},C1,1.00,EUR,2024-{months[n % len(months)]}-10T10:00:00Z\n" for n, i in enumerate(ids)]
    key = f"transactions/{name}.csv"
    lake.store.put("landing", key, (HEADER + "".join(lines)).encode())
    return execute_run(lake, [key])


def silver_keys(lake, prefix):
    return sorted(i.key for i in lake.store.list("silver", prefix))


def test_promote_newest_run_with_the_specs_output(lake):
    make_run(lake, "a", ["A1", "A2"])
    b = make_run(lake, "b", ["B1", "B2", "B3"])
    event = dict(EVENT, glue_job_run_id="jr_1", execution_arn="arn:aws:states:x",
                 execution_start_time="2026-01-29T12:00:00.000Z")
    out = promote(lake, event)
    folder = f"{JAN}/run_id={b.run_id}"
    assert {k: out[k] for k in ("status", "run_id", "output_prefix", "current_prefix", "files_copied",
                                "latest_json", "noop")} == {
        "status": "success", "run_id": b.run_id, "output_prefix": folder, "current_prefix": f"{JAN}/current",
        "files_copied": 1, "latest_json": f"{JAN}/_LATEST.json", "noop": False}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", out["promoted_at"])
    assert [(p["partition"], p["action"], p["partition_rows"]) for p in out["partitions"]] == [
        (JAN, "promoted", 3)]
    assert silver_keys(lake, f"{JAN}/current/") == [f"{JAN}/current/part-00000-{b.run_id}.parquet"]
    latest = orjson.loads(lake.store.get("silver", f"{JAN}/_LATEST.json"))
    assert {k: latest[k] for k in ("run_id", "promoted_at", "output_prefix", "current_prefix", "files_copied",
                                   "glue_job_run_id", "execution_arn", "execution_start_time", "input_rows",
                                   "valid_rows", "quarantined_rows", "condemned_rows")} == {
        "run_id": b.run_id, "promoted_at": out["promoted_at"], "output_prefix": folder,
        "current_prefix": f"{JAN}/current", "files_copied": 1, "glue_job_run_id": "jr_1",
        "execution_arn": "arn:aws:states:x", "execution_start_time": "2026-01-29T12:00:00.000Z",
        "input_rows": 3, "valid_rows": 3, "quarantined_rows": 0, "condemned_rows": 0}
    assert current_files(lake, PREFIX) == [f"{JAN}/current/part-00000-{b.run_id}.parquet"]
    assert lake.state.get(PROMOTIONS, JAN).data["run_id"] == b.run_id
    assert lake.state.get(LOCKS, JAN) is None


def test_promoting_the_current_run_again_is_a_noop(lake):
    a = make_run(lake, "a", ["A1"])
    first = promote(lake, EVENT)
    again = promote(lake, EVENT)
    assert (again["status"], again["noop"], again["files_copied"], again["run_id"]) == ("success", True, 0, a.run_id)
    assert again["promoted_at"] == first["promoted_at"]
    assert promote(lake, dict(EVENT, run_key=a.run_id))["noop"] is True


def test_promotion_replaces_the_previous_run_and_run_key_selects(lake):
    a = make_run(lake, "a", ["A1", "A2"])
    b = make_run(lake, "b", ["B1"])
    promote(lake, EVENT)
    assert current_files(lake, PREFIX) == [f"{JAN}/current/part-00000-{b.run_id}.parquet"]
    out = promote(lake, dict(EVENT, run_key=a.run_id))  # explicit: roll back to a
    assert (out["run_id"], out["noop"]) == (a.run_id, False)
    assert silver_keys(lake, f"{JAN}/current/") == [f"{JAN}/current/part-00000-{a.run_id}.parquet"]
    assert read_latest(lake, JAN)["run_id"] == a.run_id
    # without run_key the newest run wins again
    assert promote(lake, EVENT)["run_id"] == b.run_id
    assert current_files(lake, PREFIX) == [f"{JAN}/current/part-00000-{b.run_id}.parquet"]


def test_a_run_spanning_two_months_promotes_both_partitions(lake):
    r = make_run(lake, "jf", ["X1", "X2", "X3"], months=("01", "02"))
    markers = [k for k in silver_keys(lake, PREFIX) if k.endswith("/_SUCCESS")]
    assert markers == [f"{JAN}/run_id={r.run_id}/_SUCCESS", f"{FEB}/run_id={r.run_id}/_SUCCESS"]
    out = promote(lake, EVENT)
    assert [(p["partition"], p["files_copied"], p["partition_rows"]) for p in out["partitions"]] == [
        (JAN, 1, 2), (FEB, 1, 1)]
    assert (out["current_prefix"], out["latest_json"]) == (f"{FEB}/current", f"{FEB}/_LATEST.json")
    assert current_files(lake, PREFIX) == [f"{JAN}/current/part-00000-{r.run_id}.parquet",
                                   f"{FEB}/current/part-00000-{r.run_id}.parquet"]


def test_promote_errors(lake, monkeypatch):
    def err(event, **kw):
        out = promote(lake, event, **kw)
        assert out["status"] == "error" and out["reason"]
        return out["code"]

    assert err(EVENT) == "NO_COMPLETED_RUN"
    assert err({"schema_version": "v1"}) == "INVALID_EVENT"
    assert err({"silver_prefix": PREFIX}) == "INVALID_EVENT"
    assert err(dict(EVENT, run_key=5)) == "INVALID_EVENT"
    assert err(dict(EVENT, silver_bucket="ohpen-silver")) == "BUCKET_MISMATCH"
    # only an incomplete run (crash before its marker): never promoted
    monkeypatch.setattr("lakeline.pipelines.transactions.job.write_marker", lambda *a: (_ for _ in ()).throw(SystemExit))
    with pytest.raises(SystemExit):
        make_run(lake, "crash", ["C1"])
    monkeypatch.undo()
    crashed = silver_keys(lake, PREFIX)[0].split("run_id=")[1].split("/")[0]
    assert err(EVENT) == "NO_COMPLETED_RUN"
    assert err(dict(EVENT, run_key=crashed)) == "RUN_INCOMPLETE"
    assert err(dict(EVENT, run_key="20990101T000000Z")) == "RUN_NOT_FOUND"
    # a complete run that loaded no row has no folder and no Parquet
    lake.store.put("landing", "transactions/bad.csv", (HEADER + "X,C1,1.00,XXX,2024-01-01\n").encode())
    nothing = execute_run(lake, ["transactions/bad.csv"])
    assert err(dict(EVENT, run_key=nothing.run_id)) == "NO_PARQUET_FILES"
    assert err(EVENT) == "NO_COMPLETED_RUN"
    # a complete run whose Parquet files are gone
    r = make_run(lake, "ok", ["OK1"])
    lake.store.delete("silver", f"{JAN}/run_id={r.run_id}/part-00000.parquet")
    assert err(EVENT) == "NO_PARQUET_FILES"
    assert silver_keys(lake, f"{JAN}/current/") == [] and read_latest(lake, JAN) is None
    # another promotion holds the partition's lease
    r2 = make_run(lake, "ok2", ["OK2"])
    lake.state.put(LOCKS, JAN, {"token": "other"}, expires_at=time.time() + 60, if_absent=True)
    assert err(dict(EVENT, run_key=r2.run_id), wait_seconds=0.1) == "LOCKED"
    lake.state.delete(LOCKS, JAN)
    # the lease expires during the copy: nothing flips
    slow_copy = lake.store.copy

    def slow(*args):
        time.sleep(0.3)
        return slow_copy(*args)

    monkeypatch.setattr(lake.store, "copy", slow)
    assert err(dict(EVENT, run_key=r2.run_id), lock_seconds=0.1) == "LOST_LOCK"
    assert read_latest(lake, JAN) is None
    monkeypatch.undo()
    assert promote(lake, dict(EVENT, run_key=r2.run_id))["status"] == "success"
    assert silver_keys(lake, f"{JAN}/current/") == [f"{JAN}/current/part-00000-{r2.run_id}.parquet"]


def test_readers_resolve_current_through_the_pointer(lake):
    r = make_run(lake, "a", ["A1"])
    promote(lake, EVENT)
    lake.store.put("silver", f"{JAN}/current/part-00000-20000101T000000Z.parquet", b"stray")
    assert current_files(lake, PREFIX) == [f"{JAN}/current/part-00000-{r.run_id}.parquet"]


def test_promotion_without_run_key_never_regresses_to_an_older_run(lake):
    a = make_run(lake, "a", ["A1"])
    b = make_run(lake, "b", ["B1"])
    promote(lake, dict(EVENT, run_key=b.run_id))
    # a promoter that discovered run a before b existed must not replace b
    import lakeline.promotion.promote as p
    runs = p.list_runs(lake, PREFIX)
    older = next(r for r in runs if r.run_id == a.run_id)
    out = p._promote_partition(lake, older, older.folders[0], EVENT, 60.0, 1.0)
    assert (out["action"], out["current_run_id"]) == ("superseded", b.run_id)
    assert current_files(lake, PREFIX) == [f"{JAN}/current/part-00000-{b.run_id}.parquet"]


def _check_view(files, expected):
    """Per partition: non-empty, one run, exactly that run's files."""
    by_partition = {}
    for key in files:
        by_partition.setdefault(key.split("/current/")[0], set()).add(key)
    problems = []
    if set(by_partition) != set(expected):
        problems.append(f"partitions {sorted(by_partition)}")
    for partition, keys in by_partition.items():
        runs = {RUN_IN_NAME.search(k).group(1) for k in keys}
        if len(runs) != 1 or keys != expected[partition].get(next(iter(runs)), set()):
            problems.append(f"{partition}: {sorted(keys)}")
    return problems


def _expected(runs):
    out = {}
    for r in runs:
        for part in r.partitions:
            out.setdefault(part["partition"], {})[r.run_id] = {
                f"{part['partition']}/current/part-{i:05d}-{r.run_id}.parquet" for i in range(len(part["files"]))}
    return out


def test_a_reader_polling_during_ten_alternating_promotions_never_sees_a_mix_or_nothing(lake):
    r1 = make_run(lake, "r1", [f"P{i}" for i in range(50)], months=("01", "02"))
    r2 = make_run(lake, "r2", [f"Q{i}" for i in range(80)], months=("01", "02"))
    expected = _expected([r1, r2])
    promote(lake, dict(EVENT, run_key=r1.run_id))
    stop = threading.Event()
    seen: list[int] = []
    runs_seen: set[str] = set()
    problems: list[str] = []

    def reader():
        while not stop.is_set():
            files = current_files(lake, PREFIX)
            problems.extend(_check_view(files, expected))
            runs_seen.update(RUN_IN_NAME.search(k).group(1) for k in files)
            # a file may vanish only after the pointer moved past it
            missing = [k for k in files if not lake.store.exists("silver", k)]
            if missing:
                still = set(current_files(lake, PREFIX))
                problems.extend(f"pointer names deleted {k}" for k in missing
                                if k in still and not lake.store.exists("silver", k))
            seen.append(1)

    t = threading.Thread(target=reader)
    t.start()
    try:
        for n in range(10):
            out = promote(lake, dict(EVENT, run_key=(r2 if n % 2 == 0 else r1).run_id))
            assert out["status"] == "success" and not out["noop"]
    finally:
        stop.set()
        t.join()
    assert problems == [] and len(seen) > 10
    assert runs_seen == {r1.run_id, r2.run_id}
    assert current_files(lake, PREFIX) == sorted(set().union(*(expected[p][r1.run_id] for p in (JAN, FEB))))


def _consistent(lake, expected, candidates):
    for partition in (JAN, FEB):
        latest = read_latest(lake, partition)
        assert latest["run_id"] in candidates
        assert set(silver_keys(lake, f"{partition}/current/")) == expected[partition][latest["run_id"]]
        assert lake.state.get(PROMOTIONS, partition).data["run_id"] == latest["run_id"]
        assert lake.state.get(LOCKS, partition) is None


def test_two_threads_promoting_different_runs_leave_current_whole(lake):
    r1 = make_run(lake, "r1", [f"P{i}" for i in range(20)], months=("01", "02"))
    r2 = make_run(lake, "r2", [f"Q{i}" for i in range(30)], months=("01", "02"))
    expected = _expected([r1, r2])
    for _ in range(5):
        results: list[dict] = []
        threads = [threading.Thread(target=lambda r=r: results.append(promote(lake, dict(EVENT, run_key=r.run_id))))
                   for r in (r1, r2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert [o["status"] for o in results] == ["success", "success"]
        _consistent(lake, expected, {r1.run_id, r2.run_id})


def _promote_in_process(home: str, run_id: str, barrier) -> str:
    lake = Lake.open(settings(Path(home)))
    barrier.wait()
    return str(promote(lake, dict(EVENT, run_key=run_id))["status"])


def test_two_processes_promoting_different_runs_leave_current_whole(lake, home):
    r1 = make_run(lake, "r1", [f"P{i}" for i in range(20)], months=("01", "02"))
    r2 = make_run(lake, "r2", [f"Q{i}" for i in range(30)], months=("01", "02"))
    ctx = multiprocessing.get_context("spawn")
    with ctx.Manager() as manager:
        barrier = manager.Barrier(2)
        with ctx.Pool(2) as pool:
            statuses = pool.starmap(_promote_in_process, [(str(home), r1.run_id, barrier),
                                                          (str(home), r2.run_id, barrier)])
    assert statuses == ["success", "success"]
    _consistent(lake, _expected([r1, r2]), {r1.run_id, r2.run_id})
