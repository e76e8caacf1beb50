"""Issue 17, part 8: one test body per pipeline, run on both backends — the embedded local lake,
and the aws profile against moto's server provisioned by `lakeline deploy local` — through the
CLI a user types: land, run, then the same checks of the output tables, the run log and the
lineage — shipments, a declared CSV pipeline, transactions with promotion, carbon, retail, totesys.
(The Lambda paths — triggers, job functions, handlers — have their own tests in
test_aws_triggers.py and test_aws_e2e.py.)"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from lakeline.pipelines.retail.gen import write as retail_write
from lakeline.pipelines.transactions.gen import write as transactions_write
from tests.aws_server import moto_endpoint  # noqa: F401
from tests.e2e.helpers import InProcess
from tests.faults.test_csv_rules import ITEMS
from tests.functional.test_carbon_pipeline import KEY as CARBON_KEY
from tests.functional.test_carbon_pipeline import ROWS as CARBON_ROWS
from tests.functional.test_carbon_pipeline import _csv as carbon_csv


class Lakeline:
    """The CLI on one backend: every command gets the backend's profile."""

    def __init__(self, cli: InProcess, profile: str) -> None:
        self.cli, self.profile = cli, profile
        self.env = {"LAKELINE__RUNNER__SETTLE_SECONDS": "0"}

    def ok(self, *args: Any) -> Any:
        return self.cli.ok(*args, "--profile", self.profile, env=self.env)

    def json(self, *args: Any) -> Any:
        return self.cli.json(*args, "--profile", self.profile, env=self.env)

    def sql(self, query: str) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = self.json("sql", query)
        return rows


@pytest.fixture(params=["local", "aws"])
def lake(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Lakeline]:
    cli = InProcess(tmp_path / "lake", tmp_path)
    cli.ok("init", cli.home)
    if request.param == "aws":
        endpoint = request.getfixturevalue("moto_endpoint")
        cli.json("deploy", "local", "--endpoint-url", endpoint, "--name", "b" + uuid.uuid4().hex[:12])
    yield Lakeline(cli, request.param)


def _roots(lake: Lakeline) -> list[dict[str, Any]]:
    roots: list[dict[str, Any]] = lake.json("lineage", "list")["roots"]
    return roots


def test_shipments(lake: Lakeline, tmp_path: Path) -> None:
    lake.cli.ok("gen", "shipments", "--count", "400", "--out", "s.jsonl", "--seed", "6")
    with (tmp_path / "s.jsonl").open("ab") as f:
        f.write(b'{"record_type": "shipments", broken\n')
    lake.ok("put", "s.jsonl", "--pipeline", "shipments", "--key", "shipments/2026/s.jsonl")
    done = lake.json("run")
    assert (done["loaded"], done["rejected"], done["status"]) == (400, 1, "success")
    counts = lake.sql("SELECT (SELECT count(*) FROM silver.shipments) AS n, "
                      "(SELECT count(*) FROM quarantine.rejects) AS rejects")
    assert counts == [{"n": 400, "rejects": 1}]
    [entry] = [r for r in lake.json("runs")["runs"] if r["kind"] == "object"]
    assert (entry["status"], entry["records"], entry["loaded"], entry["rejected"]) == ("COMPLETE", 401, 400, 1)
    [root] = _roots(lake)
    assert root["counts"]["RAW_DATA_INPUT"] == 1 and root["counts"]["RUN_COMPLETE"] == 1


def test_a_declared_csv_pipeline(lake: Lakeline, tmp_path: Path) -> None:
    (lake.cli.home / "pipelines").mkdir(exist_ok=True)
    (lake.cli.home / "pipelines" / "items.toml").write_text(ITEMS)
    (tmp_path / "i.csv").write_text("id,note,qty\n1,a,1\n2,\"b, quoted\",2\nx,c,3\n")
    lake.ok("put", "i.csv", "--pipeline", "items", "--key", "items/i.csv")
    done = lake.json("run")
    assert (done["loaded"], done["rejected"]) == (2, 1)
    assert lake.sql("SELECT id, note FROM silver.items ORDER BY id") == [
        {"id": 1, "note": "a"}, {"id": 2, "note": "b, quoted"}]
    assert lake.sql("SELECT line_no, reason_code FROM quarantine.rejects") == [
        {"line_no": 4, "reason_code": "TYPE_ERROR"}]


