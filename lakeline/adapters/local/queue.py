"""Local queue: durable SQS-style queues in one SQLite file (WAL, ``synchronous=FULL``).

Every named queue of a lake lives in one table, keyed by queue name::

    queue_messages(seq, queue, message_id, body, sent_at, visible_at, receive_count,
                   receipt_handle NULL, first_received_at NULL, dead_letter_source NULL,
                   dead_letter_reason NULL)

A message is *visible* when ``visible_at <= now``; otherwise it is *in flight* if it has a
receipt handle (it was received) and *delayed* if not. Every mutation runs in a ``BEGIN
IMMEDIATE`` transaction, so receiving is atomic across threads and worker processes: two
workers never get the same message inside its visibility timeout. SQLite's lock is not fair:
processes that receive and delete in a tight loop can starve another for a few hundred ms;
workers that do real work between receives share a queue evenly.

Redrive policy: a visible message already received ``max_receive_count`` times is moved to
the DLQ (same id and body, receive count 0) by the next receive instead of being returned.
:meth:`SqliteQueue.dead_letter` makes the same move at once for one received message, in one
transaction, and records its reason in ``dead_letter_reason``. A database made before that
column existed gets it on first use (:func:`upgrade`).
Retention: a message older than ``retention_seconds`` (since it was sent; a move to the DLQ
keeps that time, as SQS does) is dropped, lazily by :meth:`SqliteQueue.receive` and
:meth:`SqliteQueue.counts`, and is never returned. A redrive back to the source queue restarts
the message's retention clock.
"""

from __future__ import annotations

import re
import sqlite3
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lakeline.adapters.local.sqlite import Database
from lakeline.config import QueueSettings
from lakeline.errors import NotFoundError, UsageError
from lakeline.ports.queue import (
    DEAD_LETTER_REASON,
    MAX_BATCH,
    Message,
    Queue,
    QueueCounts,
    body_size,
    check_batch,
    check_range,
    dead_letter_reason,
)

#: DDL of the local queues; idempotent, because every queue of a lake shares one file.
SCHEMA = """
CREATE TABLE IF NOT EXISTS queue_messages (
    seq INTEGER PRIMARY KEY,
    queue TEXT NOT NULL,
    message_id TEXT NOT NULL UNIQUE,
    body TEXT NOT NULL,
    sent_at REAL NOT NULL,
    visible_at REAL NOT NULL,
    receive_count INTEGER NOT NULL DEFAULT 0,
    receipt_handle TEXT UNIQUE,
    first_received_at REAL,
    dead_letter_source TEXT,
    dead_letter_reason TEXT
);
CREATE INDEX IF NOT EXISTS queue_messages_visible ON queue_messages (queue, visible_at);
CREATE INDEX IF NOT EXISTS queue_messages_sent ON queue_messages (queue, sent_at);
"""

MAX_DELAY_SECONDS = 900
MAX_VISIBILITY_TIMEOUT = 43_200
MAX_WAIT_SECONDS = 20
#: Retention of the DLQs made by :func:`open_queue_pair`: the SQS maximum, 14 days.
DLQ_RETENTION_SECONDS = 14 * 24 * 3600
#: How often a long poll looks for a visible message.
POLL_INTERVAL = 0.05

_NAME = re.compile(r"[A-Za-z0-9_-]{1,80}")
_COLUMNS = ("message_id, body, sent_at, receive_count, first_received_at, dead_letter_source,"
            " dead_letter_reason")
#: Databases :func:`upgrade` has already checked, in this process.
_upgraded: weakref.WeakSet[Database] = weakref.WeakSet()
_upgrade_lock = threading.Lock()


def upgrade(db: Database) -> None:
    """Add ``dead_letter_reason`` to a queue database made before it existed.

    ``SCHEMA`` only creates missing tables, and SQLite has no ``ADD COLUMN IF NOT EXISTS``:
    the column is added here, once per database object, under the write lock (several
    processes may open an old file at once). A cheap read decides first, so a current
    database costs no write lock.
    """
    if db in _upgraded:
        return
    with _upgrade_lock:
        if db in _upgraded:
            return
        if "dead_letter_reason" not in _columns(db.connection()):
            with db.transaction() as conn:
                if "dead_letter_reason" not in _columns(conn):  # another process may have won
                    conn.execute("ALTER TABLE queue_messages ADD COLUMN dead_letter_reason TEXT")
        _upgraded.add(db)


