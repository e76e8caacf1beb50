"""Notifier port: operational notifications (SNS on AWS; log + outbox locally)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Notification:
    """One notification as sent."""

    subject: str
    message: str
    attributes: dict[str, Any] = field(default_factory=dict)
    sent_at: str = ""
    message_id: str = ""


class Notifier(ABC):
    """Sends notifications to operators."""

    @abstractmethod
    def notify(
        self, subject: str, message: str, attributes: dict[str, Any] | None = None
    ) -> Notification:
        """Send one notification and return what was sent."""

    @abstractmethod
    def sent(self, limit: int = 100) -> list[Notification]:
        """Recently sent notifications, newest first (for status and tests)."""
