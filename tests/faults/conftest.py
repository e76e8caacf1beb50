"""The fault suite: every test here names its case and what is expected, records what it
observed, and the suite prints them as one table at the end of the run (case, expected,
observed, result). ``make test`` runs the fast cases; ``make soak`` the long ones (marker
``soak``). Rows travel in the reports' ``user_properties``, so the table is whole under xdist.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

_ROWS: dict[str, dict[str, str]] = {}


@dataclass
class Case:
    """One row of the fault table."""

    case: str = ""
    expected: str = ""
    observed: str = "(nothing recorded)"

    def __call__(self, case: str, expected: str) -> Case:
        """Name the case and what must happen."""
        self.case, self.expected = case, expected
        return self

    def saw(self, observed: str) -> None:
        """Record what happened (call it before the assertions that judge it)."""
        self.observed = observed


@pytest.fixture
def fault(request: pytest.FixtureRequest) -> Iterator[Case]:
    """``fault("gzip transactions CSV", expected="error/, FAILED, run goes on").saw("…")``."""
    row = Case()
    yield row
    if row.case:
        request.node.user_properties.append(("fault", (row.case, row.expected, row.observed)))


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    row = _ROWS.setdefault(report.nodeid, {})
    if report.when == "call" or (report.when == "setup" and report.failed):
        row["outcome"] = "PASS" if report.passed else "FAIL"
    for name, value in report.user_properties:
        if name == "fault":
            row["case"], row["expected"], row["observed"] = value


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    rows = [r for r in _ROWS.values() if r.get("case")]
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
