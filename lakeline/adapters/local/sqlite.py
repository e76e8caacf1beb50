"""Durable SQLite connections shared by the local adapters.

Every connection uses WAL with ``synchronous=FULL`` (a committed transaction survives
``kill -9`` and power loss) and a long busy timeout so several worker processes can share one
database. Connections are per thread: SQLite connections must not cross threads.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from lakeline.errors import TransientError

BUSY_TIMEOUT_MS = 60_000
#: SQLite's words for "this file (or its directory) cannot be written", with a plain reason
_UNWRITABLE = {
    "attempt to write a readonly database": "the database is read-only",
    "unable to open database file": "cannot open the database",
    "database or disk is full": "the disk is full",
    "disk i/o error": "a disk I/O error",
}


def unwritable(exc: sqlite3.OperationalError, path: Path) -> TransientError | None:
    """The clear error for a database that cannot be opened or written (a read-only or
    immutable file or directory, a full disk), naming the file; ``None`` for other errors.
    A :class:`TransientError`: once the file is writable again the same call succeeds."""
    text = str(exc).lower()
    for words, reason in _UNWRITABLE.items():
        if words in text:
            return TransientError(f"{path}: {reason} ({exc}); is the file or its directory read-only "
                                  "or immutable (chattr +i), or the disk full?", code="DATABASE_UNWRITABLE")
    return None


class Database:
    """A SQLite database file opened lazily, one connection per thread."""

    def __init__(self, path: Path, schema: str) -> None:
        self.path = Path(path)
        self._schema = schema
        self._local = threading.local()
        self._lock = threading.Lock()
        self._initialised = False

    def connection(self) -> sqlite3.Connection:
        """This thread's connection (created and configured on first use)."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = self._open()
            except sqlite3.OperationalError as exc:
                clear = unwritable(exc, self.path)
                if clear is None:
                    raise
                raise clear from exc
            self._local.conn = conn
        return conn

    def _open(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
            check_same_thread=False,
        )
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        _set_wal(conn)
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        with self._lock:
            if not self._initialised:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    for statement in _split(self._schema):
                        conn.execute(statement)
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                self._initialised = True
        return conn

    @contextmanager
    def transaction(self, immediate: bool = True) -> Iterator[sqlite3.Connection]:
        """A transaction; ``BEGIN IMMEDIATE`` takes the write lock up front (no upgrade
        deadlocks between processes)."""
        conn = self.connection()
        try:
            conn.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            clear = unwritable(exc, self.path)
            if clear is None:
                raise
            raise clear from exc

    def integrity_check(self) -> str:
        """``PRAGMA integrity_check`` result (``ok`` when healthy)."""
        row = self.connection().execute("PRAGMA integrity_check").fetchone()
        return str(row[0])

    def close(self) -> None:
        """Close this thread's connection."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


def _set_wal(conn: sqlite3.Connection) -> None:
    """Switch to WAL. On a brand-new file several processes may race here, and SQLite answers
    ``database is locked`` at once (the busy handler does not cover this pragma): retry."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    delay = 0.005
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.2)


def _split(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]
