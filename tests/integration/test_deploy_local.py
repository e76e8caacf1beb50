"""Issue 17, part 7: `lakeline deploy local` creates the template's resources on an
AWS-compatible endpoint (moto's server over HTTP) and writes the `[aws]` settings; then the
four-command session of the README works with `--profile aws`; `--teardown` removes it all."""

from __future__ import annotations

import json
import tomllib
import uuid
from pathlib import Path
from typing import Any

import pytest

from lakeline.config import ZONES
from lakeline.deploy.sam import TemplateOptions, build_template, builtin_registry
from tests.aws_server import boto_client, moto_endpoint  # noqa: F401
from tests.e2e.helpers import InProcess


@pytest.fixture
def cli(tmp_path: Path) -> InProcess:
    c = InProcess(tmp_path / "lake", tmp_path)
    c.ok("init", c.home)
    return c


def _name() -> str:
    return "t" + uuid.uuid4().hex[:12]


def test_deploy_local_creates_the_template_resources_and_the_session_runs(
        cli: InProcess, moto_endpoint: str, tmp_path: Path, fault: Any) -> None:  # noqa: F811
    fault("deploy local on moto, then put / run / sql / status --profile aws, then --teardown",
          expected="every bucket, queue (FIFO job queue too), table, topic, Glue table, workgroup and state "
                   "machine of the template "
                   "exists; [aws] written; 500 shipments loaded and queried over S3; teardown removes all")
    name = _name()
    first = cli.json("deploy", "local", "--endpoint-url", moto_endpoint, "--name", name)
    again = cli.json("deploy", "local", "--endpoint-url", moto_endpoint, "--name", name)  # idempotent
    tpl = build_template(TemplateOptions(name=name), builtin_registry())
    wanted = {k for k, v in tpl["Resources"].items() if v["Type"] in (
        "AWS::S3::Bucket", "AWS::SQS::Queue", "AWS::DynamoDB::Table", "AWS::SNS::Topic",
        "AWS::Serverless::StateMachine", "AWS::Glue::Database", "AWS::Glue::Table", "AWS::Athena::WorkGroup")}
    assert set(first["resources"]) == wanted == set(again["resources"])
    assert first["resources"] == again["resources"]
    s3, sqs, sfn = (boto_client(x, moto_endpoint) for x in ("s3", "sqs", "stepfunctions"))
    buckets = {b["Name"] for b in s3.list_buckets()["Buckets"]}
    assert {f"{name}-{z}-{first['account']}-{first['region']}" for z in ZONES} <= buckets
    job = sqs.get_queue_attributes(QueueUrl=first["resources"]["JobRetailQueue"]["ref"], AttributeNames=["All"])
    assert job["Attributes"]["FifoQueue"] == "true" and '"maxReceiveCount": 3' in job["Attributes"]["RedrivePolicy"]
    machines = {m["name"] for m in sfn.list_state_machines()["stateMachines"]}
    assert {f"{name}-carbon", f"{name}-etl-promote"} <= machines
    config = tomllib.loads((cli.home / "lakeline.toml").read_text())
    assert config["aws"]["endpoint_url"] == moto_endpoint
    assert config["aws"]["zone_landing"] == f"s3://{name}-landing-{first['account']}-{first['region']}/"
    assert "Lambda" not in " ".join(first["resources"]) and "IngestFunction" in first["skipped"]

    cli.ok("gen", "shipments", "--count", "500", "--out", "s.jsonl", "--seed", "2")
    cli.ok("put", "s.jsonl", "--pipeline", "shipments", "--profile", "aws")
    done = cli.json("run", "--profile", "aws", env={"LAKELINE__RUNNER__SETTLE_SECONDS": "0"})
    rows = cli.json("sql", "SELECT count(*) AS n FROM silver.shipments", "--profile", "aws")
    status = cli("status", "--profile", "aws")
    fault.saw(f"{len(first['resources'])} resources, {len(first['skipped'])} AWS-only; run loaded {done['loaded']}; "
              f"sql {rows[0]['n']}; status exit {status.returncode}")
    assert (done["loaded"], done["status"]) == (500, "success")
    assert rows == [{"n": 500}]
    assert status.returncode == 0, status.stderr

    glue = boto_client("glue", moto_endpoint)
    tables = {t["Name"]: t for t in glue.get_tables(DatabaseName=name)["TableList"]}
    assert sorted(tables) == ["invoice_lines", "shipments", "tracking_events", "transactions"]
    assert tables["shipments"]["Parameters"]["storage.location.template"] == (
        f"s3://{name}-silver-{first['account']}-{first['region']}/shipments/dt=${{dt}}/")
    assert boto_client("athena", moto_endpoint).get_work_group(WorkGroup=name)["WorkGroup"]["Name"] == name

    gone = cli.json("deploy", "local", "--teardown")
    assert sorted(gone["removed"]) == sorted(wanted)
    assert not {f"{name}-{z}-{first['account']}-{first['region']}" for z in ZONES} & {
        b["Name"] for b in s3.list_buckets()["Buckets"]}
    assert "aws" not in tomllib.loads((cli.home / "lakeline.toml").read_text())
    assert {f"{name}-carbon"} & {m["name"] for m in sfn.list_state_machines()["stateMachines"]} == set()


