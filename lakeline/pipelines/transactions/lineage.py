"""Lineage of a transactions run: a root per run, a node per input file, partition and rejects."""

from __future__ import annotations

from typing import Any

from lakeline.lake import Lake
from lakeline.lineage.hooks import enabled, guarded, location, maybe_export, node_id
from lakeline.ports.lineage_model import derived_id


def transactions_run(lake: Lake, con: Any, report: Any) -> None:
    """A committed transactions run: one root per run; a ``RAW_DATA_INPUT`` node per input
    file; under each file a ``BATCH_WRITTEN`` node per silver partition it contributed rows to
    (the run folder, with the rows from that file) and a ``REJECTS_WRITTEN`` node when it had
    rejects; ``RUN_COMPLETE`` with the run's metrics. Counts come from one GROUP BY over the
    run's classified rows (``con`` is the run's DuckDB connection)."""
    if not enabled(lake):
        return
    root_id = derived_id("transactions", report.table, report.run_id)
    with guarded("transactions run", root_id, lake):
        per_file = {int(f): (int(v), int(r)) for f, v, r in con.execute(
            "SELECT file_no, count(*) FILTER (WHERE reason IS NULL), "
            "count(*) FILTER (WHERE reason IS NOT NULL) FROM classified GROUP BY ALL").fetchall()}
        per_part = con.execute(
            "SELECT CAST(strftime(ts_utc, '%Y') AS INTEGER), CAST(strftime(ts_utc, '%m') AS INTEGER), "
            "file_no, count(*) FROM classified WHERE reason IS NULL GROUP BY ALL ORDER BY ALL").fetchall()
        ledger = lake.lineage
        file_ids: dict[int, str] = {}
        for n, src in enumerate(report.sources):
            valid, rejected = per_file.get(n, (0, 0))
            file_ids[n] = node_id(root_id, "file", src["key"], src["etag"])
            ledger.record(root_id, root_id, "RAW_DATA_INPUT", location(lake, "landing", src["key"]),
                          node_id=file_ids[n], attrs={"pipeline": "transactions", "key": src["key"],
                                                      "etag": src["etag"],
                                                      "valid_rows": valid, "rejected_rows": rejected})
            if rejected and report.rejects_key:
                ledger.record(root_id, file_ids[n], "REJECTS_WRITTEN",
                              location(lake, "error", report.rejects_key),
                              node_id=node_id(root_id, "rejects", src["key"]), attrs={"rows": rejected})
        parts = {(p["year"], p["month"]): p for p in report.partitions}
        for year, month, file_no, rows in per_part:
            part = parts[(year, month)]
            ledger.record(root_id, file_ids[int(file_no)], "BATCH_WRITTEN",
                          location(lake, "silver", part["run_folder"]),
                          node_id=node_id(root_id, "batch", part["partition"], str(file_no)),
                          attrs={"partition": part["partition"], "rows": int(rows), "files": part["files"]})
        ledger.record(root_id, root_id, "RUN_COMPLETE", location(lake, "silver", report.table),
                      node_id=node_id(root_id, "RUN_COMPLETE"), attrs={
                          "pipeline": "transactions", "run_id": report.run_id,
                          **{k: getattr(report, k) for k in (
                              "input_rows", "valid_rows", "quarantined_rows", "condemned_rows")}})
    maybe_export(lake, root_id)
