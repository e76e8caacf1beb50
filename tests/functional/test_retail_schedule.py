"""`serve` runs the retail job on its schedule (EventBridge syntax), once per tick."""

from __future__ import annotations

from datetime import UTC, datetime

from lakeline.lake import Lake
from lakeline.pipelines.registry import registry
from lakeline.pipelines.retail.gen import write
from lakeline.pipelines.retail.job import land_retail
from lakeline.runner import Jobs
from lakeline.tables.iceberg import load_table
from tests.functional.helpers import settings


def test_scheduled_retail_run_fires_once_per_tick(home, tmp_path):
    s = settings(home, pipelines__retail__schedule="cron(15 1 * * ? *)")
    lake = Lake.open(s)
    files = write(tmp_path / "d", orders=300, customers=50, products=20)
    for source in ("customers", "products", "orders"):
        land_retail(lake, files[source])
    jobs = Jobs(lake, registry(s), since=datetime(2026, 1, 1, tzinfo=UTC))
    assert list(jobs.schedules) == ["retail"]
    # the 01:15 ticks since Jan 1st until Jan 5th: the job fires once, not once per day
    [report] = jobs.fire_schedules(datetime(2026, 1, 5, 3, 0, tzinfo=UTC))
    assert (report.pipeline, report.status, report.data["rows"]) == ("retail", "SUCCEEDED", 300)
    table = load_table(lake, "retail_silver.orders_silver")
    assert len(table.snapshots()) == 1 and table.scan().to_arrow().num_rows == 300
    assert jobs.fire_schedules(datetime(2026, 1, 5, 3, 0, tzinfo=UTC)) == []  # same tick: nothing fires
    [later] = jobs.fire_schedules(datetime(2026, 1, 6, 1, 15, tzinfo=UTC))  # the next tick fires again
    assert later.data["rows"] == 0 and len(load_table(lake, "retail_silver.orders_silver").snapshots()) == 1


def test_empty_schedule_disables_it(home):
    s = settings(home, pipelines__retail__schedule="")
    jobs = Jobs(Lake.open(s), registry(s))
    assert (jobs.schedules, jobs.scheduler) == ({}, None)
    assert jobs.fire_schedules(datetime(2026, 1, 5, tzinfo=UTC)) == []