def test_deploy_local_refuses_a_bad_endpoint_and_a_teardown_of_nothing(cli: InProcess) -> None:
    bad = cli("deploy", "local", "--endpoint-url", "127.0.0.1:5000")
    assert bad.returncode == 2 and "--endpoint-url must be an http(s) URL" in bad.stderr
    nothing = cli("deploy", "local", "--teardown")
    assert nothing.returncode == 2 and "nothing to tear down" in nothing.stderr
    missing = cli("deploy", "local")
    assert missing.returncode == 2 and "give --endpoint-url URL" in missing.stderr


def test_sql_engine_athena_runs_the_query_in_the_lake_workgroup(
        cli: InProcess, moto_endpoint: str, fault: Any) -> None:  # noqa: F811
    fault("lakeline sql --engine athena --profile aws (moto answers with a queued result)",
          expected="the query starts in the lake's workgroup and Glue database; the header row is dropped, "
                   "values typed by column type; bytes scanned and cost on stderr")
    import requests

    name = _name()
    cli.json("deploy", "local", "--endpoint-url", moto_endpoint, "--name", name)
    columns = [{"Name": "dt", "Type": "date"}, {"Name": "n", "Type": "bigint"}, {"Name": "w", "Type": "double"},
               {"Name": "d", "Type": "decimal(18,2)"}]
    rows = [["dt", "n", "w", "d"], ["2026-01-05", "42", "1.5", "10.25"], ["2026-01-06", "7", None, "0.10"]]
    answer = {"account_id": "123456789012", "region": "us-east-1", "results": [{
        "rows": [{"Data": [{} if v is None else {"VarCharValue": v} for v in r]} for r in rows],
        "column_info": [{**c, "CatalogName": "hive", "SchemaName": name, "TableName": "shipments", "Label": c["Name"],
                         "Precision": 0, "Scale": 0, "Nullable": "NULLABLE", "CaseSensitive": False}
                        for c in columns]}]}
    assert requests.post(f"{moto_endpoint}/moto-api/static/athena/query-results", json=answer,
                         timeout=10).status_code == 201
    query = "SELECT dt, count(*) AS n, avg(weight_kg) AS w, sum(x) AS d FROM shipments GROUP BY dt"
    done = cli("sql", "--engine", "athena", "--profile", "aws", "--json", query)
    athena = boto_client("athena", moto_endpoint)
    [qid] = [q for q in athena.list_query_executions(WorkGroup=name)["QueryExecutionIds"]]
    ex = athena.get_query_execution(QueryExecutionId=qid)["QueryExecution"]
    fault.saw(f"exit {done.returncode}; rows {done.stdout.strip()[:120]}; stderr {done.stderr.strip()[:120]}")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [{"dt": "2026-01-05", "n": 42, "w": 1.5, "d": 10.25},
                                       {"dt": "2026-01-06", "n": 7, "w": None, "d": 0.1}]
    assert (ex["Query"], ex["WorkGroup"], ex["QueryExecutionContext"]["Database"]) == (query, name, name)
    assert f"athena: query {qid} scanned " in done.stderr and "about $" in done.stderr
    local = cli("sql", "--engine", "athena", "SELECT 1")
    assert local.returncode == 2 and "add --profile aws" in local.stderr


