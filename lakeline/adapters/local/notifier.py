"""Local notifier: a structured log line plus an append-only outbox file; e-mail optionally.

Every notification is logged as one JSON line on the ``lakeline.notify`` logger and appended
to ``<outbox_dir>/notifications.jsonl`` under an exclusive ``fcntl`` lock with ``fsync``, so
several worker processes can notify at once without interleaving lines. When an SMTP host is
configured the notification is also e-mailed; the password comes from the environment
variable :data:`lakeline.envvars.SMTP_PASSWORD` and is never logged. SMTP failures are logged
as warnings and never raised: the outbox line is the record of truth.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import smtplib
import socket
import ssl
import uuid
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import orjson

from lakeline import envvars
from lakeline.ports.notifier import Notification, Notifier

OUTBOX_FILE = "notifications.jsonl"
SMTP_TIMEOUT_SECONDS = 10.0
_TAIL_BLOCK = 64 * 1024

logger = logging.getLogger("lakeline.notify")


def _smtp_config(smtp: dict[str, Any] | None) -> dict[str, Any]:
    """Normalise ``{"host", "port", "user", "from", "to"}`` (``smtp_`` prefixes accepted)."""
    out: dict[str, Any] = {}
    for key, value in (smtp or {}).items():
        name = key[5:] if key.startswith("smtp_") else key
        out[name] = value
    return out


class OutboxNotifier(Notifier):
    """Notifications to the log, to ``outbox_dir/notifications.jsonl`` and optionally e-mail.

    ``smtp`` keys: ``host`` (e-mail is sent only when set), ``port`` (default 587; 465 means
    implicit TLS), ``user``, ``from``, ``to`` (comma-separated). ``smtp_``-prefixed names, as in
    :class:`lakeline.config.NotifySettings`, are accepted too.
    """

    def __init__(self, outbox_dir: Path, smtp: dict[str, Any] | None = None) -> None:
        self.outbox_dir = Path(outbox_dir)
        self.path = self.outbox_dir / OUTBOX_FILE
        self.smtp = _smtp_config(smtp)

    def notify(
        self, subject: str, message: str, attributes: dict[str, Any] | None = None
    ) -> Notification:
        """Log, append to the outbox (durably) and, if configured, e-mail one notification."""
        sent_at = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        note = Notification(
            subject=subject,
            message=message,
            attributes=dict(attributes or {}),
            sent_at=sent_at,
            message_id=str(uuid.uuid4()),
        )
        record = {
            "message_id": note.message_id,
            "sent_at": note.sent_at,
            "subject": note.subject,
            "message": note.message,
            "attributes": note.attributes,
        }
        line = orjson.dumps(record, default=str, option=orjson.OPT_NON_STR_KEYS)
        logger.info(orjson.dumps({"event": "notification", **record}, default=str,
                                 option=orjson.OPT_NON_STR_KEYS).decode("utf-8"))
        self._append(line + b"\n")
        if self.smtp.get("host"):
            self._email(note)
        return note

    def _append(self, line: bytes) -> None:
        created = not self.outbox_dir.exists()
        self.outbox_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                size = os.fstat(fd).st_size
                if size and os.pread(fd, 1, size - 1) != b"\n":
                    line = b"\n" + line  # a writer crashed mid-line: keep ours intact
                view = memoryview(line)
                while view:
                    view = view[os.write(fd, view):]
                os.fsync(fd)
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)
        if created:
            dfd = os.open(self.outbox_dir, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)

    def sent(self, limit: int = 100) -> list[Notification]:
        """The last ``limit`` notifications of the outbox, newest first."""
        if limit <= 0:
            return []
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return []
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)
            lines = _tail_lines(fd, limit)
        finally:
            os.close(fd)  # releases the lock
        found: list[Notification] = []
        for raw in reversed(lines):
            with contextlib.suppress(orjson.JSONDecodeError, TypeError, AttributeError):
                rec = orjson.loads(raw)
                found.append(
                    Notification(
                        subject=str(rec["subject"]),
                        message=str(rec["message"]),
                        attributes=dict(rec.get("attributes") or {}),
                        sent_at=str(rec.get("sent_at", "")),
                        message_id=str(rec.get("message_id", "")),
                    )
                )
        return found[:limit]

    def _email(self, note: Notification) -> None:
        cfg = self.smtp
        host = str(cfg["host"])
        port = int(cfg.get("port") or 587)
        user = str(cfg.get("user") or "")
        recipients = [r.strip() for r in str(cfg.get("to") or "").split(",") if r.strip()]
        sender = str(cfg.get("from") or user or f"lakeline@{socket.gethostname()}")
        if not recipients:
            logger.warning("notification %s not e-mailed: no SMTP recipient (to) configured",
                           note.message_id)
            return
        mail = EmailMessage()
        mail["Subject"] = note.subject
        mail["From"] = sender
        mail["To"] = ", ".join(recipients)
        mail["Message-ID"] = f"<{note.message_id}@lakeline>"
        body = note.message
        if note.attributes:
            body += "\n\n" + orjson.dumps(note.attributes, default=str,
                                          option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS
                                          ).decode("utf-8")
        mail.set_content(body)
        password = os.environ.get(envvars.SMTP_PASSWORD, "")
        try:
            context = ssl.create_default_context()
            client: smtplib.SMTP
            if port == 465:
                client = smtplib.SMTP_SSL(host, port, timeout=SMTP_TIMEOUT_SECONDS, context=context)
            else:
                client = smtplib.SMTP(host, port, timeout=SMTP_TIMEOUT_SECONDS)
            with client:
                client.ehlo()
                if port != 465 and client.has_extn("starttls"):
                    client.starttls(context=context)
                    client.ehlo()
                if user:
                    client.login(user, password)
                client.send_message(mail)
        except (OSError, smtplib.SMTPException) as exc:
            logger.warning("notification %s not e-mailed via %s:%d: %s: %s", note.message_id,
                           host, port, type(exc).__name__, exc)


def _tail_lines(fd: int, count: int) -> list[bytes]:
    """The last ``count`` non-empty lines of the file, oldest first, reading backwards."""
    end = os.fstat(fd).st_size
    data = b""
    pos = end
    while pos > 0 and data.count(b"\n") <= count:
        step = min(_TAIL_BLOCK, pos)
        pos -= step
        data = os.pread(fd, step, pos) + data
    lines = [ln for ln in data.split(b"\n") if ln.strip()]
    if pos > 0:
        lines = lines[1:]  # the first one may be a partial line
    return lines[-count:]
