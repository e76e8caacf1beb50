"""The totesys pipeline through the CLI, as a user runs it: gen → extract → run → SQL on the
star schema → load (DuckDB and PostgreSQL) → mutate → extract from the configured source."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from decimal import Decimal

import psycopg
import pytest

from tests.e2e.helpers import Cli

IN_PROCESS = True  # the commands run in this process (tests/e2e/conftest.py)

pytestmark = pytest.mark.xdist_group("totesys_pg")

SALES_BY_COUNTERPARTY = """
    SELECT c.counterparty_legal_name AS counterparty, d.year, d.month,
           sum(f.units_sold * f.unit_price) AS sales
    FROM gold.fact_sales_order f
    JOIN gold.dim_counterparty c USING (counterparty_id)
    JOIN gold.dim_date d ON d.date_id = f.created_date
    GROUP BY ALL ORDER BY sales DESC, counterparty LIMIT 3"""


def test_totesys_end_to_end(lake: Cli, pg_database: Callable[[str], str]) -> None:
    gen = lake.ok("gen", "totesys", "--db", "src.db", "--scale", "300")
    assert "sales_order 300" in gen.stderr
    db = lake.cwd / "src.db"

    first = lake.json("extract", "--pipeline", "totesys", "--source", "src.db")
    assert first["status"] == "SUCCEEDED" and first["packets"] == 11
    assert {t["table"]: t["rows"] for t in first["tables"]}["sales_order"] == 300
    [star] = [b for b in lake.json("run")["batch_runs"] if b.get("pipeline") == "totesys"]
    assert star["facts"] == {"fact_sales_order": 300, "fact_purchase_order": 30, "fact_payment": 105}

    top = lake.json("sql", SALES_BY_COUNTERPARTY)
    assert len(top) == 3 and top[0]["sales"] >= top[1]["sales"] >= top[2]["sales"]
    total = lake.json("sql", "SELECT sum(units_sold * unit_price) AS s FROM gold.fact_sales_order")[0]["s"]
    with sqlite3.connect(db) as conn:
        expected = sum(Decimal(str(u)) * Decimal(str(p)).quantize(Decimal("0.01"))
                       for u, p in conn.execute("SELECT units_sold, unit_price FROM sales_order"))
    assert Decimal(str(total)) == expected

    embedded = lake.json("load")
    assert embedded["target"] == "duckdb" and embedded["tables"]["fact_sales_order"]["rows"] == 300

    wh = pg_database("wh")
    loaded = lake.json("load", "--target", wh)
    assert loaded["tables"]["fact_sales_order"] == {"rows": 300, "written": 300, "files_loaded": 1,
                                                    "files_skipped": 0}
    again = lake.json("load", "--target", wh)
    assert all(t["written"] == 0 for t in again["tables"].values())
    with psycopg.connect(wh) as conn:
        fks = conn.execute("""SELECT count(*) FROM information_schema.table_constraints
            WHERE table_name = 'fact_sales_order' AND constraint_type = 'FOREIGN KEY'""").fetchone()
    assert fks == (9,)  # 4 dates + staff, counterparty, currency, design, location

    # a round of changes, extracted from the source named in the configuration (environment)
    mutated = lake.ok("gen", "totesys", "--db", "src.db", "--mutate")
    assert "sales_order 8" in mutated.stderr  # 5 new orders and 3 updates at this scale
    env = {"LAKELINE__PIPELINES__TOTESYS__SOURCE_URL": str(db)}
    second = lake.json("extract", "--pipeline", "totesys", env=env)
    assert {t["table"]: t["rows"] for t in second["tables"]}["sales_order"] == 8
    lake.ok("run")
    assert lake.count("gold.fact_sales_order") == 308
    assert lake.json("status")["pipelines"].get("totesys", {}).get("missing_packets", {}) == {}
    text = lake.ok("extract", "--pipeline", "totesys", env=env).stdout
    assert "SUCCEEDED: 0 rows in 0 packets" in text


def test_totesys_cli_errors(lake: Cli) -> None:
    assert "extract supports --pipeline totesys" in lake.fails(2, "extract", "--pipeline", "shipments")
    assert "no totesys source" in lake.fails(2, "extract", "--pipeline", "totesys")
    secret = "pw-Xy9-secret"
    p = lake("extract", "--pipeline", "totesys", "--source", f"postgresql://app:{secret}@127.0.0.1:1/totesys",
             "--json", env={"LAKELINE__PIPELINES__TOTESYS__RETRY_DELAY": "0.01"})
    assert p.returncode == 1
    assert secret not in p.stdout + p.stderr
    assert '"status": "FAILED"' in p.stdout.replace('":"', '": "') and "app:***@" in p.stdout
    assert "--out and --count are required" in lake.fails(2, "gen", "shipments", "--count", "1")
