"""A streaming pipeline's quality rules, run on every partition a run wrote (on by default).

After `lakeline run` — and on every `serve` tick — each ``silver/<table>/dt=<dt>/`` partition
of the pipeline's tables that a transform published since the last check is evaluated with
the table's ruleset (:func:`~lakeline.dq.partitions.run_expectations`: result JSON and HTML
report in ``gold/_quality/results/<table>/dt=<dt>/run_auto-<time>.json``). A failing partition gets
its quarantine marker and a "Data Quality check failed" notification naming the partition and
the report. The partitions come from the ``silver_partition_ready`` events the transform
appends to the state store's event log after publishing; the check keeps its place in that
log, so its cost follows what the run wrote, not how many files the lake holds (listing a
20,000-file silver zone took 3.6-4.2 s per run). ``[quality] after_run = false`` turns it off.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from lakeline.dq.partitions import quarantine, run_expectations_many
from lakeline.dq.rules import Ruleset
from lakeline.lake import Lake
from lakeline.ports.state import StateStore
from lakeline.sql import connect
from lakeline.stages.messages import PARTITION_READY

STATE_TABLE = "quality"
LEGACY_KEY = "after_run/checked_until"  # where a lakeline before per-pipeline checks kept its place
MARGIN_S = 120.0  # how long after its emit time an event may still commit


def check_new_partitions(lake: Lake, pipeline: str, rulesets: Mapping[str, Ruleset]) -> dict[str, Any] | None:
    """Check the partitions of ``pipeline``'s tables (``rulesets``: the ruleset of each
    table, by name) written since the last check; None when there were none."""
    if not lake.settings.quality.after_run or not rulesets:
        return None
    now = time.time()
    state_key = f"after_run/{pipeline}/checked_until"
    saved = lake.state.get(STATE_TABLE, state_key) or lake.state.get(STATE_TABLE, LEGACY_KEY)
    mark, seen = _place(saved.data if saved is not None else None)
    events = lake.state.events_after(mark, PARTITION_READY)
    touched: set[tuple[str, str]] = set()
    for key, event in events:
        detail = event.get("detail") or {}
        if key in seen or detail.get("record_type") not in rulesets:
            continue
        if detail.get("pipeline", pipeline) != pipeline:
            continue
        if detail.get("format", "parquet") == "parquet" and detail.get("dt"):  # Iceberg: `lakeline dq run`
            touched.add((str(detail["record_type"]), str(detail["dt"])))
    # a partition deleted since its event has nothing to check
    touched = {(rt, dt) for rt, dt in touched
               if next(iter(lake.store.list("silver", f"{rt}/dt={dt}/")), None) is not None}
    # An event's key is its emit time, and its write may commit a moment later (in `serve`
    # the workers run while this checks): the place stays MARGIN_S behind, and the events
    # checked above it are remembered so that none is checked twice.
    mark = max(mark, StateStore.event_mark(now - MARGIN_S))
    place = {"event_mark": mark, "seen": [k for k, _ in events if k > mark]}
    if not touched:
        lake.state.put(STATE_TABLE, state_key, place)
        return None
    run_id = "auto-" + datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    failed: list[dict[str, Any]] = []
    con = connect(lake)
    try:
        by_table: dict[str, list[str]] = {}
        for table, dt in sorted(touched):
            by_table.setdefault(table, []).append(dt)
        for table, dts in by_table.items():
            # one pass over all the touched partitions of a table (measured 4x faster than one each)
            results = run_expectations_many(lake, table, dts, run_id, rulesets[table], con=con)
            for dt, result in results.items():
                if not result["success"]:
                    failed.append(_quarantine(lake, table, dt, run_id, result))
    finally:
        con.close()
    lake.state.put(STATE_TABLE, state_key, place)
    return {"pipeline": pipeline, "step": "quality", "run_id": run_id,
            "partitions": len(touched), "failed": failed}


def _quarantine(lake: Lake, table: str, dt: str, run_id: str, result: dict[str, Any]) -> dict[str, Any]:
    """Quarantine a failed partition and notify; what the report lists of it."""
    marker = quarantine(lake, table, dt, run_id, result)
    rules = [r.get("expectation_type") for r in result["results"] if not r.get("success")]
    lake.notifier.notify(
        "Data Quality check failed",
        f"silver {table} dt={dt} failed {', '.join(str(r) for r in rules)}; "
        f"quarantined ({marker}); report gold/{result['report_key']}",
        {"record_type": table, "dt": dt, "run_id": run_id},
    )
    return {"record_type": table, "dt": dt, "failed": rules, "report_key": result["report_key"],
            "result_key": result["result_key"], "marker": marker}


def _place(saved: dict[str, Any] | None) -> tuple[str, set[str]]:
    """Where the last check stopped in the event log ("": the start) and the keys it checked
    after that place. A lake last checked by an older lakeline holds the check's time."""
    if saved is None:
        return "", set()
    if "event_mark" in saved:
        return str(saved["event_mark"]), {str(k) for k in saved.get("seen", [])}
    return StateStore.event_mark(float(saved.get("until", 0.0))), set()