def test_models_run_on_athena_write_gold_as_duckdb_does(
        cli: InProcess, moto_endpoint: str, tmp_path: Path, fault: Any) -> None:  # noqa: F811
    fault("models run --engine athena --profile aws (moto records the CTAS; its output is staged as Athena "
          "would write it)",
          expected="the CTAS of the translated model runs in the lake's workgroup; gold/daily/data.parquet holds "
                   "its rows; the scratch table is dropped and its files deleted")
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    from lakeline.adapters.aws.session import clients
    from lakeline.aws.models import athena_writer
    from lakeline.config import load_settings
    from lakeline.lake import Lake
    from lakeline.models import run_models
    from lakeline.pipelines.registry import registry
    from tests.functional.test_models import DAILY

    name = _name()
    cli.json("deploy", "local", "--endpoint-url", moto_endpoint, "--name", name)
    (cli.home / "models").mkdir()
    (cli.home / "models" / "daily.sql").write_text(DAILY)
    cli.ok("gen", "shipments", "--count", "50", "--out", "s.jsonl", "--seed", "4")
    cli.ok("put", "s.jsonl", "--pipeline", "shipments", "--profile", "aws")
    cli.json("run", "--profile", "aws", env={"LAKELINE__RUNNER__SETTLE_SECONDS": "0"})
    lake = Lake.open(load_settings(cli.home, {"lake.profile": "aws"}))
    result = pa.table({"dt": pa.array(["2026-01-05"]), "carrier": pa.array(["UPS"]), "n": pa.array([7], pa.int64())})
    sink = io.BytesIO()
    pq.write_table(result, sink)
    lake.store.put("tmp", "athena/models/daily/v1/20261207_000000_00001_abcde", sink.getvalue())  # Athena's output
    aws = lake.settings.aws
    writer = athena_writer(clients(aws), database=aws.database(name), workgroup=aws.workgroup(name),
                           version=lambda m: "v1")
    [done] = run_models(lake, [t for _, t in registry(lake.settings).tables()], writer=writer, force=True)
    athena = boto_client("athena", moto_endpoint)
    queries = [athena.get_query_execution(QueryExecutionId=q)["QueryExecution"]
               for q in athena.list_query_executions(WorkGroup=name)["QueryExecutionIds"]]
    texts = sorted(q["Query"] for q in queries)
    gold = pq.read_table(io.BytesIO(lake.store.get("gold", "daily/data.parquet")))
    fault.saw(f"model {done.status} with {done.rows} rows; Athena ran {len(texts)} statements; "
              f"scratch left {len(list(lake.store.list('tmp', 'athena/models/')))}")
    assert (done.status, done.rows) == ("SUCCEEDED", 1)
    assert gold.to_pylist() == [{"dt": "2026-01-05", "carrier": "UPS", "n": 7}]
    assert texts == [
        f'CREATE TABLE "{name}"."lakeline_tmp_daily_v1" WITH (format = \'PARQUET\', write_compression = \'ZSTD\', '
        f"external_location = 's3://{name}-tmp-{lake_account(cli)}-us-east-1/athena/models/daily/v1/') AS\n"
        f'SELECT dt, carrier, COUNT(*) AS n FROM "{name}"."shipments" GROUP BY 1, 2 ORDER BY 1, 2, 3',
        f'DROP TABLE IF EXISTS "{name}"."lakeline_tmp_daily_v1"']
    assert {q["WorkGroup"] for q in queries} == {name}
    assert list(lake.store.list("tmp", "athena/models/")) == []
    again = cli("models", "run", "--engine", "athena")
    assert again.returncode == 2 and "add --profile aws" in again.stderr


def lake_account(cli: InProcess) -> str:
    config = tomllib.loads((cli.home / "lakeline.toml").read_text())
    return str(config["aws"]["zone_tmp"]).split("-")[-4]
