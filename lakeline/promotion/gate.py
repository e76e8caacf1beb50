"""The promotion gate (specs §1): may this run's silver output be promoted?

:func:`read_run_summary` reads the metrics a complete run committed in its ``_SUCCESS``
markers (or, for a run that wrote no partition, in its run record) and applies the rules:
promotion is allowed only when the quarantine rate is below ``max_quarantine_rate``
(default 5 %), condemned rows are below ``max_condemned`` (default 100) and no critical
reason (default ``SCHEMA_ERROR``, which includes a file missing a required column) occurred.
"""

from __future__ import annotations

from typing import Any

from lakeline.errors import NotFoundError
from lakeline.lake import Lake
from lakeline.promotion.runs import find_run, list_runs, newest


def read_run_summary(
    lake: Lake,
    silver_prefix: str,
    run_key: str | None = None,
    *,
    schema_version: str = "v1",
    max_quarantine_rate: float = 0.05,
    max_condemned: int = 100,
    critical_reasons: tuple[str, ...] = ("SCHEMA_ERROR",),
) -> dict[str, Any]:
    """The gate's verdict on one run (the most recently completed one unless ``run_key``).

    Returns exactly ``{run_id, quarantined_rows, quarantine_rate, condemned_rows, input_rows,
    has_critical_errors, promotion_allowed, quarantine_by_reason}``; ``quarantine_rate`` is
    ``quarantined_rows / input_rows`` (0.0 for an empty run). Raises :class:`NotFoundError`
    when there is no complete run, or ``run_key`` names no run or an incomplete one.
    """
    runs = list_runs(lake, silver_prefix, schema_version=schema_version)
    if run_key is None:
        run = newest(runs)
        if run is None:
            raise NotFoundError(f"no complete run under silver/{silver_prefix.strip('/')}")
    else:
        found = find_run(runs, run_key)
        if found is None:
            raise NotFoundError(f"no run {run_key} under silver/{silver_prefix.strip('/')}")
        if not found.complete:
            raise NotFoundError(f"run {found.run_id} is incomplete: {found.problem}")
        run = found
    m = run.metrics or {}
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
    }
