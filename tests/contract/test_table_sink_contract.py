"""Table sink contract: exactly-once batches in every table format on every backend.

One suite × both formats (a Hive-partitioned Parquet dataset, an Iceberg table) × both
lakes: ``local`` (filesystem zones + pyiceberg's SQL catalog on SQLite) and ``aws`` (S3 +
the Glue Data Catalog, both on the moto server, provisioned like ``tests/integration``).
Parquet data is read back with DuckDB over the files (:func:`lakeline.sql.connect`), Iceberg
data with a pyiceberg scan.
"""
# ruff: noqa: F811  (pytest fixtures imported from store_backends are redefined as arguments)

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lakeline.config import load_settings
from lakeline.errors import UsageError
from lakeline.lake import Lake
from lakeline.sql import connect, has_iceberg
from lakeline.tables import iceberg
from lakeline.tables.schema import Layout, TableSpec
from lakeline.tables.sink import Batch, IcebergSink, ParquetDatasetSink, TableSink, WriteResult, open_sink
from tests.contract.store_backends import BACKENDS, moto_endpoint  # noqa: F401
from tests.integration.aws_lake import aws_settings, provision

FORMATS: list[Layout] = ["parquet", "iceberg"]
D5, D6, D7 = "2026-01-05", "2026-01-06", "2026-01-07"
ROOT = str(Path(__file__).resolve().parents[2])

Row = tuple[Any, ...]


@dataclass
class Target:
    """A lake and the namespace its test tables live in."""

    lake: Lake
    layout: Layout
    namespace: str

    def spec(self, table: str, partition: str | None = "dt") -> TableSpec:
        return TableSpec(f"{self.namespace}.{table}", layout=self.layout, partition=partition)

    def sink(self, table: str, partition: str | None = "dt") -> TableSink:
        return open_sink(self.lake, self.spec(table, partition))


@pytest.fixture(params=BACKENDS)
def lake(request: pytest.FixtureRequest, home: Path, tmp_path: Path) -> Lake:
    if request.param == "local":
        return Lake.open(load_settings(home))
    endpoint = request.getfixturevalue("moto_endpoint")
    return Lake.open(aws_settings(tmp_path / "aws-home", provision(endpoint)))


@pytest.fixture(params=FORMATS)
def target(request: pytest.FixtureRequest, lake: Lake) -> Target:
    # Glue databases are shared by every test on the moto server: a namespace of its own
    namespace = "silver" if lake.is_local else f"silver_{uuid.uuid4().hex[:10]}"
    return Target(lake, request.param, namespace)


def rows(ids: list[int], days: list[int] | None = None) -> pa.Table:
    """Rows ``id``, ``name``, ``amount`` and, with ``days``, a ``dt`` date of January 2026."""
    cols: dict[str, pa.Array] = {
        "id": pa.array(ids, pa.int64()),
        "name": pa.array([f"name-{i}" for i in ids]),
        "amount": pa.array([i * 1.5 for i in ids], pa.float64()),
    }
    if days is not None:
        cols["dt"] = pa.array([date(2026, 1, d) for d in days], pa.date32())
    return pa.table(cols)


def expected(ids: list[int], days: list[int] | None = None) -> list[Row]:
    """What :func:`read_back` gives for ``rows(ids, days)``."""
    if days is None:
        return sorted((i, f"name-{i}", i * 1.5) for i in ids)
    return sorted((i, f"name-{i}", i * 1.5, f"2026-01-{d:02d}") for i, d in zip(ids, days, strict=True))


def read_back(t: Target, spec: TableSpec) -> list[Row]:
    """Every row of the table, sorted; ``dt`` as text (a Hive path segment has no type)."""
    dt = ", CAST(dt AS VARCHAR)" if spec.partition else ""
    if spec.layout == "parquet":
        con = connect(t.lake)
        try:
            return [tuple(r) for r in con.execute(
                f'SELECT id, name, amount{dt} FROM silver."{spec.table}" ORDER BY ALL').fetchall()]
        finally:
            con.close()
    data = iceberg.load_table(t.lake, spec.name).scan().to_arrow()
    cols = ["id", "name", "amount"] + (["dt"] if spec.partition else [])
    out = [tuple(str(v) if c == "dt" else v for c, v in zip(cols, r, strict=True))
           for r in zip(*(data.column(c).to_pylist() for c in cols), strict=True)]
    return sorted(out)


