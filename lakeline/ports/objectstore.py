"""Object store port: zones of objects with S3 semantics (etag = MD5 of single-part content)."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from lakeline.config import ZONES
from lakeline.errors import InvalidKeyError, NotFoundError

#: characters refused in keys: C0 controls, DEL, C1 controls, bidi embeddings/overrides/isolates
_UNPRINTABLE = re.compile("[\x01-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


@dataclass(frozen=True)
class ObjectInfo:
    """Metadata of one stored object, as S3 ``HeadObject`` reports it."""

    zone: str
    key: str
    size: int
    etag: str  # hex MD5 of the content, without quotes
    last_modified: datetime  # timezone-aware UTC


def validate_key(key: str) -> str:
    """Return ``key`` if it is safe to store; raise :class:`InvalidKeyError` otherwise.

    Refused: empty keys, NUL characters, absolute paths, backslashes, empty or ``.``/``..``
    path segments — anything that could make a filesystem backend write outside its zone —
    and control characters (LF, CR, tab, C0/C1 controls, DEL) and the bidi embedding,
    override and isolate characters (U+202A to U+202E, U+2066 to U+2069): they forge lines in logs
    and listings and make a key display as another (``a<U+202E>txt.exe``).
    """
    if not isinstance(key, str) or not key:
        raise InvalidKeyError("object key must be a non-empty string")
    if "\x00" in key:
        raise InvalidKeyError(f"object key {key!r} contains a NUL character")
    bad = _UNPRINTABLE.search(key)
    if bad is not None:
        char = bad.group()
        raise InvalidKeyError(f"object key {key!r} contains the control character U+{ord(char):04X} "
                              f"at position {bad.start()}; keys must be printable text")
    if key.startswith("/"):
        raise InvalidKeyError(f"object key {key!r} is absolute; keys are relative to their zone")
    if "\\" in key:
        raise InvalidKeyError(f"object key {key!r} contains a backslash")
    for segment in key.split("/"):
        if segment in {"", ".", ".."}:
            raise InvalidKeyError(
                f"object key {key!r} has an empty, '.' or '..' segment; it could escape its zone"
            )
    if len(key.encode("utf-8")) > 1024:
        raise InvalidKeyError("object key is longer than 1024 bytes")
    return key


def validate_zone(zone: str) -> str:
    """Return ``zone`` if it is one of the lake's zones."""
    if zone not in ZONES:
        raise InvalidKeyError(f"unknown zone {zone!r}; zones are {', '.join(ZONES)}")
    return zone


class ObjectStore(ABC):
    """Objects in zones ``landing, raw, error, silver, gold, tmp``.

    Writes are atomic: a reader sees the old object or the new one, never a partial one.
    """

    @abstractmethod
    def bucket(self, zone: str) -> str:
        """The bucket name events and idempotency keys use for ``zone``."""

    @abstractmethod
    def put(self, zone: str, key: str, data: bytes) -> ObjectInfo:
        """Store ``data`` under ``key`` atomically and return its metadata."""

    @abstractmethod
    def put_file(self, zone: str, key: str, path: Path, *, move: bool = False) -> ObjectInfo:
        """Store the local file ``path``; with ``move`` the file may be consumed (renamed)."""

    @abstractmethod
    def get(self, zone: str, key: str) -> bytes:
        """The whole content; :class:`NotFoundError` if absent."""

    @abstractmethod
    def get_range(self, zone: str, key: str, start: int, end: int) -> bytes:
        """Bytes ``[start, end)`` of the object (like an HTTP Range GET)."""

    @abstractmethod
    def head(self, zone: str, key: str) -> ObjectInfo:
        """Metadata of the object; :class:`NotFoundError` if absent."""

    @abstractmethod
    def list(self, zone: str, prefix: str = "") -> Iterator[ObjectInfo]:
        """Objects whose key starts with ``prefix``, in key order."""

    @abstractmethod
    def copy(self, src_zone: str, src_key: str, dst_zone: str, dst_key: str) -> ObjectInfo:
        """Copy an object (atomically at the destination)."""

    @abstractmethod
    def delete(self, zone: str, key: str) -> None:
        """Delete an object; deleting an absent object is not an error."""

    def exists(self, zone: str, key: str) -> bool:
        """True if the object exists."""

        try:
            self.head(zone, key)
        except NotFoundError:
            return False
        return True

    @abstractmethod
    def local_path(self, zone: str, key: str) -> Path | None:
        """A filesystem path DuckDB can read directly, or None for remote stores."""

    @abstractmethod
    def scan_uri(self, zone: str, prefix: str = "") -> str:
        """A URI DuckDB can glob under (a directory path or ``s3://bucket/prefix``)."""

    def arrow_filesystem(self) -> Any:
        """A ``pyarrow.fs`` filesystem that reads this store's :meth:`scan_uri` locations (with
        the scheme removed): the local filesystem here; remote stores override it."""
        import pyarrow.fs as pafs  # heavy: pyarrow

        return pafs.LocalFileSystem()

    def parquet_dataset(self, zone: str, keys: Sequence[str]) -> Any:
        """A ``pyarrow.dataset`` over the Parquet objects ``keys`` of ``zone`` (scanned lazily,
        filters pushed down to row groups), for DuckDB to query where it cannot read the
        objects itself. This default reads local paths; remote stores override it."""
        import pyarrow.dataset as pads  # heavy: pyarrow

        paths = [self.local_path(zone, k) for k in keys]
        if any(p is None for p in paths):
            raise NotImplementedError(f"{type(self).__name__} has no Parquet dataset of remote objects")
        return pads.dataset([str(p) for p in paths], format="parquet")
