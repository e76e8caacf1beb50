"""SNS notifier: publishes each notification to a topic and logs it as one JSON line.

SNS cannot list what was published, so :meth:`SnsNotifier.sent` returns what *this instance*
published (in memory, the last :data:`KEEP` notifications, newest first); a new process starts
empty. The durable record is the ``lakeline.notify`` log line (CloudWatch Logs on Lambda).

SNS limits are applied before publishing: the ``Subject`` (an e-mail subject line) becomes
ASCII without control characters, at most 100 characters; the returned :class:`Notification`
keeps the caller's subject. Attribute values are sent as ``String`` message attributes (JSON
for non-strings); attributes SNS cannot carry (empty values, invalid names) are left out of
``MessageAttributes`` but kept in the log line and the returned notification.
"""

from __future__ import annotations

import logging
import re
import threading
import unicodedata
from collections import deque
from datetime import UTC, datetime
from typing import Any

import orjson

from lakeline.adapters.aws.session import translate_errors
from lakeline.errors import ConfigError
from lakeline.ports.notifier import Notification, Notifier

MAX_SUBJECT = 100
MAX_MESSAGE_BYTES = 256 * 1024 - 8 * 1024  # leave room for attributes in SNS's 256 KiB
#: How many published notifications :meth:`SnsNotifier.sent` remembers.
KEEP = 1000
_ATTR_NAME = re.compile(r"[A-Za-z0-9_\-.]{1,256}")

logger = logging.getLogger("lakeline.notify")


def sns_subject(subject: str) -> str:
    """An SNS-safe subject: ASCII, no control characters, at most 100 characters."""
    text = unicodedata.normalize("NFKD", subject)
    text = text.encode("ascii", "ignore").decode("ascii")
    text = "".join(ch if 0x20 <= ord(ch) < 0x7F else " " for ch in text)
    text = " ".join(text.split())
    if len(text) > MAX_SUBJECT:
        text = text[: MAX_SUBJECT - 3].rstrip() + "..."
    return text


def _attribute_value(value: Any) -> str:
    if isinstance(value, str):
        return value
    return orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS).decode("utf-8")


def _message_attributes(attributes: dict[str, Any]) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for name, value in attributes.items():
        key = str(name)
        text = _attribute_value(value)
        if (not text or not _ATTR_NAME.fullmatch(key) or ".." in key
                or key.startswith((".", "AWS.", "Amazon.")) or key.endswith(".")):
            continue
        out[key] = {"DataType": "String", "StringValue": text}
    return out


def _truncate_utf8(text: str, limit: int) -> str:
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    return data[:limit].decode("utf-8", "ignore")


class SnsNotifier(Notifier):
    """:class:`Notifier` publishing to the SNS topic ``topic_arn``. The constructor makes
    no API call."""

    def __init__(self, sns_client: Any, topic_arn: str) -> None:
        if not topic_arn:
            raise ConfigError("the SNS notifier has no topic ARN (aws.topic_arn)")
        self.sns = sns_client
        self.topic_arn = topic_arn
        self._sent: deque[Notification] = deque(maxlen=KEEP)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"SnsNotifier({self.topic_arn!r})"

    def notify(
        self, subject: str, message: str, attributes: dict[str, Any] | None = None
    ) -> Notification:
        """Publish one notification; returns it with SNS's message id."""
        attrs = dict(attributes or {})
        kwargs: dict[str, Any] = {
            "TopicArn": self.topic_arn,
            "Message": _truncate_utf8(message, MAX_MESSAGE_BYTES) or "(empty)",
        }
        safe_subject = sns_subject(subject)
        if safe_subject:
            kwargs["Subject"] = safe_subject
        message_attributes = _message_attributes(attrs)
        if message_attributes:
            kwargs["MessageAttributes"] = message_attributes
        with translate_errors(f"SNS Publish {self.topic_arn}"):
            resp = self.sns.publish(**kwargs)
        sent_at = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        note = Notification(subject=subject, message=message, attributes=attrs,
                            sent_at=sent_at, message_id=str(resp["MessageId"]))
        record = {"event": "notification", "message_id": note.message_id,
                  "sent_at": note.sent_at, "topic_arn": self.topic_arn, "subject": subject,
                  "message": message, "attributes": attrs}
        logger.info(orjson.dumps(record, default=str, option=orjson.OPT_NON_STR_KEYS)
                    .decode("utf-8"))
        with self._lock:
            self._sent.append(note)
        return note

    def sent(self, limit: int = 100) -> list[Notification]:
        """Notifications this instance published, newest first (SNS cannot list them)."""
        if limit <= 0:
            return []
        with self._lock:
            return list(reversed(self._sent))[:limit]
