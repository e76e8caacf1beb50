"""`serve` runs the retail job on its schedule (EventBridge syntax), once per tick."""

from __future__ import annotations

from datetime import UTC, datetime

from lakeline import runner
from lakeline.gen.retail import write
from lakeline.lake import Lake
from lakeline.retail.job import land_retail
from lakeline.schedule import Scheduler, parse
from tests.functional.helpers import query, settings


def test_scheduled_retail_run_fires_once_per_tick(home, tmp_path):
    s = settings(home, retail__schedule="cron(15 1 * * ? *)")
    lake = Lake.open(s)
    files = write(tmp_path / "d", orders=300, customers=50, products=20)
    for source in ("customers", "products", "orders"):
        land_retail(lake, files[source])
    assert runner._schedules(lake) is not None  # configured from retail.schedule
    sched = Scheduler({"retail": parse(s.retail.schedule)}, lake.state, since=datetime(2026, 1, 1, tzinfo=UTC))
    runner._fire_due(lake, sched)  # the 01:15 ticks since Jan 1st: fires once, not once per day
    from lakeline.tables.iceberg import catalog

    table = catalog(lake).load_table("retail_silver.orders_silver")
    assert len(table.snapshots()) == 1 and table.scan().to_arrow().num_rows == 300
    runner._fire_due(lake, sched)  # same tick again: nothing fires
    assert len(catalog(lake).load_table("retail_silver.orders_silver").snapshots()) == 1
    assert query(lake, "SELECT 1") == [(1,)]


def test_empty_schedule_disables_it(home):
    lake = Lake.open(settings(home, retail__schedule=""))
    assert runner._schedules(lake) is None
