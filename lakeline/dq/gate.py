"""The file gate: a landed file that passes its rules moves on to ``raw``, one that fails to ``error``.

Both moves keep the FULL key (``landing/carbon/2026/a.csv`` → ``raw/carbon/2026/a.csv``;
CarbonLake keeps only the last path segment — we don't). The result JSON is stored in the gold
zone at ``_quality/results/<key>/run_<run_id>.json`` (the key starts with the pipeline, so this
is ``_quality/results/<pipeline>/…/<file>/run_<run_id>.json``) with the HTML report beside it
(``run_<run_id>.html``); a failure also sends the notification "Data Quality check failed"
naming the file. Another result prefix (the seed's ``result_prefix``, e.g. ``ge/results``) is
checked by :func:`result_prefix`: it must stay inside the gold zone.

A move is copy, then delete. Re-running the gate after a crash is safe: results are rewritten
in place, a source still present is copied again (same bytes) and deleted, and a source already
gone whose destination exists means the move finished — nothing is moved or sent again. The
failure notification is sent after the copy and before the delete, so it is sent at least once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from lakeline.dq.engine import DqResult
from lakeline.dq.report import render_html
from lakeline.errors import InvalidKeyError, NotFoundError, UsageError
from lakeline.lake import Lake
from lakeline.ports.objectstore import validate_key

RESULT_PREFIX = "_quality/results"
PASS = "DQ_CHECK_PASS"  # noqa: S105 - a lineage action, not a password
FAIL = "DQ_CHECK_FAIL"
SUBJECT = "Data Quality check failed"


@dataclass(frozen=True)
class GateOutcome:
    """Where the file went and where its result is (gold zone keys)."""

    passed: bool
    action: str  # DQ_CHECK_PASS | DQ_CHECK_FAIL
    source_key: str
    dest_zone: str
    dest_key: str
    result_key: str
    report_key: str = ""


def result_prefix(value: object = None) -> str:
    """A gate's result prefix in the gold zone (the seed's ``result_prefix`` /
    ``GE_RESULT_PREFIX``, e.g. ``ge/results``; default :data:`RESULT_PREFIX`), without its
    trailing ``/``. :class:`UsageError` when it is not a relative key prefix that stays in gold
    (``../x``, ``/x``, ``s3://bucket/x``)."""
    if value is None:
        return RESULT_PREFIX
    text = str(value).rstrip("/")
    if "://" in text:
        raise UsageError(f"result_prefix {value!r} names a bucket: give a prefix inside the gold zone "
                         "(e.g. 'ge/results')")
    try:
        return validate_key(text)
    except InvalidKeyError as exc:
        raise UsageError(f"result_prefix {value!r} escapes the gold zone: {exc}") from None


def result_keys(key: str, run_id: str, prefix: str = RESULT_PREFIX) -> tuple[str, str]:
    """Gold keys of the result JSON and the HTML report of a file gate run."""
    base = f"{result_prefix(prefix)}/{validate_key(key)}/run_{run_id}"
    validate_key(base)
    return base + ".json", base + ".html"


def _failure_message(zone: str, key: str, dest: str, report_key: str, result: DqResult) -> str:
    failed = [r for r in result.results if not r.get("success")]
    lines = [f"Data Quality check failed for {zone}/{key}: {len(failed)} of {len(result.results)} rules "
             f"failed (ruleset {result.ruleset}, {result.statistics.get('rows', 0)} rows). "
             f"The file was moved to {dest}."]
    for r in failed:
        res = r.get("result") or {}
        column = (r.get("kwargs") or {}).get("column")
        what = f" on {column}" if column else ""
        if "unexpected_count" in res:
            what += f": {res['unexpected_count']} unexpected ({res.get('unexpected_percent')} %)"
        elif "observed_value" in res:
            what += f": observed {res['observed_value']}"
        elif r.get("exception_info"):
            what += f": {r['exception_info'].get('exception_message')}"
        lines.append(f"- {r.get('rule') or r.get('expectation_type')}{what}")
    lines.append(f"Report: gold/{report_key}")
    return "\n".join(lines)


def file_gate(lake: Lake, key: str, result: DqResult, *, source_zone: str = "landing",
              pass_zone: str = "raw", fail_zone: str = "error",  # noqa: S107
              results_under: str = RESULT_PREFIX) -> GateOutcome:
    """Store the result and report (under ``results_under`` in gold), then move
    ``source_zone/key`` to ``pass_zone`` or ``fail_zone``."""
    passed = result.success
    action = PASS if passed else FAIL
    dest_zone = pass_zone if passed else fail_zone
    result_key, report_key = result_keys(key, result.run_id, results_under)
    stored: dict[str, Any] = {**result.to_dict(), "gate": {
        "action": action, "source_zone": source_zone, "source_key": key, "dest_zone": dest_zone,
        "dest_key": key, "report_key": report_key}}
    lake.store.put("gold", result_key, orjson.dumps(stored, option=orjson.OPT_INDENT_2))
    lake.store.put("gold", report_key, render_html(stored).encode("utf-8"))
    outcome = GateOutcome(passed, action, key, dest_zone, key, result_key, report_key)
    if not lake.store.exists(source_zone, key):
        if lake.store.exists(dest_zone, key):
            return outcome  # moved by an earlier run of this gate
        raise NotFoundError(f"{source_zone}/{key} does not exist (and is not in {dest_zone} either)")
    lake.store.copy(source_zone, key, dest_zone, key)
    if not passed:
        message = _failure_message(source_zone, key, f"{dest_zone}/{key}", report_key, result)
        lake.notifier.notify(SUBJECT, message, {
            "action": action, "key": key, "pipeline": key.split("/", 1)[0], "source": f"{source_zone}/{key}",
            "dest": f"{dest_zone}/{key}", "result_key": result_key, "report_key": report_key,
            "failed_rules": [r.get("rule") for r in result.results if not r.get("success")]})
    lake.store.delete(source_zone, key)
    return outcome


__all__ = ["FAIL", "PASS", "RESULT_PREFIX", "SUBJECT", "GateOutcome", "file_gate", "result_keys",
           "result_prefix"]
