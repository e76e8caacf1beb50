"""The chunk message that ingest sends and transform consumes (a claim check).

A message never carries records: it names a byte range of the landed object, so SQS's
256 KiB limit never binds and the data is read once, by the transform, straight from the
object store (a Range GET on S3).
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from typing import Any

import orjson

from lakeline.errors import MessageError

VERSION = 1
#: the state table of finished chunks (key ``<object_id>#<chunk>``).
CHUNKS = "chunks"
#: the event a transform emits after publishing a partition (specs §3).
PARTITION_READY = "silver_partition_ready"


def object_id(bucket: str, key: str, etag: str) -> str:
    """Stable short id of one object version: names its output files and run-log entry."""
    return hashlib.sha256(f"{bucket}/{key}#{etag}".encode()).hexdigest()[:16]


def idempotency_key(bucket: str, key: str, etag: str) -> str:
    """The ingest idempotency key of specs §3: ``s3://<bucket>/<key>#<etag>``."""
    return f"s3://{bucket}/{key}#{etag}"


@dataclass(frozen=True)
class ChunkMessage:
    """One chunk of one object: bytes ``[start, end)``, whose first line is ``first_line``."""

    pipeline: str
    bucket: str
    key: str
    etag: str
    object_id: str
    run_key: str
    chunk: int
    chunks: int
    start: int
    end: int
    first_line: int
    records: int
    format: str = "jsonl"  # "jsonl", "json" (a JSON array: one chunk), "csv" or "parquet" (row groups)
    v: int = VERSION
    lines: int = 0  # lines in [start, end), blank ones included (0: not counted)
    header_start: int = 0  # CSV: the header is bytes [header_start, header_end) of the object
    header_end: int = 0
    text_zone: str = ""  # where the text is read when it is not the landed object itself:
    text_key: str = ""  # the decompressed text of a gzip object (lakeline.stages.gunzip)

    @property
    def text(self) -> tuple[str, str]:
        """``(zone, key)`` of the text the byte ranges refer to."""
        return (self.text_zone, self.text_key) if self.text_key else ("landing", self.key)

    def to_json(self) -> str:
        """The message body."""
        return orjson.dumps(asdict(self)).decode()

    @classmethod
    def from_json(cls, body: str) -> ChunkMessage:
        """Decode a message body; :class:`MessageError` if it is not a chunk message."""
        try:
            data: dict[str, Any] = orjson.loads(body)
            if data.get("v") != VERSION:
                raise MessageError(f"unsupported chunk message version {data.get('v')!r}")
            return cls(**data)
        except (orjson.JSONDecodeError, TypeError) as exc:
            raise MessageError(f"not a chunk message: {exc}") from None
