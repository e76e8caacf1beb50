"""Run a recorded Step Functions execution through the local engine and compare the result
with what AWS recorded, by the rules of README.md (run-specific values only are wildcards).

Also a script: ``python -m tests.workflow.conformance.compare [cases.json ...]`` prints the pass
rate per group and every case that differs (``-v``: with what differs).
"""

from __future__ import annotations

import contextlib
import json
import re
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lakeline.errors import UsageError
from lakeline.workflow.engine import run_definition

CASES = Path(__file__).parent / "cases.json"
#: placeholders LocalStack's snapshots put where a run-specific value was: each matches any text
_TOKEN = re.compile(r"<[A-Za-z][\w-]*(?::\d+)?>|111111111111")
_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


def load_cases(path: Path = CASES) -> list[dict[str, Any]]:
    """The cases of a ``cases.json`` file."""
    data = json.loads(path.read_text())
    cases: list[dict[str, Any]] = data["cases"]
    return cases


def _pattern(expected: str) -> re.Pattern[str]:
    out, pos = [], 0
    for m in _TOKEN.finditer(expected):
        out.append(re.escape(expected[pos:m.start()]))
        token = m.group(0)
        if token.startswith("<uuid"):
            out.append(_UUID)
        elif token == "111111111111":
            out.append(r"\d{12}")
        else:
            out.append(r".+?")
        pos = m.end()
    out.append(re.escape(expected[pos:]))
    return re.compile("".join(out), re.S)


def _same(expected: Any, got: Any, placeholders: frozenset[str], where: str) -> str | None:
    """None when ``got`` matches ``expected``, else where and how they differ."""
    if isinstance(expected, dict):
        if not isinstance(got, dict):
            return f"{where}: expected an object, got {got!r}"
        if set(expected) != set(got):
            return f"{where}: keys differ: missing {sorted(set(expected) - set(got))}, " \
                   f"extra {sorted(set(got) - set(expected))}"
        for key, value in expected.items():
            diff = _same(value, got[key], placeholders, f"{where}.{key}")
            if diff:
                return diff
        return None
    if isinstance(expected, list):
        if not isinstance(got, list) or len(got) != len(expected):
            return f"{where}: expected {expected!r}, got {got!r}"
        for k, (e, g) in enumerate(zip(expected, got, strict=True)):
            diff = _same(e, g, placeholders, f"{where}[{k}]")
            if diff:
                return diff
        return None
    if isinstance(expected, bool) or expected is None:
        return None if got is expected else f"{where}: expected {expected!r}, got {got!r}"
    if isinstance(expected, int | float):
        ok = isinstance(got, int | float) and not isinstance(got, bool) and got == expected
        return None if ok else f"{where}: expected {expected!r}, got {got!r}"
    if expected in placeholders:  # a run-specific value of any kind
        return None
    if not isinstance(got, str):
        return f"{where}: expected {expected!r}, got {got!r}"
    if expected == "date":
        return None if _ISO.match(got) else f"{where}: expected a timestamp, got {got!r}"
    if _TOKEN.search(expected):
        return None if _pattern(expected).fullmatch(got) else f"{where}: expected {expected!r}, got {got!r}"
    return None if got == expected else f"{where}: expected {expected!r}, got {got!r}"


@dataclass(frozen=True)
class Result:
    """One case's outcome: ``diff`` is None when it matches AWS."""

    case_id: str
    group: str
    diff: str | None


def run_case(case: dict[str, Any]) -> Result:
    """Run one case through :func:`run_definition` (waits do not sleep) and compare."""
    placeholders = frozenset(case.get("placeholders") or [])
    expected = case["expected"]
    try:
        execution = run_definition(case["definition"], json.loads(case["input"]), sleep=lambda s: None,
                                   execution_type=case.get("sm_type", "STANDARD"))
    except UsageError as exc:
        return Result(case["id"], case["group"], f"refused at load time: {exc}")
    got: dict[str, Any] = {"status": execution.status}
    if execution.status != expected["status"]:
        return Result(case["id"], case["group"], f"status {execution.status} ({execution.error}: "
                      f"{execution.cause}), expected {expected['status']}")
    if "output" in expected:
        want = expected["output"]
        diff = _same(want, execution.output, placeholders, "output")
        if diff and isinstance(want, str):
            # LocalStack kept some outputs as the JSON text AWS returned
            with contextlib.suppress(ValueError):
                diff = _same(json.loads(want), execution.output, placeholders, "output")
        if diff:
            return Result(case["id"], case["group"], diff)
    for key in ("error", "cause"):
        if expected.get(f"{key}_present") is False or (key not in expected and "status" in got
                                                         and expected["status"] != "SUCCEEDED"):
            value = getattr(execution, key)
            if value is not None:
                return Result(case["id"], case["group"], f"{key}: expected none, got {value!r}")
        elif key in expected:
            diff = _same(expected[key], getattr(execution, key), placeholders, key)
            if diff:
                return Result(case["id"], case["group"], diff)
    return Result(case["id"], case["group"], None)


def main(argv: list[str]) -> int:
    verbose = "-v" in argv
    paths = [Path(a) for a in argv if a != "-v"] or [CASES]
    results = [run_case(c) for p in paths for c in load_cases(p)]
    total, passed = Counter[str](), Counter[str]()
    for r in results:
        total[r.group] += 1
        passed[r.group] += r.diff is None
    for group in sorted(total):
        print(f"{group:28} {passed[group]:4}/{total[group]:<4}")
    n_pass = sum(passed.values())
    print(f"{'all':28} {n_pass:4}/{len(results):<4} {100.0 * n_pass / len(results):.1f} %")
    for r in results:
        if r.diff is not None:
            print(f"FAIL {r.case_id}" + (f"\n     {r.diff[:400]}" if verbose else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
