"""Helpers for pipeline tests: open a lake with test settings, land data, run, query."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lakeline import landing, runner
from lakeline.config import Settings, load_settings
from lakeline.lake import Lake
from lakeline.pipelines.registry import registry
from lakeline.sql import connect

FAST = {"queue.retry_delay": 0.0, "runner.poll_interval": 0.01, "ingest.lock_timeout_seconds": 60}


def settings(home: Path, **overrides: Any) -> Settings:
    merged = dict(FAST)
    merged.update({k.replace("__", "."): v for k, v in overrides.items()})
    return load_settings(home, merged)


def land(lake: Lake, key: str, data: bytes) -> None:
    lake.store.put("landing", key, data)
    landing.announce(lake, key)


def run(s: Settings, workers: int = 1) -> dict[str, Any]:
    return runner.run(s, workers=workers)


def query(lake: Lake, sql: str) -> list[tuple[Any, ...]]:
    con = connect(lake, [t for _, t in registry(lake.settings).tables()])
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def rec(rt: str = "shipments", **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"record_type": rt, "event_time": "2026-01-05T10:00:00Z"}
    if rt == "shipments":
        base.update(shipment_id="shp_000000000001", origin="SZX", destination="SEA",
                    carrier="UPS", weight_kg=1.5)
    elif rt == "tracking_events":
        base.update(shipment_id="shp_000000000001", status="CREATED", city="Seattle")
    elif rt == "invoice_lines":
        base.update(invoice_id="inv_0000000001", sku="SKU-001", quantity=2, unit_price=3.5,
                    line_total=7.0)
    base.update(fields)
    return base
