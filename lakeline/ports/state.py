"""State store port: conditional items with TTL, plus idempotency built on them.

Backends implement four primitives on items addressed by ``(table, key)`` — :meth:`get`,
:meth:`put`, :meth:`delete`, :meth:`query` — natively as compare-and-swap (SQL ``UPDATE …
WHERE version = ?`` on SQLite, ``ConditionExpression`` on DynamoDB). The base class owns the
semantics built on them: idempotency records, the run log and the event log.

An item whose ``expires_at`` (epoch seconds) has passed is absent for every read and for
``if_absent`` conditions, even before the backend purges it (as DynamoDB TTL requires).
"""

from __future__ import annotations

import contextlib
import enum
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from lakeline.errors import ConditionFailed

IDEMPOTENCY = "idempotency"
RUNS = "runs"
EVENTS = "events"


@dataclass(frozen=True)
class Item:
    """A stored item. ``version`` starts at 1 and grows by one on every put."""

    table: str
    key: str
    data: dict[str, Any]
    version: int
    expires_at: float | None = None
    updated_at: float = field(default=0.0)


class BeginResult(enum.Enum):
    """Outcome of :meth:`StateStore.begin`."""

    STARTED = "started"  # the caller owns the work now
    COMPLETED = "completed"  # done before: skip
    IN_PROGRESS = "in_progress"  # another worker holds an unexpired lock


class StateStore(ABC):
    """Durable items with conditional writes and TTL."""

    # ---- primitives -------------------------------------------------------------------
    @abstractmethod
    def get(self, table: str, key: str) -> Item | None:
        """The item, or None if absent or expired."""

    @abstractmethod
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
        """Write an item. ``if_absent``: only if absent or expired. ``expected_version``:
        only if the stored version equals it (compare-and-swap). Raises
        :class:`ConditionFailed` when the condition does not hold."""

    @abstractmethod
    def delete(self, table: str, key: str, *, expected_version: int | None = None) -> None:
        """Delete an item (absent is fine unless ``expected_version`` is given)."""

    @abstractmethod
    def query(
        self, table: str, prefix: str = "", *, limit: int | None = None, reverse: bool = False,
        after: str | None = None,
    ) -> list[Item]:
        """Unexpired items of ``table`` whose key starts with ``prefix`` (and, with ``after``,
        sorts strictly after it), in key order (code point order, as DynamoDB sorts)."""

    def replace(self, table: str, key: str, data: dict[str, Any], read: Item | None, *,
                expires_at: float | None = None) -> Item:
        """Write ``data`` only if the item is still as read (``read``, or absent when
        ``None``): a compare-and-swap against a get. Raises :class:`ConditionFailed` when
        somebody wrote in between."""
        if read is None:
            return self.put(table, key, data, expires_at=expires_at, if_absent=True)
        return self.put(table, key, data, expires_at=expires_at, expected_version=read.version)

    def put_many(self, table: str, items: Iterable[tuple[str, str]]) -> int:
        """Bulk write of ``(key, data as JSON object text)`` pairs, unconditionally: each item
        is replaced and restarts at version 1, with no TTL. For result sets nobody
        compare-and-swaps (carbon results by ``activity_event_id``); backends override it
        with a bulk path. Returns the number of items written."""
        n = 0
        for key, body in items:
            self.put(table, key, orjson.loads(body))
            n += 1
        return n

    # ---- idempotency ------------------------------------------------------------------
    def begin(
        self, key: str, *, ttl_seconds: float, lock_seconds: float, now: float | None = None
    ) -> BeginResult:
        """Claim ``key`` for processing.

        Returns STARTED when the caller now holds the in-progress lock, COMPLETED when the
        work was done before (a duplicate), IN_PROGRESS when another worker holds an
        unexpired lock. An expired lock is taken over by compare-and-swap.
        """
        t = time.time() if now is None else now
        data = {"status": "IN_PROGRESS", "lock_expires_at": t + lock_seconds, "started_at": t}
        for _ in range(5):
            current = self.get(IDEMPOTENCY, key)
            if current is not None and current.data.get("status") == "COMPLETED":
                return BeginResult.COMPLETED
            if current is not None and float(current.data.get("lock_expires_at", 0)) > t:
                return BeginResult.IN_PROGRESS
            try:  # absent, or an expired lock taken over
                self.replace(IDEMPOTENCY, key, data, current, expires_at=t + ttl_seconds)
                return BeginResult.STARTED
            except ConditionFailed:
                continue  # somebody else moved first: look again
        return BeginResult.IN_PROGRESS

    def complete(self, key: str, result: dict[str, Any] | None = None) -> None:
        """Mark ``key`` COMPLETED, keeping its TTL."""
        current = self.get(IDEMPOTENCY, key)
        expires = current.expires_at if current else None
        data = {"status": "COMPLETED", "completed_at": time.time(), "result": result or {}}
        self.put(IDEMPOTENCY, key, data, expires_at=expires)

    def release(self, key: str) -> None:
        """Drop an in-progress claim after a failure so a retry can start again."""
        current = self.get(IDEMPOTENCY, key)
        if current is not None and current.data.get("status") == "IN_PROGRESS":
            with contextlib.suppress(ConditionFailed):
                self.delete(IDEMPOTENCY, key, expected_version=current.version)

    # ---- run log and event log --------------------------------------------------------
    def log_run(self, run_key: str, entry: dict[str, Any]) -> None:
        """Create or replace one run-log entry (keys sort by start time)."""
        self.put(RUNS, run_key, entry)

    def runs(self, limit: int = 20) -> list[dict[str, Any]]:
        """The most recent run-log entries, newest first."""
        return [dict(i.data, run_key=i.key) for i in self.query(RUNS, limit=limit, reverse=True)]

    def emit_event(self, detail_type: str, detail: dict[str, Any]) -> dict[str, Any]:
        """Append an event (EventBridge shape) to the local event log and return it."""
        now = time.time()
        event_id = str(uuid.uuid4())
        event: dict[str, Any] = {
            "id": event_id,
            "source": "lakeline",
            "detail-type": detail_type,
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
            "detail": detail,
        }
        self.put(EVENTS, self.event_mark(now) + event_id, event)  # keys sort by emit time
        return event

    def events_after(
        self, mark: str, detail_type: str | None = None
    ) -> list[tuple[str, dict[str, Any]]]:
        """``(key, event)`` of the events appended after ``mark`` ("" for all; see
        :meth:`event_mark`), oldest first, optionally of one detail type. A reader that keeps
        its place reads only what is new, however long the log grows."""
        found = [(i.key, i.data) for i in self.query(EVENTS, after=mark or None)]
        if detail_type is not None:
            found = [(k, e) for k, e in found if e.get("detail-type") == detail_type]
        return found

    @staticmethod
    def event_mark(at: float) -> str:
        """The place of a point in time in the event log (an event's key is its emit time):
        :meth:`events_after` it gives the events emitted later."""
        return f"{at:017.6f}#"

    def events(self, detail_type: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """The most recent events, newest first, optionally of one detail type."""
        found = [i.data for i in self.query(EVENTS, reverse=True)]
        if detail_type is not None:
            found = [e for e in found if e.get("detail-type") == detail_type]
        return found[:limit]

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections (optional)."""
