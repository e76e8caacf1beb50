"""Shared fixtures: every test gets its own lake home and never reads the user's config."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from lakeline import envvars
from tests.faults.conftest import fault  # noqa: F401 - the fault table's fixture, for every suite


@pytest.fixture(autouse=True)
def _isolate_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in list(os.environ):
        if name.startswith(envvars.SETTING_PREFIX) or name in {envvars.HOME, envvars.CRASH_AT}:
            monkeypatch.delenv(name, raising=False)
    yield


@pytest.fixture
def home(tmp_path: Path) -> Path:
    from lakeline.lake import init_home

    h = tmp_path / "lake"
    init_home(h)
    return h


# ---- the fault suite's table (rows come from tests/faults' `fault` fixture) ------------------------
_FAULT_ROWS: dict[str, dict[str, str]] = {}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    row = _FAULT_ROWS.setdefault(report.nodeid, {})
    if report.when == "call" or (report.when == "setup" and report.failed):
        row["outcome"] = "PASS" if report.passed else "FAIL"
    for name, value in report.user_properties:
        if name == "fault":
            row["case"], row["expected"], row["observed"] = value


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    rows = [r for r in _FAULT_ROWS.values() if r.get("case")]
    if not rows:
        return
    tr = terminalreporter
    tr.section("fault suite")
    width = max(len(r["case"]) for r in rows)
    for r in sorted(rows, key=lambda r: r["case"]):
        tr.write_line(f"{r.get('outcome', '?'):4}  {r['case']:<{width}}  expected: {r['expected']}  "
                      f"observed: {r['observed']}")
    holding = sum(r.get("outcome") == "PASS" for r in rows)
    tr.write_line(f"{holding} of {len(rows)} fault cases hold")
