"""Row counts of silver Parquet objects read from their footers (two range reads per object).

Runs written by Glue or Spark carry an empty ``_SUCCESS``: their row count is not in the
marker, so the gate counts it from the files. Only the footer is fetched (the last 8 bytes
give its length, then the footer itself), never the data, so a run of large files costs two
small GETs per file on S3.
"""

from __future__ import annotations

import io
import struct

from lakeline.errors import LakelineError
from lakeline.lake import Lake

_MAGIC = b"PAR1"
_TAIL = 8  # 4-byte little-endian footer length + "PAR1"


class ParquetFooterError(LakelineError):
    """A silver object that should be Parquet has no readable footer (code ``INVALID_PARQUET``)."""

    def __init__(self, key: str, why: str) -> None:
        super().__init__(f"silver object {key} is not a readable Parquet file: {why}", code="INVALID_PARQUET")


def parquet_rows(lake: Lake, key: str) -> int:
    """The number of rows the footer of silver object ``key`` declares."""
    import pyarrow as pa  # heavy: only runs without metrics in their marker need it
    import pyarrow.parquet as pq  # heavy: as above

    size = lake.store.head("silver", key).size
    if size < len(_MAGIC) + _TAIL:
        raise ParquetFooterError(key, f"{size} bytes is too short for a Parquet file")
    tail = lake.store.get_range("silver", key, size - _TAIL, size)
    if tail[4:] != _MAGIC:
        raise ParquetFooterError(key, "it does not end with the PAR1 magic")
    footer_len = struct.unpack("<I", tail[:4])[0]
    if footer_len + _TAIL + len(_MAGIC) > size:
        raise ParquetFooterError(key, f"its footer length {footer_len} exceeds the object ({size} bytes)")
    footer = lake.store.get_range("silver", key, size - _TAIL - footer_len, size)
    try:
        # the footer alone, behind the leading magic, is a file pyarrow can read metadata from
        meta = pq.read_metadata(io.BytesIO(_MAGIC + footer))
    except (pa.ArrowException, OSError) as exc:
        raise ParquetFooterError(key, str(exc)) from None
    return int(meta.num_rows)
