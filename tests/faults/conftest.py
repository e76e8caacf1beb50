"""The fault suite: every test here names its case and what is expected, records what it
observed, and the suite prints them as one table at the end of the run (case, expected,
observed, result). ``make test`` runs the fast cases; ``make soak`` the long ones (marker
``soak``). Rows travel in the reports' ``user_properties``; the hooks that print the table live
in ``tests/conftest.py``, which the xdist controller loads (it never collects this directory).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest


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
