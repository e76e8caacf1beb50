"""DynamoDB state store: the StateStore primitives as conditional writes on one table.

Single-table design (:data:`TABLE_SCHEMA`)::

    pk (S, partition key)  the port's table name (idempotency, runs, events, ...)
    sk (S, sort key)       the item key
    data (S)               JSON of the item's data (orjson)
    version (N)            1 on creation, +1 on every put
    expires_at (N)         epoch seconds; the table's TTL attribute (absent: never expires)
    updated_at (N)         epoch seconds of the last put

Every condition is evaluated by DynamoDB atomically with the write, so the store is correct
with any number of concurrent writers. DynamoDB TTL deletes expired items only eventually
(typically within days), so an item with ``expires_at <= now`` is treated as absent by every
read and every condition, exactly as on the local backend. ``ConditionalCheckFailedException``
becomes :class:`ConditionFailed` — the idempotency signal, never an error. Items are limited
to 400 KB by DynamoDB.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

import orjson

from lakeline.adapters.aws.session import error_code, translate_errors
from lakeline.errors import ConditionFailed, ConfigError, TransientError, UsageError
from lakeline.identifiers import checked_text
from lakeline.ports.state import Item, StateStore

#: ``create_table`` keyword arguments for the state table (tests and the deploy template);
#: enable TTL on ``expires_at`` separately (``update_time_to_live``).
TABLE_SCHEMA: dict[str, Any] = {
    "KeySchema": [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ],
    "AttributeDefinitions": [
        {"AttributeName": "pk", "AttributeType": "S"},
        {"AttributeName": "sk", "AttributeType": "S"},
    ],
    "BillingMode": "PAY_PER_REQUEST",
}
#: The TTL attribute to enable on the table.
TTL_ATTRIBUTE = "expires_at"

_NAMES = {"#pk": "pk", "#sk": "sk", "#d": "data", "#v": "version", "#e": "expires_at",
          "#u": "updated_at"}
_LIVE = "(attribute_not_exists(#e) OR #e > :now)"
_ABSENT = "(attribute_not_exists(#pk) OR #e <= :now)"
_CAS = f"#v = :v AND {_LIVE}"
_PLAIN_PUT_ATTEMPTS = 20


def _num(value: float) -> str:
    """A DynamoDB number (plain decimal text; NaN and infinities refused)."""
    if not isinstance(value, int | float) or not Decimal(repr(value)).is_finite():
        raise UsageError(f"not a finite number: {value!r}")
    return format(Decimal(repr(value)), "f")


def _names(*used: str) -> dict[str, str]:
    return {k: _NAMES[k] for k in used}


class DynamoStateStore(StateStore):
    """:class:`StateStore` on the DynamoDB table ``table_name`` (see :data:`TABLE_SCHEMA`).

    ``clock`` returns epoch seconds and decides expiry (tests inject a fake clock). The
    constructor makes no API call.
    """

    def __init__(self, ddb_client: Any, table_name: str,
                 clock: Callable[[], float] = time.time) -> None:
        if not table_name:
            raise ConfigError("the DynamoDB state table has no name (aws.state_table)")
        self.ddb = ddb_client
        self.table_name = table_name
        self.clock = clock

    def __repr__(self) -> str:
        return f"DynamoStateStore({self.table_name!r})"

    # ---- helpers ------------------------------------------------------------------------
    @staticmethod
    def _key(table: str, key: str) -> dict[str, Any]:
        for what, value, limit in (("table", table, 2048), ("key", key, 1024)):
            checked_text(value, f"state {what}", limit, f"DynamoDB allows {limit}")
        return {"pk": {"S": table}, "sk": {"S": key}}

    @staticmethod
    def _item(raw: dict[str, Any]) -> Item:
        expires = raw.get("expires_at")
        return Item(
            table=raw["pk"]["S"],
            key=raw["sk"]["S"],
            data=orjson.loads(raw["data"]["S"]),
            version=int(raw["version"]["N"]),
            expires_at=float(expires["N"]) if expires else None,
            updated_at=float(raw.get("updated_at", {"N": "0"})["N"]),
        )

    @staticmethod
    def _live(raw: dict[str, Any], now: float) -> bool:
        expires = raw.get("expires_at")
        return expires is None or float(expires["N"]) > now

    def _call(self, operation: str, failure: str = "", **kwargs: Any) -> dict[str, Any]:
        """One DynamoDB call; a failed condition raises :class:`ConditionFailed` (``failure``
        says which), chained to the ``ConditionalCheckFailedException``."""
        from botocore.exceptions import ClientError

        try:
            with translate_errors(f"DynamoDB {operation} {self.table_name}"):
                result: dict[str, Any] = getattr(self.ddb, operation)(
                    TableName=self.table_name, **kwargs
                )
                return result
        except ClientError as exc:
            code = error_code(exc)
            if code == "ConditionalCheckFailedException":
                raise ConditionFailed(failure or f"{self.table_name}: condition failed") from exc
            if code == "ResourceNotFoundException":
                raise ConfigError(
                    f"DynamoDB table {self.table_name!r} does not exist (aws.state_table)"
                ) from exc
            if code == "ValidationException" and "size" in str(exc).lower():
                raise UsageError(f"{self.table_name}: {exc}") from exc
            raise

    # ---- primitives ---------------------------------------------------------------------
    def get(self, table: str, key: str) -> Item | None:
        """GetItem (strongly consistent); None if absent or expired."""
        raw = self._call("get_item", Key=self._key(table, key), ConsistentRead=True).get("Item")
        if raw is None or not self._live(raw, self.clock()):
            return None
        return self._item(raw)

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
        """Write an item (see :meth:`StateStore.put`); raises :class:`ConditionFailed`.

        ``if_absent`` is one conditional PutItem (version 1), ``expected_version`` one
        conditional UpdateItem (version + 1). A plain put updates a live item (version + 1)
        or, when there is none, creates it at version 1; each step is conditional, and a
        writer that loses a race in between simply tries again.
        """
        ident = self._key(table, key)
        body = orjson.dumps(data).decode("utf-8")
        if if_absent and expected_version is not None:
            raise ConditionFailed(f"{table}/{key}: if_absent and expected_version exclude each other")
        now = self.clock()
        if if_absent:
            self._create(ident, body, expires_at, now, f"{table}/{key} already exists")
            version = 1
        elif expected_version is not None:
            version = self._update(ident, body, expires_at, now, expected_version,
                                   f"{table}/{key} is not at version {expected_version}")
        else:
            version = self._upsert(ident, body, expires_at, now, f"{table}/{key}")
        return Item(table, key, orjson.loads(body), version, expires_at, now)

    def _create(self, ident: dict[str, Any], body: str, expires_at: float | None, now: float,
                failure: str) -> None:
        """PutItem at version 1, only if no live item exists."""
        item = dict(ident, data={"S": body}, version={"N": "1"}, updated_at={"N": _num(now)})
        if expires_at is not None:
            item["expires_at"] = {"N": _num(expires_at)}
        self._call("put_item", failure, Item=item, ConditionExpression=_ABSENT,
                   ExpressionAttributeNames=_names("#pk", "#e"),
                   ExpressionAttributeValues={":now": {"N": _num(now)}})

    def _update(self, ident: dict[str, Any], body: str, expires_at: float | None, now: float,
                expected: int | None, failure: str) -> int:
        """UpdateItem of a live item (at version ``expected``, if given); returns the new
        version."""
        values: dict[str, Any] = {":d": {"S": body}, ":u": {"N": _num(now)}, ":one": {"N": "1"},
                                  ":now": {"N": _num(now)}}
        update = "SET #d = :d, #u = :u, #v = #v + :one"
        if expires_at is None:
            update += " REMOVE #e"
        else:
            update += ", #e = :e"
            values[":e"] = {"N": _num(expires_at)}
        if expected is None:
            condition = f"attribute_exists(#pk) AND {_LIVE}"
            names = _names("#pk", "#d", "#u", "#v", "#e")
        else:
            condition = _CAS
            values[":v"] = {"N": str(int(expected))}
            names = _names("#d", "#u", "#v", "#e")
        result = self._call("update_item", failure, Key=ident, UpdateExpression=update,
                            ConditionExpression=condition, ExpressionAttributeNames=names,
                            ExpressionAttributeValues=values, ReturnValues="UPDATED_NEW")
        return int(result["Attributes"]["version"]["N"])

    def _upsert(self, ident: dict[str, Any], body: str, expires_at: float | None, now: float,
                what: str) -> int:
        for _ in range(_PLAIN_PUT_ATTEMPTS):
            try:
                return self._update(ident, body, expires_at, now, None, what)
            except ConditionFailed:
                pass  # absent or expired: create it
            try:
                self._create(ident, body, expires_at, now, what)
                return 1
            except ConditionFailed:
                continue  # created by someone else meanwhile: update that one
        raise TransientError(f"{what}: too many concurrent writers, try again")

    def put_many(self, table: str, items: Iterable[tuple[str, str]]) -> int:
        """Bulk replace (see :meth:`StateStore.put_many`): ``BatchWriteItem`` of 25 items,
        unprocessed items resent with backoff."""
        now = _num(self.clock())
        n = 0
        pending: list[dict[str, Any]] = []

        def flush(requests: list[dict[str, Any]]) -> None:
            for attempt in range(8):
                out = self.ddb.batch_write_item(RequestItems={self.table_name: requests})
                requests = out.get("UnprocessedItems", {}).get(self.table_name, [])
                if not requests:
                    return
                time.sleep(min(2.0, 0.05 * 2**attempt))
            raise TransientError(f"state {table}: {len(requests)} items stayed unprocessed; try again")

        for key, body in items:
            item = dict(self._key(table, key), data={"S": body}, version={"N": "1"}, updated_at={"N": now})
            pending.append({"PutRequest": {"Item": item}})
            if len(pending) == 25:
                flush(pending)
                n += len(pending)
                pending = []
        if pending:
            flush(pending)
            n += len(pending)
        return n

    def delete(self, table: str, key: str, *, expected_version: int | None = None) -> None:
        """DeleteItem; with ``expected_version`` only a live item at that version."""
        ident = self._key(table, key)
        if expected_version is None:
            self._call("delete_item", Key=ident)
            return
        self._call("delete_item", f"{table}/{key} is absent or not at version {expected_version}",
                   Key=ident, ConditionExpression=_CAS,
                   ExpressionAttributeNames=_names("#v", "#e"),
                   ExpressionAttributeValues={":v": {"N": str(int(expected_version))},
                                              ":now": {"N": _num(self.clock())}})

    def query(
        self, table: str, prefix: str = "", *, limit: int | None = None, reverse: bool = False,
        after: str | None = None,
    ) -> list[Item]:
        """Query ``pk = table AND begins_with(sk, prefix)`` (or, with ``after``, ``sk > after``:
        a key condition takes one sort-key test, so the prefix is then checked here) in key
        order (descending with ``reverse``), expired items filtered out, at most ``limit``
        items (after filtering)."""
        if not isinstance(table, str) or not table:
            raise UsageError(f"state table must be a non-empty string, got {table!r}")
        if limit is not None and limit <= 0:
            return []
        now = self.clock()
        values: dict[str, Any] = {":pk": {"S": table}, ":now": {"N": _num(now)}}
        key_condition = "#pk = :pk"
        names = _names("#pk", "#e")
        if after:  # every key sorts after "" (and DynamoDB refuses an empty key value)
            key_condition += " AND #sk > :a"
            values[":a"] = {"S": after}
            names["#sk"] = "sk"
        elif prefix:
            key_condition += " AND begins_with(#sk, :p)"
            values[":p"] = {"S": prefix}
            names["#sk"] = "sk"
        kwargs: dict[str, Any] = {
            "KeyConditionExpression": key_condition,
            "FilterExpression": _LIVE,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
            "ScanIndexForward": not reverse,
            "ConsistentRead": True,
        }
        if limit is not None:
            kwargs["Limit"] = min(limit + 10, 1000)  # items read per page, before filtering
        found: list[Item] = []
        while True:
            page = self._call("query", **kwargs)
            for raw in page.get("Items", []):
                if self._live(raw, now) and (not after or raw["sk"]["S"].startswith(prefix)):
                    found.append(self._item(raw))
                    if limit is not None and len(found) >= limit:
                        return found
            start = page.get("LastEvaluatedKey")
            if not start:
                return found
            kwargs["ExclusiveStartKey"] = start
