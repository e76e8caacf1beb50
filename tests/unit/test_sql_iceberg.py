"""Iceberg scan planning for SQL: pushed-down filters prune files, time travel, metadata
tables, the bytes-scanned limit."""

from __future__ import annotations

import datetime as dt

import duckdb
import pyarrow as pa
import pytest

from lakeline.errors import UsageError
from lakeline.sql_iceberg import prepare

SCHEMA = pa.schema([("id", pa.int64()), ("d", pa.date32()), ("v", pa.float64())])


@pytest.fixture
def catalog(tmp_path):
    from pyiceberg.catalog.sql import SqlCatalog
    from pyiceberg.transforms import DayTransform

    cat = SqlCatalog("t", uri=f"sqlite:///{tmp_path}/c.db", warehouse=f"file://{tmp_path}/wh")
    cat.create_namespace("ns")
    table = cat.create_table("ns.t", schema=SCHEMA)
    with table.update_spec() as spec:
        spec.add_field("d", DayTransform(), "d_day")
    for day in range(1, 6):  # five snapshots, one file per day
        table.append(pa.table({"id": [day * 10 + i for i in range(3)], "d": [dt.date(2024, 1, day)] * 3,
                               "v": [1.0, 2.0, 3.0]}, schema=SCHEMA))
    return cat


def run(catalog, sql, **kw):
    con = duckdb.connect()
    rewritten, plans = prepare(catalog, con, sql, **kw)
    return con.execute(rewritten).fetchall(), [(len(p.files), p.total_files) for p in plans]


@pytest.mark.parametrize(("where", "rows", "files"), [
    ("", 15, 5),
    ("WHERE d >= DATE '2024-01-04' AND v < 3", 4, 2),
    ("WHERE d BETWEEN '2024-01-02' AND '2024-01-03'", 6, 2),
    ("WHERE '2024-01-05' <= d", 3, 1),
    ("WHERE id IN (10, 11)", 2, 1),
    ("WHERE d = '2024-01-02' OR v = 1", 7, 5),  # OR is not pushed down: correct, not pruned
])
def test_filters_prune_planned_files(catalog, where, rows, files):
    assert run(catalog, f"SELECT count(*) FROM ns.t {where}") == ([(rows,)], [(files, 5)])


def test_time_travel_by_version_and_timestamp(catalog):
    snaps = catalog.load_table("ns.t").snapshots()
    assert run(catalog, f"SELECT count(*) FROM ns.t FOR VERSION AS OF {snaps[1].snapshot_id}") == ([(6,)], [(2, 2)])
    at = dt.datetime.fromtimestamp(snaps[2].timestamp_ms / 1000, dt.UTC).isoformat()
    assert run(catalog, f"SELECT count(*) FROM ns.t FOR TIMESTAMP AS OF '{at}'")[0] == [(9,)]
    with pytest.raises(UsageError, match="no snapshot 42"):
        run(catalog, "SELECT count(*) FROM ns.t FOR VERSION AS OF 42")


def test_metadata_tables(catalog):
    assert run(catalog, 'SELECT count(*) FROM ns."t$snapshots"')[0] == [(5,)]
    assert run(catalog, 'SELECT count(*) FROM ns."t$history"')[0] == [(5,)]
    assert run(catalog, 'SELECT count(*), sum(record_count) FROM ns."t$files"')[0] == [(5, 15)]
    assert run(catalog, 'SELECT count(*) FROM ns."t$partitions"')[0] == [(5,)]


def test_bytes_limit_refuses_before_running(catalog):
    total = run(catalog, "SELECT 1 FROM ns.t")
    assert total[1] == [(5, 5)]
    with pytest.raises(UsageError, match=r"query would scan \d+ bytes, over the limit of 100"):
        run(catalog, "SELECT * FROM ns.t", max_bytes=100)
    one_day = run(catalog, "SELECT count(*) FROM ns.t WHERE d = '2024-01-01'", max_bytes=10**6)
    assert one_day == ([(3,)], [(1, 5)])
