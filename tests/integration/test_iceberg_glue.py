"""Iceberg on the aws profile: Glue Data Catalog + S3 warehouse, both on the moto server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest

from lakeline.lake import Lake
from lakeline.tables import iceberg, maintenance
from tests.aws_server import boto_client, moto_endpoint  # noqa: F401
from tests.integration.aws_lake import aws_settings, provision

IDENT = "silver_db.events"
SCHEMA = pa.schema([pa.field("id", pa.int64(), nullable=False),
                    pa.field("ts", pa.timestamp("us", tz="UTC")),
                    pa.field("kind", pa.string())])


def rows(first: int, n: int) -> pa.Table:
    ts = datetime(2026, 1, 1, 12, tzinfo=UTC)
    return pa.table({"id": pa.array(range(first, first + n), pa.int64()),
                     "ts": pa.array([ts] * n, pa.timestamp("us", tz="UTC")),
                     "kind": pa.array(["k"] * n)})


@pytest.fixture
def aws_lake(moto_endpoint, tmp_path):  # noqa: F811
    overrides = provision(moto_endpoint)
    return Lake.open(aws_settings(tmp_path / "home", overrides)), overrides


def test_glue_catalog_on_moto(aws_lake, moto_endpoint):  # noqa: F811
    lake, overrides = aws_lake
    cat = iceberg.catalog(lake)
    assert type(cat).__name__ == "GlueCatalog"
    bucket = overrides["aws.zone_silver"].removeprefix("s3://").rstrip("/")
    assert iceberg.warehouse(lake) == f"s3://{bucket}/iceberg"
    table = iceberg.ensure_table(lake, IDENT, SCHEMA, [("ts", "day")])
    assert iceberg.ensure_table(lake, IDENT, SCHEMA, [("ts", "day")]).metadata.table_uuid == \
        table.metadata.table_uuid
    assert table.location().startswith(f"s3://{bucket}/iceberg/")
    glue = boto_client("glue", moto_endpoint)
    got = glue.get_table(DatabaseName="silver_db", Name="events")["Table"]
    assert got["Parameters"]["table_type"].upper() == "ICEBERG"

    r1 = iceberg.append_batch(lake, IDENT, rows(0, 10), "b1")
    r2 = iceberg.append_batch(lake, IDENT, rows(0, 10), "b1")
    r3 = iceberg.append_batch(lake, IDENT, rows(10, 5), "b2")
    assert (r1.appended, r2.appended, r3.appended) == (True, False, True)
    assert r2.snapshot_id == r1.snapshot_id
    table = iceberg.load_table(lake, IDENT)
    assert sorted(table.scan().to_arrow().column("id").to_pylist()) == list(range(15))
    assert len(list(iceberg.ancestry(table))) == 2

    out = maintenance.compact(lake, IDENT)
    assert (out["files_before"], out["files_after"], out["rows"]) == (2, 1, 15)

    s3 = boto_client("s3", moto_endpoint)
    prefix = table.location().removeprefix(f"s3://{bucket}/") + "/data/"
    s3.put_object(Bucket=bucket, Key=prefix + "stray.parquet", Body=b"x")
    # moto stamps objects with "now": a cutoff in the past keeps it, one in the future removes it
    assert maintenance.remove_orphan_files(lake, IDENT, datetime.now(UTC) - timedelta(hours=1)) == []
    assert maintenance.expire_snapshots(lake, IDENT, datetime.now(UTC) + timedelta(seconds=1)) == 2
    gone = maintenance.remove_orphan_files(lake, IDENT, datetime.now(UTC) + timedelta(seconds=1))
    assert f"s3://{bucket}/{prefix}stray.parquet" in gone
    assert len([g for g in gone if g.endswith(".parquet")]) == 3  # stray + 2 compacted-away files
    table = iceberg.load_table(lake, IDENT)
    assert table.scan().to_arrow().num_rows == 15
