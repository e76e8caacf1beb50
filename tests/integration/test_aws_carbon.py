"""The carbon workflow against S3 + DynamoDB (moto server): gate, batches, gold, lineage, results."""

from __future__ import annotations

import io

import pyarrow.parquet as pq
import pytest

from lakeline import runner
from lakeline.lake import Lake
from lakeline.pipelines.carbon.job import result_of
from tests.aws_server import boto_client, moto_endpoint  # noqa: F401
from tests.functional.test_carbon_pipeline import KEY, ROWS, _csv
from tests.integration.aws_lake import aws_settings, provision


@pytest.fixture
def aws_lake(moto_endpoint, tmp_path):  # noqa: F811
    overrides = provision(moto_endpoint)
    s = aws_settings(tmp_path / "ws", overrides, **{"runner.settle_seconds": 0.0, "pipelines.carbon.batch_size": 2})
    return Lake.open(s), overrides


def test_carbon_workflow_on_s3_and_dynamodb(aws_lake, moto_endpoint, tmp_path):  # noqa: F811
    lake, overrides = aws_lake
    lake.store.put("landing", KEY, _csv(ROWS))
    [report] = [b for b in runner.run(lake.settings)["batch_runs"] if b.get("pipeline") == "carbon"]
    assert (report["status"], report["records"], report["batches"], report["calculated"], report["failed"]) == (
        "SUCCEEDED", 5, 3, 3, 2)
    s3 = boto_client("s3", moto_endpoint)
    raw = overrides["aws.zone_raw"][5:].rstrip("/")
    assert s3.head_object(Bucket=raw, Key=KEY)["ContentLength"] > 0  # gated landing -> raw, full key
    shards = [i.key for i in lake.store.list("gold", "emissions/")]
    assert shards and all(k.startswith("emissions/shard=") and k.endswith("/part-0.parquet") for k in shards)
    ids = sorted(i for k in shards
                 for i in pq.read_table(io.BytesIO(lake.store.get("gold", k))).column("activity_event_id").to_pylist())
    assert ids == ["e1", "e2", "e3"]
    assert result_of(lake, "e2")["emissions_output"]["calculated_emissions"]["co2e"]["ar4"]["amount"] == \
        pytest.approx(0.473987524, rel=1e-12)
    root = report["root_id"]
    assert lake.lineage.counts(root) == {
        "RAW_DATA_INPUT": 1, "PROFILE_COMPLETE": 1, "DQ_CHECK_PASS": 1, "GLUE_BATCH_SPLIT": 3,
        "CALCULATION_COMPLETE": 3, "CALCULATION_FAILED": 2}
    trace = lake.lineage.trace("e1", root)
    assert [n.action_taken for n in trace][-3:] == ["DQ_CHECK_PASS", "PROFILE_COMPLETE", "RAW_DATA_INPUT"]
    assert trace[-3].storage_location == f"s3://{raw}/{KEY}"
