"""The transactions batch pipeline through the CLI: run, gate, promote, SQL over current/."""

from __future__ import annotations

from pathlib import Path

from lakeline.pipelines.transactions.gen import defect_counts
from tests.e2e.helpers import Cli, runs_of

IN_PROCESS = True  # the commands run in this process (tests/e2e/conftest.py)


def test_batch_run_gate_promote_and_sql(lake: Cli, tmp_path: Path) -> None:
    lake.ok("gen", "transactions", "--count", "2000", "--out", "t1.csv", "--dirty-rate", "0.02", "--seed", "3")
    lake.ok("put", "t1.csv", "--pipeline", "transactions", "--key", "transactions/2026/t1.csv")
    first = lake.json("run")
    [batch] = first["batch_runs"]
    defects = defect_counts(2000, 0.02)  # 40 defective rows, one defect each
    assert batch["input_rows"] == 2000
    assert batch["quarantined_rows"] + batch["condemned_rows"] == sum(defects.values()) == 40
    assert batch["valid_rows"] == 2000 - 40
    assert batch["quarantine_by_reason"] == {k: v for k, v in defects.items() if v}
    run1 = batch["run_id"]

    gate = lake.json("run-summary")
    assert (gate["run_id"], gate["input_rows"], gate["quarantined_rows"]) == (run1, 2000, 40)
    assert gate["quarantine_rate"] == 0.02 and gate["promotion_allowed"] is True
    assert lake.json("sql", "SELECT count(*) AS n, count(DISTINCT run_id) AS r FROM silver.transactions__runs") == [
        {"n": 1960, "r": 1}]

    promoted = lake.json("promote")
    assert (promoted["status"], promoted["run_id"], promoted["noop"]) == ("success", run1, False)
    # top-level fields describe the newest partition (specs §1); the run spans three months
    assert [p["files_copied"] for p in promoted["partitions"]] == [1, 1, 1]
    assert promoted["files_copied"] == 1 and promoted["current_prefix"].endswith("/schema_v=v1/current")
    assert lake.count("silver.transactions") == 1960
    assert lake.json("promote")["noop"] is True  # already current

    # a second, clean run: current/ keeps the first run until it is promoted
    lake.ok("gen", "transactions", "--count", "500", "--out", "t2.csv", "--seed", "9", "--first-id", "100001")
    lake.ok("put", "t2.csv", "--pipeline", "transactions", "--key", "transactions/2026/t2.csv")
    [second] = lake.json("run")["batch_runs"]
    assert (second["input_rows"], second["valid_rows"]) == (500, 500)
    assert lake.count("silver.transactions") == 1960
    assert lake.json("promote")["run_id"] == second["run_id"]
    assert lake.json("sql", "SELECT count(*) AS n, min(TransactionID) AS lo FROM silver.transactions") == [
        {"n": 500, "lo": "TXN-00100001"}]
    runs = [r for r in runs_of(lake) if r["kind"] == "batch"]
    assert [(r["run_id"], r["status"], r["table"]) for r in runs] == [
        (second["run_id"], "COMPLETE", "silver.transactions"), (run1, "COMPLETE", "silver.transactions")]
    # nothing new landed: `run` starts no batch run
    assert lake.json("run")["batch_runs"] == []


def test_gate_refuses_a_dirty_run_and_promote_respects_it(lake: Cli) -> None:
    lake.ok("gen", "transactions", "--count", "1000", "--out", "d.csv", "--dirty-rate", "0.2", "--seed", "4")
    lake.ok("put", "d.csv", "--pipeline", "transactions")
    lake.ok("run")
    p = lake("run-summary", "--json")
    assert p.returncode == 1
    assert '"promotion_allowed": false' in p.stdout
    refused = lake("promote", "--json")
    assert refused.returncode == 1 and '"GATE_REFUSED"' in refused.stdout
    assert "is not a table of promoted runs; such tables: silver.transactions" in lake.fails(2, "promote", "--table", "silver.shipments")
    forced = lake.json("promote", "--force")
    assert forced["status"] == "success"
