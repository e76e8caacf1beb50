"""The quality expectations of specs §3 for one silver partition, in one DuckDB pass.

all types: row count >= 1. shipments: shipment_id not null and unique, event_time not null,
weight_kg between 0 and 200. tracking_events: shipment_id, event_time, status not null.
invoice_lines: invoice_id, event_time not null, quantity 1-1000, unit_price 0-100000.

The result ``{success, record_type, dt, source, run_id, generated_at, results}`` is written to
``gold/_quality/results/<record_type>/dt=<dt>/run_<run_id>.json``; a failure writes the
quarantine marker ``silver/_quarantine/<record_type>/dt=<dt>/<run_id>.json``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

from lakeline.errors import NotFoundError, UsageError
from lakeline.lake import Lake

RESULT_PREFIX = "_quality/results"
QUARANTINE_PREFIX = "_quarantine"

# (expectation, column, SQL that counts unexpected rows, extra kwargs for the result)
_NOT_NULL = "count(*) FILTER (WHERE {c} IS NULL)"
EXPECTATIONS: dict[str, list[tuple[str, str | None, str, dict[str, Any]]]] = {
    "shipments": [
        ("expect_column_values_to_not_be_null", "shipment_id", _NOT_NULL, {}),
        ("expect_column_values_to_be_unique", "shipment_id", "count({c}) - count(DISTINCT {c})", {}),
        ("expect_column_values_to_not_be_null", "event_time", _NOT_NULL, {}),
        ("expect_column_values_to_be_between", "weight_kg",
         "count(*) FILTER (WHERE {c} < 0 OR {c} > 200)", {"min_value": 0, "max_value": 200}),
    ],
    "tracking_events": [
        ("expect_column_values_to_not_be_null", c, _NOT_NULL, {})
        for c in ("shipment_id", "event_time", "status")
    ],
    "invoice_lines": [
        ("expect_column_values_to_not_be_null", "invoice_id", _NOT_NULL, {}),
        ("expect_column_values_to_not_be_null", "event_time", _NOT_NULL, {}),
        ("expect_column_values_to_be_between", "quantity",
         "count(*) FILTER (WHERE {c} < 1 OR {c} > 1000)", {"min_value": 1, "max_value": 1000}),
        ("expect_column_values_to_be_between", "unit_price",
         "count(*) FILTER (WHERE {c} < 0 OR {c} > 100000)", {"min_value": 0, "max_value": 100000}),
    ],
}


def run_expectations(lake: Lake, record_type: str, dt: str, run_id: str) -> dict[str, Any]:
    """Evaluate the expectations on ``silver/<record_type>/dt=<dt>/`` and store the result."""
    from lakeline.sql import connect

    if record_type not in EXPECTATIONS:
        raise UsageError(f"no expectations for {record_type!r}; known: {', '.join(EXPECTATIONS)}")
    prefix = f"{record_type}/dt={dt}/"
    files = [i.key for i in lake.store.list("silver", prefix) if i.key.endswith(".parquet")]
    checks = EXPECTATIONS[record_type]
    con = connect(lake)
    if files:
        selects = ", ".join(sql.format(c=f'"{col}"') for _, col, sql, _ in checks)
        row = con.execute(f"SELECT count(*), {selects} FROM silver.\"{record_type}\" "
                          "WHERE CAST(dt AS VARCHAR) = ?", [dt]).fetchall()[0]
    else:
        row = (0, *([0] * len(checks)))
    total = int(row[0])
    results = [{"expectation_type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 1},
                "success": total >= 1, "result": {"observed_value": total}}]
    for (name, col, _, kwargs), unexpected in zip(checks, row[1:], strict=True):
        results.append({"expectation_type": name, "kwargs": {"column": col, **kwargs},
                        "success": int(unexpected) == 0,
                        "result": {"element_count": total, "unexpected_count": int(unexpected)}})
    result = {
        "success": all(r["success"] for r in results), "record_type": record_type, "dt": dt,
        "source": lake.store.scan_uri("silver", f"{record_type}/dt={dt}/"), "run_id": run_id,
        "generated_at": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "results": results,
    }
    key = f"{RESULT_PREFIX}/{record_type}/dt={dt}/run_{run_id}.json"
    lake.store.put("gold", key, orjson.dumps(result, option=orjson.OPT_INDENT_2))
    result["result_key"] = key
    return result


def quarantine(lake: Lake, record_type: str, dt: str, run_id: str, result: dict[str, Any]) -> str:
    """Write the quarantine marker for a failed partition; returns its silver key."""
    if not record_type or not dt:
        raise NotFoundError("quarantine needs record_type and dt")
    key = f"{QUARANTINE_PREFIX}/{record_type}/dt={dt}/{run_id}.json"
    failed = [r for r in result.get("results", []) if not r.get("success")]
    lake.store.put("silver", key, orjson.dumps({
        "record_type": record_type, "dt": dt, "run_id": run_id, "failed_expectations": failed,
        "quarantined_at": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
    }, option=orjson.OPT_INDENT_2))
    return key
