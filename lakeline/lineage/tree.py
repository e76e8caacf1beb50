"""A lineage root's tree as nested dicts, large fan-outs summarised: what ``lakeline lineage
show`` prints and what ``lakeline ui`` draws.

Two queries per shown node (child counts, then the shown children of each action), so a root
with a million record nodes costs a few dozen queries, not a million rows. How many children
of one action are shown under a node is a policy: ``lineage show`` shows the first
``fanout``; the UI shows a small group whole and collapses a large one.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from lakeline.errors import NotFoundError
from lakeline.ports.lineage_model import Node, is_failure

#: Children of one kind shown under a node before "… and N more".
FANOUT = 5
MAX_DEPTH = 64

#: ``(parent_id, action, children of the parent with that action) -> how many to show``
#: (None: all of them; 0: none — no query for them)
Shown = Callable[[str, str, int], int | None]


class TreeSource(Protocol):
    """What :func:`build_tree` asks of a ledger (:class:`~lakeline.ports.lineage.Ledger` or a
    :class:`LoadedRoot`)."""

    def counts(self, root_id: str) -> dict[str, int]: ...

    def child_counts(self, root_id: str, parent_id: str) -> dict[str, int]: ...

    def children(self, root_id: str, parent_id: str, *, action_taken: str | None = None,
                 limit: int | None = None) -> list[Node]: ...


class LoadedRoot:
    """The nodes of one root read at once (e.g. :meth:`Ledger.tree`), answering what
    :func:`build_tree` asks from memory: one read instead of queries per node, for a root
    small enough to hold."""

    def __init__(self, nodes: Iterable[Node]) -> None:
        self._kids: dict[str, dict[str, list[Node]]] = {}
        counts: Counter[str] = Counter()
        for n in nodes:
            self._kids.setdefault(n.parent_id, {}).setdefault(n.action_taken, []).append(n)
            counts[n.action_taken] += 1
        for by_action in self._kids.values():
            for kids in by_action.values():
                kids.sort(key=lambda k: (k.recorded_at, k.node_id))
        self._counts = dict(sorted(counts.items()))

    def counts(self, root_id: str) -> dict[str, int]:
        """action → nodes of the root."""
        return dict(self._counts)

    def child_counts(self, root_id: str, parent_id: str) -> dict[str, int]:
        """action → children of ``parent_id``."""
        return {a: len(k) for a, k in sorted(self._kids.get(parent_id, {}).items())}

    def children(self, root_id: str, parent_id: str, *, action_taken: str | None = None,
                 limit: int | None = None) -> list[Node]:
        """The children of ``parent_id`` (of one action), at most ``limit``, in (recorded_at,
        node_id) order within an action."""
        by_action = self._kids.get(parent_id, {})
        kids = list(by_action.get(action_taken, [])) if action_taken is not None else \
            sorted((k for ks in by_action.values() for k in ks), key=lambda k: (k.recorded_at, k.node_id))
        return kids if limit is None else kids[:limit]


def build_tree(ledger: TreeSource, root_id: str, fanout: int = FANOUT, *, shown: Shown | None = None
               ) -> dict[str, Any]:
    """A root's tree as nested dicts: each node is :meth:`Node.to_dict` plus ``failed``,
    ``children`` and ``more`` = {action: children not shown}. Under each node at most
    ``fanout`` children per action are shown (0: all), unless ``shown`` decides.
    :class:`NotFoundError` for a root without nodes."""
    def by_fanout(parent_id: str, action: str, n: int) -> int | None:
        return fanout or None

    limit_of = shown or by_fanout
    seen: set[str] = set()

    def expand(parent_id: str, depth: int) -> tuple[list[dict[str, Any]], dict[str, int]]:
        if depth > MAX_DEPTH:
            return [], {}
        kids: list[Node] = []
        more: dict[str, int] = {}
        for action, n in ledger.child_counts(root_id, parent_id).items():
            limit = limit_of(parent_id, action, n)
            picked = ([] if limit == 0 else
                      ledger.children(root_id, parent_id, action_taken=action, limit=limit))
            kids.extend(picked)
            if n > len(picked):
                more[action] = n - len(picked)
        out = []
        for kid in sorted(kids, key=lambda k: (k.recorded_at, natural(k.storage_location), k.node_id)):
            node = kid.to_dict()
            node["failed"] = kid.failed
            if kid.node_id in seen:  # a cycle: show the node, not its subtree again
                node["children"], node["more"] = [], {}
            else:
                seen.add(kid.node_id)
                node["children"], node["more"] = expand(kid.node_id, depth + 1)
            out.append(node)
        return out, more

    counts = ledger.counts(root_id)
    if not counts:
        raise NotFoundError(f"no lineage recorded for root {root_id}")
    children, more = expand(root_id, 0)
    return {"root_id": root_id, "counts": counts, "nodes": sum(counts.values()),
            "failed": sum(n for a, n in counts.items() if is_failure(a)), "fanout": fanout,
            "children": children, "more": more}


def natural(text: str) -> tuple[Any, ...]:
    """A sort key that orders ``part_2`` before ``part_10`` (nodes recorded in one bulk write
    share a timestamp)."""
    return tuple(int(piece) if i % 2 else piece for i, piece in enumerate(re.split(r"(\d+)", text)))
