"""The lineage pages: the latest roots with a search box that traces a node back to its raw
file (and, for a record, the source key and line it came from), and a root drawn as a graph.

The graph is collapsed by level: the nodes of the ledger (file, gate, batches) are drawn one by
one, and so are small groups of records and failures; a large group of one action under one
parent ("495 x CALCULATION_COMPLETE") is one node that expands on click into its members. The
members of every group (up to :data:`EMBED_PER_GROUP`, :data:`EMBED_TOTAL` in all) are embedded
in the page, so expanding needs no server and works in the static export too.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from lakeline.adapters.record_lineage import RecordLedger
from lakeline.errors import NotFoundError, UsageError
from lakeline.lineage.tree import LoadedRoot, TreeSource, build_tree
from lakeline.ports.lineage_model import Node, is_failure
from lakeline.ui.render import Rendered, View, page

#: roots listed on the lineage page; roots the static export draws (the latest)
ROOTS, EXPORTED_ROOTS = 50, 10
#: children of one action under one parent drawn one by one: of the ledger (files, gates,
#: batches), records, failures; a larger group is one collapsed node
LEDGER_SHOWN, RECORDS_SHOWN, FAILED_SHOWN = 300, 20, 100
#: nodes drawn one by one before every further group is collapsed
BUDGET = 600
#: a root of at most this many nodes is read at once (one query), a larger one node by node
LOAD_MAX = 20_000
#: members of a collapsed group embedded for expanding it: per group, per page
EMBED_PER_GROUP, EMBED_TOTAL = 1000, 20_000
#: the separator of a group's id (parent, action): ids may not hold control characters
_SEP = "\x1f"


def _latest_roots(view: View) -> list[dict[str, Any]]:
    """The roots the static export draws: the latest :data:`EXPORTED_ROOTS`."""
    return [{"root": r["root_id"]} for r in view.lake.lineage.roots(EXPORTED_ROOTS)]


@page("lineage", "/lineage", title="Lineage")
def index(view: View, node: str = "", root: str = "") -> Rendered:
    """The latest roots (counts, failures) and, for ``node``, its trace back to its root's first
    node (of ``root`` when given, else of the latest root holding it)."""
    ledger = view.lake.lineage
    roots = ledger.roots(ROOTS)
    for r in roots:
        r["linked"] = view.links.linkable("lineage-root", root=r["root_id"])
    node, root = node.strip(), root.strip()
    trace: dict[str, Any] | None = None
    problem = ""
    if node:
        try:
            path = ledger.trace(node, root or None)
        except UsageError as exc:
            path, problem = [], str(exc)
        if path:
            trace = _trace(ledger, path)
        elif not problem:
            where = f" in root {root}" if root else ""
            problem = f"No lineage node {node!r} is recorded{where}: check the id (a record id like " \
                      "an activity_event_id, a batch or file node id)."
    return "lineage.html", {"title": "Lineage", "roots": roots, "node": node, "root": root, "trace": trace,
                            "problem": problem}


def _trace(ledger: RecordLedger, path: list[Node]) -> dict[str, Any]:
    """The trace of ``path`` (node first): each node's fields, and the record's source."""
    first = path[0]
    source = ledger.record_source(first.node_id, first.root_id)
    return {"node_id": first.node_id, "root_id": first.root_id, "complete": path[-1].is_first,
            "missing_parent": path[-1].parent_id, "source_key": source[0] if source else None,
            "line_no": source[1] if source else None, "is_record": source is not None,
            "path": [{**n.to_dict(), "failed": n.failed} for n in path]}


@page("lineage-root", "/lineage/root", title="Lineage root", instances=_latest_roots)
def detail(view: View, root: str) -> Rendered:
    """Root ``root`` drawn as a graph, its counts per action and its failures."""
    root = root.strip()
    if not root:
        raise UsageError("which root? give ?root=ROOT_ID (see the lineage page)")
    graph = lineage_graph(view.lake.lineage, root)
    failures = [n for n in graph["nodes"] if n["failed"]]
    return "lineage_root.html", {"title": f"Lineage {root}", "root": root, "graph": graph,
                                 "failures": failures,
                                 "first": graph["nodes"][0] if graph["nodes"] else None}


def lineage_graph(ledger: RecordLedger, root_id: str) -> dict[str, Any]:
    """The collapsed graph of ``root_id``: ``nodes`` drawn one by one, ``groups`` (collapsed
    children of one action under one parent, with their embedded ``members``), ``edges``."""
    counts = ledger.counts(root_id)
    if not counts:
        raise NotFoundError(f"no lineage recorded for root {root_id}")
    source: TreeSource = ledger
    above: TreeSource = ledger.inner  # the nodes of the ledger, above the records
    if sum(counts.values()) <= LOAD_MAX:
        source, above = LoadedRoot(ledger.tree(root_id)), LoadedRoot(ledger.inner.tree(root_id))
    left = [BUDGET]
    in_ledger: dict[str, dict[str, int]] = {}

    def shown(parent_id: str, action: str, n: int) -> int | None:
        if parent_id not in in_ledger:
            in_ledger[parent_id] = above.child_counts(root_id, parent_id)
        if is_failure(action):
            cap = FAILED_SHOWN
        else:
            cap = LEDGER_SHOWN if in_ledger[parent_id].get(action, 0) >= n else RECORDS_SHOWN
        if n > cap or n > left[0]:
            return 0
        left[0] -= n
        return None

    tree = build_tree(source, root_id, shown=shown)
    nodes: list[dict[str, Any]] = []
    groups: list[dict[str, Any]] = []
    edges: list[list[str]] = []

    def walk(parent: str | None, children: list[dict[str, Any]], more: dict[str, int]) -> None:
        for child in children:
            nodes.append({k: child[k] for k in ("node_id", "parent_id", "action_taken", "storage_location",
                                                 "recorded_at", "attrs", "failed")})
            if parent is not None:
                edges.append([parent, child["node_id"]])
            walk(child["node_id"], child["children"], child["more"])
        for action, n in more.items():
            parent_id = parent if parent is not None else root_id
            gid = f"{parent_id}{_SEP}{action}"
            groups.append({"id": gid, "parent_id": parent_id, "action_taken": action, "count": n,
                           "failed": is_failure(action)})
            if parent is not None:
                edges.append([parent, gid])

    walk(None, tree["children"], tree["more"])
    _embed(source, root_id, groups, {n["node_id"] for n in nodes})
    return {"root_id": root_id, "counts": tree["counts"], "total": tree["nodes"], "failed": tree["failed"],
            "nodes": nodes, "groups": groups, "edges": edges}


def _embed(ledger: TreeSource, root_id: str, groups: Iterable[dict[str, Any]], drawn: set[str]) -> None:
    """Give each group its ``members`` ([node id, location or None when the group's, attrs or
    None]) up to the caps, the group's common ``location`` and ``embedded`` (how many)."""
    room = EMBED_TOTAL
    for g in groups:
        limit = min(g["count"], EMBED_PER_GROUP, room)
        kids = ledger.children(root_id, g["parent_id"], action_taken=g["action_taken"],
                               limit=limit) if limit > 0 else []
        kids = [k for k in kids if k.node_id not in drawn]
        common = kids[0].storage_location if kids else ""
        g["location"] = common
        g["members"] = [[k.node_id, None if k.storage_location == common else k.storage_location,
                         k.attrs or None] for k in kids]
        g["embedded"] = len(g["members"])
        room -= len(g["members"])
