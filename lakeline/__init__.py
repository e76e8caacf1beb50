"""lakeline: an event-driven medallion lakehouse.

Files land; lakeline ingests them exactly once, transforms them into typed Parquet, keeps
every rejected record with its reason, and answers SQL. It runs on one machine with no
service (filesystem + SQLite + DuckDB) and the same pipelines deploy to AWS serverless.
"""

from lakeline.errors import LakelineError

__version__ = "0.1.0"
__all__ = ["LakelineError", "__version__"]
