"""Which run the gate reads and promotion publishes, and the coded errors when there is none.

Shared by :func:`lakeline.promotion.gate.read_run_summary` and
:func:`lakeline.promotion.promote.promote`, so the gate always judges the run promotion would
publish. Every error carries a ``code`` (what ``--json`` failures and the promotion output
report): ``RUN_NOT_FOUND`` and ``NO_COMPLETED_RUN`` (:class:`NotFoundError`),
``RUN_INCOMPLETE``, ``INVALID_MARKER`` and ``NO_PARQUET_FILES`` (:class:`PromotionError`).
"""

from __future__ import annotations

from lakeline.errors import LakelineError, NotFoundError
from lakeline.promotion.runs import INVALID, RunInfo, find_run, newest


class PromotionError(LakelineError):
    """A run that cannot be gated or promoted; ``code`` and ``reason`` become
    ``{"status": "error", "code", "reason"}``."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason, code=code)
        self.code = code
        self.reason = reason


def select_run(
    runs: list[RunInfo], table: str, schema_version: str, run_key: str | None, *, promotable: bool
) -> RunInfo:
    """The run named by ``run_key``, else the most recently completed one.

    ``promotable``: only runs with Parquet files count (promotion); otherwise a complete run
    that loaded no row (no folder) is a candidate too (the gate of a pipeline's last run).
    A run whose ``_SUCCESS`` is unreadable is never skipped silently: naming it, or its marker
    being newer than every complete run's, is an ``INVALID_MARKER`` error naming the key.
    """
    where = f"{table} (schema_v={schema_version})"
    if run_key:
        run = find_run(runs, run_key)
        if run is None:
            raise NotFoundError(f"no run {run_key} under {where}", code="RUN_NOT_FOUND")
        if run.status == INVALID:
            raise PromotionError("INVALID_MARKER", f"run {run.run_id}: {run.problem}")
        if not run.complete:
            raise PromotionError("RUN_INCOMPLETE", f"run {run.run_id} is not complete: {run.problem}")
        if promotable and not run.folders:
            raise PromotionError("NO_PARQUET_FILES",
                                 f"run {run.run_id} has no Parquet files (it loaded no row)")
        return run
    found = newest([r for r in runs if r.folders or not promotable])
    floor = found.completed_at if found is not None else None
    invalid = [r for r in runs if r.status == INVALID and r.completed_at is not None
               and (floor is None or r.completed_at > floor)]
    if invalid:
        bad = max(invalid, key=lambda r: (r.completed_at, r.run_id))
        raise PromotionError("INVALID_MARKER", f"the newest run {bad.run_id} under {where}: {bad.problem}")
    if found is None:
        raise NotFoundError(f"no completed run (run_id=*/_SUCCESS) under {where}", code="NO_COMPLETED_RUN")
    return found
