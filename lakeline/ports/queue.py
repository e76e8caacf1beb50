"""Queue port with Amazon SQS semantics.

A received message is invisible for its visibility timeout; unless deleted it becomes visible
again and its receive count grows. A message received more than ``max_receive_count`` times
moves to the dead-letter queue on its next receive (the SQS redrive policy).
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
    def change_visibility(self, receipt_handle: str, timeout: int) -> None:
        """Make a received message visible again after ``timeout`` seconds (0 = now)."""

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
