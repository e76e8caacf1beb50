"""Reference pipelines and the registry that routes landing objects to them.

A landing key's first path segment names its pipeline (``shipments/2026-01-05/a.jsonl``).
"""

from __future__ import annotations

from lakeline.errors import UsageError
from lakeline.pipelines.base import Field, RecordType, StreamPipeline
from lakeline.pipelines.shipments import SHIPMENTS

_PIPELINES: dict[str, StreamPipeline] = {SHIPMENTS.name: SHIPMENTS}


def get_pipeline(name: str) -> StreamPipeline:
    """The pipeline called ``name``; :class:`UsageError` listing the known ones otherwise."""
    try:
        return _PIPELINES[name]
    except KeyError:
        known = ", ".join(sorted(_PIPELINES))
        raise UsageError(f"unknown pipeline {name!r}; known pipelines: {known}") from None


def pipeline_names() -> list[str]:
    """Names of every registered pipeline."""
    return sorted(_PIPELINES)


def pipeline_for_key(key: str) -> StreamPipeline:
    """Route a landing key to its pipeline by the key's first path segment."""
    return get_pipeline(key.split("/", 1)[0])


__all__ = ["Field", "RecordType", "StreamPipeline", "get_pipeline", "pipeline_for_key", "pipeline_names"]
