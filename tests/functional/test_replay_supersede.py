"""A copy-mode replay supersedes the rows of the objects it replays: counts reconcile.

The copy is a new object key (``shipments/replay/<name>/<original key>``); its batches take
the original object's batch ids, so publishing them replaces the original's files (the
Parquet sink's redelivery rule) instead of adding the rows a second time.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest

from lakeline.errors import NotFoundError, UsageError
from lakeline.lake import Lake
from lakeline.pipelines.registry import registry
from lakeline.sql import connect, plan_query
from lakeline.stages.messages import object_id
from lakeline.stages.replay import replay
from lakeline.stages.supersede import REPLAYS
from tests.functional.helpers import land, query, rec, run, settings

START = datetime(2000, 1, 1, tzinfo=UTC)
END = datetime(2100, 1, 1, tzinfo=UTC)


def jsonl(n: int, first: int = 0, day: str = "2026-01-05") -> bytes:
    return b"".join(orjson.dumps(rec(shipment_id=f"shp_{i:012d}", event_time=f"{day}T10:00:00Z")) + b"\n"
                    for i in range(first, first + n))


def _count(lake: Lake) -> int:
    return int(query(lake, "SELECT count(*) FROM silver.shipments")[0][0])


def _files(lake: Lake) -> list[str]:
    return sorted(i.key for i in lake.store.list("silver", "shipments/"))


def test_copy_replay_then_run_keeps_the_count(home):
    s = settings(home)
    lake = Lake.open(s)
    land(lake, "shipments/2026/a.jsonl", jsonl(40))
    land(lake, "shipments/2026/b.jsonl", jsonl(25, first=100, day="2026-01-06"))
    assert run(s)["loaded"] == 65
    before, files = _count(lake), _files(lake)
    assert before == 65

    out = replay(lake, registry(s).route, "shipments", START, END, name="r1")
    assert (out["scanned"], out["copied"], out["dest_prefix"]) == (2, 2, "shipments/replay/r1/")
    summary = run(s)
    assert (summary["ingested_objects"], summary["loaded"]) == (2, 65)  # loaded again, in place
    assert _count(lake) == before
    assert _files(lake) == files  # the original objects' batch files, rewritten
    # the replay recorded what each copy supersedes
    etag = lake.store.head("landing", "shipments/2026/a.jsonl").etag
    mapped = lake.state.get(REPLAYS, "shipments/replay/r1/shipments/2026/a.jsonl")
    assert mapped is not None and mapped.data["object_id"] == object_id("landing", "shipments/2026/a.jsonl", etag)

    # a second replay of the same window (another name) still reconciles
    replay(lake, registry(s).route, "shipments", START, END, name="r2")
    run(s)
    assert _count(lake) == before


def test_redelivered_copy_chunk_and_rerun_replay_are_exactly_once(home):
    s = settings(home)
    lake = Lake.open(s)
    land(lake, "shipments/a.jsonl", jsonl(30))
    run(s)
    route = registry(s).route
    replay(lake, route, "shipments", START, END, name="same")
    replay(lake, route, "shipments", START, END, name="same")  # a retried replay task: same copies
    summary = run(s)
    assert summary["loaded"] == 30  # the second announcement of the same copy is a skipped duplicate
    assert _count(lake) == 30
    # queue mode re-sends the original's chunks (never the copies'): same batch ids again
    replay(lake, route, "shipments", START, END, name="q", mode="queue")
    run(s)
    assert _count(lake) == 30


def test_replay_of_an_object_whose_files_were_lost_restores_them(home):
    s = settings(home)
    lake = Lake.open(s)
    land(lake, "shipments/a.jsonl", jsonl(12))
    run(s)
    for key in _files(lake):
        lake.store.delete("silver", key)
    replay(lake, registry(s).route, "shipments", START, END, name="fix")
    run(s)
    assert _count(lake) == 12


def test_changed_chunking_is_refused_naming_the_object(home):
    s = settings(home, ingest__chunk_bytes=1024)
    lake = Lake.open(s)
    land(lake, "shipments/a.jsonl", jsonl(60))
    run(s)
    chunks = len({k.rsplit("-c", 1)[1] for k in _files(lake)})
    assert chunks > 1
    bigger = settings(home, ingest__chunk_bytes=1 << 20)
    lake2 = Lake.open(bigger)
    with pytest.raises(UsageError, match=r"shipments/a\.jsonl: its first load had \d+ chunks, "
                                         r"a replay now makes 1"):
        replay(lake2, registry(bigger).route, "shipments", START, END, name="x")
    assert [i.key for i in lake2.store.list("landing", "shipments/replay/")] == []  # nothing copied
    assert _count(lake2) == 60


def test_unknown_source_prefix_and_bucket_are_refused(home):
    s = settings(home)
    lake = Lake.open(s)
    land(lake, "shipments/a.jsonl", jsonl(3))
    route = registry(s).route
    with pytest.raises(UsageError, match="src_prefix 'bronze/nope/' is not under pipeline shipments' landing "
                                         "prefix 'shipments/'"):
        replay(lake, route, "shipments", START, END, src_prefix="bronze/nope/")
    with pytest.raises(NotFoundError, match="bronze_bucket 'elsewhere' is not this lake's landing bucket 'landing'"):
        replay(lake, route, "shipments", START, END, bucket="elsewhere")
    assert replay(lake, route, "shipments", datetime.now(UTC) - timedelta(hours=1), END,
                  src_prefix="shipments/none/")["scanned"] == 0


def test_rejects_of_a_replayed_object_are_replaced_not_doubled(home):
    s = settings(home)
    lake = Lake.open(s)
    land(lake, "shipments/a.jsonl", jsonl(5) + orjson.dumps(rec(shipment_id="shp_bad", weight_kg="heavy")) + b"\n")
    assert (run(s)["loaded"], _count(lake)) == (5, 5)
    rejects = "SELECT count(*), min(key) FROM quarantine.rejects"
    assert query(lake, rejects) == [(1, "shipments/a.jsonl")]
    replay(lake, registry(s).route, "shipments", START, END, name="r")
    summary = run(s)
    assert (summary["loaded"], summary["rejected"]) == (5, 1)
    assert _count(lake) == 5
    assert query(lake, rejects) == [(1, "shipments/replay/r/shipments/a.jsonl")]  # the copy's, in its place


def _iceberg(lake: Lake, sql: str) -> list[tuple[object, ...]]:
    con = connect(lake)
    try:
        return con.execute(plan_query(lake, con, sql)[0]).fetchall()
    finally:
        con.close()


def test_iceberg_table_finds_the_replayed_batches_and_appends_nothing(home):
    s = settings(home, pipelines__shipments__table_format="iceberg")
    lake = Lake.open(s)
    land(lake, "shipments/a.jsonl", jsonl(9))
    assert run(s)["loaded"] == 9
    snapshots = 'SELECT count(*) FROM silver."shipments$snapshots"'
    before = _iceberg(lake, snapshots)
    assert _iceberg(lake, "SELECT count(*) FROM silver.shipments") == [(9,)]
    replay(lake, registry(s).route, "shipments", START, END, name="ice")
    assert run(s)["ingested_objects"] == 1
    assert _iceberg(lake, "SELECT count(*) FROM silver.shipments") == [(9,)]
    assert _iceberg(lake, snapshots) == before  # the batches were found: no snapshot appended