def test_transactions_run_and_promotion(lake: Lakeline, tmp_path: Path) -> None:
    transactions_write(300, tmp_path / "t.csv", seed=2, dirty_rate=0.02,
                       start=datetime(2026, 1, 20, tzinfo=UTC), days=20)
    lake.ok("put", "t.csv", "--pipeline", "transactions", "--key", "transactions/2026/t.csv")
    [batch] = lake.json("run")["batch_runs"]
    assert (batch["input_rows"], batch["valid_rows"]) == (300, 294)
    promoted = lake.json("promote")
    assert promoted["status"] == "success" and len(promoted["partitions"]) == 2
    assert lake.sql("SELECT count(*) AS n, count(DISTINCT \"TransactionID\") AS ids FROM silver.transactions") == [
        {"n": 294, "ids": 294}]
    assert [r["status"] for r in lake.json("runs", "--pipeline", "transactions")["runs"] if r["kind"] == "batch"] == [
        "COMPLETE"]
    assert any(r["counts"].get("RUN_COMPLETE") for r in _roots(lake))


def test_carbon(lake: Lakeline, tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_bytes(carbon_csv(CARBON_ROWS))
    lake.ok("put", "a.csv", "--pipeline", "carbon", "--key", CARBON_KEY)
    [report] = [b for b in lake.json("run")["batch_runs"] if b.get("pipeline") == "carbon"]
    assert (report["status"], report["records"], report["calculated"], report["failed"]) == ("SUCCEEDED", 5, 3, 2)
    assert lake.sql("SELECT activity_event_id AS id FROM gold.emissions ORDER BY 1") == [
        {"id": "e1"}, {"id": "e2"}, {"id": "e3"}]
    root = next(r for r in _roots(lake) if r["root_id"] == report["root_id"])
    assert root["counts"]["CALCULATION_COMPLETE"] == 3 and root["counts"]["CALCULATION_FAILED"] == 2


def _orders(lake: Lakeline) -> int:
    """Rows of retail's Iceberg table (0 before it exists). On AWS its Glue database
    (retail_silver) is the account's, shared by every lake of the account (the moto server of
    this test process too): the test compares before and after its own run."""
    done = lake.cli("sql", "SELECT count(*) AS n FROM retail_silver.orders_silver", "--json",
                    "--profile", lake.profile, env=lake.env)
    return int(json.loads(done.stdout)[0]["n"]) if done.returncode == 0 else 0


def test_retail(lake: Lakeline, tmp_path: Path) -> None:
    files = retail_write(tmp_path / "r", orders=200, customers=40, products=15)
    for source in ("customers", "products", "orders"):
        lake.ok("put", files[source], "--pipeline", "retail")
    before = _orders(lake)
    [report] = [b for b in lake.json("run")["batch_runs"] if b.get("pipeline") == "retail"]
    assert (report["status"], report["rows"]) == ("SUCCEEDED", 200)
    assert _orders(lake) - before == 200


def test_totesys_extract_and_star_schema(lake: Lakeline, tmp_path: Path) -> None:
    lake.cli.ok("gen", "totesys", "--db", "src.db", "--scale", "120")
    first = lake.json("extract", "--pipeline", "totesys", "--source", "src.db")
    assert first["status"] == "SUCCEEDED" and first["packets"] == 11
    [star] = [b for b in lake.json("run")["batch_runs"] if b.get("pipeline") == "totesys"]
    assert star["facts"]["fact_sales_order"] == 120
    assert lake.sql("SELECT count(*) AS n FROM gold.fact_sales_order f JOIN gold.dim_date d "
                    "ON d.date_id = f.created_date") == [{"n": 120}]
    again = lake.json("extract", "--pipeline", "totesys", "--source", "src.db")
    assert (again["status"], again["packets"]) == ("SUCCEEDED", 0)  # the watermarks held, on SSM too
