"""DynamoDB lineage ledger: one item per node, keyed ``root_id`` + ``node_id``.

Key design (:data:`TABLE_SCHEMA`; the deploy template creates the same table)::

    table         root_id (HASH)      node_id (RANGE)       a root's tree; put replaces a node
    LSI parent-index   root_id        parent_sk = parent_id U+001F node_id
                                                            children of a node, in node order
    GSI node_id-index  node_id        recorded_at           get / trace by node id (latest first)
    GSI action-index   action_taken   root_id               by_action (optionally of one root)
    GSI roots-index    is_first ("1") recorded_at           sparse: first nodes only → roots()

Attributes: ``parent_id``, ``action_taken``, ``storage_location``, ``recorded_at`` (ISO-8601
UTC text, sorts in time order), ``attrs`` (JSON text, absent when empty), ``parent_sk`` and,
on a root's first node only, ``is_first``. Ids never contain control characters, so U+001F
cannot collide inside ``parent_sk``.

Bulk writes (:meth:`DynamoLedger.record_many`) are ``BatchWriteItem`` calls of 25 items sent
from a small thread pool, unprocessed items retried with backoff. Counts have no GROUP BY on
DynamoDB: :meth:`~DynamoLedger.counts` pages through the root's partition projecting only
``action_taken`` (its cost grows with the root). The LSI limits one root to 10 GB of nodes
(tens of millions). GSIs are eventually consistent on AWS: a node read by id right after it
was written may not be found yet; reads by ``(root_id, node_id)`` are strongly consistent.
The ``action-index`` partitions by action: very high write rates of one action share its
GSI partitions.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import orjson

from lakeline.adapters.aws.session import error_code, translate_errors
from lakeline.errors import ConfigError, TransientError
from lakeline.ports.lineage import Ledger, check_node_table, root_summary
from lakeline.ports.lineage_model import Node, check_action, check_id, now_iso

if TYPE_CHECKING:
    import pyarrow as pa

SEP = "\x1f"
NODE_INDEX = "node_id-index"
ACTION_INDEX = "action-index"
ROOTS_INDEX = "roots-index"
PARENT_INDEX = "parent-index"
BATCH = 25  # BatchWriteItem's limit
WRITERS = 8
_RETRIES = 12

_ALL = {"ProjectionType": "ALL"}


def _key(hash_: str, range_: str) -> list[dict[str, str]]:
    return [{"AttributeName": hash_, "KeyType": "HASH"}, {"AttributeName": range_, "KeyType": "RANGE"}]


#: ``create_table`` keyword arguments for the lineage table (tests and the deploy template).
TABLE_SCHEMA: dict[str, Any] = {
    "KeySchema": _key("root_id", "node_id"),
    "AttributeDefinitions": [
        {"AttributeName": name, "AttributeType": "S"}
        for name in ("root_id", "node_id", "parent_sk", "recorded_at", "action_taken", "is_first")
    ],
    "LocalSecondaryIndexes": [
        {"IndexName": PARENT_INDEX, "KeySchema": _key("root_id", "parent_sk"), "Projection": _ALL},
    ],
    "GlobalSecondaryIndexes": [
        {"IndexName": NODE_INDEX, "KeySchema": _key("node_id", "recorded_at"), "Projection": _ALL},
        {"IndexName": ACTION_INDEX, "KeySchema": _key("action_taken", "root_id"), "Projection": _ALL},
        {"IndexName": ROOTS_INDEX, "KeySchema": _key("is_first", "recorded_at"), "Projection": _ALL},
    ],
    "BillingMode": "PAY_PER_REQUEST",
}


def _item(root_id: str, node_id: Any, parent_id: Any, action: str, location: Any, at: str,
          attrs: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "root_id": {"S": root_id}, "node_id": {"S": node_id}, "parent_id": {"S": parent_id},
        "parent_sk": {"S": parent_id + SEP + node_id}, "action_taken": {"S": action},
        "storage_location": {"S": location}, "recorded_at": {"S": at},
    }
    if attrs:
        item["attrs"] = {"S": attrs}
    if parent_id == root_id:
        item["is_first"] = {"S": "1"}
    return item


def _node(raw: dict[str, Any]) -> Node:
    attrs = raw.get("attrs")
    return Node(raw["root_id"]["S"], raw["node_id"]["S"], raw["parent_id"]["S"], raw["action_taken"]["S"],
                raw["storage_location"]["S"], raw["recorded_at"]["S"],
                orjson.loads(attrs["S"]) if attrs else {})


class DynamoLedger(Ledger):
    """:class:`Ledger` on the DynamoDB table ``table_name`` (see :data:`TABLE_SCHEMA`). The
    constructor makes no API call."""

    def __init__(self, ddb_client: Any, table_name: str, *, writers: int = WRITERS) -> None:
        if not table_name:
            raise ConfigError("the DynamoDB lineage table has no name (aws.lineage_table)")
        self.ddb = ddb_client
        self.table_name = table_name
        self.writers = max(1, writers)

    def __repr__(self) -> str:
        return f"DynamoLedger({self.table_name!r})"

    def _call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        from botocore.exceptions import ClientError

        try:
            with translate_errors(f"DynamoDB {operation} {self.table_name}"):
                result: dict[str, Any] = getattr(self.ddb, operation)(**kwargs)
                return result
        except ClientError as exc:
            if error_code(exc) == "ResourceNotFoundException":
                raise ConfigError(f"DynamoDB lineage table {self.table_name!r} does not exist "
                                  "(aws.lineage_table; `lakeline deploy sam` creates it)") from exc
            raise

    def _query(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
        """Every item of a Query, page after page."""
        kwargs["TableName"] = self.table_name
        while True:
            page = self._call("query", **kwargs)
            yield from page.get("Items", [])
            start = page.get("LastEvaluatedKey")
            if not start:
                return
            kwargs["ExclusiveStartKey"] = start

    def _nodes(self, limit: int | None, **kwargs: Any) -> list[Node]:
        if limit is not None and limit <= 0:
            return []
        out: list[Node] = []
        for raw in self._query(**kwargs):
            out.append(_node(raw))
            if limit is not None and len(out) >= limit:
                break
        return out

    # ---- writing --------------------------------------------------------------------------
    def _put(self, node: Node) -> None:
        attrs = orjson.dumps(node.attrs).decode() if node.attrs else None
        self._call("put_item", TableName=self.table_name, Item=_item(
            node.root_id, node.node_id, node.parent_id, node.action_taken, node.storage_location,
            node.recorded_at, attrs))

    def record_many(self, root_id: str, action_taken: str, nodes: pa.Table) -> int:
        """``BatchWriteItem`` in 25s from :attr:`writers` threads (a later row of the same
        node id wins: duplicates are dropped before sending, as one batch may not repeat a key)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        table = check_node_table(root_id, action_taken, nodes)
        total = table.num_rows
        if total == 0:
            return 0
        if pc.count_distinct(table.column("node_id")).as_py() < total:
            last = (table.append_column("_i", pa.array(range(total), pa.int64()))
                    .group_by("node_id").aggregate([("_i", "max")]).column("_i_max"))
            table = table.take(pc.take(last, pc.sort_indices(last)))  # rows in input order
        at = now_iso()

        def batches() -> Iterator[list[dict[str, Any]]]:
            for chunk in table.to_batches(max_chunksize=BATCH * 400):
                ids, parents, locations, attrs = (chunk.column(i).to_pylist() for i in range(4))
                items = [{"PutRequest": {"Item": _item(root_id, n, p, action_taken, loc, at, a)}}
                         for n, p, loc, a in zip(ids, parents, locations, attrs, strict=True)]
                for i in range(0, len(items), BATCH):
                    yield items[i:i + BATCH]

        with ThreadPoolExecutor(self.writers, thread_name_prefix="lineage-write") as pool:
            for _ in pool.map(self._write_batch, batches()):
                pass
        return total

    def _write_batch(self, requests: list[dict[str, Any]]) -> None:
        pending = {self.table_name: requests}
        delay = 0.05
        for _ in range(_RETRIES):
            out = self._call("batch_write_item", RequestItems=pending)
            left = out.get("UnprocessedItems") or {}
            if not left.get(self.table_name):
                return
            pending = left
            time.sleep(delay)  # throttled: back off before sending the rest again
            delay = min(delay * 2, 2.0)
        raise TransientError(f"DynamoDB {self.table_name}: {len(pending[self.table_name])} lineage "
                             f"items still unprocessed after {_RETRIES} attempts")

    # ---- reading --------------------------------------------------------------------------
    def get(self, node_id: str, root_id: str | None = None) -> Node | None:
        """GetItem (strongly consistent) with a root; else the latest via ``node_id-index``."""
        check_id("node_id", node_id)
        if root_id is not None:
            raw = self._call("get_item", TableName=self.table_name, ConsistentRead=True, Key={
                "root_id": {"S": check_id("root_id", root_id)}, "node_id": {"S": node_id}}).get("Item")
            return None if raw is None else _node(raw)
        found = self._nodes(1, IndexName=NODE_INDEX, KeyConditionExpression="node_id = :n",
                            ExpressionAttributeValues={":n": {"S": node_id}}, ScanIndexForward=False)
        return found[0] if found else None

    def tree(self, root_id: str) -> list[Node]:
        """The root's partition, sorted by (recorded_at, node_id)."""
        nodes = self._nodes(None, KeyConditionExpression="root_id = :r", ConsistentRead=True,
                            ExpressionAttributeValues={":r": {"S": check_id("root_id", root_id)}})
        return sorted(nodes, key=lambda n: (n.recorded_at, n.node_id))

    def children(self, root_id: str, parent_id: str, *, action_taken: str | None = None,
                 limit: int | None = None) -> list[Node]:
        """``parent-index`` (LSI, strongly consistent): children in node_id order."""
        values: dict[str, Any] = {":r": {"S": check_id("root_id", root_id)},
                                  ":p": {"S": check_id("parent_id", parent_id) + SEP}}
        kwargs: dict[str, Any] = {
            "IndexName": PARENT_INDEX, "ConsistentRead": True,
            "KeyConditionExpression": "root_id = :r AND begins_with(parent_sk, :p)",
        }
        if action_taken is not None:
            kwargs["FilterExpression"] = "action_taken = :a"
            values[":a"] = {"S": check_action(action_taken)}
        return self._nodes(limit, ExpressionAttributeValues=values, **kwargs)

    def child_counts(self, root_id: str, parent_id: str) -> dict[str, int]:
        """``parent-index`` projecting only ``action_taken``, counted per page."""
        counts: Counter[str] = Counter()
        for raw in self._query(
            IndexName=PARENT_INDEX, ConsistentRead=True, ProjectionExpression="action_taken",
            KeyConditionExpression="root_id = :r AND begins_with(parent_sk, :p)",
            ExpressionAttributeValues={":r": {"S": check_id("root_id", root_id)},
                                       ":p": {"S": check_id("parent_id", parent_id) + SEP}},
        ):
            counts[raw["action_taken"]["S"]] += 1
        return dict(sorted(counts.items()))

    def by_action(self, action_taken: str, root_id: str | None = None,
                  limit: int | None = None) -> list[Node]:
        """``action-index``: in root_id order."""
        values: dict[str, Any] = {":a": {"S": check_action(action_taken)}}
        condition = "action_taken = :a"
        if root_id is not None:
            condition += " AND root_id = :r"
            values[":r"] = {"S": check_id("root_id", root_id)}
        return self._nodes(limit, IndexName=ACTION_INDEX, KeyConditionExpression=condition,
                           ExpressionAttributeValues=values)

    def counts(self, root_id: str) -> dict[str, int]:
        """The root's partition projecting only ``action_taken``, counted per page."""
        counts: Counter[str] = Counter()
        for raw in self._query(KeyConditionExpression="root_id = :r", ProjectionExpression="action_taken",
                               ExpressionAttributeValues={":r": {"S": check_id("root_id", root_id)}}):
            counts[raw["action_taken"]["S"]] += 1
        return dict(sorted(counts.items()))

    def roots(self, limit: int = 20) -> list[dict[str, Any]]:
        """``roots-index`` newest first until ``limit`` roots are found; each root's earliest
        first node read back through ``parent-index``."""
        if limit <= 0:
            return []
        seen: list[str] = []
        for raw in self._query(IndexName=ROOTS_INDEX, KeyConditionExpression="is_first = :one",
                               ExpressionAttributeValues={":one": {"S": "1"}}, ScanIndexForward=False):
            root = raw["root_id"]["S"]
            if root not in seen:
                seen.append(root)
                if len(seen) >= limit:
                    break
        firsts = [min(self.children(root, root), key=lambda n: (n.recorded_at, n.node_id)) for root in seen]
        firsts.sort(key=lambda n: (n.recorded_at, n.root_id), reverse=True)
        return [root_summary(first, self.counts(first.root_id)) for first in firsts]