def snapshots(t: Target, spec: TableSpec) -> int:
    return len(iceberg.load_table(t.lake, spec.name).snapshots())


def keys(t: Target, spec: TableSpec) -> list[str]:
    return [i.key for i in t.lake.store.list("silver", f"{spec.prefix}/")]


def parquet_files(tmp_path: Path, parts: dict[str | None, list[list[int]]]) -> dict[str | None, list[Path]]:
    """Parquet files as DuckDB's ``PARTITION_BY`` writes them: without the ``dt`` column."""
    out: dict[str | None, list[Path]] = {}
    for part, chunks in parts.items():
        for n, ids in enumerate(chunks):
            path = tmp_path / "files" / f"{part}-{n}-{uuid.uuid4().hex[:6]}.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(rows(ids), path)
            out.setdefault(part, []).append(path)
    return out


# ---- (a) one batch ------------------------------------------------------------------------

def test_a_batch_is_written_once_and_its_partitions_are_listed(target: Target) -> None:
    sink = target.sink("things")
    assert sink.partitions() == []
    out = sink.write_batch("b1", Batch(table=rows([0, 1, 2, 3, 4], [5, 5, 6, 5, 6])))
    assert out.rows == {D5: 3, D6: 2} and out.total == 5
    assert sink.partitions() == [D5, D6]
    assert read_back(target, sink.spec) == expected([0, 1, 2, 3, 4], [5, 5, 6, 5, 6])
    if target.layout == "parquet":
        assert out.files == [f"things/dt={D5}/part-b1.parquet", f"things/dt={D6}/part-b1.parquet"]
        assert out.files_by_partition == {D5: 1, D6: 1}
        assert keys(target, sink.spec) == out.files
    else:
        assert out.appended and out.snapshot_id is not None
        assert out.files == [f"iceberg:{sink.spec.name}"]
        assert snapshots(target, sink.spec) == 1
        table = iceberg.load_table(target.lake, sink.spec.name)
        assert [(f.name, str(f.transform)) for f in table.spec().fields] == [("dt_day", "day")]
        assert table.location().startswith(iceberg.warehouse(target.lake) + "/")


# ---- (b) the same batch again ---------------------------------------------------------------

def test_the_same_batch_again_is_not_doubled(target: Target) -> None:
    sink = target.sink("things")
    first = sink.write_batch("b1", Batch(table=rows([0, 1, 2, 3, 4], [5, 5, 6, 5, 6])))
    again = sink.write_batch("b1", Batch(table=rows([0, 1, 2, 3, 4], [5, 5, 6, 5, 6])))
    assert read_back(target, sink.spec) == expected([0, 1, 2, 3, 4], [5, 5, 6, 5, 6])
    assert sink.partitions() == [D5, D6]
    if target.layout == "parquet":  # replaced: the same files, rewritten
        assert again.files == first.files and again.rows == {D5: 3, D6: 2}
        assert keys(target, sink.spec) == first.files
        # a redelivery with fewer rows replaces the batch's rows: none of the first ones stay
        fewer = sink.write_batch("b1", Batch(table=rows([0, 3], [5, 6])))
        assert fewer.rows == {D5: 1, D6: 1} and fewer.files == first.files
        assert read_back(target, sink.spec) == expected([0, 3], [5, 6])
        assert keys(target, sink.spec) == first.files
    else:  # found in the history: not appended, no new snapshot
        assert first.appended and not again.appended
        assert again.snapshot_id == first.snapshot_id and again.total == 0
        assert again.rows == {D5: 0, D6: 0}
        assert snapshots(target, sink.spec) == 1
        other = sink.write_batch("b1", Batch(table=rows([0, 3], [5, 6])))
        assert not other.appended and other.snapshot_id == first.snapshot_id
        assert read_back(target, sink.spec) == expected([0, 1, 2, 3, 4], [5, 5, 6, 5, 6])


