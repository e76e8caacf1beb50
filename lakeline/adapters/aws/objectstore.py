"""S3 object store: each zone is a bucket plus a key prefix.

``zones`` maps every zone to ``(bucket, prefix)``: one bucket per zone (prefix ``""``), one
bucket for the whole lake (prefixes ``landing/``, ``raw/``, ...) or any mix. Keys are validated
exactly as on the local backend, then stored as ``prefix + key``.

Objects are written with a single ``PutObject`` (never multipart), so the etag S3 reports is
the hex MD5 of the content, as the port promises; a ``Content-MD5`` header makes S3 reject a
body corrupted in transit. Two caveats: buckets encrypted with SSE-KMS report etags that are
not MD5s (they are still stable per content version), and objects uploaded by other tools in
several parts carry multipart etags (``<md5-of-md5s>-<parts>``). A single ``PutObject`` or
``CopyObject`` is limited to 5 GiB. S3 has no directories, so unlike the local backend an
object ``a`` and an object ``a/b`` can coexist.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import IO, Any

from lakeline.adapters.aws.session import error_code, translate_errors
from lakeline.errors import ConfigError, InvalidKeyError, NotFoundError, UsageError
from lakeline.ports.objectstore import ObjectInfo, ObjectStore, validate_key, validate_zone

#: The largest object a single PutObject / CopyObject accepts.
MAX_SINGLE_PUT = 5 * 1024**3
_BLOCK = 8 * 1024 * 1024
_MISSING = frozenset({"NoSuchKey", "404", "NotFound"})


def _aware(value: datetime) -> datetime:
    """A timezone-aware UTC datetime (botocore gives tzutc(); normalise to ``datetime.UTC``)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _etag(raw: str) -> str:
    return raw.strip('"')


def _response_time(response: dict[str, Any]) -> datetime:
    """The ``Date`` header of a response (what S3 records as LastModified, to the second)."""
    header = response.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date")
    if header:
        try:
            return _aware(parsedate_to_datetime(header))
        except (TypeError, ValueError):
            pass
    return datetime.now(UTC).replace(microsecond=0)


def _md5_of(src: IO[bytes]) -> hashlib._Hash:
    md5 = hashlib.md5(usedforsecurity=False)
    while block := src.read(_BLOCK):
        md5.update(block)
    return md5


