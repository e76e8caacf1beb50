"""Record-level lineage stored as data: Parquet files beside the batches, the ledger above them.

A pipeline that produces a million records per file does not write a million rows into the
ledger. Its records' nodes (root, node id, parent batch, action, location, failure reason,
source key and line) go to one Parquet file per batch in the object store, and the ledger
keeps the tree above them (file, gate, batches)::

    silver/_lineage/records/<root_id>/batch-<name>.parquet   one per batch, while the run goes
    silver/_lineage/records/<root_id>/records.parquet        one per root once it is sealed

Files are sorted by ``node_id`` and written in row groups of :data:`ROW_GROUP`, so a lookup by
node id reads one row group per file (Parquet min/max statistics prune the rest): a trace over
ten million records costs a file listing and a few row groups. :class:`RecordLedger` answers
the whole :class:`~lakeline.ports.lineage.Ledger` interface over both: ``get``/``trace`` look in
the ledger first, then in the files (through DuckDB, directly on local files and through an
Arrow dataset on S3); ``tree``, ``children``, ``child_counts``, ``by_action``, ``counts`` and
``roots`` add the records of the roots that have files. Writing a batch's file again replaces
it, and sealing is idempotent, so a retried step does not duplicate a record.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from lakeline.duck import duckdb_connection
from lakeline.errors import UsageError
from lakeline.ports.lineage import NODE_COLUMNS, Ledger, check_node_table, root_summary
from lakeline.ports.lineage_model import Node, check_action, check_id, now_iso
from lakeline.ports.objectstore import ObjectInfo, ObjectStore
from lakeline.sqltext import lit

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

#: Where record files live: zone and key prefix (``_`` keeps them out of the table listing).
ZONE = "silver"
PREFIX = "_lineage/records/"
SEALED = "records.parquet"
#: Rows per Parquet row group: the unit a lookup by node id reads.
ROW_GROUP = 65_536
#: Columns of a record file, in order.
RECORD_COLUMNS = ("root_id", "node_id", "parent_id", "action_taken", "storage_location", "recorded_at",
                  "attrs", "source_key", "line_no")
_NODE_SELECT = "root_id, node_id, parent_id, action_taken, storage_location, recorded_at, attrs"


def _node(row: tuple[Any, ...]) -> Node:
    root_id, node_id, parent_id, action, location, recorded_at, attrs = row
    return Node(root_id, node_id, parent_id, action, location, recorded_at,
                orjson.loads(attrs) if attrs else {})


class RecordLedger(Ledger):
    """The lake's ledger (``inner``: SQLite or DynamoDB) with record-level nodes in Parquet
    files of ``store`` (see the module docstring)."""

    def __init__(self, inner: Ledger, store: ObjectStore, work_dir: Path) -> None:
        self.inner = inner
        self.store = store
        self.work_dir = work_dir
        self._lock = threading.Lock()
        self._fanouts: dict[str, tuple[tuple[Any, ...], dict[str, dict[str, int]]]] = {}

    def __repr__(self) -> str:
        return f"RecordLedger({self.inner!r})"

    # ---- record files ---------------------------------------------------------------------
    def write_records(self, root_id: str, batch: str, nodes: pa.Table) -> int:
        """Write the record nodes of one batch of ``root_id`` as one Parquet file, replacing
        an earlier file of the same batch. ``nodes`` has the columns of a ``record_many``
        table plus ``action_taken`` (per row) and optionally ``source_key`` and ``line_no``.
        Returns the number of records written."""
        import pyarrow as pa  # heavy: pyarrow
        import pyarrow.compute as pc  # heavy: pyarrow
        import pyarrow.parquet as pq  # heavy: pyarrow

        check_id("root_id", root_id)
        name = check_id("batch", batch)
        if "/" in name or name in (".", "..") or name == SEALED.removesuffix(".parquet"):
            raise UsageError(f"lineage record batch name {batch!r} must be a plain file name")
        if "action_taken" not in nodes.column_names:
            raise UsageError("write_records needs an action_taken column")
        actions = nodes.column("action_taken").cast(pa.string())
        for action in pc.unique(actions).to_pylist():
            check_action(action)
        table = check_node_table(root_id, "RECORD", nodes.select(
            [c for c in NODE_COLUMNS if c in nodes.column_names]))
        n = table.num_rows
        key = f"{PREFIX}{root_id}/batch-{name}.parquet"
        if n == 0:
            self.store.delete(ZONE, key)
            return 0
        source = (nodes.column("source_key").cast(pa.string()) if "source_key" in nodes.column_names
                  else pa.nulls(n, pa.string()))
        lines = (nodes.column("line_no").cast(pa.int64()) if "line_no" in nodes.column_names
                 else pa.nulls(n, pa.int64()))
        at = now_iso()
        out = pa.table({
            "root_id": pa.repeat(pa.scalar(root_id, pa.string()), n),
            "node_id": table.column("node_id"), "parent_id": table.column("parent_id"),
            "action_taken": actions, "storage_location": table.column("storage_location"),
            "recorded_at": pa.repeat(pa.scalar(at, pa.string()), n), "attrs": table.column("attrs"),
            "source_key": source, "line_no": lines,
        })
        out = out.take(pc.sort_indices(out, [("node_id", "ascending")]))
        self.work_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix="lineage-", suffix=".parquet", dir=self.work_dir)
        os.close(fd)
        try:
            pq.write_table(out, tmp, compression="zstd", row_group_size=ROW_GROUP)
            self.store.put_file(ZONE, key, Path(tmp), move=True)
        finally:
            Path(tmp).unlink(missing_ok=True)
        return n

    def seal_records(self, root_id: str) -> int:
        """Merge the batch files of ``root_id`` into its one sealed file (sorted by node id; a
        node id recorded twice keeps its latest), then remove the batch files. Idempotent: a
        seal interrupted between the two steps is finished by the next one. Returns the number
        of records of the root."""
        import pyarrow.parquet as pq  # heavy: pyarrow

        check_id("root_id", root_id)
        keys = self._keys(root_id)
        batches = [k for k in keys if not k.endswith("/" + SEALED)]
        if not batches:
            return self._count(keys)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        out = Path(tempfile.mkdtemp(prefix="lineage-seal-", dir=self.work_dir))
        target = out / SEALED
        try:
            # keep_order: row groups must come out in node id order (what lookups prune by)
            con = duckdb_connection(memory_limit="256MB", spill_dir=out / "spill", keep_order=True)
            try:
                source = self._source(con, keys)
                found = con.execute(f"SELECT count(*) - count(DISTINCT node_id) FROM {source}").fetchone()
                # a node id twice (a repeated record, an interrupted seal): the latest wins
                latest = ("" if found is None or not found[0] else "QUALIFY row_number() OVER "
                          "(PARTITION BY node_id ORDER BY recorded_at DESC, line_no DESC) = 1")
                query = f"SELECT {', '.join(RECORD_COLUMNS)} FROM {source} {latest} ORDER BY node_id"
                con.execute(f"COPY ({query}) TO {lit(str(target))} "
                            f"(FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE {ROW_GROUP})")
            finally:
                con.close()
            rows = pq.read_metadata(target).num_rows
            self.store.put_file(ZONE, f"{PREFIX}{root_id}/{SEALED}", target, move=True)
        finally:
            shutil.rmtree(out, ignore_errors=True)
        for key in batches:
            self.store.delete(ZONE, key)
        return rows

    def _listed(self, root_id: str | None) -> list[ObjectInfo]:
        """The record files of ``root_id`` (of every root when None)."""
        prefix = PREFIX if root_id is None else f"{PREFIX}{root_id}/"
        return [i for i in self.store.list(ZONE, prefix) if i.key.endswith(".parquet")]

    def _keys(self, root_id: str | None) -> list[str]:
        return [i.key for i in self._listed(root_id)]

    def _source(self, con: duckdb.DuckDBPyConnection, keys: list[str]) -> str:
        """A FROM-clause source over record files (local paths read by DuckDB; S3 objects as an
        Arrow dataset registered with the connection)."""
        paths = [self.store.local_path(ZONE, k) for k in keys]
        if all(p is not None for p in paths):
            listed = ", ".join(lit(str(p)) for p in paths)
            return f"read_parquet([{listed}])"
        con.register("__lineage_records", self.store.parquet_dataset(ZONE, keys))
        return "__lineage_records"

    def _count(self, keys: list[str]) -> int:
        if not keys:
            return 0
        return int(self._query(keys, "SELECT count(*) FROM {src}", [])[0][0])

    def _query(self, keys: list[str], sql: str, args: list[Any]) -> list[tuple[Any, ...]]:
        """Run ``sql`` (``{src}`` names the files) over record files ``keys``. When a seal was
        interrupted, a root's batch files and its sealed file both exist: only the sealed one
        is read (it holds every batch)."""
        sealed_roots = {k.rsplit("/", 2)[-2] for k in keys if k.endswith("/" + SEALED)}
        keys = [k for k in keys if k.endswith("/" + SEALED) or k.rsplit("/", 2)[-2] not in sealed_roots]
        con = duckdb_connection(2)
        try:
            return con.execute(sql.format(src=self._source(con, keys)), args).fetchall()
        finally:
            con.close()

    def _records(self, root_id: str | None, where: str, args: list[Any], *, order: str = "node_id",
                 limit: int | None = None) -> list[Node]:
        keys = self._keys(root_id)
        if not keys:
            return []
        sql = f"SELECT {_NODE_SELECT} FROM {{src}} WHERE {where} ORDER BY {order}"
        if limit is not None:
            sql += f" LIMIT {max(0, int(limit))}"
        return [_node(r) for r in self._query(keys, sql, args)]

    def _fanout(self, root_id: str) -> dict[str, dict[str, int]]:
        """parent id → action → records of ``root_id``: one grouped scan of the root's files,
        kept while the files are unchanged (a `lineage show` asks for many parents' counts)."""
        listed = self._listed(root_id)
        if not listed:
            return {}
        mark = tuple((i.key, i.size, i.etag) for i in listed)
        with self._lock:
            cached = self._fanouts.get(root_id)
        if cached is not None and cached[0] == mark:
            return cached[1]
        rows = self._query([i.key for i in listed], "SELECT parent_id, action_taken, count(*) FROM {src} "
                                                    "GROUP BY ALL", [])
        fanout: dict[str, dict[str, int]] = {}
        for parent, action, n in rows:
            fanout.setdefault(str(parent), {})[str(action)] = int(n)
        with self._lock:
            self._fanouts[root_id] = (mark, fanout)
        return fanout

    def _grouped(self, root_id: str, parent_id: str | None = None) -> dict[str, int]:
        """action → records of ``root_id`` (children of ``parent_id`` if given)."""
        fanout = self._fanout(root_id)
        if parent_id is not None:
            return dict(fanout.get(parent_id, {}))
        out: dict[str, int] = {}
        for counts in fanout.values():
            out = _add(out, counts)
        return out

    # ---- the ledger interface -------------------------------------------------------------
    def _put(self, node: Node) -> None:
        self.inner._put(node)

    def record_many(self, root_id: str, action_taken: str, nodes: pa.Table) -> int:
        """Nodes above records (batches, files) go to the ledger's bulk path."""
        return self.inner.record_many(root_id, action_taken, nodes)

    def get(self, node_id: str, root_id: str | None = None) -> Node | None:
        """The ledger's node, else the record's (the latest recorded when several roots hold it)."""
        found = self.inner.get(node_id, root_id)
        if found is not None:
            return found
        check_id("node_id", node_id)
        if root_id is not None:
            check_id("root_id", root_id)
        rows = self._records(root_id, "node_id = ?", [node_id], order="recorded_at DESC, root_id DESC",
                             limit=1)
        return rows[0] if rows else None

    def record_source(self, node_id: str, root_id: str) -> tuple[str | None, int | None] | None:
        """Where record ``node_id`` of ``root_id`` came from: its source key and line (either
        may be unknown), or None when the node is not a record of that root."""
        check_id("node_id", node_id)
        keys = self._keys(check_id("root_id", root_id))
        if not keys:
            return None
        rows = self._query(keys, "SELECT source_key, line_no FROM {src} WHERE node_id = ? LIMIT 1", [node_id])
        return (rows[0][0], rows[0][1]) if rows else None

    def tree(self, root_id: str) -> list[Node]:
        """The ledger's nodes and the records, in (recorded_at, node_id) order."""
        nodes = self.inner.tree(root_id) + self._records(root_id, "true", [])
        return sorted(nodes, key=lambda n: (n.recorded_at, n.node_id))

    def children(self, root_id: str, parent_id: str, *, action_taken: str | None = None,
                 limit: int | None = None) -> list[Node]:
        """Children from the ledger, then records (each in node id order), at most ``limit``."""
        found = self.inner.children(root_id, parent_id, action_taken=action_taken, limit=limit)
        if limit is not None and len(found) >= limit:
            return found
        kids = self._grouped(check_id("root_id", root_id), check_id("parent_id", parent_id))
        if not kids or (action_taken is not None and not kids.get(action_taken)):
            return found  # no record under this parent: no scan
        where, args = "parent_id = ?", [parent_id]
        if action_taken is not None:
            where += " AND action_taken = ?"
            args.append(check_action(action_taken))
        rest = None if limit is None else limit - len(found)
        return found + self._records(root_id, where, args, limit=rest)

    def child_counts(self, root_id: str, parent_id: str) -> dict[str, int]:
        """Children per action, ledger and records together."""
        return _add(self.inner.child_counts(root_id, parent_id),
                    self._grouped(check_id("root_id", root_id), check_id("parent_id", parent_id)))

    def by_action(self, action_taken: str, root_id: str | None = None,
                  limit: int | None = None) -> list[Node]:
        """Nodes of one action: the ledger's, then records' (root_id, node_id order)."""
        found = self.inner.by_action(action_taken, root_id, limit)
        if limit is not None and len(found) >= limit:
            return found
        rest = None if limit is None else limit - len(found)
        return found + self._records(root_id, "action_taken = ?", [check_action(action_taken)],
                                     order="root_id, node_id", limit=rest)

    def counts(self, root_id: str) -> dict[str, int]:
        """Nodes per action of a root, ledger and records together."""
        return _add(self.inner.counts(root_id), self._grouped(check_id("root_id", root_id)))

    def roots(self, limit: int = 20) -> list[dict[str, Any]]:
        """The ledger's roots, their counts including records."""
        out = []
        for entry in self.inner.roots(limit):
            extra = self._grouped(entry["root_id"])
            if extra:
                first = Node(**entry["first_node"])
                entry = root_summary(first, _add(entry["counts"], extra))
            out.append(entry)
        return out

    def close(self) -> None:
        """Close the ledger."""
        self.inner.close()


def _add(a: dict[str, int], b: dict[str, int]) -> dict[str, int]:
    out = dict(a)
    for k, v in b.items():
        out[k] = out.get(k, 0) + v
    return dict(sorted(out.items()))
