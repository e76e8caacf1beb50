"""The retail lakehouse through the CLI (seed 004): land, run, the analyst queries with exact
answers, partition pruning, snapshots and time travel."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

from tests.e2e.helpers import LAKELINE, Cli

IN_PROCESS = True  # the commands run in this process (tests/e2e/conftest.py)

T = "retail_silver.orders_silver"


def test_retail_end_to_end_with_the_seed_queries(lake: Cli, tmp_path: Path) -> None:
    lake.ok("gen", "retail", "--out", "d1")
    put = lake.json("put", "d1/customers.csv", "d1/products.csv", "d1/orders.csv", "--pipeline", "retail")
    keys = [p["key"] for p in put["landed"]]
    assert all(k.startswith(f"retail/{s}/ingest_date=") for k, s in zip(keys, ("customers", "products", "orders")))
    again = lake.json("put", "d1/orders.csv", "--pipeline", "retail")  # duplicate landing: ignored
    assert again["landed"][0]["duplicate"] is True
    [job] = lake.json("run")["batch_runs"]
    assert (job["status"], job["job_status"], job["rows"], len(job["batches"])) == ("SUCCEEDED", "COMPLETED", 8800, 1)

    # sanity, referential, business, recompute (seed 004's analyst queries)
    assert lake.json("sql", f"SELECT count(*) AS n FROM {T}") == [{"n": 8800}]
    assert lake.json("sql", f"SELECT count(*) FILTER (WHERE region IS NULL) AS r, "
                            f"count(*) FILTER (WHERE category IS NULL) AS c FROM {T}") == [{"r": 0, "c": 0}]
    business = lake.json("sql", f"SELECT count(DISTINCT customer_id) AS customers, "
                                f"count(DISTINCT product_id) AS products FROM {T}")[0]
    assert business["customers"] <= 500 and business["products"] <= 200
    assert lake.json("sql", f"SELECT round(sum(sales_amount), 2) = round(sum(qty * unit_price), 2) AS ok FROM {T}") == [{"ok": True}]

    # pruning: one day plans a fraction of the files
    [plan] = lake.json("explain", f"SELECT * FROM {T} WHERE order_date = DATE '2025-08-15'")["plans"]
    assert plan["planned_files"] == 1 and plan["total_files"] > 60

    # a second orders batch: snapshots and time travel
    first = lake.json("sql", 'SELECT snapshot_id FROM retail_silver."orders_silver$snapshots"')
    assert len(first) == 1
    lake.ok("gen", "retail", "--out", "d2", "--seed", "2", "--count", "1200")
    lake.ok("put", "d2/orders.csv", "--pipeline", "retail", "--key", "retail/orders/ingest_date=2025-10-01/orders-2.csv")
    assert lake.json("run")["batch_runs"][0]["rows"] == 1200
    assert lake.json("sql", f"SELECT count(*) AS n FROM {T}") == [{"n": 10000}]
    snap = first[0]["snapshot_id"]
    assert lake.json("sql", f"SELECT count(*) AS n FROM {T} FOR VERSION AS OF {snap}") == [{"n": 8800}]
    assert len(lake.json("sql", 'SELECT * FROM retail_silver."orders_silver$history"')) == 2
    assert lake.json("run")["batch_runs"] == []  # nothing new: nothing appended


def test_serve_runs_the_retail_job_when_orders_land(lake: Cli) -> None:
    lake.ok("gen", "retail", "--out", "d", "--count", "500")
    env = lake.env({"LAKELINE__RUNNER__WATCH_INTERVAL": "0.2", "LAKELINE__RUNNER__SETTLE_SECONDS": "0"})
    proc = subprocess.Popen([str(LAKELINE), "serve"], cwd=lake.cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        lake.ok("put", "d/customers.csv", "d/products.csv", "d/orders.csv", "--pipeline", "retail")
        deadline = time.monotonic() + 30
        n = 0
        while time.monotonic() < deadline:
            got = lake("sql", f"SELECT count(*) AS n FROM {T}", "--json")
            if got.returncode == 0 and json.loads(got.stdout) == [{"n": 500}]:
                n = 500
                break
            time.sleep(0.5)
        assert n == 500
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait(timeout=30) == 0


def test_a_failed_batch_fails_the_run_and_shows_in_runs_and_status(lake: Cli, tmp_path: Path) -> None:
    """Seed 004: the run log items (pk, sk, run_id, dedupe) through `runs --pipeline retail`; a
    failed orders batch makes `run` exit 1, is listed by `status` first and notified."""
    header = "order_id,order_date,customer_id,product_id,qty,unit_price,channel\n"
    (tmp_path / "customers.csv").write_text("customer_id,customer_name,region\n10,Ann,North\n")
    (tmp_path / "products.csv").write_text("product_id,category\n100,Electronics\n")
    (tmp_path / "orders.csv").write_text(header + '1,24/07/2025,10,100,2,"1,50",web\n')
    (tmp_path / "orders_bad.csv").write_text(header + '2,2025-07-27,10,100,1,"1,00",web\n')  # an ISO date: refused
    lake.ok("put", "customers.csv", "products.csv", "orders.csv", "orders_bad.csv", "--pipeline", "retail")
    ran = lake("run", "--json")
    doc = json.loads(ran.stdout)
    assert (ran.returncode, doc["status"], doc["code"]) == (1, "error", "RUN_FAILED")
    [failed] = doc["failed"]
    assert failed["what"] == "retail" and "orders_bad.csv" in failed["error"] and "TIMESTAMP_ERROR" in failed["error"]
    assert failed["command"] == "lakeline runs --pipeline retail"

    runs = lake.json("runs", "--pipeline", "retail")["runs"]
    assert {r["pipeline"] for r in runs} == {"retail"}
    by_file = {r["key"].rsplit("/", 1)[-1]: r for r in runs}
    assert (by_file["orders.csv"]["status"], by_file["orders_bad.csv"]["status"]) == ("SUCCEEDED", "FAILED")
    assert "TIMESTAMP_ERROR" in by_file["orders_bad.csv"]["error"]
    assert {"pk", "sk", "run_id", "dedupe"} <= set(by_file["orders.csv"]["detail"])
    table = lake.ok("runs", "--pipeline", "retail").stdout
    assert "retail: run-log items" in table and "dedupe" in table

    attention = lake.json("status")["failures"]
    assert [(f["pipeline"], f["what"].rsplit("/", 1)[-1]) for f in attention] == [("retail", "orders_bad.csv")]
    assert "needs attention" in lake.ok("status").stdout
    notes = (lake.home / "outbox" / "notifications.jsonl").read_text()
    assert "retail batch failed" in notes and "orders_bad.csv" in notes
