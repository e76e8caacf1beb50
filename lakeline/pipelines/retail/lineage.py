"""Lineage of a retail orders batch: a root per orders file."""

from __future__ import annotations

from typing import Any

from lakeline.lake import Lake
from lakeline.lineage.hooks import enabled, guarded, location, maybe_export, node_id
from lakeline.ports.lineage_model import derived_id


def retail_batch(lake: Lake, batch: dict[str, Any], out: dict[str, Any], table: str) -> None:
    """One retail orders file processed: a root per orders file (its run-log ``run_id``):
    ``RAW_DATA_INPUT`` (the orders file, with the customers and products files it was
    joined with), ``BATCH_WRITTEN`` (the Iceberg append, with its snapshot id) and
    ``REJECTS_WRITTEN`` (the quarantined rows)."""
    if not enabled(lake):
        return
    run_id = str(out["run_id"])
    root_id = derived_id("retail", run_id)
    with guarded("retail batch", root_id, lake):
        ledger = lake.lineage
        raw_id = node_id(root_id, "RAW_DATA_INPUT")
        ledger.record(root_id, root_id, "RAW_DATA_INPUT", location(lake, "landing", str(out["key"])),
                      node_id=raw_id, attrs={"pipeline": "retail", "run_id": run_id,
                                             "etag": batch.get("etag"), "input_rows": out["input_rows"],
                                             "customers_key": out["customers_key"],
                                             "products_key": out["products_key"]})
        if out["rows"]:
            ledger.record(root_id, raw_id, "BATCH_WRITTEN", f"iceberg:{table}",
                          node_id=node_id(root_id, "BATCH_WRITTEN"),
                          attrs={"rows": out["rows"], "snapshot_id": out["snapshot_id"],
                                 "appended": out["appended"], "batch_id": run_id})
        if out["rejected"] and out.get("rejects_key"):
            ledger.record(root_id, raw_id, "REJECTS_WRITTEN",
                          location(lake, "error", str(out["rejects_key"])),
                          node_id=node_id(root_id, "REJECTS_WRITTEN"), attrs={"rows": out["rejected"]})
    maybe_export(lake, root_id)
