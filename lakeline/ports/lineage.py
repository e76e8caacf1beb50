"""Lineage ledger port: a tree of nodes per root, written one by one or in bulk.

::

    callers                           Ledger (this port)                 backends
    ───────────────────────────────   ────────────────────────────────   ──────────────────────────
    workflow task (specs §4 JSON) ──▶ request({root_id, parent_id,  ─┐
                                        action_taken, record|records})│  SqliteLedger
    pipelines (ingest, transform,  ──▶ record(...)  one node          ├─▶ state/lineage.db (WAL)
      batch runs, retail job)          record_many(...) Arrow table   │  DynamoLedger
    CLI `lakeline lineage …`       ──▶ get / tree / children / trace  │   table root_id+node_id,
    OpenLineage export                 by_action / counts / roots   ─┘   GSIs by node_id, action

Keys are ``(root_id, node_id)``: re-recording a node replaces it, so reruns are idempotent.
The first node of a root has ``parent_id == root_id``. ``node_id`` alone is usually unique,
but one node id may appear under several roots (the carbon pipeline uses
``activity_event_id`` as node id, and a rerun of a file is a new root): lookups by node id
without a root answer with the most recently recorded of them.

The base class owns the specs §4 request contract and :meth:`Ledger.trace`; backends
implement storage and queries. ``record_many`` must take a bulk path (one transaction over
Arrow batches; DynamoDB ``BatchWriteItem`` in 25s), never one statement and commit per node.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any

import orjson

from lakeline.errors import UsageError
from lakeline.ports.lineage_model import (
    MAX_ID_BYTES,
    Node,
    check_action,
    check_id,
    is_failure,
    new_id,
    now_iso,
)

if TYPE_CHECKING:  # pyarrow is imported when a bulk write happens, not by a Lambda cold start
    import pyarrow as pa

#: Columns of a ``record_many`` table (``attrs`` is optional: JSON object text or null).
NODE_COLUMNS = ("node_id", "parent_id", "storage_location", "attrs")


class Ledger(ABC):
    """The lineage ledger of one lake."""

    # ---- the specs §4 request contract --------------------------------------------------
    def request(self, req: dict[str, Any]) -> dict[str, Any]:
        """Record nodes from a specs §4 request and answer with their lineage.

        ``{root_id, parent_id, action_taken, record: {storage_location, node_id?, attrs?}}``
        records one node and answers ``{"data_lineage": {root_id, action_taken,
        storage_location, node_id}}``. ``{…, records: [{storage_location, node_id?,
        parent_id?, attrs?}, …]}`` records one node per element through the bulk path and
        answers ``{"data_lineage": [{root_id, action_taken, storage_location, node_id}, …]}``
        in request order. A record without ``node_id`` gets a new one; a record's own
        ``parent_id`` overrides the request's; a missing ``parent_id`` means the root itself
        (the first node of a tree).
        """
        if not isinstance(req, dict):
            raise UsageError(f"a lineage request must be a JSON object, got {type(req).__name__}")
        root_id = check_id("root_id", req.get("root_id"))
        parent_id = check_id("parent_id", req.get("parent_id", root_id))
        action = check_action(req.get("action_taken"))
        if ("record" in req) == ("records" in req):
            raise UsageError("a lineage request needs exactly one of 'record' or 'records'")
        if "record" in req:
            rec = _check_record(req["record"], "record")
            node = self.record(root_id, parent_id, action, rec["storage_location"],
                               node_id=rec.get("node_id"), attrs=rec.get("attrs"))
            return {"data_lineage": _answer(node.root_id, action, node.storage_location, node.node_id)}
        records = req["records"]
        if not isinstance(records, list):
            raise UsageError("lineage 'records' must be a list of objects")
        import pyarrow as pa

        checked = [_check_record(r, f"records[{i}]") for i, r in enumerate(records)]
        ids = [r.get("node_id") or new_id() for r in checked]
        table = pa.table({
            "node_id": pa.array(ids, pa.string()),
            "parent_id": pa.array([r.get("parent_id") or parent_id for r in checked], pa.string()),
            "storage_location": pa.array([r["storage_location"] for r in checked], pa.string()),
            "attrs": pa.array([orjson.dumps(r["attrs"]).decode() if r.get("attrs") else None
                               for r in checked], pa.string()),
        })
        if table.num_rows:
            self.record_many(root_id, action, table)
        return {"data_lineage": [_answer(root_id, action, r["storage_location"], i)
                                 for r, i in zip(checked, ids, strict=True)]}

    # ---- writing --------------------------------------------------------------------------
    def record(self, root_id: str, parent_id: str, action_taken: str, storage_location: str, *,
               node_id: str | None = None, attrs: dict[str, Any] | None = None) -> Node:
        """Record one node (replacing an earlier node with the same root and id) and return it.
        Without ``node_id`` a new id is made."""
        if not isinstance(storage_location, str):
            raise UsageError(f"lineage storage_location must be a string, got {storage_location!r}")
        if attrs is not None and not isinstance(attrs, dict):
            raise UsageError(f"lineage attrs must be an object, got {attrs!r}")
        node = Node(
            root_id=check_id("root_id", root_id),
            node_id=check_id("node_id", node_id if node_id is not None else new_id()),
            parent_id=check_id("parent_id", parent_id),
            action_taken=check_action(action_taken),
            storage_location=storage_location,
            recorded_at=now_iso(),
            attrs=dict(attrs or {}),
        )
        self._put(node)
        return node

    @abstractmethod
    def _put(self, node: Node) -> None:
        """Store one validated node (create or replace)."""

    @abstractmethod
    def record_many(self, root_id: str, action_taken: str, nodes: pa.Table) -> int:
        """Record one node per row of ``nodes`` (columns ``node_id``, ``parent_id``,
        ``storage_location`` and optionally ``attrs``, JSON object text) under ``root_id``
        with ``action_taken``, through the backend's bulk path. Rows replace earlier nodes
        with the same ``(root_id, node_id)`` (a later row of the same table wins). Returns the
        number of rows recorded. Check the input with :func:`check_node_table`."""

    # ---- reading --------------------------------------------------------------------------
    @abstractmethod
    def get(self, node_id: str, root_id: str | None = None) -> Node | None:
        """The node ``node_id`` (of ``root_id`` if given; else the most recently recorded node
        with that id), or None."""

    @abstractmethod
    def tree(self, root_id: str) -> list[Node]:
        """Every node of ``root_id`` in (recorded_at, node_id) order."""

    @abstractmethod
    def children(self, root_id: str, parent_id: str, *, action_taken: str | None = None,
                 limit: int | None = None) -> list[Node]:
        """The children of ``parent_id`` in ``root_id`` (of one action if given), in
        (recorded_at, node_id) order, at most ``limit``. ``parent_id == root_id`` gives the
        first nodes."""

    @abstractmethod
    def child_counts(self, root_id: str, parent_id: str) -> dict[str, int]:
        """action → number of children of ``parent_id`` (a fan-out summary without reading
        the children)."""

    @abstractmethod
    def by_action(self, action_taken: str, root_id: str | None = None,
                  limit: int | None = None) -> list[Node]:
        """Nodes with ``action_taken`` (of one root if given), in root_id order (node order
        within a root is the backend's), at most ``limit``."""

    @abstractmethod
    def counts(self, root_id: str) -> dict[str, int]:
        """action → number of nodes of ``root_id``, by action name (empty for an unknown root)."""

    @abstractmethod
    def roots(self, limit: int = 20) -> list[dict[str, Any]]:
        """The most recently started roots, newest first: ``{root_id, recorded_at, first_node,
        counts, nodes, failed}`` where ``first_node`` is the root's earliest first node (as a
        dict), ``counts`` its action counts, ``nodes`` their total and ``failed`` the number of
        failure nodes."""

    def trace(self, node_id: str, root_id: str | None = None) -> list[Node]:
        """The path from ``node_id`` up to its root's first node: ``[node, parent, …, first]``.

        Empty when the node is unknown. A parent that was never recorded ends the path early
        (lineage is recorded best-effort); a cycle is refused.
        """
        node = self.get(check_id("node_id", node_id), root_id)
        path: list[Node] = []
        seen: set[str] = set()
        while node is not None:
            if node.node_id in seen:
                raise UsageError(f"lineage of root {node.root_id} has a cycle at node {node.node_id}")
            seen.add(node.node_id)
            path.append(node)
            if node.is_first:
                break
            node = self.get(node.parent_id, node.root_id)
        return path

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections (optional)."""


def root_summary(first: Node, counts: dict[str, int]) -> dict[str, Any]:
    """One entry of :meth:`Ledger.roots`."""
    return {"root_id": first.root_id, "recorded_at": first.recorded_at, "first_node": first.to_dict(),
            "counts": counts, "nodes": sum(counts.values()),
            "failed": sum(n for action, n in counts.items() if is_failure(action))}


def _check_record(rec: Any, where: str) -> dict[str, Any]:
    if not isinstance(rec, dict):
        raise UsageError(f"lineage {where} must be an object with storage_location")
    loc = rec.get("storage_location")
    if not isinstance(loc, str):
        raise UsageError(f"lineage {where}.storage_location must be a string, got {loc!r}")
    for name in ("node_id", "parent_id"):
        if rec.get(name) is not None:
            check_id(f"{where}.{name}", rec[name])
    if rec.get("attrs") is not None and not isinstance(rec["attrs"], dict):
        raise UsageError(f"lineage {where}.attrs must be an object")
    return rec


def _answer(root_id: str, action: str, location: str, node_id: str) -> dict[str, str]:
    return {"root_id": root_id, "action_taken": action, "storage_location": location,
            "node_id": node_id}


def check_node_table(root_id: str, action_taken: str, nodes: pa.Table) -> pa.Table:
    """Validate a ``record_many`` input column-wise and return it as exactly
    :data:`NODE_COLUMNS` (strings; ``storage_location`` null → ``""``, ``attrs`` null when
    absent). Raises :class:`UsageError` naming the first bad row."""
    import pyarrow as pa
    import pyarrow.compute as pc

    check_id("root_id", root_id)
    check_action(action_taken)
    if not isinstance(nodes, pa.Table):
        raise UsageError(f"record_many needs a pyarrow Table, got {type(nodes).__name__}")
    missing = [c for c in NODE_COLUMNS[:3] if c not in nodes.column_names]
    if missing:
        raise UsageError(f"record_many table lacks column(s) {', '.join(missing)}")
    cols: dict[str, Any] = {}
    for name in NODE_COLUMNS:
        if name not in nodes.column_names:
            cols[name] = pa.chunked_array([pa.nulls(nodes.num_rows, pa.string())])
            continue
        try:
            cols[name] = nodes.column(name).cast(pa.string())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise UsageError(f"record_many column {name} must be text: {exc}") from None
    for name in ("node_id", "parent_id"):
        col = cols[name]
        size = pc.binary_length(col)
        bad = pc.or_kleene(pc.is_null(col), pc.equal(size, pa.scalar(0, size.type)))
        bad = pc.or_kleene(bad, pc.greater(size, pa.scalar(MAX_ID_BYTES, size.type)))
        bad = pc.or_kleene(bad, pc.match_substring_regex(col, r"[\x00-\x1f\x7f]"))
        if pc.any(bad).as_py():
            row = pc.index(bad, True).as_py()
            raise UsageError(f"record_many row {row}: {name} must be a non-empty id of at most "
                             f"{MAX_ID_BYTES} bytes without control characters, got {col[row].as_py()!r}")
    attrs = cols["attrs"]
    bad = pc.invert(pc.and_kleene(pc.starts_with(attrs, "{"), pc.ends_with(attrs, "}")))
    if pc.any(bad).as_py():  # nulls stay null in ``bad``: only present, non-object text counts
        row = pc.index(bad, True).as_py()
        raise UsageError(f"record_many row {row}: attrs must be JSON object text, got {attrs[row].as_py()!r}")
    cols["storage_location"] = pc.fill_null(cols["storage_location"], pa.scalar("", pa.string()))
    return pa.table(cols)
