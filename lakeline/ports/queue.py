"""Queue port with Amazon SQS semantics.

A received message is invisible for its visibility timeout; unless deleted it becomes visible
again and its receive count grows. A message received more than ``max_receive_count`` times
moves to the dead-letter queue on its next receive (the SQS redrive policy).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime


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
