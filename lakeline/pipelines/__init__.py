"""Reference pipelines and the registry that routes landing objects to them.

A landing key's first path segment names its pipeline (``shipments/2026-01-05/a.jsonl``).
"""

from __future__ import annotations

from lakeline.errors import UsageError
from lakeline.pipelines.base import Field, RecordType, StreamPipeline
from lakeline.pipelines.shipments import SHIPMENTS

_PIPELINES: dict[str, StreamPipeline] = {SHIPMENTS.name: SHIPMENTS}

#: Batch pipelines: landed files wait for `lakeline run`, which validates every file landed
#: since the last run as one run (run folders, _SUCCESS, promotion). Name → silver table.
BATCH_PIPELINES: dict[str, str] = {"transactions": "mortgages/transactions"}
#: Pipelines with their own job over landed files (not chunked by the streaming ingest).
JOB_PIPELINES: frozenset[str] = frozenset({"retail", "carbon"})
#: SQL names of batch tables (``silver.<name>``) → their silver prefix.
BATCH_TABLES: dict[str, str] = {"transactions": "mortgages/transactions"}


def get_pipeline(name: str) -> StreamPipeline:
    """The streaming pipeline called ``name``; :class:`UsageError` listing the known ones."""
    try:
        return _PIPELINES[name]
    except KeyError:
        raise UsageError(f"unknown pipeline {name!r}; known pipelines: "
                         f"{', '.join(pipeline_names())}") from None


def check_pipeline(name: str) -> str:
    """``name`` if it is a streaming or batch pipeline; :class:`UsageError` otherwise."""
    if name in BATCH_PIPELINES or name in JOB_PIPELINES:
        return name
    get_pipeline(name)
    return name


def is_batch_key(key: str) -> bool:
    """True when a landing key belongs to a batch pipeline."""
    first = key.split("/", 1)[0]
    return first in BATCH_PIPELINES or first in JOB_PIPELINES


def pipeline_names() -> list[str]:
    """Names of every registered pipeline (streaming and batch)."""
    return sorted([*_PIPELINES, *BATCH_PIPELINES, *JOB_PIPELINES])


def pipeline_for_key(key: str) -> StreamPipeline:
    """Route a landing key to its pipeline by the key's first path segment."""
    return get_pipeline(key.split("/", 1)[0])


__all__ = [
    "BATCH_PIPELINES", "BATCH_TABLES", "JOB_PIPELINES", "Field", "RecordType", "StreamPipeline",
    "check_pipeline", "get_pipeline", "is_batch_key", "pipeline_for_key", "pipeline_names",
]
