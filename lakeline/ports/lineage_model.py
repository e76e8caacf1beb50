"""The lineage ledger's data model: nodes of a tree per root, and the actions they record.

A *root* is one unit of work that entered the lake (a landed file, a batch run); every node
belongs to exactly one root and names its parent. The first node of a root has
``parent_id == root_id`` (specs §4), so a tree can be walked both ways: from a file down to
every batch and record it produced, and from a record back up to its raw file::

    root_id ─┐ (not a node: the first node's parent)
             └── RAW_DATA_INPUT  landing/shipments/a.jsonl
                  └── FILE_INGESTED  (2 chunks, 100000 records)
                       ├── BATCH_WRITTEN   silver/shipments/dt=…/part-…-c00000.parquet
                       ├── REJECTS_WRITTEN error/rejects/shipments/part-…-c00000.parquet
                       └── RUN_COMPLETE    (loaded 99998, rejected 2)
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from lakeline.errors import UsageError
from lakeline.identifiers import checked_text

#: The actions lakeline records. Other upper-case identifiers are accepted too (a user's own
#: pipeline steps); an action ending in ``_FAIL`` or ``_FAILED`` marks a failed branch.
ACTIONS: tuple[str, ...] = (
    # CarbonLake (seed 003, carbon.md)
    "RAW_DATA_INPUT",
    "PROFILE_COMPLETE",
    "DQ_CHECK_PASS",
    "DQ_CHECK_FAIL",
    "GLUE_BATCH_SPLIT",
    "CALCULATION_COMPLETE",
    "CALCULATION_FAILED",
    # the other pipelines (shipments, transactions, retail)
    "FILE_INGESTED",
    "FILE_FAILED",
    "BATCH_WRITTEN",
    "REJECTS_WRITTEN",
    "RUN_COMPLETE",
    "RUN_FAILED",
)
FAILED_SUFFIXES: tuple[str, ...] = ("_FAIL", "_FAILED")

_ACTION_RE = re.compile(r"[A-Z][A-Z0-9_]{0,63}")
#: Control characters are refused in ids: the DynamoDB ledger joins keys with U+001F.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
#: DynamoDB allows 1024 bytes in a sort key; ids are far shorter (uuid hex: 32).
MAX_ID_BYTES = 1024
_NAMESPACE = uuid.UUID("6f0c3c1e-8d2a-4f57-9b1e-1a1e11e0a7a0")


@dataclass(frozen=True)
class Node:
    """One node of a root's tree. ``attrs`` holds small extra facts (counts, a failure's
    reason); ``recorded_at`` is ISO-8601 UTC (``2026-01-29T12:00:00.123456Z``)."""

    root_id: str
    node_id: str
    parent_id: str
    action_taken: str
    storage_location: str
    recorded_at: str
    attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def is_first(self) -> bool:
        """True for a root's first node (its parent is the root itself)."""
        return self.parent_id == self.root_id

    @property
    def failed(self) -> bool:
        """True when the action marks a failure (``…_FAIL`` / ``…_FAILED``)."""
        return is_failure(self.action_taken)

    def to_dict(self) -> dict[str, Any]:
        """The node as plain JSON types."""
        return {
            "root_id": self.root_id, "node_id": self.node_id, "parent_id": self.parent_id,
            "action_taken": self.action_taken, "storage_location": self.storage_location,
            "recorded_at": self.recorded_at, "attrs": dict(self.attrs),
        }


def new_id() -> str:
    """A fresh node or root id (uuid4, 32 hex digits)."""
    return uuid.uuid4().hex


def derived_id(*parts: str) -> str:
    """A deterministic id (uuid5 hex) for ``parts``: the same input always names the same root
    or node, so a redelivered event or a rerun records over its earlier nodes instead of
    forking a second tree."""
    return uuid.uuid5(_NAMESPACE, "\x1f".join(parts)).hex


def now_iso(at: datetime | None = None) -> str:
    """ISO-8601 UTC with microseconds and ``Z`` (sorts as text in time order)."""
    moment = datetime.now(UTC) if at is None else at.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def is_failure(action: str) -> bool:
    """True when ``action`` marks a failed branch."""
    return action.endswith(FAILED_SUFFIXES)


def check_action(action: Any) -> str:
    """``action`` if it is an upper-case identifier (``[A-Z][A-Z0-9_]*``, at most 64 chars)."""
    if not isinstance(action, str) or not _ACTION_RE.fullmatch(action):
        raise UsageError(
            f"lineage action_taken must be an upper-case identifier like RAW_DATA_INPUT, got {action!r}"
        )
    return action


def check_id(what: str, value: Any) -> str:
    """``value`` if it is a usable id: a non-empty string of at most 1024 UTF-8 bytes."""
    text = checked_text(value, f"lineage {what}", MAX_ID_BYTES, f"at most {MAX_ID_BYTES} are allowed")
    if _CONTROL.search(text):
        raise UsageError(f"lineage {what} {text!r} contains a control character")
    return text
