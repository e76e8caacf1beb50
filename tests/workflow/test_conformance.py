"""The local engine against 442 Step Functions executions recorded on AWS (conformance/README.md).

Every case runs through :func:`lakeline.workflow.engine.run_definition` and is compared as the
README says: status, output, error and cause exactly, run-specific values (ARNs, dates, UUIDs)
as wildcards. A case listed in :data:`KNOWN_DIFFERENCES` must still differ (strict), so the list
stays the truth; the pass rate is asserted against the README's claim.
"""

from __future__ import annotations

from collections import Counter

import pytest

from tests.workflow.conformance.compare import CASES as SHARED
from tests.workflow.conformance.compare import load_cases, run_case

CASES = load_cases()
#: 439 more cases built the same way from the same suite (LocalStack's snapshots of tests run
#: against AWS), not in the shared sample; a case's "note" says what was inferred (README.md)
MORE = load_cases(SHARED.with_name("more_cases.json"))
#: cases that do not pass, each with the reason (docs/reference/workflow-conformance.md lists them)
KNOWN_DIFFERENCES = {
    "express/test_express_sync.py::TestExpressSync::test_query_runtime_memory#0":
        "the recording keeps the test's role ARN as the literal 'sfn_role_arn' without naming it a "
        "placeholder; the role ARN of an execution is run-specific",
}
#: the pass rate the README and the docs state (percent, one decimal)
STATED_PASS_RATE = 99.8


@pytest.mark.parametrize("case", CASES + MORE, ids=[c["id"] for c in CASES + MORE])
def test_case_matches_aws(case: dict[str, object]) -> None:
    result = run_case(case)  # type: ignore[arg-type]
    reason = KNOWN_DIFFERENCES.get(str(case["id"]))
    if reason is not None:
        assert result.diff is not None, f"now matches AWS: drop it from KNOWN_DIFFERENCES ({reason})"
        pytest.xfail(reason)
    assert result.diff is None, result.diff


def test_pass_rate_is_what_the_docs_state() -> None:
    assert len(CASES) == 442
    groups = Counter(str(c["group"]) for c in CASES)
    assert groups["choice_operators"] == 251 and groups["intrinsic_functions"] == 86
    passed = len(CASES) - len(KNOWN_DIFFERENCES)
    assert round(100.0 * passed / len(CASES), 1) == STATED_PASS_RATE >= 99.0
    assert set(KNOWN_DIFFERENCES) <= {str(c["id"]) for c in CASES}
    assert len(MORE) == 439 and not {str(c["id"]) for c in MORE} & {str(c["id"]) for c in CASES}
