"""lakeline: an event-driven medallion lakehouse.

Files land; lakeline ingests them exactly once, transforms them into typed Parquet and Iceberg
tables, keeps every rejected record with its reason, and answers SQL. It runs on one machine
with no service (filesystem + SQLite + DuckDB) and the same pipelines deploy to AWS serverless.

The public surface, for writing a pipeline in Python and running it::

    import lakeline

    class Hello(lakeline.Pipeline):
        name = "hello"

        def run(self, lake):
            return [lakeline.Report(self.name, "SUCCEEDED", "hello: nothing to do")]

    lakeline.register_pipeline(Hello())
    lake = lakeline.open_lake("./lake", create=True)
    print(lakeline.run(lake)["batch_runs"])

Names are loaded on first use, so ``import lakeline`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from lakeline.version import __version__

if TYPE_CHECKING:
    from lakeline.api import open_lake, put, query, run
    from lakeline.errors import (
        ConditionFailed,
        ConfigError,
        DataError,
        InvalidKeyError,
        LakelineError,
        LockedError,
        MessageError,
        NotFoundError,
        TerminalError,
        TransientError,
        UsageError,
    )
    from lakeline.lake import Lake
    from lakeline.pipelines.base import Generator, GenOptions, Pipeline, Report, Schedule, TaskSpec
    from lakeline.pipelines.registry import register_pipeline, unregister_pipeline
    from lakeline.pipelines.stream import StreamPipeline
    from lakeline.stages.spec import CsvOptions, StreamSpec, StreamTable
    from lakeline.tables.schema import Field, TableSpec

#: every public name and the module that defines it.
_EXPORTS = {
    # a name here may not be a submodule's (lakeline.sql is one: the function is query)
    "open_lake": "lakeline.api", "put": "lakeline.api", "run": "lakeline.api", "query": "lakeline.api",
    "Lake": "lakeline.lake",
    "Pipeline": "lakeline.pipelines.base", "Report": "lakeline.pipelines.base",
    "TaskSpec": "lakeline.pipelines.base", "Schedule": "lakeline.pipelines.base",
    "Generator": "lakeline.pipelines.base", "GenOptions": "lakeline.pipelines.base",
    "StreamPipeline": "lakeline.pipelines.stream",
    "register_pipeline": "lakeline.pipelines.registry", "unregister_pipeline": "lakeline.pipelines.registry",
    "Field": "lakeline.tables.schema", "TableSpec": "lakeline.tables.schema",
    "StreamSpec": "lakeline.stages.spec", "StreamTable": "lakeline.stages.spec",
    "CsvOptions": "lakeline.stages.spec",
    **dict.fromkeys(("LakelineError", "ConfigError", "UsageError", "NotFoundError", "InvalidKeyError",
                     "ConditionFailed", "TransientError", "LockedError", "TerminalError", "MessageError",
                     "DataError"), "lakeline.errors"),
}

__all__ = [
    "ConditionFailed", "ConfigError", "CsvOptions", "DataError", "Field", "GenOptions", "Generator",
    "InvalidKeyError", "Lake", "LakelineError", "LockedError", "MessageError", "NotFoundError", "Pipeline",
    "Report", "Schedule", "StreamPipeline", "StreamSpec", "StreamTable", "TableSpec", "TaskSpec",
    "TerminalError", "TransientError", "UsageError", "__version__", "open_lake", "put", "query",
    "register_pipeline", "run", "unregister_pipeline",
]
assert sorted([*_EXPORTS, "__version__"]) == __all__  # one list, kept in step with the map above


def __getattr__(name: str) -> Any:
    """Import a public name from its module on first use (PEP 562)."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'lakeline' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