def test_a_batch_of_files_again_is_not_doubled(target: Target, tmp_path: Path) -> None:
    """Batches the transform hands over as Parquet files by partition (no ``dt`` column)."""
    sink = target.sink("things")
    files = parquet_files(tmp_path, {D5: [[0, 1], [2]], D6: [[3]]})
    first = sink.write_batch("obj-c00000", Batch(files=files, rows={D5: 3, D6: 1}))
    assert first.total == 4 and sink.partitions() == [D5, D6]
    assert read_back(target, sink.spec) == expected([0, 1, 2, 3], [5, 5, 5, 6])
    # redelivered, now as one file per partition
    files = parquet_files(tmp_path, {D5: [[0, 1, 2]], D6: [[3]]})
    again = sink.write_batch("obj-c00000", Batch(files=files, rows={D5: 3, D6: 1}))
    assert read_back(target, sink.spec) == expected([0, 1, 2, 3], [5, 5, 5, 6])
    if target.layout == "parquet":
        d5 = f"things/dt={D5}/part-obj-c00000"
        assert first.files == [f"{d5}.parquet", f"{d5}-1.parquet", f"things/dt={D6}/part-obj-c00000.parquet"]
        assert first.files_by_partition == {D5: 2, D6: 1}
        assert again.files == [f"{d5}.parquet", f"things/dt={D6}/part-obj-c00000.parquet"]
        assert keys(target, sink.spec) == again.files  # the second file of the first delivery is gone
    else:
        assert (first.appended, again.appended) == (True, False)
        assert snapshots(target, sink.spec) == 1


# ---- (c) two batches ------------------------------------------------------------------------

def test_two_batches_add_up(target: Target) -> None:
    sink = target.sink("things")
    one = sink.write_batch("b1", Batch(table=rows([0, 1, 2], [5, 5, 6])))
    two = sink.write_batch("b2", Batch(table=rows([10, 11, 12, 13], [6, 7, 7, 7])))
    assert (one.rows, two.rows) == ({D5: 2, D6: 1}, {D6: 1, D7: 3})
    assert sink.partitions() == [D5, D6, D7]
    assert read_back(target, sink.spec) == expected([0, 1, 2, 10, 11, 12, 13], [5, 5, 6, 6, 7, 7, 7])
    if target.layout == "parquet":
        assert keys(target, sink.spec) == [
            f"things/dt={D5}/part-b1.parquet", f"things/dt={D6}/part-b1.parquet",
            f"things/dt={D6}/part-b2.parquet", f"things/dt={D7}/part-b2.parquet"]
    else:
        assert one.appended and two.appended and one.snapshot_id != two.snapshot_id
        assert snapshots(target, sink.spec) == 2
        table = iceberg.load_table(target.lake, sink.spec.name)
        assert [iceberg.find_batch(table, b) for b in ("b1", "b2")] == [one.snapshot_id, two.snapshot_id]


# ---- (d) reading back -----------------------------------------------------------------------

def test_reading_back_gives_exactly_the_rows_written(target: Target) -> None:
    sink = target.sink("things")
    ids = list(range(100))
    days = [5 + i % 3 for i in ids]
    sink.write_batch("b1", Batch(table=rows(ids[:60], days[:60])))
    sink.write_batch("b2", Batch(table=rows(ids[60:], days[60:])))
    got = read_back(target, sink.spec)
    assert got == expected(ids, days)
    assert len(got) == 100 and got[0] == (0, "name-0", 0.0, D5) and got[-1] == (99, "name-99", 148.5, D5)
    assert sink.partitions() == [D5, D6, D7]


# ---- (e) unpartitioned ----------------------------------------------------------------------

