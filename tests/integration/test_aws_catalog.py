"""Issue 17, part 5 on the AWS API (moto): after transactions runs are promoted and carbon
publishes gold.emissions on S3, `lakeline catalog sync --profile aws` registers both in the
lake's Glue database from their Parquet — columns (nested ones too) and every partition."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lakeline.pipelines.transactions.gen import write
from tests.aws_server import boto_client, moto_endpoint  # noqa: F401
from tests.e2e.helpers import InProcess
from tests.functional.test_carbon_pipeline import KEY, ROWS, _csv


def test_catalog_sync_registers_promoted_runs_and_gold_tables_with_their_partitions(
        tmp_path: Path, moto_endpoint: str, fault: Any) -> None:  # noqa: F811
    fault("catalog sync --profile aws after a promoted transactions run and a carbon file on S3",
          expected="transactions defined by the template (year/month/schema_v projection at current/); "
                   "gold_emissions registered from its data (shard partitions, nested struct columns); "
                   "a second sync adds no partition")
    cli = InProcess(tmp_path / "lake", tmp_path)
    cli.ok("init", cli.home)
    name = "c" + uuid.uuid4().hex[:12]
    cli.json("deploy", "local", "--endpoint-url", moto_endpoint, "--name", name)
    env = {"LAKELINE__RUNNER__SETTLE_SECONDS": "0"}
    data = tmp_path / "t.csv"
    write(300, data, seed=1, start=datetime(2026, 1, 20, tzinfo=UTC), days=20)
    cli.ok("put", data, "--pipeline", "transactions", "--key", "transactions/2026/t.csv", "--profile", "aws")
    (tmp_path / "a.csv").write_bytes(_csv(ROWS))
    cli.ok("put", tmp_path / "a.csv", "--pipeline", "carbon", "--key", KEY, "--profile", "aws")
    cli.json("run", "--profile", "aws", env=env)
    cli.ok("promote", "--profile", "aws")

    first = cli.json("catalog", "sync", "--profile", "aws")
    again = cli.json("catalog", "sync", "--profile", "aws")
    glue = boto_client("glue", moto_endpoint)
    db = name
    txn = glue.get_table(DatabaseName=db, Name="transactions")["Table"]
    emissions = glue.get_table(DatabaseName=db, Name="gold_emissions")["Table"]
    parts = glue.get_partitions(DatabaseName=db, TableName="transactions")["Partitions"]
    shards = glue.get_partitions(DatabaseName=db, TableName="gold_emissions")["Partitions"]
    fault.saw(f"first {[(t['glue_table'], t['status'], t['partitions']) for t in first['tables'] if t['status'] != 'NO_DATA']}; "
              f"again new partitions {sum(t['partitions'] for t in again['tables'])}")
    by_name = {t["glue_table"]: t for t in first["tables"]}
    assert by_name["gold_emissions"]["status"] == "CREATED"
    assert by_name["gold_fact_payment"]["status"] == "NO_DATA"  # totesys extracted nothing here
    assert "transactions" not in by_name  # a silver table: the template defines it (deploy local made it)
    assert [k["Name"] for k in txn["PartitionKeys"]] == ["year", "month", "schema_v"]
    columns = {c["Name"]: c["Type"] for c in txn["StorageDescriptor"]["Columns"]}
    assert columns["TransactionAmount"] == "decimal(18,2)" and columns["TransactionTimestamp"] == "timestamp"
    assert txn["Parameters"]["projection.enabled"] == "true" and parts == []  # projected, nothing to register
    assert txn["Parameters"]["storage.location.template"].endswith(
        "/mortgages/transactions/year=${year}/month=${month}/schema_v=${schema_v}/current/")
    assert [k["Name"] for k in emissions["PartitionKeys"]] == ["shard"]
    assert len(shards) == by_name["gold_emissions"]["partitions"] > 0
    types = {c["Name"]: c["Type"] for c in emissions["StorageDescriptor"]["Columns"]}
    assert types["activity_event_id"] == "string" and types["emissions_output"].startswith("struct<")
    assert sum(t["partitions"] for t in again["tables"]) == 0
    assert {t["status"] for t in again["tables"] if t["status"] != "NO_DATA"} == {"UPDATED"}
