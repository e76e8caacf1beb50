"""Queue port with Amazon SQS semantics.

A received message is invisible for its visibility timeout; unless deleted it becomes visible
again and its receive count grows. A message received more than ``max_receive_count`` times
moves to the dead-letter queue on its next receive (the SQS redrive policy). A consumer whose
failure was not the message's fault puts it back uncharged with :meth:`Queue.defer`; one that
knows retrying cannot help moves a received message to the DLQ at once with
:meth:`Queue.dead_letter`, which records why in the :data:`DEAD_LETTER_REASON` attribute.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from lakeline.errors import UsageError


@dataclass(frozen=True)
class Message:
    """One received message. ``receipt_handle`` changes on every receive."""

    message_id: str
    receipt_handle: str
    body: str
    receive_count: int
    sent_at: datetime
    attributes: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class QueueCounts:
    """Approximate counts, like SQS ``ApproximateNumberOfMessages*``."""

    visible: int
    in_flight: int
    delayed: int

    @property
    def total(self) -> int:
        return self.visible + self.in_flight + self.delayed


MAX_BATCH = 10
#: The SQS maximum message size.
MAX_BODY_BYTES = 256 * 1024
_INVALID_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
#: ``Message.attributes`` key of the reason :meth:`Queue.dead_letter` recorded (a message moved
#: by the redrive policy has none); next to ``DeadLetterSourceQueue``, the queue it came from.
DEAD_LETTER_REASON = "DeadLetterReason"
#: Longest reason kept, in characters: it travels with the message (within SQS's size limit).
MAX_REASON_CHARS = 1024


def check_range(what: str, value: float, low: float, high: float) -> None:
    """Raise :class:`UsageError` unless ``low <= value <= high`` (an SQS limit)."""
    if not low <= value <= high:
        raise UsageError(f"{what} must be {low}..{high}, got {value}")


def check_batch(bodies: Sequence[str]) -> None:
    """Raise :class:`UsageError` unless ``bodies`` is a valid SQS batch (1..10 bodies, each
    valid, 256 KiB in total)."""
    if isinstance(bodies, str):
        raise UsageError("send_batch takes a sequence of bodies, not one string")
    if not 1 <= len(bodies) <= MAX_BATCH:
        raise UsageError(f"a batch holds 1..{MAX_BATCH} messages, got {len(bodies)}")
    total = sum(body_size(body) for body in bodies)
    if total > MAX_BODY_BYTES:
        raise UsageError(
            f"batch is {total} bytes in total; the maximum is {MAX_BODY_BYTES} bytes (256 KiB)"
        )


def dead_letter_reason(reason: str) -> str:
    """``reason`` as every backend stores it: characters SQS refuses become ``?`` and it is
    cut to :data:`MAX_REASON_CHARS`. Raises :class:`UsageError` if it is empty."""
    if not reason.strip():
        raise UsageError("dead_letter needs a reason")
    # An exception text may hold anything (control characters, lone surrogates from bad
    # bytes); the reason must still be a valid SQS attribute value, as on the local backend.
    text = reason.encode("utf-8", "replace").decode("utf-8")
    return _INVALID_CHARS.sub("?", text)[:MAX_REASON_CHARS]


def body_size(body: str) -> int:
    """UTF-8 size of a message body SQS accepts (its character set, 1..256 KiB)."""
    try:
        size = len(body.encode("utf-8"))
    except UnicodeEncodeError:
        raise UsageError("message body is not valid Unicode text (lone surrogate)") from None
    if size == 0:
        raise UsageError("message body must not be empty")
    if size > MAX_BODY_BYTES:
        raise UsageError(
            f"message body is {size} bytes; the maximum is {MAX_BODY_BYTES} bytes (256 KiB)"
        )
    bad = _INVALID_CHARS.search(body)
    if bad is not None:
        raise UsageError(f"message body contains U+{ord(bad.group()):04X}, which SQS does not accept")
    return size


class Queue(ABC):
    """A message queue with SQS semantics; ``dlq`` is its dead-letter queue, if any."""

    name: str
    dlq: Queue | None

    @abstractmethod
    def send(self, body: str, *, delay_seconds: int = 0) -> str:
        """Send one message; returns its message id."""

    @abstractmethod
    def send_batch(self, bodies: Sequence[str]) -> list[str]:
        """Send up to 10 messages at once; returns their ids in order."""

    @abstractmethod
    def receive(
        self,
        max_messages: int = 1,
        *,
        visibility_timeout: int | None = None,
        wait_seconds: float = 0,
    ) -> list[Message]:
        """Receive up to ``max_messages`` (1..10) visible messages."""

    @abstractmethod
    def delete(self, receipt_handle: str) -> None:
        """Delete a received message. A stale receipt handle is ignored."""

    @abstractmethod
    def dead_letter(self, message: Message, reason: str) -> None:
        """Move a received message to this queue's DLQ now, whatever its receive count.

        ``message`` is what :meth:`receive` returned (its ``receipt_handle`` names it; SQS
        cannot look a message up by handle, so its body travels with it). The DLQ copy keeps
        the message id and body; its attributes name the source queue
        (``DeadLetterSourceQueue``) and ``reason`` (:data:`DEAD_LETTER_REASON`, normalised by
        :func:`dead_letter_reason`). Use it for a failure retrying cannot fix
        (:class:`~lakeline.errors.TerminalError`). A receipt handle that is no longer current
        is ignored, as by :meth:`delete`. Raises :class:`UsageError` if the queue has no DLQ
        or ``reason`` is empty.
        """

    @abstractmethod
    def change_visibility(self, receipt_handle: str, timeout: int) -> None:
        """Make a received message visible again after ``timeout`` seconds (0 = now)."""

    @abstractmethod
    def defer(self, message: Message, delay_seconds: int) -> None:
        """Put a received message back, visible again after ``delay_seconds`` (0..900), without
        charging this receive to it: its receive count stays what it was before the receive,
        so the redrive policy never moves it to the DLQ for this failure. Use it when the
        failure was not the message's fault (a transient fault: full disk, read-only zone,
        locked database, throttling). ``message`` is what :meth:`receive` returned; a receipt
        handle that is no longer current is ignored, as by :meth:`delete`.
        """

    @abstractmethod
    def counts(self) -> QueueCounts:
        """Visible, in-flight and delayed message counts."""

    @abstractmethod
    def purge(self) -> int:
        """Delete every message; returns how many."""

    @abstractmethod
    def redrive(self, max_messages: int | None = None) -> int:
        """On a DLQ: move messages back to their source queue (receive count reset)."""

    @abstractmethod
    def peek(self, limit: int = 10) -> list[Message]:
        """Look at up to ``limit`` messages without receiving them (for ``dlq list``)."""
