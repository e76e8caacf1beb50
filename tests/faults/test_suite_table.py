"""The fault table itself: a case records what it expected and observed."""

from __future__ import annotations

from tests.faults.conftest import Case


def test_a_case_records_expected_and_observed(fault: Case) -> None:
    fault("the fault table", expected="a row with case, expected, observed")
    fault.saw("a row with case, expected, observed")
    assert (fault.case, fault.expected, fault.observed) == (
        "the fault table", "a row with case, expected, observed", "a row with case, expected, observed")
