"""The examples of the documentation's "your first pipeline" tutorial and Python pipeline guide
(docs/get-started/first-pipeline.md, docs/how-to/python-pipeline.md), run as a user would run
them."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.e2e.helpers import Cli

DOCS = Path(__file__).resolve().parents[2] / "docs"
PAGES = (DOCS / "get-started" / "first-pipeline.md", DOCS / "how-to" / "python-pipeline.md")
EXAMPLE = re.compile(r"<!-- example: (\S+) -->\n```\w*\n(.*?)```", re.S)


def examples() -> dict[str, str]:
    found = {k: v for page in PAGES for k, v in EXAMPLE.findall(page.read_text("utf-8"))}
    assert set(found) == {"pipelines/orders.toml", "orders.csv", "count_lines.py", "models/daily_orders.sql"}
    return found


def test_the_declared_pipeline_and_the_model_of_the_readme(lake: Cli, tmp_path: Path) -> None:
    ex = examples()
    for name in ("pipelines/orders.toml", "models/daily_orders.sql"):
        (lake.home / name).parent.mkdir(exist_ok=True)
        (lake.home / name).write_text(ex[name])
    (tmp_path / "orders.csv").write_text(ex["orders.csv"])
    lake.ok("put", "orders.csv", "--pipeline", "orders")
    summary = lake.json("run")
    assert (summary["loaded"], summary["rejected"], summary["failures"]) == (2, 2, 0)
    assert [m["status"] for m in summary["models"]] == ["SUCCEEDED"]
    rejects = lake.json("sql", "SELECT line_no, reason_code, message FROM quarantine.rejects ORDER BY line_no")
    assert rejects == [
        {"line_no": 3, "reason_code": "TYPE_ERROR", "message": "amount: 3,999 is not decimal(10,2)"},
        {"line_no": 5, "reason_code": "DUPLICATE_FAILURE", "message": "duplicate key order_id=1: first at line 2"}]
    assert lake.json("sql", "SELECT order_id, customer, amount FROM silver.orders ORDER BY order_id") == [
        {"order_id": 1, "customer": "Ann; Smith", "amount": 12.5}, {"order_id": 3, "customer": "Cy", "amount": 1.0}]
    assert lake.json("sql", "SELECT CAST(dt AS VARCHAR) AS dt, orders, revenue FROM gold.daily_orders") == [
        {"dt": "2026-01-05", "orders": 1, "revenue": 12.5}, {"dt": "2026-01-06", "orders": 1, "revenue": 1.0}]


def test_the_python_pipeline_of_the_readme(tmp_path: Path) -> None:
    (tmp_path / "count_lines.py").write_text(examples()["count_lines.py"])
    done = subprocess.run([sys.executable, "count_lines.py"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['counts: 3 lines in 1 file(s)']"