def test_an_unpartitioned_table(target: Target) -> None:
    sink = target.sink("flat", partition=None)
    first = sink.write_batch("b1", Batch(table=rows([0, 1, 2])))
    again = sink.write_batch("b1", Batch(table=rows([0, 1, 2])))
    two = sink.write_batch("b2", Batch(table=rows([3, 4])))
    assert (first.rows, two.rows) == ({None: 3}, {None: 2})
    assert sink.partitions() == []
    assert read_back(target, sink.spec) == expected([0, 1, 2, 3, 4])
    if target.layout == "parquet":
        assert first.files == again.files == ["flat/part-b1.parquet"]
        assert keys(target, sink.spec) == ["flat/part-b1.parquet", "flat/part-b2.parquet"]
    else:
        assert (first.appended, again.appended, two.appended) == (True, False, True)
        assert iceberg.load_table(target.lake, sink.spec.name).spec().fields == ()
        assert snapshots(target, sink.spec) == 2


# ---- format-specific details behind the same interface --------------------------------------

def test_open_sink_picks_the_format(lake: Lake) -> None:
    assert type(open_sink(lake, TableSpec("silver.a", layout="parquet"))) is ParquetDatasetSink
    assert type(open_sink(lake, TableSpec("silver.a", layout="iceberg"))) is IcebergSink
    with pytest.raises(UsageError, match="no sink writes the 'runs' layout"):
        open_sink(lake, TableSpec("silver.a", layout="runs"))


def test_iceberg_partitions_by_the_utc_day_of_the_time_field(lake: Lake) -> None:
    namespace = "silver" if lake.is_local else f"silver_{uuid.uuid4().hex[:10]}"
    spec = TableSpec(f"{namespace}.events", layout="iceberg", partition="dt")
    sink = open_sink(lake, spec, time_field="ts")
    stamps = [datetime(2026, 1, 5, 23, 30, tzinfo=UTC), datetime(2026, 1, 6, 0, 30, tzinfo=UTC),
              datetime(2026, 1, 6, 12, tzinfo=UTC)]
    data = pa.table({"id": pa.array([1, 2, 3], pa.int64()), "ts": pa.array(stamps, pa.timestamp("us", tz="UTC"))})
    out = sink.write_batch("b1", Batch(table=data))
    assert out.rows == {D5: 1, D6: 2}
    assert sink.partitions() == [D5, D6]
    table = iceberg.load_table(lake, spec.name)
    assert [(f.name, str(f.transform)) for f in table.spec().fields] == [("ts_day", "day")]


@pytest.mark.parametrize("bad", ["", "a/b", "b-1", "obj-c00001-12"])
def test_parquet_batch_ids_that_would_share_file_names_are_refused(home: Path, bad: str) -> None:
    lake = Lake.open(load_settings(home))
    sink = open_sink(lake, TableSpec("silver.things", partition="dt"))
    with pytest.raises(UsageError, match="batch id"):
        sink.write_batch(bad, Batch(table=rows([0], [5])))
    assert list(lake.store.list("silver")) == []


def test_asking_a_local_lake_about_iceberg_creates_no_catalog(home: Path) -> None:
    lake = Lake.open(load_settings(home))
    assert not has_iceberg(lake)
    assert open_sink(lake, TableSpec("silver.things", layout="iceberg", partition="dt")).partitions() == []
    assert not (home / "state" / "catalog.db").exists()
    assert "catalog" not in vars(lake)  # nothing opened
    open_sink(lake, TableSpec("silver.things", layout="iceberg")).write_batch("b1", Batch(table=rows([0])))
    assert has_iceberg(lake) and (home / "state" / "catalog.db").exists()
    assert iceberg.catalog(lake) is lake.catalog
    assert iceberg.warehouse(lake) == f"file://{home / 'zones' / 'silver' / 'iceberg'}"


def test_opening_a_lake_does_not_import_pyiceberg(home: Path) -> None:
    script = (
        "import sys\n"
        "from lakeline.config import load_settings\n"
        "from lakeline.lake import Lake\n"
        "from lakeline.sql import has_iceberg\n"
        f"lake = Lake.open(load_settings({str(home)!r}))\n"
        "assert not has_iceberg(lake)\n"
        "print('pyiceberg' in sys.modules)\n"
    )
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=120, check=False)
    assert (done.returncode, done.stdout.strip()) == (0, "False"), done.stderr


def test_write_result_total() -> None:
    assert WriteResult(rows={D5: 2, None: 3}).total == 5
