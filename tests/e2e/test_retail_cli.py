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
