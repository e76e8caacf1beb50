"""Local lineage ledger: one SQLite table in its own file ``state/lineage.db`` (WAL).

::

    lineage(root_id, node_id, parent_id, action_taken, storage_location, recorded_at, attrs)
      PRIMARY KEY (root_id, node_id)          a root's tree; re-recording a node replaces it
      INDEX (node_id)                         get / trace by node id
      INDEX (action_taken, root_id)           by_action
      INDEX (root_id, parent_id)              children, child_counts (node_id order for free)
      INDEX (recorded_at) WHERE parent_id = root_id    roots: first nodes only

The table is ``WITHOUT ROWID``: rows live in the primary-key B-tree and every index ends
with ``(root_id, node_id)``, so children and by_action come back in node order without a sort.
Its own file keeps the bulk writes of :meth:`SqliteLedger.record_many` (one transaction per
call) from holding the write lock of the queues or the state store.
"""

from __future__ import annotations

import sqlite3
from itertools import repeat
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa

from lakeline.adapters.local.sqlite import Database
from lakeline.ports.lineage import Ledger, check_node_table, root_summary
from lakeline.ports.lineage_model import Node, check_action, check_id, now_iso

#: DDL of the ledger; :class:`SqliteLedger` opens its database with it.
SCHEMA = """
CREATE TABLE IF NOT EXISTS lineage (
    root_id TEXT NOT NULL,
    node_id TEXT NOT NULL,
    parent_id TEXT NOT NULL,
    action_taken TEXT NOT NULL,
    storage_location TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    attrs TEXT,
    PRIMARY KEY (root_id, node_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS lineage_node ON lineage (node_id);
CREATE INDEX IF NOT EXISTS lineage_action ON lineage (action_taken, root_id);
CREATE INDEX IF NOT EXISTS lineage_parent ON lineage (root_id, parent_id);
CREATE INDEX IF NOT EXISTS lineage_first ON lineage (recorded_at) WHERE parent_id = root_id;
"""

_COLUMNS = "root_id, node_id, parent_id, action_taken, storage_location, recorded_at, attrs"
_UPSERT = (
    f"INSERT INTO lineage ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (root_id, node_id) DO UPDATE SET parent_id = excluded.parent_id, "
    "action_taken = excluded.action_taken, storage_location = excluded.storage_location, "
    "recorded_at = excluded.recorded_at, attrs = excluded.attrs"
)
#: Bytes the WAL is truncated to after a checkpoint.
WAL_LIMIT = 64 * 1024 * 1024
#: Rows per executemany: bounds the Python objects alive at once during a bulk write.
BULK_ROWS = 65_536


def _node(row: tuple[Any, ...]) -> Node:
    root_id, node_id, parent_id, action, location, recorded_at, attrs = row
    return Node(root_id, node_id, parent_id, action, location, recorded_at,
                orjson.loads(attrs) if attrs else {})


def _limit(sql: str, args: list[Any], limit: int | None) -> str:
    if limit is None:
        return sql
    args.append(max(0, int(limit)))
    return sql + " LIMIT ?"


