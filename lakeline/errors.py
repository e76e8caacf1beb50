"""The lakeline error hierarchy.

Every error lakeline raises on purpose derives from :class:`LakelineError`. The type says what
the caller should do. When handling a queue message fails (the local runner's workers, the
transform Lambda):

* a :class:`TerminalError` is not retried: the message goes to its queue's DLQ on the receive
  that failed (``Queue.dead_letter``, with the reason ``"<ErrorType>: <message>"``); if that
  move itself fails, the message is retried like any other failure;
* a transient fault — a :class:`TransientError`, or what :func:`lakeline.transient.is_transient`
  recognises anywhere in the cause chain (``OSError`` ENOSPC/EDQUOT/EROFS/EACCES/EPERM, a locked
  or unwritable SQLite database, AWS throttling or 5xx) — is not the message's fault: the local
  runner puts the message back without charging the receive (``Queue.defer``) after a jittered
  backoff of up to ``queue.transient_backoff_max`` seconds, so it never reaches the DLQ for it;
* every other exception — any other :class:`LakelineError`, one lakeline did not raise on
  purpose — is retried: the message becomes visible again (the local runner backs off
  ``retry_delay * 2**(n-1)`` seconds, ``n`` its receive count, at most the visibility timeout)
  and is redelivered until the queue's redrive policy (``max_receive_count``) moves it to the DLQ.

Unusable input found while a message is handled is usually no error at all: bad records are
quarantined as rejects with a reason code, an object the ingest stage cannot use goes to the
error zone, and the message succeeds.

::

    LakelineError
    ├── ConfigError                 bad or missing configuration (exit code 2 in the CLI)
    ├── UsageError                  bad command-line use (exit code 2)
    ├── NotFoundError               a key, message, run or table that does not exist
    ├── InvalidKeyError             an object key that would escape its zone
    ├── ConditionFailed             a conditional put lost (put-if-absent / compare-and-swap)
    ├── TransientError              retry later: a lock is held, a service is throttling
    │   └── LockedError             another worker holds the in-progress lock
    └── TerminalError               retrying cannot help
        ├── MessageError            a queue message lakeline cannot understand
        └── DataError               input data is unusable as a whole (carries a reason code)
"""

from __future__ import annotations


class LakelineError(Exception):
    """Root of every error lakeline raises on purpose.

    ``code`` is the machine-readable code a ``--json`` failure carries
    (``{"status": "error", "code": …, "reason": …}``); without one, :func:`error_code`
    derives it from the class (``NotFoundError`` → ``NOT_FOUND``).
    """

    def __init__(self, *args: object, code: str | None = None) -> None:
        super().__init__(*args)
        self.code = code




class ConfigError(LakelineError):
    """Configuration is missing or invalid."""


class UsageError(LakelineError):
    """A command was used incorrectly."""


class NotFoundError(LakelineError):
    """The named key, message, run or table does not exist."""


class InvalidKeyError(LakelineError):
    """An object key is refused because it could escape its zone."""


class ConditionFailed(LakelineError):
    """A conditional write lost: the item exists, or its version moved on."""


class TransientError(LakelineError):
    """A failure that may succeed on retry."""


class LockedError(TransientError):
    """Another worker holds the in-progress lock for this item."""


class TerminalError(LakelineError):
    """A failure that retrying cannot fix."""


class MessageError(TerminalError):
    """A queue message that lakeline cannot decode or act on."""


class DataError(TerminalError):
    """Input data that is unusable as a whole; ``reason`` is a reject reason code."""

    def __init__(self, message: str, reason: str = "SCHEMA_ERROR") -> None:
        super().__init__(message)
        self.reason = reason


def error_code(exc: BaseException) -> str:
    """The ``code`` of a failure: the error's own, a :class:`DataError`'s reject reason, else
    its class name in upper snake case (``ConfigError`` → ``CONFIG_ERROR``)."""
    own = getattr(exc, "code", None)
    if isinstance(own, str) and own:
        return own
    if isinstance(exc, DataError):
        return exc.reason
    name = type(exc).__name__
    return "".join(f"_{c}" if c.isupper() and i else c for i, c in enumerate(name)).upper()
