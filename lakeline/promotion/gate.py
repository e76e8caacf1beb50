"""The promotion gate (specs §1): may this run's silver output be promoted?

:func:`read_run_summary` reads the metrics a complete run committed in its ``_SUCCESS``
markers (or, for a run that wrote no partition, in its run record) and applies the rules:
promotion is allowed only when the quarantine rate is below ``max_quarantine_rate``
(default 5 %), condemned rows are below ``max_condemned`` (default 100) and no critical
reason (default ``SCHEMA_ERROR``, which includes a file missing a required column) occurred.

**An empty marker** (a run Glue or Spark wrote, ``metrics_source`` ``"files"``): the job that
wrote it did its own validation, and committing with ``_SUCCESS`` is its statement that the
run is good — seed 000's promotion checks nothing more. So the gate allows it when its Parquet
files hold at least one row (an empty run would blank ``current/``); ``input_rows`` is that
count and ``quarantined_rows``, ``quarantine_rate``, ``condemned_rows`` and
``has_critical_errors`` are ``None`` (unknown), never a made-up zero.
"""

from __future__ import annotations

from typing import Any

from lakeline.lake import Lake
from lakeline.promotion.runs import list_runs, measure
from lakeline.promotion.selection import select_run


def read_run_summary(
    lake: Lake,
    silver_prefix: str,
    run_key: str | None = None,
    *,
    schema_version: str = "v1",
    max_quarantine_rate: float = 0.05,
    max_condemned: int = 100,
    critical_reasons: tuple[str, ...] = ("SCHEMA_ERROR",),
    promotable: bool = False,
) -> dict[str, Any]:
    """The gate's verdict on one run (the most recently completed one unless ``run_key``).

    Returns exactly ``{run_id, quarantined_rows, quarantine_rate, condemned_rows, input_rows,
    has_critical_errors, promotion_allowed, quarantine_by_reason, metrics_source}``;
    ``quarantine_rate`` is ``quarantined_rows / input_rows`` (0.0 for an empty run).
    ``promotable``: judge the run promotion would pick (one with Parquet files). Raises
    :class:`~lakeline.errors.NotFoundError` (code ``NO_COMPLETED_RUN`` / ``RUN_NOT_FOUND``)
    or :class:`~lakeline.promotion.selection.PromotionError` (``RUN_INCOMPLETE``,
    ``INVALID_MARKER``, ``NO_PARQUET_FILES``) — see :func:`select_run`.
    """
    prefix = silver_prefix.strip("/")
    runs = list_runs(lake, prefix, schema_version=schema_version)
    run = measure(lake, select_run(runs, prefix, schema_version, run_key, promotable=promotable))
    m = run.metrics or {}
    if run.metrics_source == "files":
        rows = int(m["input_rows"])
        return {
            "run_id": run.run_id, "quarantined_rows": None, "quarantine_rate": None, "condemned_rows": None,
            "input_rows": rows, "has_critical_errors": None, "promotion_allowed": rows > 0,
            "quarantine_by_reason": {}, "metrics_source": "files",
        }
    input_rows = int(m.get("input_rows", 0))
    quarantined = int(m.get("quarantined_rows", 0))
    condemned = int(m.get("condemned_rows", 0))
    by_reason = {str(k): int(v) for k, v in (m.get("quarantine_by_reason") or {}).items()}
    file_reasons = {str(f.get("reason")) for f in m.get("rejected_files") or []}
    critical = any(by_reason.get(r, 0) > 0 or r in file_reasons for r in critical_reasons)
    rate = quarantined / input_rows if input_rows else 0.0
    return {
        "run_id": run.run_id,
        "quarantined_rows": quarantined,
        "quarantine_rate": rate,
        "condemned_rows": condemned,
        "input_rows": input_rows,
        "has_critical_errors": critical,
        "promotion_allowed": rate < max_quarantine_rate and condemned < max_condemned and not critical,
        "quarantine_by_reason": by_reason,
        "metrics_source": run.metrics_source,
    }