class S3ObjectStore(ObjectStore):
    """:class:`ObjectStore` on S3; ``zones`` maps zone → ``(bucket, key prefix)``.

    The constructor makes no API call; missing buckets surface as :class:`ConfigError` on
    first use. ``s3_client`` is a boto3 S3 client (thread-safe, shared).
    """

    def __init__(self, s3_client: Any, zones: dict[str, tuple[str, str]]) -> None:
        self.s3 = s3_client
        self.zones: dict[str, tuple[str, str]] = {}
        for zone, (bucket, prefix) in zones.items():
            validate_zone(zone)
            if not bucket:
                raise ConfigError(f"zone {zone!r} has no bucket")
            stripped = prefix.strip("/")
            self.zones[zone] = (bucket, stripped + "/" if stripped else "")

    def __repr__(self) -> str:
        return f"S3ObjectStore({self.zones!r})"

    # ---- locations ----------------------------------------------------------------------
    def _zone(self, zone: str) -> tuple[str, str]:
        validate_zone(zone)
        try:
            return self.zones[zone]
        except KeyError:
            raise ConfigError(f"zone {zone!r} has no S3 location (aws.zone_{zone})") from None

    def _loc(self, zone: str, key: str) -> tuple[str, str]:
        """``(bucket, full key)`` of an object; bad zones and keys are refused first."""
        try:
            validate_key(key)
        except UnicodeEncodeError:
            raise InvalidKeyError(f"object key {key!r} is not valid Unicode text") from None
        bucket, prefix = self._zone(zone)
        return bucket, prefix + key

    def bucket(self, zone: str) -> str:
        """The bucket holding ``zone``."""
        return self._zone(zone)[0]

    def local_path(self, zone: str, key: str) -> Path | None:
        """None: S3 objects have no local path."""
        self._loc(zone, key)
        return None

    def arrow_filesystem(self) -> Any:
        """``pyarrow.fs.S3FileSystem`` with the client's region and endpoint (credentials from
        the environment): DuckDB queries Arrow datasets over it without its httpfs extension,
        which would be a download."""
        import pyarrow.fs as pafs  # heavy: pyarrow

        options: dict[str, Any] = {"region": self.s3.meta.region_name}
        endpoint = self.s3.meta.endpoint_url
        if endpoint and not endpoint.endswith(".amazonaws.com"):
            scheme, _, host = endpoint.partition("://")
            options.update(endpoint_override=host, scheme=scheme)
        return pafs.S3FileSystem(**options)

    def parquet_dataset(self, zone: str, keys: Sequence[str]) -> Any:
        """An Arrow dataset over S3 objects through :meth:`arrow_filesystem`."""
        import pyarrow.dataset as pads  # heavy: pyarrow

        files = ["/".join(self._loc(zone, k)) for k in keys]
        return pads.dataset(files, filesystem=self.arrow_filesystem(), format="parquet")

    def scan_uri(self, zone: str, prefix: str = "") -> str:
        """``s3://bucket/<zone prefix><prefix>`` for DuckDB globs (httpfs)."""
        bucket, zprefix = self._zone(zone)
        stripped = prefix.strip("/")
        if stripped:
            validate_key(stripped)
        return f"s3://{bucket}/{zprefix}{stripped}"

    def _missing(self, exc: Exception, zone: str, key: str) -> Exception:
        """The lakeline error for a failed call on one object (or ``exc`` itself)."""
        code = error_code(exc)
        if code in _MISSING:
            return NotFoundError(f"no object {key!r} in zone {zone!r}")
        if code == "NoSuchBucket":
            return ConfigError(f"zone {zone!r}: bucket {self._zone(zone)[0]!r} does not exist")
        return exc

    # ---- writing ------------------------------------------------------------------------
    def _put(self, zone: str, key: str, body: bytes | IO[bytes], md5: hashlib._Hash,
             size: int) -> ObjectInfo:
        from botocore.exceptions import ClientError

        if size > MAX_SINGLE_PUT:
            raise UsageError(
                f"object {key!r} is {size} bytes; a single S3 PUT stores at most 5 GiB"
            )
        bucket, full = self._loc(zone, key)
        try:
            with translate_errors(f"S3 PutObject s3://{bucket}/{full}"):
                resp = self.s3.put_object(
                    Bucket=bucket, Key=full, Body=body,
                    ContentMD5=base64.b64encode(md5.digest()).decode("ascii"),
                )
        except ClientError as exc:
            raise self._missing(exc, zone, key) from exc
        etag = _etag(resp.get("ETag", "")) or md5.hexdigest()
        return ObjectInfo(zone, key, size, etag, _response_time(resp))

    def put(self, zone: str, key: str, data: bytes) -> ObjectInfo:
        """Store ``data`` with one PutObject (atomic: readers see old or new)."""
        self._loc(zone, key)
        body = data if isinstance(data, bytes) else bytes(data)
        return self._put(zone, key, body, hashlib.md5(body, usedforsecurity=False), len(body))

    def put_file(self, zone: str, key: str, path: Path, *, move: bool = False) -> ObjectInfo:
        """Upload the file ``path`` with one PutObject (streamed; not multipart, so the etag
        stays the MD5). With ``move`` the local file is deleted after the upload succeeded."""
        self._loc(zone, key)
        src = Path(path)
        with open(src, "rb") as f:
            md5 = _md5_of(f)
            size = f.tell()
            f.seek(0)
            info = self._put(zone, key, f, md5, size)
        if move:
            src.unlink(missing_ok=True)
        return info

    def copy(self, src_zone: str, src_key: str, dst_zone: str, dst_key: str) -> ObjectInfo:
        """Server-side CopyObject (atomic at the destination, same etag)."""
        from botocore.exceptions import ClientError

        src_bucket, src_full = self._loc(src_zone, src_key)
        dst_bucket, dst_full = self._loc(dst_zone, dst_key)
        if (src_bucket, src_full) == (dst_bucket, dst_full):
            return self.head(dst_zone, dst_key)  # S3 refuses a no-op self copy
        try:
            with translate_errors(f"S3 CopyObject s3://{src_bucket}/{src_full}"):
                self.s3.copy_object(
                    Bucket=dst_bucket, Key=dst_full,
                    CopySource={"Bucket": src_bucket, "Key": src_full},
                )
        except ClientError as exc:
            if error_code(exc) == "NoSuchBucket":
                raise ConfigError(
                    f"bucket {src_bucket!r} or {dst_bucket!r} does not exist"
                ) from exc
            raise self._missing(exc, src_zone, src_key) from exc
        return self.head(dst_zone, dst_key)

    def delete(self, zone: str, key: str) -> None:
        """DeleteObject; S3 deletes are idempotent (absent is fine)."""
        from botocore.exceptions import ClientError

        bucket, full = self._loc(zone, key)
        try:
            with translate_errors(f"S3 DeleteObject s3://{bucket}/{full}"):
                self.s3.delete_object(Bucket=bucket, Key=full)
        except ClientError as exc:
            err = self._missing(exc, zone, key)
            if isinstance(err, NotFoundError):
                return
            raise err from exc

    # ---- reading ------------------------------------------------------------------------
    def _get(self, zone: str, key: str, **extra: Any) -> bytes:
        from botocore.exceptions import ClientError

        bucket, full = self._loc(zone, key)
        try:
            with translate_errors(f"S3 GetObject s3://{bucket}/{full}"):
                resp = self.s3.get_object(Bucket=bucket, Key=full, **extra)
                body = resp["Body"]
                try:
                    return bytes(body.read())
                finally:
                    body.close()
        except ClientError as exc:
            if error_code(exc) == "InvalidRange":
                return b""  # the object exists; the range starts at or past its end
            raise self._missing(exc, zone, key) from exc

    def get(self, zone: str, key: str) -> bytes:
        """The whole content; :class:`NotFoundError` if absent."""
        return self._get(zone, key)

    def get_range(self, zone: str, key: str, start: int, end: int) -> bytes:
        """Bytes ``[start, end)`` via ``Range: bytes=start-(end-1)``; ``end`` past the size is
        clamped and a range starting at or past the end gives ``b""``."""
        if start < 0 or end < 0:
            raise ValueError("get_range: start and end must be >= 0")
        if end <= start:
            self.head(zone, key)  # still NotFoundError for a missing object
            return b""
        return self._get(zone, key, Range=f"bytes={start}-{end - 1}")

    def head(self, zone: str, key: str) -> ObjectInfo:
        """HeadObject: size, etag and LastModified (UTC)."""
        from botocore.exceptions import ClientError

        bucket, full = self._loc(zone, key)
        try:
            with translate_errors(f"S3 HeadObject s3://{bucket}/{full}"):
                resp = self.s3.head_object(Bucket=bucket, Key=full)
        except ClientError as exc:
            raise self._missing(exc, zone, key) from exc
        return ObjectInfo(
            zone, key, int(resp["ContentLength"]), _etag(resp["ETag"]),
            _aware(resp["LastModified"]),
        )

    def list(self, zone: str, prefix: str = "") -> Iterator[ObjectInfo]:
        """ListObjectsV2 (paginated) under the zone prefix + ``prefix``, in key order.

        Keys that the port would refuse (``a//b``, folder markers ending in ``/``) are
        skipped: they cannot be addressed through the port anyway.
        """
        from botocore.exceptions import ClientError

        if not isinstance(prefix, str) or "\x00" in prefix:
            raise InvalidKeyError(f"invalid list prefix {prefix!r}")
        bucket, zprefix = self._zone(zone)
        paginator = self.s3.get_paginator("list_objects_v2")
        try:
            with translate_errors(f"S3 ListObjectsV2 s3://{bucket}/{zprefix}{prefix}"):
                for page in paginator.paginate(Bucket=bucket, Prefix=zprefix + prefix):
                    for obj in page.get("Contents", []):
                        key = obj["Key"][len(zprefix):]
                        try:
                            validate_key(key)
                        except (InvalidKeyError, UnicodeEncodeError):
                            continue
                        yield ObjectInfo(zone, key, int(obj["Size"]), _etag(obj["ETag"]),
                                         _aware(obj["LastModified"]))
        except ClientError as exc:
            if error_code(exc) == "NoSuchBucket":
                raise ConfigError(f"zone {zone!r}: bucket {bucket!r} does not exist") from exc
            raise
