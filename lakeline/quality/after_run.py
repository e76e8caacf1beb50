"""The specs §3 expectations, run on every shipments partition a run wrote (on by default).

After `lakeline run` — and on every `serve` tick — each ``silver/<record_type>/dt=<dt>/``
partition holding a Parquet file newer than the last check is evaluated
(:func:`~lakeline.quality.expectations.run_expectations`: result JSON and HTML report in
``gold/_quality/results/<record_type>/dt=<dt>/run_auto-<time>.json``). A failing partition gets
its quarantine marker and a "Data Quality check failed" notification naming the partition and
the report. The check time is kept in the state store, so a partition is checked again only
when a later run writes to it. ``[quality] after_run = false`` turns it off.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from lakeline.lake import Lake

STATE_TABLE = "quality"
STATE_KEY = "after_run/checked_until"


def check_new_partitions(lake: Lake) -> dict[str, Any] | None:
    """Check the partitions written since the last check; None when there were none."""
    from lakeline.quality.expectations import EXPECTATIONS, quarantine, run_expectations_many

    if not lake.settings.quality.after_run:
        return None
    mark = lake.state.get(STATE_TABLE, STATE_KEY)
    since = float(mark.data["until"]) if mark is not None else 0.0
    until = time.time()  # files written from now on are the next check's
    touched: set[tuple[str, str]] = set()
    for record_type in EXPECTATIONS:
        for info in lake.store.list("silver", f"{record_type}/dt="):
            if info.key.endswith(".parquet") and info.last_modified.timestamp() > since:
                touched.add((record_type, info.key.split("/", 2)[1].removeprefix("dt=")))
    if not touched:
        lake.state.put(STATE_TABLE, STATE_KEY, {"until": until})
        return None
    from lakeline.sql import connect

    run_id = "auto-" + datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    failed: list[dict[str, Any]] = []
    con = connect(lake)
    try:
        by_type: dict[str, list[str]] = {}
        for record_type, dt in sorted(touched):
            by_type.setdefault(record_type, []).append(dt)
        for record_type, dts in by_type.items():
            # one pass over all the touched partitions of a type (measured 4x faster than one each)
            for dt, result in run_expectations_many(lake, record_type, dts, run_id, con=con).items():
                if result["success"]:
                    continue
                marker = quarantine(lake, record_type, dt, run_id, result)
                rules = [r.get("expectation_type") for r in result["results"] if not r.get("success")]
                lake.notifier.notify(
                    "Data Quality check failed",
                    f"silver {record_type} dt={dt} failed {', '.join(str(r) for r in rules)}; "
                    f"quarantined ({marker}); report gold/{result['report_key']}",
                    {"record_type": record_type, "dt": dt, "run_id": run_id},
                )
                failed.append({"record_type": record_type, "dt": dt, "failed": rules,
                               "report_key": result["report_key"], "marker": marker})
    finally:
        con.close()
    lake.state.put(STATE_TABLE, STATE_KEY, {"until": until})
    return {"pipeline": "shipments", "step": "quality", "run_id": run_id,
            "partitions": len(touched), "failed": failed}
