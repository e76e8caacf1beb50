"""Batch runs and promotion on S3 + DynamoDB (moto server): the same protocol as locally."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from lakeline import runner
from lakeline.lake import Lake
from lakeline.pipelines.transactions.gen import write
from lakeline.promotion.promote import current_files
from tests.aws_server import boto_client, moto_endpoint  # noqa: F401
from tests.integration.aws_lake import aws_settings, provision
from tests.integration.test_aws_e2e import FakeContext


@pytest.fixture
def aws_lake(moto_endpoint, tmp_path):  # noqa: F811
    overrides = provision(moto_endpoint)
    s = aws_settings(tmp_path / "ws", overrides, **{"runner.settle_seconds": 0.0})
    return Lake.open(s), overrides


def test_batch_run_and_promotion_on_s3(aws_lake, moto_endpoint, tmp_path, monkeypatch):  # noqa: F811
    lake, overrides = aws_lake
    for i, first_id in enumerate((1, 50001)):
        path = tmp_path / f"t{i}.csv"
        write(800, path, seed=i, dirty_rate=0.01, first_id=first_id,
              start=datetime(2026, 1, 20, tzinfo=UTC), days=20)
        lake.store.put("landing", f"transactions/2026/t{i}.csv", path.read_bytes())
        summary = runner.run(lake.settings)
        [batch] = summary["batch_runs"]
        assert (batch["input_rows"], batch["valid_rows"], batch["quarantined_rows"]) == (800, 792, 8)

    s3 = boto_client("s3", moto_endpoint)
    silver = overrides["aws.zone_silver"][5:].rstrip("/")
    markers = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=silver)["Contents"] if o["Key"].endswith("_SUCCESS"))
    assert len(markers) == 4  # two runs, each spanning January and February
    assert all("/schema_v=v1/run_id=" in k for k in markers)

    # promote through the Lambda handler, as the Step Functions task does
    for k, v in {"LAKELINE__" + key.replace(".", "__").upper(): str(val) for key, val in overrides.items()}.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("LAKELINE_HOME", str(tmp_path / "lambda"))
    from lakeline.aws import handlers

    handlers.reset()
    event = {"silver_bucket": silver, "silver_prefix": "mortgages/transactions", "schema_version": "v1",
             "execution_arn": "arn:aws:states:us-east-1:123456789012:execution:etl:1"}
    gate = handlers.run_summary_handler(event, FakeContext())
    assert gate["promotion_allowed"] is True and gate["quarantine_rate"] == 0.01
    result = handlers.promote_handler(event, FakeContext())
    assert result["status"] == "success" and len(result["partitions"]) == 2
    latest = s3.get_object(Bucket=silver, Key=result["latest_json"])["Body"].read()
    assert b'"execution_arn": "arn:aws:states:us-east-1:123456789012:execution:etl:1"' in latest.replace(b'":"', b'": "')
    files = current_files(lake, "mortgages/transactions")
    assert len(files) == 2 and all(result["run_id"] in f for f in files)
    again = handlers.promote_handler(event, FakeContext())
    assert again["status"] == "success" and again["noop"] is True
    missing = handlers.promote_handler({**event, "silver_prefix": "nothing/here"}, FakeContext())
    assert missing["status"] == "error"

    # the deployed workflow task functions run the same steps as the local engine's bindings
    monkeypatch.setenv("LAKELINE_WORKFLOW_TASK", "lakeline-run-summary")
    assert handlers.workflow_task_handler(event, FakeContext()) == gate
    monkeypatch.setenv("LAKELINE_WORKFLOW_TASK", "lakeline-quality-check")
    fresh = handlers.workflow_task_handler(
        {"since": "2000-01-01T00:00:00Z", "record_type": "mortgages", "min_parquet_objects": 3}, FakeContext())
    run_files = [i.key for i in lake.store.list("silver", "mortgages/") if i.key.endswith(".parquet")]
    assert len(run_files) >= 4  # two runs x two months
    assert fresh == {"ok": True, "new_parquet_objects": len(run_files), "min_parquet_objects": 3}
    monkeypatch.setenv("LAKELINE_WORKFLOW_TASK", "lakeline-nope")
    with pytest.raises(Exception, match="Function not found: lakeline-nope"):
        handlers.workflow_task_handler({}, FakeContext())
    handlers.reset()
