"""Standard States Language error names and the exceptions the engine raises.

A Task callable raises :class:`TaskError` to fail with a chosen error name; the engine uses
:class:`StatesError` internally for every failure that travels through Retry/Catch.
"""

from __future__ import annotations

ALL = "States.ALL"
HEARTBEAT_TIMEOUT = "States.HeartbeatTimeout"
TIMEOUT = "States.Timeout"
TASK_FAILED = "States.TaskFailed"
PERMISSIONS = "States.Permissions"
RESULT_PATH_MATCH_FAILURE = "States.ResultPathMatchFailure"
PARAMETER_PATH_FAILURE = "States.ParameterPathFailure"
INTRINSIC_FAILURE = "States.IntrinsicFailure"
BRANCH_FAILED = "States.BranchFailed"
NO_CHOICE_MATCHED = "States.NoChoiceMatched"
EXCEED_TOLERATED_FAILURE_THRESHOLD = "States.ExceedToleratedFailureThreshold"
DATA_LIMIT_EXCEEDED = "States.DataLimitExceeded"
RUNTIME = "States.Runtime"
QUERY_EVALUATION_ERROR = "States.QueryEvaluationError"

#: Errors that ``States.ALL`` does not match (terminal: they always fail the execution
#: unless a retrier/catcher names them explicitly).
NOT_MATCHED_BY_ALL = frozenset({RUNTIME, DATA_LIMIT_EXCEEDED})


class TaskError(Exception):
    """Raised by a Task callable to fail the task with ``error`` (and ``cause``)."""

    def __init__(self, error: str, cause: str | None = None) -> None:
        super().__init__(f"{error}: {cause}" if cause else error)
        self.error = error
        self.cause = cause


class StatesError(Exception):
    """A state failure carrying a States Language error name and cause."""

    def __init__(self, error: str, cause: str | None = None) -> None:
        super().__init__(f"{error}: {cause}" if cause else error)
        self.error = error
        self.cause = cause


def error_matches(error: str, error_equals: list[str]) -> bool:
    """Whether ``error`` is matched by a retrier's or catcher's ``ErrorEquals`` list.

    ``States.ALL`` matches every error except the terminal ones; ``States.TaskFailed``
    matches every error except ``States.Timeout`` (and the terminal ones).
    """
    if error in error_equals:
        return True
    if error in NOT_MATCHED_BY_ALL:
        return False
    if ALL in error_equals:
        return True
    return TASK_FAILED in error_equals and error != TIMEOUT
