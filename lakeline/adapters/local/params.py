"""Local parameter store with SSM Parameter Store semantics, in SQLite.

Names are hierarchical and absolute (``/lakeline/watermarks/shipments``). Every put bumps the
parameter's version (1, 2, ...); ``overwrite=False`` refuses to replace an existing name.
"""

from __future__ import annotations

import sqlite3
import threading
import time

from lakeline.adapters.local.sqlite import Database
from lakeline.adapters.local.state import prefix_clause
from lakeline.errors import ConditionFailed, UsageError
from lakeline.ports.params import ParameterStore

#: DDL of the parameter store; pass it (alone or with others) to :class:`Database`.
SCHEMA = """
CREATE TABLE IF NOT EXISTS params (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    version INTEGER NOT NULL,
    updated_at REAL NOT NULL
) WITHOUT ROWID;
"""


def validate_name(name: str) -> str:
    """Return ``name`` if it is a valid parameter name; raise :class:`UsageError` otherwise.

    A name starts with ``/``, has no empty segments, does not end with ``/`` and holds no NUL.
    """
    if not isinstance(name, str) or not name.startswith("/"):
        raise UsageError(f"parameter name {name!r} must start with '/'")
    if name == "/" or name.endswith("/") or "//" in name:
        raise UsageError(f"parameter name {name!r} has an empty path segment")
    if "\x00" in name:
        raise UsageError(f"parameter name {name!r} contains a NUL character")
    return name


class SqliteParameterStore(ParameterStore):
    """:class:`ParameterStore` on a shared SQLite :class:`Database`."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._ready = False
        self._ready_lock = threading.Lock()

    def _conn(self) -> sqlite3.Connection:
        conn = self.db.connection()
        if not self._ready:
            with self._ready_lock:
                if not self._ready:
                    with self.db.transaction() as tx:
                        tx.execute(SCHEMA)
                    self._ready = True
        return conn

    def get(self, name: str) -> str | None:
        """The value, or None if the parameter does not exist."""
        row = self._conn().execute(
            "SELECT value FROM params WHERE name = ?", (validate_name(name),)
        ).fetchone()
        return None if row is None else str(row[0])

    def get_version(self, name: str) -> int | None:
        """The parameter's current version, or None if it does not exist."""
        row = self._conn().execute(
            "SELECT version FROM params WHERE name = ?", (validate_name(name),)
        ).fetchone()
        return None if row is None else int(row[0])

    def put(self, name: str, value: str, *, overwrite: bool = True) -> int:
        """Store ``value``; returns the new version. Without ``overwrite`` an existing name
        raises :class:`ConditionFailed`."""
        validate_name(name)
        if not isinstance(value, str):
            raise UsageError(f"parameter {name}: value must be a string")
        self._conn()
        with self.db.transaction() as tx:
            row = tx.execute("SELECT version FROM params WHERE name = ?", (name,)).fetchone()
            if row is not None and not overwrite:
                raise ConditionFailed(f"parameter {name} already exists (version {row[0]})")
            version = 1 if row is None else int(row[0]) + 1
            tx.execute(
                "INSERT INTO params (name, value, version, updated_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (name) DO UPDATE SET value = excluded.value,"
                " version = excluded.version, updated_at = excluded.updated_at",
                (name, value, version, time.time()),
            )
        return version

    def get_by_path(self, path: str, *, recursive: bool = True) -> dict[str, str]:
        """Parameters under ``path`` by name: ``/a/b`` gives ``/a/b/x`` (and, recursively,
        ``/a/b/x/y``) but not ``/a/b`` itself nor ``/a/bc``."""
        if not isinstance(path, str) or not path.startswith("/"):
            raise UsageError(f"parameter path {path!r} must start with '/'")
        base = path.rstrip("/") + "/"
        where, params = prefix_clause("name", base)
        rows = self._conn().execute(
            f"SELECT name, value FROM params WHERE {where} ORDER BY name", params
        ).fetchall()
        found: dict[str, str] = {}
        for name, value in rows:
            if recursive or "/" not in name[len(base):]:
                found[str(name)] = str(value)
        return found

    def delete(self, name: str) -> None:
        """Delete a parameter (absent is fine)."""
        self._conn()
        with self.db.transaction() as tx:
            tx.execute("DELETE FROM params WHERE name = ?", (validate_name(name),))
