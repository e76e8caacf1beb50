"""Issue 17 on the AWS API (moto server over HTTP): a landed job-pipeline object reaches the
ingest function as S3 would deliver it, and ingest starts the work the pipeline declares — a
Step Functions execution for carbon (once per object version), a message on retail's FIFO job
queue that the retail job function consumes — and the schedule event runs the job too."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from lakeline import envvars
from lakeline.aws import handlers
from lakeline.aws.triggers import execution_name
from lakeline.events import s3_event
from lakeline.pipelines.retail.gen import write
from lakeline.pipelines.retail.runlog import landing_key
from lakeline.tables.iceberg import load_table
from tests.aws_server import REGION, boto_client, moto_endpoint  # noqa: F401
from tests.integration.aws_lake import as_env, provision
from tests.integration.test_aws_e2e import FakeContext

PASS_MACHINE = {"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}


class ShortContext(FakeContext):
    """A Lambda context with 62 s left: a job function waits for its execution until 60 s remain."""

    def get_remaining_time_in_millis(self) -> int:
        return 62_000
ROLE = "arn:aws:iam::123456789012:role/lakeline-states"


@pytest.fixture
def lambda_env(moto_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:  # noqa: F811
    """A provisioned lake, carbon's state machine and retail's FIFO job queue, and the trigger
    plan `deploy sam` would give the ingest function."""
    overrides = provision(moto_endpoint)
    for name, value in as_env(overrides).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("LAKELINE_HOME", str(tmp_path / "lambda"))
    sfn = boto_client("stepfunctions", moto_endpoint)
    machine = sfn.create_state_machine(name=f"{overrides['lake.name']}-carbon", roleArn=ROLE,
                                       definition=json.dumps(PASS_MACHINE))["stateMachineArn"]
    sqs = boto_client("sqs", moto_endpoint)
    queue = sqs.create_queue(QueueName=f"{overrides['lake.name']}-job-retail.fifo",
                             Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true",
                                         "VisibilityTimeout": "60"})["QueueUrl"]
    plan = {"carbon": [{"prefix": "carbon/", "state_machine": machine, "input": {}}],
            "retail": [{"prefix": "retail/", "queue": queue}]}
    monkeypatch.setenv(envvars.TRIGGERS, json.dumps(plan))
    handlers.reset()
    yield {**overrides, "machine": machine, "job_queue": queue}
    handlers.reset()


def _rows(lake: Any) -> int:
    try:
        return int(load_table(lake, "retail_silver.orders_silver").scan().to_arrow().num_rows)
    except Exception:  # no such table yet
        return 0


def _land(endpoint: str, env: dict[str, Any], key: str, body: bytes) -> dict[str, Any]:
    bucket = env["aws.zone_landing"][5:].rstrip("/")
    s3 = boto_client("s3", endpoint)
    s3.put_object(Bucket=bucket, Key=key, Body=body)
    head = s3.head_object(Bucket=bucket, Key=key)
    return s3_event(bucket, key, head["ContentLength"], head["ETag"].strip('"'), region=REGION)


def test_a_landed_carbon_file_starts_one_execution_per_object_version(
        lambda_env: dict[str, Any], moto_endpoint: str, fault: Any) -> None:  # noqa: F811
    fault("carbon file landed on S3, its event delivered twice (S3 is at least once)",
          expected="ingest records it LANDED and starts one carbon execution with {\"key\": …}; the repeat "
                   "starts none")
    key = "carbon/2026/activity.csv"
    event = _land(moto_endpoint, lambda_env, key, b"activity_event_id,asset_id\ne1,a1\n")
    first = handlers.ingest_handler(event, FakeContext())
    again = handlers.ingest_handler(event, FakeContext(aws_request_id="req-2"))
    sfn = boto_client("stepfunctions", moto_endpoint)
    executions = sfn.list_executions(stateMachineArn=lambda_env["machine"])["executions"]
    detail = [sfn.describe_execution(executionArn=e["executionArn"]) for e in executions]
    fault.saw(f"ingest skipped {again['skipped']} on the repeat; executions {[d['name'] for d in detail]}")
    assert (first["objects"], first["skipped"], again["skipped"]) == (1, 0, 1)
    assert [json.loads(d["input"]) for d in detail] == [{"key": key}]
    etag = event["Records"][0]["s3"]["object"]["eTag"]
    assert [d["name"] for d in detail] == [execution_name("carbon", key, etag)]
    entry = [i.data for i in handlers.lake().state.query("runs") if i.data.get("key") == key]
    assert [e["status"] for e in entry] == ["LANDED"]


def test_landed_retail_files_run_the_retail_job_function_and_its_schedule(
        lambda_env: dict[str, Any], moto_endpoint: str,  # noqa: F811
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fault: Any) -> None:
    fault("retail customers, products and orders landed on S3 (the aws profile, Glue catalog)",
          expected="each landing queues a job message; the retail job function run on that batch loads "
                   "300 orders into Iceberg; the schedule event runs again with nothing new")
    files = write(tmp_path / "d", orders=300, customers=50, products=20)
    for source in ("customers", "products", "orders"):
        key = landing_key(source, files[source].name)
        handlers.ingest_handler(_land(moto_endpoint, lambda_env, key, files[source].read_bytes()), FakeContext())
    sqs = boto_client("sqs", moto_endpoint)
    got: list[dict[str, Any]] = []
    while True:
        batch = sqs.receive_message(QueueUrl=lambda_env["job_queue"], MaxNumberOfMessages=10,
                                    AttributeNames=["All"]).get("Messages", [])
        if not batch:
            break
        got += batch
        for m in batch:
            sqs.delete_message(QueueUrl=lambda_env["job_queue"], ReceiptHandle=m["ReceiptHandle"])
    bodies = [orjson.loads(m["Body"]) for m in got]
    assert sorted(b["key"].split("/")[1] for b in bodies) == ["customers", "orders", "products"]
    assert {m["Attributes"]["MessageGroupId"] for m in got} == {"retail"}

    monkeypatch.setenv(envvars.PIPELINE, "retail")
    event = {"Records": [{"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
                          "attributes": m["Attributes"], "eventSource": "aws:sqs"} for m in got]}
    # the Glue database retail_silver is the account's (this test process's moto server too)
    before = _rows(handlers.lake())
    done = handlers.pipeline_job_handler(event, FakeContext())
    table = load_table(handlers.lake(), "retail_silver.orders_silver")
    scheduled = handlers.pipeline_job_handler({"schedule": "retail"}, FakeContext())
    fault.saw(f"job reports {[r['status'] for r in done['reports']]} "
              f"rows {[r.get('rows') for r in done['reports']]}; Iceberg rows {table.scan().to_arrow().num_rows}; "
              f"schedule reports {[(r['status'], r.get('rows')) for r in scheduled['reports']]}")
    assert [(r["status"], r["rows"]) for r in done["reports"]] == [("SUCCEEDED", 300)]
    assert table.scan().to_arrow().num_rows - before == 300
    assert [(r["status"], r["rows"]) for r in scheduled["reports"]] == [("SUCCEEDED", 0)]
    with pytest.raises(Exception, match="pipeline retail has no schedule 'nightly'"):
        handlers.pipeline_job_handler({"schedule": "nightly"}, FakeContext())


def test_a_totesys_packet_in_raw_runs_the_star_schema_through_the_job_function(
        lambda_env: dict[str, Any], moto_endpoint: str,  # noqa: F811
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fault: Any) -> None:
    fault("totesys packets extracted to the raw bucket (aws profile), their S3 notification delivered to "
          "the totesys job function",
          expected="the star schema is built on S3 from the packets once; a repeated notification adds nothing")
    from lakeline.pipelines.totesys import gen as totesys_gen
    from lakeline.pipelines.totesys.extract import extract
    from lakeline.pipelines.totesys.star import GOLD_TABLES

    db = tmp_path / "totesys.db"
    totesys_gen.create(str(db), scale=100, seed=3)
    report = extract(handlers.lake(), str(db))
    assert report.status == "SUCCEEDED" and report.packets > 0
    raw = lambda_env["aws.zone_raw"][5:].rstrip("/")
    s3 = boto_client("s3", moto_endpoint)
    [packet, *_] = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=raw, Prefix="totesys/")["Contents"]
                          if o["Key"].endswith(".jsonl"))
    head = s3.head_object(Bucket=raw, Key=packet)
    event = s3_event(raw, packet, head["ContentLength"], head["ETag"].strip('"'), region=REGION)
    monkeypatch.setenv(envvars.PIPELINE, "totesys")
    first = handlers.pipeline_job_handler(event, FakeContext())
    again = handlers.pipeline_job_handler(event, FakeContext(aws_request_id="req-2"))
    gold = lambda_env["aws.zone_gold"][5:].rstrip("/")
    tables = sorted({o["Key"].split("/")[0] for o in s3.list_objects_v2(Bucket=gold).get("Contents", [])})
    fault.saw(f"first {[(r['status'], r.get('packets')) for r in first['reports']]}, again {again['reports']}; "
              f"gold tables {len(tables)}")
    assert [(r["status"], r["packets"]) for r in first["reports"]] == [("SUCCEEDED", report.packets)]
    assert again["reports"] == []  # nothing pending: the packets were processed once
    assert set(GOLD_TABLES) <= set(tables)


def test_transactions_files_landed_together_are_one_etl_promote_execution(
        lambda_env: dict[str, Any], moto_endpoint: str,  # noqa: F811
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fault: Any) -> None:
    fault("two transactions files landed together on S3, then their job messages handled twice",
          expected="both queue on the transactions job queue; its function starts one etl_promote execution "
                   "({\"key\", \"silver_prefix\", …}) and waits for it; nothing pending: no execution")
    from lakeline.pipelines.transactions.gen import write as transactions_write

    sfn = boto_client("stepfunctions", moto_endpoint)
    machine = sfn.create_state_machine(name=f"{lambda_env['lake.name']}-etl-promote", roleArn=ROLE,
                                       definition=json.dumps(PASS_MACHINE))["stateMachineArn"]
    sqs = boto_client("sqs", moto_endpoint)
    queue = sqs.create_queue(QueueName=f"{lambda_env['lake.name']}-job-transactions.fifo",
                             Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"})["QueueUrl"]
    entry = {"prefix": "transactions/", "state_machine": machine,
             "input": {"silver_prefix": "mortgages/transactions", "schema_version": "v1"}}
    monkeypatch.setenv(envvars.TRIGGERS, json.dumps({"transactions": [{"prefix": "transactions/", "queue": queue}]}))
    handlers.reset()
    for i in range(2):
        transactions_write(50, tmp_path / f"t{i}.csv", seed=i, first_id=1 + 1000 * i)
        handlers.ingest_handler(_land(moto_endpoint, lambda_env, f"transactions/t{i}.csv",
                                      (tmp_path / f"t{i}.csv").read_bytes()), FakeContext())
    got = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, AttributeNames=["All"])["Messages"]
    # the job function: its own plan names the state machine
    monkeypatch.setenv(envvars.TRIGGERS, json.dumps({"transactions": [entry]}))
    monkeypatch.setenv(envvars.PIPELINE, "transactions")
    handlers.reset()
    event = {"Records": [{"messageId": m["MessageId"], "body": m["Body"], "eventSource": "aws:sqs"} for m in got]}
    first = handlers.pipeline_job_handler(event, ShortContext())  # moto never ends an execution
    executions = sfn.list_executions(stateMachineArn=machine)["executions"]
    [started] = [sfn.describe_execution(executionArn=e["executionArn"]) for e in executions]
    # the execution's run takes every pending file (here the Pass machine stands in for it)
    from lakeline.pipelines.transactions import TRANSACTIONS

    TRANSACTIONS.run(handlers.lake())
    again = handlers.pipeline_job_handler(event, ShortContext(aws_request_id="req-2"))
    fault.saw(f"{len(got)} job messages; first {first['execution']['status'] if first['execution'] else None}, "
              f"{len(executions)} execution(s); after the run: execution {again['execution']}")
    assert len(got) == 2
    assert json.loads(started["input"]) == {"silver_prefix": "mortgages/transactions", "schema_version": "v1",
                                            "key": json.loads(got[0]["Body"])["key"]}
    assert first["execution"]["execution"] == started["executionArn"] and first["execution"]["objects"] == 2
    assert first["execution"]["status"] == "RUNNING"  # waited up to the deadline (moto does not run it)
    assert again["execution"] is None
    assert len(sfn.list_executions(stateMachineArn=machine)["executions"]) == 1
