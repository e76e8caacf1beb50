"""Transient faults: which failures are not the message's fault, how long to wait, and the
health record that ``lakeline status`` shows while messages wait.

A full disk, a read-only zone, a locked database or a throttled AWS call fails every message
alike; retrying the message a few times and dead-lettering it would only move good data to a
DLQ. :func:`is_transient` recognises such failures (anywhere in the exception's cause chain);
the runner then puts the message back without charging the receive to it
(:meth:`lakeline.ports.queue.Queue.defer`) after :func:`backoff` seconds.
"""

from __future__ import annotations

import contextlib
import errno
import os
import random
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from lakeline.atomic import replace_file
from lakeline.errors import TerminalError, TransientError

#: errno values that say "the environment is at fault": full disk or quota, read-only or
#: immutable (``chattr +i`` gives EPERM) files, permissions an operator can fix.
TRANSIENT_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM,
                              errno.EAGAIN, errno.EBUSY, errno.ETXTBSY})
#: SQLite messages of the same kind (sqlite3.OperationalError carries no errno).
_SQLITE_TRANSIENT = ("database is locked", "database table is locked", "database or disk is full",
                     "attempt to write a readonly database", "disk i/o error", "unable to open database file")
#: Text other libraries (DuckDB, Arrow) put in their own exception types for the same faults.
_TEXT_TRANSIENT = tuple(os.strerror(e).lower() for e in (errno.ENOSPC, errno.EDQUOT, errno.EROFS))
#: AWS error codes of throttling (``lakeline.adapters.aws.session`` translates most of them
#: already; this catches a botocore error that escaped an adapter).
_AWS_THROTTLING = frozenset({
    "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException",
    "TooManyRequestsException", "ProvisionedThroughputExceededException", "RequestLimitExceeded",
    "SlowDown", "RequestThrottled", "BandwidthLimitExceeded", "LimitExceededException",
    "TransactionInProgressException", "PriorRequestNotComplete", "ServiceUnavailable",
    "InternalError", "InternalFailure",
})
HEALTH_FILE = "health.json"


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen and len(seen) < 20:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _one_transient(exc: BaseException) -> bool:
    if isinstance(exc, TransientError):
        return True
    if isinstance(exc, OSError) and exc.errno in TRANSIENT_ERRNOS:
        return True
    text = str(exc).lower()
    if isinstance(exc, sqlite3.OperationalError) and any(t in text for t in _SQLITE_TRANSIENT):
        return True
    response = getattr(exc, "response", None)
    if isinstance(response, dict):  # a botocore ClientError (duck-typed: no boto import here)
        code = str(response.get("Error", {}).get("Code", ""))
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if code in _AWS_THROTTLING or status in (429, 500, 502, 503, 504):
            return True
    return any(t in text for t in _TEXT_TRANSIENT)


def is_transient(exc: BaseException) -> bool:
    """True when ``exc`` is not the message's fault and retrying later can succeed: a
    :class:`TransientError`, or an ``OSError`` (full disk, quota, read-only or immutable
    file, permission), a locked or unwritable SQLite database, AWS throttling or a 5xx — the
    failure itself or anything in its cause chain. A :class:`TerminalError` raised on purpose
    is never transient (the message itself is at fault)."""
    if isinstance(exc, TerminalError):
        return False
    return any(_one_transient(e) for e in _chain(exc))


def backoff(attempt: int, *, base: float, ceiling: float, rng: random.Random | None = None) -> int:
    """Whole seconds to wait before the ``attempt``-th retry (1, 2, …) of a transient fault:
    ``base * 2**(attempt-1)`` capped at ``ceiling``, jittered down by up to half (so workers
    that failed together do not retry together), at least 1 s."""
    chosen = rng or random
    delay = min(float(ceiling), max(1.0, base) * 2.0 ** min(max(attempt - 1, 0), 30))
    return max(1, round(chosen.uniform(delay / 2, delay)))


# ---- health record ------------------------------------------------------------------------
def health_path(state_dir: Path) -> Path:
    """Where the runner records a transient condition (``HOME/state/health.json``)."""
    return state_dir / HEALTH_FILE


def record_waiting(state_dir: Path, *, error: str, retry_in_s: int, waiting: int | None = None) -> None:
    """Record that messages wait on a transient fault (``error``), keeping when it began.
    Best effort: the fault may be that this very directory cannot be written."""
    path = health_path(state_dir)
    now = datetime.now(UTC).isoformat(timespec="seconds")
    since = (read_health(state_dir) or {}).get("since") or now
    data: dict[str, Any] = {"condition": "transient", "since": since, "updated_at": now, "error": error,
                            "retry_in_s": retry_in_s}
    if waiting is not None:
        data["waiting"] = waiting
    with contextlib.suppress(OSError):
        replace_file(path, orjson.dumps(data), prefix=".health-")


def clear_health(state_dir: Path) -> None:
    """The transient condition is over (a message succeeded, or nothing waits any more)."""
    with contextlib.suppress(FileNotFoundError, OSError):
        health_path(state_dir).unlink()


def read_health(state_dir: Path) -> dict[str, Any] | None:
    """The recorded transient condition, or ``None`` when there is none (or it is unreadable)."""
    try:
        data = orjson.loads(health_path(state_dir).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None
