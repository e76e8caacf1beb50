"""Iceberg tables on the local lake: create, exactly-once append, maintenance."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest

from lakeline.config import load_settings
from lakeline.errors import ConfigError, DataError, NotFoundError
from lakeline.lake import Lake
from lakeline.tables import iceberg, maintenance

IDENT = "silver.events"
SCHEMA = pa.schema([
    pa.field("id", pa.int64(), nullable=False),
    pa.field("ts", pa.timestamp("us", tz="UTC")),
    pa.field("kind", pa.string()),
    pa.field("amount", pa.float64()),
])


def rows(first: int, n: int, day: int = 1) -> pa.Table:
    ts = datetime(2026, 1, day, 12, tzinfo=UTC)
    return pa.table({
        "id": pa.array(range(first, first + n), pa.int64()),
        "ts": pa.array([ts] * n, pa.timestamp("us", tz="UTC")),
        "kind": pa.array(["k"] * n),
        "amount": pa.array([1.5] * n),
    })


@pytest.fixture
def lake(home: Path) -> Lake:
    lk = Lake.open(load_settings(home))
    iceberg.ensure_table(lk, IDENT, SCHEMA, [("ts", "day")])
    return lk


def test_catalog_is_sqlite_in_state_with_warehouse_in_silver(lake: Lake, home: Path) -> None:
    cat = iceberg.catalog(lake)
    assert iceberg.catalog(lake) is cat
    assert (home / "state" / "catalog.db").exists()
    table = iceberg.load_table(lake, IDENT)
    assert table.location().startswith(f"file://{home / 'zones' / 'silver' / 'iceberg'}")
    assert [(f.name, str(f.transform)) for f in table.spec().fields] == [("ts_day", "day")]


def test_ensure_table_is_idempotent_and_validates(lake: Lake) -> None:
    again = iceberg.ensure_table(lake, IDENT, SCHEMA, [("ts", "day")])
    assert again.metadata.table_uuid == iceberg.load_table(lake, IDENT).metadata.table_uuid
    with pytest.raises(ConfigError, match="transform"):
        iceberg.ensure_table(lake, "silver.x", SCHEMA, [("ts", "hour")])
    with pytest.raises(ConfigError, match="not in the schema"):
        iceberg.ensure_table(lake, "silver.x", SCHEMA, [("nope", "identity")])
    with pytest.raises(ConfigError, match="namespace"):
        iceberg.ensure_table(lake, "flat", SCHEMA, [])
    with pytest.raises(NotFoundError):
        iceberg.load_table(lake, "silver.missing")
    for transform in ("identity", "month", "year"):
        t = iceberg.ensure_table(lake, f"silver.t_{transform}", SCHEMA, [("ts", transform)])
        assert str(t.spec().fields[0].transform) == transform


def test_append_and_read_back(lake: Lake) -> None:
    r1 = iceberg.append_batch(lake, IDENT, rows(0, 10, day=1), "b1")
    r2 = iceberg.append_batch(lake, IDENT, rows(10, 5, day=2), "b2")
    assert (r1.appended, r1.rows, r2.appended, r2.rows) == (True, 10, True, 5)
    table = iceberg.load_table(lake, IDENT)
    assert table.current_snapshot().snapshot_id == r2.snapshot_id
    got = table.scan().to_arrow().sort_by("id")
    assert got.column("id").to_pylist() == list(range(15))
    assert got.schema.field("ts").type == pa.timestamp("us", tz="UTC")
    # partition pruning works on the day transform
    day2 = table.scan(row_filter="ts >= '2026-01-02T00:00:00+00:00'").to_arrow()
    assert day2.num_rows == 5


def test_same_batch_twice_makes_one_snapshot(lake: Lake) -> None:
    first = iceberg.append_batch(lake, IDENT, rows(0, 7), "batch-A")
    second = iceberg.append_batch(lake, IDENT, rows(0, 7), "batch-A")
    assert first.appended and not second.appended
    assert second.snapshot_id == first.snapshot_id and second.rows == 0
    table = iceberg.load_table(lake, IDENT)
    assert len(list(iceberg.ancestry(table))) == 1
    assert table.scan().to_arrow().num_rows == 7
    summary = table.current_snapshot().summary
    assert summary.additional_properties[iceberg.BATCH_ID_PROPERTY] == "batch-A"


def test_data_is_cast_to_the_table_schema_and_mismatches_are_clear(lake: Lake) -> None:
    loose = pa.table({"amount": pa.array([1, 2], pa.int32()), "id": pa.array([1, 2], pa.int32())})
    res = iceberg.append_batch(lake, IDENT, loose, "cast")
    assert res.rows == 2
    got = iceberg.load_table(lake, IDENT).scan().to_arrow()
    assert got.column("amount").to_pylist() == [1.0, 2.0] and got.column("kind").null_count == 2
    with pytest.raises(DataError, match="columns not in the table schema: extra"):
        iceberg.append_batch(lake, IDENT, rows(0, 1).append_column("extra", pa.array([1])), "x1")
    with pytest.raises(DataError, match="required column 'id' is missing"):
        iceberg.append_batch(lake, IDENT, rows(0, 1).drop(["id"]), "x2")
    with pytest.raises(DataError, match="'id' of type string cannot be cast to int64"):
        iceberg.append_batch(lake, IDENT, rows(0, 1).set_column(0, "id", pa.array(["x"])), "x3")
    with pytest.raises(DataError, match="required column 'id' has 1 null"):
        iceberg.append_batch(lake, IDENT, rows(0, 1).set_column(0, "id", pa.array([None], pa.int64())), "x4")
    assert len(list(iceberg.ancestry(iceberg.load_table(lake, IDENT)))) == 1


def test_compaction_reduces_files_and_keeps_rows(lake: Lake) -> None:
    for i in range(6):  # 6 appends x 2 days = 12 small files
        iceberg.append_batch(lake, IDENT, pa.concat_tables([rows(i * 100, 10, 1), rows(i * 100 + 50, 10, 2)]),
                             f"b{i}")
    table = iceberg.load_table(lake, IDENT)
    before_ids = sorted(table.scan().to_arrow().column("id").to_pylist())
    out = maintenance.compact(lake, IDENT)
    assert out["files_before"] == 12 and out["files_after"] == 2
    assert out["rewritten"] == 12 and out["bins"] == 2 and out["rows"] == 120
    table.refresh()
    assert sorted(table.scan().to_arrow().column("id").to_pylist()) == before_ids
    assert table.current_snapshot().summary.additional_properties["lakeline.operation"] == "compact"
    # batch ids survive compaction (ancestry still holds the appends)
    again = iceberg.append_batch(lake, IDENT, rows(0, 10), "b3")
    assert not again.appended
    # nothing left to do
    assert maintenance.compact(lake, IDENT)["rewritten"] == 0
    # a tiny target leaves files alone (each file is already above it)
    assert maintenance.compact(lake, IDENT, target_file_bytes=1)["rewritten"] == 0


def test_expire_snapshots_keeps_current(lake: Lake) -> None:
    for i in range(5):
        iceberg.append_batch(lake, IDENT, rows(i * 10, 10), f"b{i}")
    table = iceberg.load_table(lake, IDENT)
    current = table.current_snapshot().snapshot_id
    assert maintenance.expire_snapshots(lake, IDENT, datetime.now(UTC) - timedelta(hours=1)) == 0
    removed = maintenance.expire_snapshots(lake, IDENT, datetime.now(UTC) + timedelta(seconds=1))
    assert removed == 4
    table.refresh()
    assert [s.snapshot_id for s in table.snapshots()] == [current]
    assert table.scan().to_arrow().num_rows == 50


def test_orphan_removal_deletes_old_unreferenced_and_keeps_young(lake: Lake) -> None:
    iceberg.append_batch(lake, IDENT, rows(0, 10), "b0")
    iceberg.append_batch(lake, IDENT, rows(10, 10), "b1")
    table = iceberg.load_table(lake, IDENT)
    data_dir = Path(table.location().removeprefix("file://")) / "data"
    old = data_dir / "orphan-old.parquet"
    young = data_dir / "orphan-young.parquet"
    old.write_bytes(b"x")
    young.write_bytes(b"y")
    hour_ago = time.time() - 3600
    os.utime(old, (hour_ago, hour_ago))
    referenced_before = {p for p in data_dir.rglob("*.parquet") if p not in (old, young)}
    cutoff = datetime.now(UTC) - timedelta(minutes=30)
    assert maintenance.remove_orphan_files(lake, IDENT, cutoff, dry_run=True) == [f"file://{old}"]
    assert old.exists()
    assert maintenance.remove_orphan_files(lake, IDENT, cutoff) == [f"file://{old}"]
    assert not old.exists() and young.exists()
    assert {p for p in data_dir.rglob("*.parquet") if p != young} == referenced_before
    assert table.scan().to_arrow().num_rows == 20
    # after expiry + compaction, old data files of expired snapshots become orphans
    maintenance.compact(lake, IDENT)
    maintenance.expire_snapshots(lake, IDENT, datetime.now(UTC) + timedelta(seconds=1))
    gone = maintenance.remove_orphan_files(lake, IDENT, datetime.now(UTC) + timedelta(seconds=1))
    assert {Path(g.removeprefix("file://")) for g in gone} >= referenced_before
    table.refresh()
    assert table.scan().to_arrow().num_rows == 20


# ---- plain Parquet layout ----------------------------------------------------------------

def _parquet(first: int, n: int) -> bytes:
    import io

    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(pa.table({"id": pa.array(range(first, first + n), pa.int64())}), buf)
    return buf.getvalue()


def _partition_ids(lake: Lake, prefix: str) -> list[int]:
    import io

    import pyarrow.parquet as pq

    out: list[int] = []
    for info in lake.store.list("silver", prefix):
        out += pq.read_table(io.BytesIO(lake.store.get("silver", info.key))).column("id").to_pylist()
    return sorted(out)


def test_parquet_partition_compaction_and_redelivered_chunk(home: Path) -> None:
    from lakeline.tables.parquet_compact import INGESTED_AT, compact_partition

    lk = Lake.open(load_settings(home))
    prefix = "shipments/dt=2026-01-05/"
    for c in range(3):
        lk.store.put("silver", f"{prefix}part-obj1-c{c:05d}.parquet", _parquet(c * 10, 10))
    lk.store.put("silver", "shipments/dt=2026-01-06/part-obj1-c00000.parquet", _parquet(100, 5))
    young = compact_partition(lk, "shipments", "2026-01-05")  # default age: visibility timeout
    assert (young["skipped_young"], young["merged"], young["files_after"]) == (3, 0, 3)

    out = compact_partition(lk, "shipments", "2026-01-05", min_age_seconds=0)
    assert (out["files_before"], out["files_after"], out["merged"], out["rows"]) == (3, 1, 3, 30)
    keys = [i.key for i in lk.store.list("silver", prefix)]
    assert keys == [out["file"]] and out["file"].startswith(prefix + "part-compact-")
    assert _partition_ids(lk, prefix) == list(range(30))
    import io

    import pyarrow.parquet as pq
    merged = pq.read_table(io.BytesIO(lk.store.get("silver", out["file"])))
    assert merged.column(INGESTED_AT).null_count == 0
    assert merged.schema.field(INGESTED_AT).type == pa.timestamp("us", tz="UTC")
    # the other partition is untouched
    assert len(list(lk.store.list("silver", "shipments/dt=2026-01-06/"))) == 1

    # a redelivered chunk re-creates its deterministic file: duplicates until the next compaction
    lk.store.put("silver", f"{prefix}part-obj1-c00001.parquet", _parquet(10, 10))
    assert len(_partition_ids(lk, prefix)) == 40
    again = compact_partition(lk, "shipments", "2026-01-05", min_age_seconds=0)
    assert (again["duplicates_dropped"], again["merged"], again["files_after"], again["rows"]) == (1, 0, 1, 30)
    assert _partition_ids(lk, prefix) == list(range(30))

    # a new chunk is merged into a new compacted file
    lk.store.put("silver", f"{prefix}part-obj2-c00000.parquet", _parquet(30, 5))
    third = compact_partition(lk, "shipments", "2026-01-05", min_age_seconds=0)
    assert (third["merged"], third["files_after"], third["rows"]) == (2, 1, 35)
    assert _partition_ids(lk, prefix) == list(range(35))


def test_parquet_compaction_interrupted_after_put_is_repaired(home: Path, monkeypatch) -> None:
    from lakeline.tables.parquet_compact import compact_partition

    lk = Lake.open(load_settings(home))
    prefix = "t/dt=2026-02-01/"
    for c in range(4):
        lk.store.put("silver", f"{prefix}part-o-c{c:05d}.parquet", _parquet(c * 5, 5))
    real_delete = lk.store.delete
    calls = []

    def failing_delete(zone: str, key: str) -> None:
        calls.append(key)
        if len(calls) == 2:
            raise RuntimeError("crash")
        real_delete(zone, key)

    monkeypatch.setattr(lk.store, "delete", failing_delete)
    with pytest.raises(RuntimeError):
        compact_partition(lk, "t", "2026-02-01", min_age_seconds=0)
    monkeypatch.setattr(lk.store, "delete", real_delete)
    # both visible: the compacted file and 3 inputs not yet deleted (the window, frozen)
    assert len(list(lk.store.list("silver", prefix))) == 4
    assert len(_partition_ids(lk, prefix)) == 20 + 15
    fixed = compact_partition(lk, "t", "2026-02-01", min_age_seconds=0)
    assert (fixed["duplicates_dropped"], fixed["files_after"], fixed["rows"]) == (3, 1, 20)
    assert _partition_ids(lk, prefix) == list(range(20))