def _columns(conn: sqlite3.Connection) -> set[str]:
    return {str(row[1]) for row in conn.execute("PRAGMA table_info(queue_messages)")}


class SqliteQueue(Queue):
    """A durable queue with SQS semantics, stored in a shared SQLite :class:`Database`.

    ``dlq`` (which must live in the same database file) receives poison messages;
    ``source_name`` marks this queue as the DLQ of that queue, which enables :meth:`redrive`.
    ``clock`` returns epoch seconds (``time.time`` by default); tests inject a fake one. Long
    polls always wait in real time. The constructor touches neither the file nor the schema.
    """

    db: Database
    dlq: SqliteQueue | None

    def __init__(
        self,
        db: Database,
        name: str,
        *,
        visibility_timeout: int = 180,
        retention_seconds: int = 345_600,
        max_receive_count: int = 5,
        dlq: SqliteQueue | None = None,
        source_name: str | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        if not _NAME.fullmatch(name):
            raise UsageError(f"queue name {name!r} must be 1-80 letters, digits, '-' or '_'")
        check_range("visibility_timeout", visibility_timeout, 0, MAX_VISIBILITY_TIMEOUT)
        if retention_seconds < 1:
            raise UsageError(f"retention_seconds must be >= 1, got {retention_seconds}")
        if max_receive_count < 1:
            raise UsageError(f"max_receive_count must be >= 1, got {max_receive_count}")
        if dlq is not None and dlq.db.path.absolute() != db.path.absolute():
            raise UsageError(f"the DLQ of {name!r} must live in the same database ({db.path})")
        self.db = db
        self.name = name
        self.visibility_timeout = visibility_timeout
        self.retention_seconds = retention_seconds
        self.max_receive_count = max_receive_count
        self.dlq = dlq
        self.source_name = source_name
        self._clock = clock or time.time

    def __repr__(self) -> str:
        return f"SqliteQueue({self.name!r}, db={str(self.db.path)!r})"

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction on an up-to-date schema."""
        upgrade(self.db)
        with self.db.transaction() as conn:
            yield conn

    def _reader(self) -> sqlite3.Connection:
        """This thread's connection, for reads outside a transaction, on an up-to-date schema."""
        upgrade(self.db)
        return self.db.connection()

    # -- sending ----------------------------------------------------------------------------

    def send(self, body: str, *, delay_seconds: int = 0) -> str:
        """Send one message (visible after ``delay_seconds``, 0..900); returns its id."""
        check_range("delay_seconds", delay_seconds, 0, MAX_DELAY_SECONDS)
        body_size(body)
        return self._insert([body], delay_seconds)[0]

    def send_batch(self, bodies: Sequence[str]) -> list[str]:
        """Send 1..10 messages in one transaction; returns their ids in order."""
        check_batch(bodies)
        return self._insert(list(bodies), 0)

    def _insert(self, bodies: list[str], delay_seconds: int) -> list[str]:
        now = self._clock()
        ids = [str(uuid.uuid4()) for _ in bodies]
        visible_at = now + delay_seconds
        rows = [(self.name, mid, body, now, visible_at) for mid, body in zip(ids, bodies, strict=True)]
        with self._transaction() as conn:
            conn.executemany(
                "INSERT INTO queue_messages (queue, message_id, body, sent_at, visible_at)"
                " VALUES (?, ?, ?, ?, ?)",
                rows,
            )
        return ids

    # -- receiving --------------------------------------------------------------------------

    def receive(
        self,
        max_messages: int = 1,
        *,
        visibility_timeout: int | None = None,
        wait_seconds: float = 0,
    ) -> list[Message]:
        """Receive up to ``max_messages`` (1..10) visible messages, oldest first.

        Each becomes invisible for ``visibility_timeout`` (default: the queue's) and gets a new
        receipt handle. With ``wait_seconds`` (0..20) wait until a message is visible or the
        time is up (a long poll). Poison messages are moved to the DLQ, never returned.
        """
        check_range("max_messages", max_messages, 1, MAX_BATCH)
        check_range("wait_seconds", wait_seconds, 0, MAX_WAIT_SECONDS)
        timeout = self.visibility_timeout if visibility_timeout is None else visibility_timeout
        check_range("visibility_timeout", timeout, 0, MAX_VISIBILITY_TIMEOUT)
        deadline = time.monotonic() + wait_seconds
        while True:
            messages = self._receive_once(max_messages, timeout)
            remaining = deadline - time.monotonic()
            if messages or remaining <= 0:
                return messages
            time.sleep(min(POLL_INTERVAL, remaining))

    def _receive_once(self, max_messages: int, timeout: int) -> list[Message]:
        # A cheap read first, so idle pollers do not queue up for the write lock.
        probe = self._reader().execute(
            "SELECT 1 FROM queue_messages WHERE queue = ? AND visible_at <= ? LIMIT 1",
            (self.name, self._clock()),
        ).fetchone()
        if probe is None:
            return []
        with self._transaction() as conn:
            now = self._clock()  # read under the write lock: waiting for it takes time
            self._expire(conn, now)
            if self.dlq is not None:
                conn.execute(
                    "UPDATE queue_messages SET queue = ?, receive_count = 0, receipt_handle = NULL,"
                    " first_received_at = NULL, visible_at = ?, dead_letter_source = ?,"
                    " dead_letter_reason = NULL"
                    " WHERE queue = ? AND visible_at <= ? AND receive_count >= ?",
                    (self.dlq.name, now, self.name, self.name, now, self.max_receive_count),
                )
            rows = conn.execute(
                f"SELECT seq, {_COLUMNS} FROM queue_messages"
                " WHERE queue = ? AND visible_at <= ? ORDER BY seq LIMIT ?",
                (self.name, now, max_messages),
            ).fetchall()
            messages: list[Message] = []
            updates: list[tuple[Any, ...]] = []
            for seq, message_id, body, sent_at, count, first, source, reason in rows:
                handle = str(uuid.uuid4())
                first = now if first is None else first
                updates.append((now + timeout, count + 1, handle, first, seq))
                fields = [message_id, body, sent_at, count + 1, first, source, reason]
                messages.append(self._message(fields, handle))
            conn.executemany(
                "UPDATE queue_messages SET visible_at = ?, receive_count = ?, receipt_handle = ?,"
                " first_received_at = ? WHERE seq = ?",
                updates,
            )
        return messages

    # -- received messages ------------------------------------------------------------------

    def delete(self, receipt_handle: str) -> None:
        """Delete the message whose current receipt handle this is; others are ignored."""
        with self._transaction() as conn:
            conn.execute(
                "DELETE FROM queue_messages WHERE queue = ? AND receipt_handle = ?",
                (self.name, receipt_handle),
            )

    def dead_letter(self, message: Message, reason: str) -> None:
        """Move a received message to the DLQ now, in one transaction (see :meth:`Queue.dead_letter`).

        The row itself moves, exactly as the redrive policy moves it (same id, body and sent
        time, receive count 0, ``DeadLetterSourceQueue`` set), and keeps ``reason``. A receipt
        handle that is not current is ignored (as by :meth:`delete`), and so is a message past
        its retention (it is dropped, as :meth:`receive` would drop it).
        """
        if self.dlq is None:
            raise UsageError(f"queue {self.name!r} has no dead-letter queue")
        text = dead_letter_reason(reason)
        with self._transaction() as conn:
            now = self._clock()
            self._expire(conn, now)
            conn.execute(
                "UPDATE queue_messages SET queue = ?, receive_count = 0, receipt_handle = NULL,"
                " first_received_at = NULL, visible_at = ?, dead_letter_source = ?,"
                " dead_letter_reason = ? WHERE queue = ? AND receipt_handle = ?",
                (self.dlq.name, now, self.name, text, self.name, message.receipt_handle),
            )

    def defer(self, message: Message, delay_seconds: int) -> None:
        """Put a received message back, visible after ``delay_seconds`` (0..900), with this
        receive undone (see :meth:`Queue.defer`). The row drops its receipt handle, so it
        counts as *delayed*, not in flight; it keeps ``first_received_at``, which tells a
        deferred message from one sent with a delay (:meth:`release_deferred`). A handle that
        is not current is ignored."""
        check_range("delay_seconds", delay_seconds, 0, MAX_DELAY_SECONDS)
        with self._transaction() as conn:
            now = self._clock()
            conn.execute(
                "UPDATE queue_messages SET visible_at = ?, receipt_handle = NULL,"
                " receive_count = MAX(receive_count - 1, 0)"
                " WHERE queue = ? AND receipt_handle = ?",
                (now + delay_seconds, self.name, message.receipt_handle),
            )

    def change_visibility(self, receipt_handle: str, timeout: int) -> None:
        """Make an in-flight message visible ``timeout`` (0..43200) seconds from now.

        Raises :class:`NotFoundError` unless the handle is current and the message in flight.
        """
        check_range("timeout", timeout, 0, MAX_VISIBILITY_TIMEOUT)
        with self._transaction() as conn:
            now = self._clock()
            cursor = conn.execute(
                "UPDATE queue_messages SET visible_at = ?"
                " WHERE queue = ? AND receipt_handle = ? AND visible_at > ? AND sent_at >= ?",
                (now + timeout, self.name, receipt_handle, now, now - self.retention_seconds),
            )
            if cursor.rowcount == 0:
                raise NotFoundError(
                    f"queue {self.name!r}: receipt handle {receipt_handle!r} is not the current"
                    " handle of an in-flight message"
                )

    # -- inspection and administration ------------------------------------------------------

    def counts(self) -> QueueCounts:
        """Visible, in-flight and delayed counts (expired messages are dropped first)."""
        with self._transaction() as conn:
            now = self._clock()
            self._expire(conn, now)
            row = conn.execute(
                "SELECT COALESCE(SUM(visible_at <= ?1), 0),"
                " COALESCE(SUM(visible_at > ?1 AND receipt_handle IS NOT NULL), 0),"
                " COALESCE(SUM(visible_at > ?1 AND receipt_handle IS NULL), 0)"
                " FROM queue_messages WHERE queue = ?2",
                (now, self.name),
            ).fetchone()
        return QueueCounts(visible=int(row[0]), in_flight=int(row[1]), delayed=int(row[2]))

    def purge(self) -> int:
        """Delete every message of this queue, in flight or not; returns how many."""
        with self._transaction() as conn:
            cursor = conn.execute("DELETE FROM queue_messages WHERE queue = ?", (self.name,))
            return cursor.rowcount

    def peek(self, limit: int = 10) -> list[Message]:
        """Up to ``limit`` unexpired messages, oldest first, without changing anything.

        The messages carry an empty ``receipt_handle``.
        """
        if limit < 0:
            raise UsageError(f"limit must be >= 0, got {limit}")
        now = self._clock()
        rows = self._reader().execute(
            f"SELECT {_COLUMNS} FROM queue_messages WHERE queue = ? AND sent_at >= ?"
            " ORDER BY seq LIMIT ?",
            (self.name, now - self.retention_seconds, limit),
        ).fetchall()
        return [self._message(list(row), "") for row in rows]

    def release_in_flight(self) -> int:
        """Make every in-flight message visible now and undo its receive; returns how many.

        Local recovery only, and only safe when no worker is alive: the runner calls it while
        holding the lake's exclusive runner lock, so whatever is in flight belonged to a
        killed worker. Its receives did not fail — the worker died, often before it even
        started on most of its batch — so they do not count towards ``max_receive_count``
        (otherwise a few kills would dead-letter innocent messages).
        """
        with self._transaction() as conn:
            now = self._clock()
            cursor = conn.execute(
                "UPDATE queue_messages SET visible_at = ?, receipt_handle = NULL,"
                " receive_count = MAX(receive_count - 1, 0)"
                " WHERE queue = ? AND visible_at > ? AND receipt_handle IS NOT NULL",
                (now, self.name, now),
            )
            return cursor.rowcount

    def release_deferred(self) -> int:
        """Make every deferred message (:meth:`defer`) visible now; returns how many.

        Local recovery: a new ``lakeline run`` is the operator saying "try again" after a
        transient fault, so it does not wait out the backoff. The receive counts stay as they
        are (:meth:`defer` already undid the receive). A message sent with a delay was never
        received (no ``first_received_at``) and keeps its delay.
        """
        with self._transaction() as conn:
            now = self._clock()
            cursor = conn.execute(
                "UPDATE queue_messages SET visible_at = ?"
                " WHERE queue = ? AND visible_at > ? AND receipt_handle IS NULL"
                " AND first_received_at IS NOT NULL",
                (now, self.name, now),
            )
            return cursor.rowcount

    def redrive(self, max_messages: int | None = None) -> int:
        """On a DLQ: move up to ``max_messages`` (default all) visible messages back to the
        queue they came from, visible at once with receive count 0; returns how many."""
        if self.source_name is None:
            raise UsageError(
                f"queue {self.name!r} is not a dead-letter queue; only a DLQ can be redriven"
            )
        if max_messages is not None and max_messages < 1:
            raise UsageError(f"max_messages must be >= 1 or None, got {max_messages}")
        with self._transaction() as conn:
            now = self._clock()
            self._expire(conn, now)
            cursor = conn.execute(
                "UPDATE queue_messages SET queue = COALESCE(dead_letter_source, ?),"
                " receive_count = 0, receipt_handle = NULL, first_received_at = NULL,"
                " visible_at = ?, sent_at = ?, dead_letter_source = NULL, dead_letter_reason = NULL"
                " WHERE seq IN (SELECT seq FROM queue_messages WHERE queue = ? AND visible_at <= ?"
                " ORDER BY seq LIMIT ?)",
                (self.source_name, now, now, self.name, now, max_messages or -1),
            )
            return cursor.rowcount

    # -- helpers ----------------------------------------------------------------------------

    def _expire(self, conn: sqlite3.Connection, now: float) -> None:
        conn.execute(
            "DELETE FROM queue_messages WHERE queue = ? AND sent_at < ?",
            (self.name, now - self.retention_seconds),
        )

    def _message(self, fields: list[Any], handle: str) -> Message:
        message_id, body, sent_at, receive_count, first_received_at, source, reason = fields
        attributes = {
            "SentTimestamp": str(int(sent_at * 1000)),
            "ApproximateReceiveCount": str(receive_count),
        }
        if first_received_at is not None:
            attributes["ApproximateFirstReceiveTimestamp"] = str(int(first_received_at * 1000))
        if source is not None:
            attributes["DeadLetterSourceQueue"] = source
        if reason is not None:
            attributes[DEAD_LETTER_REASON] = reason
        return Message(
            message_id=message_id,
            receipt_handle=handle,
            body=body,
            receive_count=receive_count,
            sent_at=datetime.fromtimestamp(sent_at, tz=UTC),
            attributes=attributes,
        )


def open_queue_pair(
    db_path: Path,
    name: str,
    settings: QueueSettings,
    *,
    clock: Callable[[], float] | None = None,
) -> SqliteQueue:
    """Queue ``name`` in the database at ``db_path``, with its DLQ ``<name>-dlq`` attached.

    The DLQ keeps messages for :data:`DLQ_RETENTION_SECONDS` (or the queue's retention, if
    longer) and has no DLQ of its own; its ``redrive()`` moves messages back to ``name``.
    """
    db = Database(db_path, SCHEMA)
    dlq = SqliteQueue(
        db,
        f"{name}-dlq",
        visibility_timeout=settings.visibility_timeout,
        retention_seconds=max(settings.retention_seconds, DLQ_RETENTION_SECONDS),
        max_receive_count=settings.max_receive_count,
        source_name=name,
        clock=clock,
    )
    return SqliteQueue(
        db,
        name,
        visibility_timeout=settings.visibility_timeout,
        retention_seconds=settings.retention_seconds,
        max_receive_count=settings.max_receive_count,
        dlq=dlq,
        clock=clock,
    )
