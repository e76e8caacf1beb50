"""The rejects table: one row per rejected record or object, with its reason, file, line and offset.

Every pipeline writes its rejects as Parquet under ``error/rejects/<pipeline>/``; SQL reads them
all as ``quarantine.rejects``.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lakeline.lake import Lake

if TYPE_CHECKING:
    import pyarrow as pa


def reject_row(**values: Any) -> dict[str, Any]:
    """A reject row with every column of the rejects table present."""
    row = dict.fromkeys(REJECT_COLUMNS)
    row.update(values)
    return row


REJECT_COLUMNS = (
    "pipeline", "bucket", "key", "etag", "chunk", "line_no", "byte_offset",
    "record_type", "reason_code", "message", "raw", "rejected_at",
)


def write_rejects(lake: Lake, rows: list[dict[str, Any]], pipeline: str, name: str, work: Path) -> str:
    """Write reject rows as one Parquet file under ``error/rejects/<pipeline>/``."""
    import pyarrow as pa  # heavy: imported when used, not by importing lakeline
    import pyarrow.parquet as pq  # heavy: imported when used, not by importing lakeline
    table = pa.Table.from_pylist(rows, schema=rejects_schema())
    path = work / f"rejects-{name}.parquet"
    pq.write_table(table, path, compression="zstd")
    key = f"rejects/{pipeline}/part-{name}.parquet"
    lake.store.put_file("error", key, path, move=True)
    return key


@functools.cache
def rejects_schema() -> pa.Schema:
    """The Arrow schema of the rejects table (column order: :data:`REJECT_COLUMNS`)."""
    import pyarrow as pa  # heavy: imported when used, not by importing lakeline

    fields: list[pa.Field[Any]] = [
        pa.field("pipeline", pa.string()), pa.field("bucket", pa.string()), pa.field("key", pa.string()),
        pa.field("etag", pa.string()), pa.field("chunk", pa.int64()), pa.field("line_no", pa.int64()),
        pa.field("byte_offset", pa.int64()), pa.field("record_type", pa.string()),
        pa.field("reason_code", pa.string()), pa.field("message", pa.string()), pa.field("raw", pa.string()),
        pa.field("rejected_at", pa.timestamp("us", tz="UTC")),
    ]
    schema = pa.schema(fields)
    assert tuple(schema.names) == REJECT_COLUMNS
    return schema
