"""Local state store: items with compare-and-swap and TTL in SQLite (WAL, ``synchronous=FULL``).

One table holds every logical table (idempotency, runs, events, ...)::

    items(tbl, key, data JSON, version, expires_at NULL, updated_at)  PRIMARY KEY (tbl, key)

Conditional writes run in ``BEGIN IMMEDIATE`` transactions, so the read of the current row
and the write are atomic across threads and processes. An item whose ``expires_at`` has passed
is absent for every read and every condition even before :meth:`SqliteStateStore.purge_expired`
removes it; rewriting an absent (or expired) item starts again at version 1.
"""

from __future__ import annotations

import itertools
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import orjson

from lakeline.adapters.local.sqlite import Database
from lakeline.errors import ConditionFailed
from lakeline.ports.state import Item, StateStore

#: DDL of the state store; pass it (alone or with others) to :class:`Database`.
SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    tbl TEXT NOT NULL,
    key TEXT NOT NULL,
    data TEXT NOT NULL,
    version INTEGER NOT NULL,
    expires_at REAL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (tbl, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS items_expires_at ON items (expires_at) WHERE expires_at IS NOT NULL;
"""

_COLUMNS = "key, data, version, expires_at, updated_at"


def prefix_upper_bound(prefix: str) -> str | None:
    """The smallest string greater than every string starting with ``prefix`` (code-point
    order, which is SQLite's BINARY order for UTF-8), or None when there is none."""
    chars = list(prefix)
    while chars:
        last = ord(chars.pop())
        if last < 0x10FFFF:
            nxt = last + 1
            if 0xD800 <= nxt <= 0xDFFF:  # surrogates cannot be stored in UTF-8
                nxt = 0xE000
            return "".join(chars) + chr(nxt)
    return None


def prefix_clause(column: str, prefix: str) -> tuple[str, list[Any]]:
    """An index-friendly SQL condition (and its parameters) for ``column`` LIKE ``prefix%``."""
    if not prefix:
        return "1", []
    upper = prefix_upper_bound(prefix)
    if upper is None:
        return f"{column} >= ?", [prefix]
    return f"{column} >= ? AND {column} < ?", [prefix, upper]


class SqliteStateStore(StateStore):
    """:class:`StateStore` on a shared SQLite :class:`Database`; ``clock`` gives epoch seconds
    and decides expiry (inject a fake clock in tests)."""

    def __init__(self, db: Database, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.clock = clock
        self._ready = False
        self._ready_lock = threading.Lock()

    def _conn(self) -> sqlite3.Connection:
        conn = self.db.connection()
        if not self._ready:
            with self._ready_lock:
                if not self._ready:
                    with self.db.transaction() as tx:
                        for statement in SCHEMA.split(";"):
                            if statement.strip():
                                tx.execute(statement)
                    self._ready = True
        return conn

    @staticmethod
    def _item(table: str, row: tuple[Any, ...]) -> Item:
        key, data, version, expires_at, updated_at = row
        return Item(table, key, orjson.loads(data), int(version), expires_at, float(updated_at))

    @staticmethod
    def _live(expires_at: float | None, now: float) -> bool:
        return expires_at is None or expires_at > now

    # ---- primitives ---------------------------------------------------------------------
    def get(self, table: str, key: str) -> Item | None:
        """The item, or None if absent or expired."""
        row = self._conn().execute(
            f"SELECT {_COLUMNS} FROM items WHERE tbl = ? AND key = ?"
            " AND (expires_at IS NULL OR expires_at > ?)",
            (table, key, self.clock()),
        ).fetchone()
        return None if row is None else self._item(table, row)

    def put(
        self,
        table: str,
        key: str,
        data: dict[str, Any],
        *,
        expires_at: float | None = None,
        if_absent: bool = False,
        expected_version: int | None = None,
    ) -> Item:
        """Write an item (see :meth:`StateStore.put`); raises :class:`ConditionFailed`."""
        body = orjson.dumps(data).decode("utf-8")
        self._conn()
        with self.db.transaction() as tx:
            now = self.clock()
            row = tx.execute(
                "SELECT version, expires_at FROM items WHERE tbl = ? AND key = ?", (table, key)
            ).fetchone()
            live = row is not None and self._live(row[1], now)
            if if_absent and live:
                raise ConditionFailed(f"{table}/{key} already exists")
            if expected_version is not None:
                if not live:
                    raise ConditionFailed(
                        f"{table}/{key} is absent; expected version {expected_version}"
                    )
                if row[0] != expected_version:
                    raise ConditionFailed(
                        f"{table}/{key} is at version {row[0]}; expected {expected_version}"
                    )
            version = int(row[0]) + 1 if live else 1
            tx.execute(
                "INSERT INTO items (tbl, key, data, version, expires_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (tbl, key) DO UPDATE SET"
                " data = excluded.data, version = excluded.version,"
                " expires_at = excluded.expires_at, updated_at = excluded.updated_at",
                (table, key, body, version, expires_at, now),
            )
        return Item(table, key, orjson.loads(body), version, expires_at, now)

    def put_many(self, table: str, items: Iterable[tuple[str, str]]) -> int:
        """Bulk replace (see :meth:`StateStore.put_many`): one transaction, ``executemany``
        over slices of 10,000 items."""
        self._conn()
        now = self.clock()
        n = 0
        rows = ((table, key, body, now) for key, body in items)
        with self.db.transaction() as tx:
            while True:
                batch = list(itertools.islice(rows, 10_000))
                if not batch:
                    break
                tx.executemany(
                    "INSERT OR REPLACE INTO items (tbl, key, data, version, expires_at, updated_at)"
                    " VALUES (?, ?, ?, 1, NULL, ?)", batch)
                n += len(batch)
        return n

    def delete(self, table: str, key: str, *, expected_version: int | None = None) -> None:
        """Delete an item (absent is fine unless ``expected_version`` is given)."""
        self._conn()
        with self.db.transaction() as tx:
            if expected_version is not None:
                row = tx.execute(
                    "SELECT version, expires_at FROM items WHERE tbl = ? AND key = ?",
                    (table, key),
                ).fetchone()
                if row is None or not self._live(row[1], self.clock()):
                    raise ConditionFailed(
                        f"{table}/{key} is absent; expected version {expected_version}"
                    )
                if row[0] != expected_version:
                    raise ConditionFailed(
                        f"{table}/{key} is at version {row[0]}; expected {expected_version}"
                    )
            tx.execute("DELETE FROM items WHERE tbl = ? AND key = ?", (table, key))

    def query(
        self, table: str, prefix: str = "", *, limit: int | None = None, reverse: bool = False,
        after: str | None = None,
    ) -> list[Item]:
        """Unexpired items of ``table`` whose key starts with ``prefix`` (and sorts after
        ``after``), in key order (descending with ``reverse``), at most ``limit`` of them."""
        where, params = prefix_clause("key", prefix)
        if after is not None:
            where += " AND key > ?"  # BINARY collation: UTF-8 byte order = code point order
            params.append(after)
        sql = (
            f"SELECT {_COLUMNS} FROM items WHERE tbl = ? AND {where}"
            " AND (expires_at IS NULL OR expires_at > ?)"
            f" ORDER BY key {'DESC' if reverse else 'ASC'}"
        )
        args: list[Any] = [table, *params, self.clock()]
        if limit is not None:
            sql += " LIMIT ?"
            args.append(max(0, int(limit)))
        rows = self._conn().execute(sql, args).fetchall()
        return [self._item(table, row) for row in rows]

    # ---- housekeeping -------------------------------------------------------------------
    def purge_expired(self) -> int:
        """Delete every expired item; returns how many were deleted."""
        self._conn()
        with self.db.transaction() as tx:
            cur = tx.execute(
                "DELETE FROM items WHERE expires_at IS NOT NULL AND expires_at <= ?",
                (self.clock(),),
            )
            return int(cur.rowcount)

    def close(self) -> None:
        """Close this thread's database connection."""
        self.db.close()