class SqliteLedger(Ledger):
    """:class:`Ledger` in the SQLite file ``path`` (created on first use)."""

    def __init__(self, path: Path) -> None:
        self.db = Database(Path(path), SCHEMA)

    def __repr__(self) -> str:
        return f"SqliteLedger({str(self.db.path)!r})"

    def _rows(self, sql: str, args: list[Any] | tuple[Any, ...]) -> list[tuple[Any, ...]]:
        conn: sqlite3.Connection = self.db.connection()
        return conn.execute(sql, args).fetchall()

    # ---- writing --------------------------------------------------------------------------
    def _put(self, node: Node) -> None:
        attrs = orjson.dumps(node.attrs).decode() if node.attrs else None
        with self.db.transaction() as tx:
            tx.execute(_UPSERT, (node.root_id, node.node_id, node.parent_id, node.action_taken,
                                 node.storage_location, node.recorded_at, attrs))

    def record_many(self, root_id: str, action_taken: str, nodes: pa.Table) -> int:
        """One transaction; ``executemany`` over Arrow batches of :data:`BULK_ROWS` rows."""
        table = check_node_table(root_id, action_taken, nodes)
        if table.num_rows == 0:
            return 0
        # Insert in key order: the primary key and two of the indexes then grow at their right
        # edge (dense pages, few page reads) instead of at random places. The sort is stable,
        # so a later row with the same node id still wins.
        import pyarrow.compute as pc

        table = table.take(pc.sort_indices(table, [("node_id", "ascending")]))
        at = now_iso()
        # A big transaction grows the WAL to the size of what it wrote; once checkpointed, give
        # the disk back instead of keeping a WAL as large as the database.
        self.db.connection().execute(f"PRAGMA journal_size_limit={WAL_LIMIT}")
        with self.db.transaction() as tx:
            for batch in table.to_batches(max_chunksize=BULK_ROWS):
                node_ids, parents, locations, attrs = (batch.column(i).to_pylist() for i in range(4))
                tx.executemany(_UPSERT, zip(repeat(root_id), node_ids, parents, repeat(action_taken),
                                            locations, repeat(at), attrs))
        return table.num_rows

    # ---- reading --------------------------------------------------------------------------
    def get(self, node_id: str, root_id: str | None = None) -> Node | None:
        """The node, or None (see :meth:`Ledger.get`)."""
        check_id("node_id", node_id)
        if root_id is not None:
            rows = self._rows(f"SELECT {_COLUMNS} FROM lineage WHERE root_id = ? AND node_id = ?",
                              (check_id("root_id", root_id), node_id))
        else:
            rows = self._rows(f"SELECT {_COLUMNS} FROM lineage WHERE node_id = ? "
                              "ORDER BY recorded_at DESC, root_id DESC LIMIT 1", (node_id,))
        return _node(rows[0]) if rows else None

    def tree(self, root_id: str) -> list[Node]:
        """Every node of the root, in (recorded_at, node_id) order."""
        rows = self._rows(f"SELECT {_COLUMNS} FROM lineage WHERE root_id = ? "
                          "ORDER BY recorded_at, node_id", (check_id("root_id", root_id),))
        return [_node(r) for r in rows]

    def children(self, root_id: str, parent_id: str, *, action_taken: str | None = None,
                 limit: int | None = None) -> list[Node]:
        """Children in node_id order (the ``(root_id, parent_id)`` index order)."""
        args: list[Any] = [check_id("root_id", root_id), check_id("parent_id", parent_id)]
        # INDEXED BY: without statistics SQLite may pick (action_taken, root_id) and sort a
        # million siblings to return five.
        sql = f"SELECT {_COLUMNS} FROM lineage INDEXED BY lineage_parent WHERE root_id = ? AND parent_id = ?"
        if action_taken is not None:
            sql += " AND action_taken = ?"
            args.append(check_action(action_taken))
        sql = _limit(sql + " ORDER BY node_id", args, limit)
        return [_node(r) for r in self._rows(sql, args)]

    def child_counts(self, root_id: str, parent_id: str) -> dict[str, int]:
        """action → children of ``parent_id`` (SQL GROUP BY on the parent index)."""
        rows = self._rows("SELECT action_taken, count(*) FROM lineage INDEXED BY lineage_parent "
                          "WHERE root_id = ? AND parent_id = ? "
                          "GROUP BY action_taken ORDER BY action_taken",
                          (check_id("root_id", root_id), check_id("parent_id", parent_id)))
        return {str(a): int(n) for a, n in rows}

    def by_action(self, action_taken: str, root_id: str | None = None,
                  limit: int | None = None) -> list[Node]:
        """Nodes of one action in (root_id, node_id) order."""
        args: list[Any] = [check_action(action_taken)]
        sql = f"SELECT {_COLUMNS} FROM lineage WHERE action_taken = ?"
        if root_id is not None:
            sql += " AND root_id = ?"
            args.append(check_id("root_id", root_id))
        sql = _limit(sql + " ORDER BY root_id, node_id", args, limit)
        return [_node(r) for r in self._rows(sql, args)]

    def counts(self, root_id: str) -> dict[str, int]:
        """action → nodes of the root (SQL GROUP BY)."""
        rows = self._rows("SELECT action_taken, count(*) FROM lineage WHERE root_id = ? "
                          "GROUP BY action_taken ORDER BY action_taken", (check_id("root_id", root_id),))
        return {str(a): int(n) for a, n in rows}

    def roots(self, limit: int = 20) -> list[dict[str, Any]]:
        """Recent roots (by their earliest first node), newest first."""
        firsts = self._rows(
            f"SELECT {_COLUMNS} FROM (SELECT {_COLUMNS}, row_number() OVER "
            "(PARTITION BY root_id ORDER BY recorded_at, node_id) AS n FROM lineage "
            "WHERE parent_id = root_id) WHERE n = 1 ORDER BY recorded_at DESC, root_id DESC LIMIT ?",
            (max(0, int(limit)),))
        return [root_summary(first, self.counts(first.root_id)) for first in map(_node, firsts)]

    def close(self) -> None:
        """Close this thread's connection."""
        self.db.close()
