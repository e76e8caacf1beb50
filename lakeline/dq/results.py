"""Stored data quality results: the result JSONs under gold ``_quality/results/`` (what the
file gate, the checks after a run and ``lakeline dq run`` write), read back for ``lakeline dq
report`` and the quality pages of ``lakeline ui``.

Keys are ``_quality/results/<subject>/…/run_<run_id>.json``: the subject is a streaming
pipeline's table (``shipments/dt=2026-01-05/…``) or a pipeline (``carbon/<file key>/…``,
``<pipeline>/<table or file>/…``); what lies between subject and run names the partition,
file or table checked.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import orjson

from lakeline import log
from lakeline.dq.gate import RESULT_PREFIX
from lakeline.errors import NotFoundError, UsageError
from lakeline.lake import Lake
from lakeline.ports.objectstore import validate_key

#: results read by :func:`list_results` (the newest stored)
LIMIT = 500


@dataclass(frozen=True)
class StoredResult:
    """One stored result, summarised: where it is, what it checked, how it went."""

    key: str
    subject: str
    part: str
    run_id: str
    generated_at: str
    success: bool
    evaluated: int
    successful: int
    rows: int | None
    ruleset: str

    @property
    def pass_rate(self) -> float | None:
        """Rules passed / rules evaluated (None when none was evaluated)."""
        return self.successful / self.evaluated if self.evaluated else None

    @property
    def report_key(self) -> str:
        """The HTML report stored beside the result."""
        return self.key.removesuffix(".json") + ".html"

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "subject": self.subject, "part": self.part, "run_id": self.run_id,
                "generated_at": self.generated_at, "success": self.success, "evaluated": self.evaluated,
                "successful": self.successful, "rows": self.rows, "ruleset": self.ruleset,
                "pass_rate": self.pass_rate}


def parse_result(data: bytes, ref: str) -> dict[str, Any]:
    """A result JSON's content; :class:`UsageError` naming ``ref`` when it is not one."""
    try:
        result = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise UsageError(f"{ref}: not a result JSON: {exc}") from None
    if not isinstance(result, dict) or "results" not in result:
        raise UsageError(f"{ref}: not a data quality result (no 'results')")
    return result


def load_result(lake: Lake, key: str) -> dict[str, Any]:
    """The result stored at gold ``key``, which must be a ``.json`` under ``_quality/results/``:
    :class:`UsageError` (or ``InvalidKeyError``) for a key outside it, :class:`NotFoundError`
    when nothing is stored there."""
    validate_key(key)
    if not key.startswith(RESULT_PREFIX + "/") or not key.endswith(".json"):
        raise UsageError(f"{key!r} is not a result: results are .json keys under {RESULT_PREFIX}/")
    if not lake.store.exists("gold", key):
        raise NotFoundError(f"no quality result gold/{key}")
    return parse_result(lake.store.get("gold", key), key)


def summarise(key: str, result: dict[str, Any]) -> StoredResult:
    """The summary of the result ``result`` stored at ``key``."""
    rest = key.removeprefix(RESULT_PREFIX + "/").split("/")
    stats = result.get("statistics") or {}
    rules = result.get("results") or []
    evaluated = int(stats.get("evaluated", len(rules)) or 0)
    successful = int(stats.get("successful", sum(1 for r in rules if r.get("success"))) or 0)
    run = rest[-1].removesuffix(".json").removeprefix("run_")
    return StoredResult(key=key, subject=rest[0], part="/".join(rest[1:-1]),
                        run_id=str(result.get("run_id") or run),
                        generated_at=str(result.get("generated_at") or ""),
                        success=bool(result.get("success")), evaluated=evaluated, successful=successful,
                        rows=stats.get("rows"), ruleset=str(result.get("ruleset") or ""))


def list_results(lake: Lake, limit: int = LIMIT) -> list[StoredResult]:
    """The newest ``limit`` stored results (by when they were written), oldest first (by
    ``generated_at``). A result that cannot be read is skipped with a warning."""
    listed = [i for i in lake.store.list("gold", RESULT_PREFIX + "/") if i.key.endswith(".json")]
    listed.sort(key=lambda i: (i.last_modified, i.key), reverse=True)

    def read(key: str) -> StoredResult | None:
        try:
            return summarise(key, parse_result(lake.store.get("gold", key), key))
        except (NotFoundError, UsageError) as exc:  # deleted since the listing, or not a result
            log.get(__name__).warning("quality result gold/%s skipped: %s", key, exc)
            return None

    with ThreadPoolExecutor(8, thread_name_prefix="lakeline-dq-results") as pool:
        found = [r for r in pool.map(read, [i.key for i in listed[:limit]]) if r is not None]
    return sorted(found, key=lambda r: (r.generated_at, r.key))


def summary_rows(results: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """A result's rules as rows: rule, column, unexpected (or the observed value), %, pass/FAIL."""
    rows = []
    for r in results:
        res = r.get("result") or {}
        unexpected = res.get("unexpected_count")
        if unexpected is None:
            unexpected = res.get("observed_value", "") if "observed_value" in res else "error"
        pct = res.get("unexpected_percent", "")
        rows.append((r.get("rule") or r.get("expectation_type"), (r.get("kwargs") or {}).get("column", ""),
                     unexpected if not isinstance(unexpected, list | dict) else "-", pct,
                     "pass" if r.get("success") else "FAIL"))
    return rows
