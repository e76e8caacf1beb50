"""Iceberg tables through `lakeline sql` / `lakeline explain`: pruning, time travel, limits."""

from __future__ import annotations

import datetime as dt
import json

import pyarrow as pa

from lakeline.config import load_settings
from lakeline.lake import Lake
from lakeline.tables.iceberg import append_batch, ensure_table
from tests.e2e.helpers import Cli

IN_PROCESS = True  # the commands run in this process (tests/e2e/conftest.py)

SCHEMA = pa.schema([("order_id", pa.int64()), ("order_date", pa.date32()), ("sales_amount", pa.float64())])


def _table(home) -> list[int]:
    lk = Lake.open(load_settings(home))
    ensure_table(lk, "retail_silver.orders_silver", SCHEMA, [("order_date", "day")])
    snaps = []
    for d in range(1, 4):
        data = pa.table({"order_id": [d * 10, d * 10 + 1], "order_date": [dt.date(2024, 1, d)] * 2,
                         "sales_amount": [1.5, 2.5]}, schema=SCHEMA)
        snaps.append(append_batch(lk, "retail_silver.orders_silver", data, f"b{d}").snapshot_id)
    return snaps


def test_explain_time_travel_metadata_and_bytes_limit(lake: Cli) -> None:
    snaps = _table(lake.home)
    q = "SELECT count(*) AS n, sum(sales_amount) AS s FROM retail_silver.orders_silver"
    assert lake.json("sql", q) == [{"n": 6, "s": 12.0}]
    assert lake.json("sql", q + " WHERE order_date >= '2024-01-02'") == [{"n": 4, "s": 8.0}]
    plan = lake.json("explain", "SELECT * FROM retail_silver.orders_silver WHERE order_date = '2024-01-02'")
    [p] = plan["plans"]
    assert (p["table"], p["planned_files"], p["total_files"]) == ("retail_silver.orders_silver", 1, 3)
    assert p["planned_bytes"] < p["total_bytes"]
    assert lake.json("sql", f"{q} FOR VERSION AS OF {snaps[0]}") == [{"n": 2, "s": 4.0}]
    history = lake.json("sql", 'SELECT count(*) AS n FROM retail_silver."orders_silver$snapshots"')
    assert history == [{"n": 3}]
    err = lake.fails(2, "sql", "SELECT * FROM retail_silver.orders_silver", "--max-bytes", "10")
    assert "over the limit of 10" in err
    # the config default applies too, and one pruned day fits under it
    env = {"LAKELINE__SQL__MAX_BYTES": str(p["planned_bytes"] + 1)}
    assert "over the limit" in lake.fails(2, "sql", "SELECT * FROM retail_silver.orders_silver", env=env)
    one_day = lake.ok("sql", "SELECT count(*) AS n FROM retail_silver.orders_silver WHERE order_date = '2024-01-02'",
                      "--json", env=env)
    assert json.loads(one_day.stdout) == [{"n": 2}]
