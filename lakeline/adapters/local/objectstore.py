"""Local object store: one directory per zone, atomic writes, cached MD5 etags.

Layout under ``root``::

    <zone>/<key>                           the objects (zones: landing, raw, error, ...)
    .tmp/                                  temp files of in-flight writes (same filesystem)
    <zone>/.lakeline-tmp/                  the same, for a zone mounted on another filesystem
    .meta/<zone>/<hh>/<sha256(key)>.json   etag cache: {key, etag, size, mtime_ns, ino, ctime_ns}

A write goes to a temp file in ``.tmp``, is fsynced, renamed into place with ``os.replace``
and the parent directory is fsynced, so readers see the old object or the new one and a
committed write survives a crash. The etag is the hex MD5 of the content, as S3 reports it for
single-part uploads. Hashing a big file on every ``head`` is slow, so the etag is cached in a
sidecar written after the rename (a crash in between only costs a recompute); the sidecar is
trusted only while the file's size, mtime, inode and ctime still match, so a file copied or
edited straight in the zone directory gets its etag recomputed.

Sidecars are named by a hash of the key rather than by the key itself: a mirrored name such
as ``<key>.json`` would collide for keys ``a`` and ``a.json/x``.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import mmap
import os
import stat
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import orjson

from lakeline.atomic import replace_file
from lakeline.config import ZONES
from lakeline.errors import InvalidKeyError, NotFoundError, TransientError
from lakeline.ports.objectstore import ObjectInfo, ObjectStore, validate_key, validate_zone
from lakeline.writeback import start_writeback

BLOCK = 8 * 1024 * 1024
NAME_MAX = 255  # bytes per path segment on common filesystems
_RETRIES = 5
#: temp directory inside a zone that is a mount point of its own (a rename cannot cross
#: filesystems); never listed as objects
ZONE_TMP = ".lakeline-tmp"
#: errno values that mean the storage, not the object, is at fault: each gets a plain reason
_STORAGE_FAULTS = {
    errno.ENOSPC: ("STORAGE_FULL", "the disk is full"),
    errno.EDQUOT: ("STORAGE_FULL", "the disk quota is exceeded"),
    errno.EROFS: ("STORAGE_READ_ONLY", "the filesystem is mounted read-only"),
    errno.EPERM: ("STORAGE_READ_ONLY", "the zone is read-only or immutable (chattr +i?)"),
    errno.EACCES: ("STORAGE_READ_ONLY", "the zone is not writable (permissions)"),
}


def storage_fault(exc: OSError, zone: str, key: str) -> TransientError | None:
    """The clear error for an ``OSError`` that says the storage cannot take a write (a full
    disk, a read-only or immutable zone), or ``None`` for any other ``OSError``. It is a
    :class:`TransientError`: once the disk has room again the same write succeeds."""
    found = _STORAGE_FAULTS.get(exc.errno or 0)
    if found is None:
        return None
    code, hint = found
    where = f" at {exc.filename}" if exc.filename else ""
    return TransientError(f"cannot write {key!r} to zone {zone!r}: {exc.strerror}{where} ({hint})",
                          code=code)


def _current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_FILE_MODE = 0o666 & ~_current_umask()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _copy_stream(src: IO[bytes], dst: IO[bytes] | None) -> str:
    """Read ``src`` to the end in 8 MiB blocks (writing to ``dst`` if given); return MD5.

    When copying, each block is hashed on a helper thread while it is written (hashlib
    releases the GIL), so a put costs about max(hash, write) instead of their sum.
    """
    md5 = hashlib.md5(usedforsecurity=False)
    if dst is None:
        while block := src.read(BLOCK):
            md5.update(block)
        return md5.hexdigest()
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending: Future[None] | None = None
        while block := src.read(BLOCK):
            if pending is not None:
                pending.result()
            pending = pool.submit(md5.update, block)
            dst.write(block)
        if pending is not None:
            pending.result()
    return md5.hexdigest()


def _md5_of(fd: int, size: int) -> str:
    """MD5 of the first ``size`` bytes of the open file ``fd``, read through a memory map."""
    md5 = hashlib.md5(usedforsecurity=False)
    if size:
        with mmap.mmap(fd, size, access=mmap.ACCESS_READ) as view:
            md5.update(view)
    return md5.hexdigest()


def _kernel_copy(src: IO[bytes], dst: IO[bytes]) -> str | None:
    """Copy the whole regular file ``src`` into ``dst`` inside the kernel (``copy_file_range``:
    no trip through Python, about 7x faster than read + write here) and make it durable, while
    a helper thread hashes the source (hashlib releases the GIL). If the source changed
    meanwhile (another identity afterwards), the written bytes are hashed instead, so the etag
    is always the MD5 of what was stored. ``None`` when the kernel cannot copy between these
    files (nothing was written then)."""
    copy_range = getattr(os, "copy_file_range", None)
    try:
        before = os.fstat(src.fileno())
        at_start = src.tell() == 0
    except (OSError, ValueError, io.UnsupportedOperation):
        return None
    # st_size 0 is also what /proc and other pseudo files report whatever they hold: stream
    # those to their end instead (an empty regular file costs one read either way)
    if copy_range is None or not stat.S_ISREG(before.st_mode) or not at_start or before.st_size == 0:
        return None
    with ThreadPoolExecutor(max_workers=1) as pool:
        hashed = pool.submit(_md5_of, src.fileno(), before.st_size)
        done = 0
        try:
            # Up to the size at the start: a file still being appended to is stored as it was.
            # In steps, each one's writeback started at once: the disk writes while the rest
            # is copied and hashed, and the fsync below has little left to wait for.
            while done < before.st_size and (
                n := copy_range(src.fileno(), dst.fileno(), min(before.st_size - done, BLOCK), done, done)
            ):
                start_writeback(dst.fileno(), done, n)
                done += n
        except OSError as exc:
            hashed.cancel()
            if done == 0 and exc.errno in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
                return None
            raise
        os.fsync(dst.fileno())
        etag = hashed.result()
    if done == before.st_size and _identity(os.fstat(src.fileno())) == _identity(before):
        return etag
    return _md5_of(dst.fileno(), done)


def _mtime(ns: int) -> datetime:
    return datetime.fromtimestamp(ns / 1e9, tz=UTC)


class FsObjectStore(ObjectStore):
    """Zones as directories under ``root``; ``bucket_names`` maps zone → bucket name."""

    def __init__(self, root: Path, bucket_names: dict[str, str] | None = None) -> None:
        self.root = Path(root).expanduser().resolve()
        self.bucket_names = dict(bucket_names or {})
        self._tmp = self.root / ".tmp"
        self._meta = self.root / ".meta"

    # ---- paths --------------------------------------------------------------------------
    def bucket(self, zone: str) -> str:
        """The bucket name of ``zone`` (the zone name unless mapped)."""
        return self.bucket_names.get(validate_zone(zone), zone)

    def zone_dir(self, zone: str) -> Path:
        """The directory holding ``zone``'s objects (it may not exist yet)."""
        return self.root / validate_zone(zone)

    def _path(self, zone: str, key: str) -> Path:
        """The object's path, refused unless it resolves strictly inside the zone directory."""
        validate_key(key)
        if any(len(os.fsencode(seg)) > NAME_MAX for seg in key.split("/")):
            raise InvalidKeyError(f"object key {key!r} has a segment longer than {NAME_MAX} bytes")
        zdir = self.zone_dir(zone)
        path = zdir / key
        try:
            real_zone = zdir.resolve()
            real = path.resolve()
        except (OSError, RuntimeError) as exc:  # symlink loops, over-long names
            raise InvalidKeyError(f"object key {key!r} cannot be resolved: {exc}") from None
        if real == real_zone or not real.is_relative_to(real_zone):
            raise InvalidKeyError(f"object key {key!r} resolves outside zone {zone!r}")
        return path

    def _meta_path(self, zone: str, key: str) -> Path:
        digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
        return self._meta / zone / digest[:2] / f"{digest}.json"

    def local_path(self, zone: str, key: str) -> Path:
        """The object's filesystem path (whether or not it exists)."""
        return self._path(zone, key)

    def scan_uri(self, zone: str, prefix: str = "") -> str:
        """The directory ``root/<zone>/<prefix>`` as a string, for DuckDB globs."""
        stripped = prefix.strip("/")
        if not stripped:
            return str(self.zone_dir(zone))
        return str(self._path(zone, stripped))

    # ---- writing ------------------------------------------------------------------------
    def _check_parents(self, zone: str, key: str, path: Path) -> None:
        zdir = self.zone_dir(zone)
        if path.is_dir():
            raise InvalidKeyError(
                f"object key {key!r} names a directory in zone {zone!r} (other keys start "
                f"with {key + '/'!r}); a key cannot be both an object and a prefix"
            )
        parent = path.parent
        while parent != zdir:
            if parent.exists() and not parent.is_dir():
                rel = parent.relative_to(zdir).as_posix()
                raise InvalidKeyError(
                    f"object key {key!r} needs directory {rel!r} in zone {zone!r}, but an "
                    f"object {rel!r} exists; a key cannot be both an object and a prefix"
                )
            parent = parent.parent

    def _makedirs(self, path: Path) -> None:
        """Create ``path`` and missing parents, fsyncing each new entry's parent."""
        missing: list[Path] = []
        p = path
        while not p.is_dir():
            missing.append(p)
            p = p.parent
        for d in reversed(missing):
            with contextlib.suppress(FileExistsError):
                d.mkdir()
            _fsync_dir(d.parent)

    def _tmp_dir(self, zone: str) -> Path:
        """Where a write to ``zone`` stages its temp file: ``.tmp`` beside the zones, unless
        the zone directory is a filesystem of its own (a mounted disk), where a rename from
        ``.tmp`` would fail with EXDEV: then ``<zone>/.lakeline-tmp``."""
        zdir = self.zone_dir(zone)
        try:
            if os.stat(zdir).st_dev != os.stat(self.root).st_dev:
                return zdir / ZONE_TMP
        except FileNotFoundError:
            pass
        return self._tmp

    def _new_temp(self, tmp_dir: Path) -> tuple[int, Path]:
        tmp_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=tmp_dir, prefix="obj-")
        os.fchmod(fd, _FILE_MODE)
        return fd, Path(name)

    def _commit(self, zone: str, key: str, tmp: Path, etag: str) -> ObjectInfo:
        """Rename the durable temp file ``tmp`` onto the object, then cache its etag."""
        path = self._path(zone, key)
        pre = os.stat(tmp)
        for attempt in range(_RETRIES):
            self._check_parents(zone, key, path)
            try:
                self._makedirs(path.parent)
                os.replace(tmp, path)
                break
            except FileNotFoundError:  # a concurrent delete pruned our fresh parent
                if attempt == _RETRIES - 1 or not tmp.exists():
                    raise
            except (IsADirectoryError, NotADirectoryError, FileExistsError):
                self._check_parents(zone, key, path)
                raise InvalidKeyError(
                    f"object key {key!r} collides with a directory in zone {zone!r}"
                ) from None
        _fsync_dir(path.parent)
        try:
            st = os.stat(path)
        except FileNotFoundError:  # deleted concurrently right after the rename
            st = pre
        if st.st_ino == pre.st_ino and st is not pre:  # still ours: cache the etag
            self._write_meta(zone, key, etag, st)
        return ObjectInfo(zone, key, st.st_size, etag, _mtime(st.st_mtime_ns))

    def _write_temp(self, src: IO[bytes] | bytes, tmp_dir: Path) -> tuple[Path, str]:
        """A durable temp file in ``tmp_dir`` with ``src``'s content and its MD5."""
        fd, tmp = self._new_temp(tmp_dir)
        try:
            with os.fdopen(fd, "wb") as out:
                if isinstance(src, bytes):
                    out.write(src)
                    etag = hashlib.md5(src, usedforsecurity=False).hexdigest()
                else:
                    etag = _kernel_copy(src, out) or _copy_stream(src, out)
                out.flush()
                os.fsync(out.fileno())
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return tmp, etag

    def _store(self, zone: str, key: str, src: IO[bytes] | bytes) -> ObjectInfo:
        self._path(zone, key)  # refuse bad keys before writing anything
        try:
            tmp, etag = self._write_temp(src, self._tmp_dir(zone))
            try:
                return self._commit(zone, key, tmp, etag)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
        except OSError as exc:
            clear = storage_fault(exc, zone, key)
            if clear is None:
                raise
            raise clear from exc

    def put(self, zone: str, key: str, data: bytes) -> ObjectInfo:
        """Store ``data`` under ``key`` atomically; etag = hex MD5 of ``data``."""
        return self._store(zone, key, data if isinstance(data, bytes) else bytes(data))

    def put_file(self, zone: str, key: str, path: Path, *, move: bool = False) -> ObjectInfo:
        """Store the file ``path`` (streamed in 8 MiB blocks). With ``move`` on the same
        filesystem the file is hashed, fsynced and renamed into place (no copy)."""
        self._path(zone, key)
        src = Path(path)
        if move:
            with open(src, "rb") as f:
                etag = _copy_stream(f, None)
                os.fsync(f.fileno())
            try:
                return self._commit(zone, key, src, etag)
            except OSError as exc:
                if exc.errno != errno.EXDEV:
                    clear = storage_fault(exc, zone, key)
                    if clear is None:
                        raise
                    raise clear from exc
            info = self.put_file(zone, key, src)  # another filesystem: copy, then consume
            src.unlink(missing_ok=True)
            return info
        with open(src, "rb") as f:
            return self._store(zone, key, f)

    def copy(self, src_zone: str, src_key: str, dst_zone: str, dst_key: str) -> ObjectInfo:
        """Copy an object; the destination appears atomically with the same etag."""
        source = self._path(src_zone, src_key)
        self._path(dst_zone, dst_key)
        with self._open(source, src_zone, src_key) as f:
            return self._store(dst_zone, dst_key, f)

    # ---- reading ------------------------------------------------------------------------
    def _open(self, path: Path, zone: str, key: str) -> IO[bytes]:
        try:
            return open(path, "rb")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise NotFoundError(f"no object {key!r} in zone {zone!r}") from None

    def get(self, zone: str, key: str) -> bytes:
        """The whole content; :class:`NotFoundError` if absent."""
        with self._open(self._path(zone, key), zone, key) as f:
            return f.read()

    def get_range(self, zone: str, key: str, start: int, end: int) -> bytes:
        """Bytes ``[start, end)``; ``end`` is clamped to the size, ``start`` past it gives b""."""
        if start < 0 or end < 0:
            raise ValueError("get_range: start and end must be >= 0")
        with self._open(self._path(zone, key), zone, key) as f:
            if end <= start:
                return b""
            f.seek(start)
            return f.read(end - start)

    def head(self, zone: str, key: str) -> ObjectInfo:
        """Size, etag and mtime; the etag comes from the sidecar while it is still valid."""
        path = self._path(zone, key)
        try:
            st = os.stat(path)
        except (FileNotFoundError, NotADirectoryError):
            raise NotFoundError(f"no object {key!r} in zone {zone!r}") from None
        if not stat.S_ISREG(st.st_mode):
            raise NotFoundError(f"no object {key!r} in zone {zone!r}")
        etag = self._read_meta(zone, key, st)
        if etag is None:
            return self._rehash(zone, key, path)
        return ObjectInfo(zone, key, st.st_size, etag, _mtime(st.st_mtime_ns))

    def _rehash(self, zone: str, key: str, path: Path) -> ObjectInfo:
        with self._open(path, zone, key) as f:
            stable = False
            for _ in range(_RETRIES):
                before = os.fstat(f.fileno())
                f.seek(0)
                etag = _copy_stream(f, None)
                after = os.fstat(f.fileno())
                stable = _identity(before) == _identity(after)
                if stable:
                    break
                time.sleep(0.05)  # being written in place: hash again once it settles
        if stable:
            self._write_meta(zone, key, etag, after)
        return ObjectInfo(zone, key, after.st_size, etag, _mtime(after.st_mtime_ns))

    def _read_meta(self, zone: str, key: str, st: os.stat_result) -> str | None:
        try:
            meta = orjson.loads(self._meta_path(zone, key).read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return None
        if not isinstance(meta, dict) or meta.get("key") != key:
            return None
        if [meta.get(f) for f in ("size", "mtime_ns", "ino", "ctime_ns")] != list(_identity(st)):
            return None
        etag = meta.get("etag")
        return etag if isinstance(etag, str) else None

    def _write_meta(self, zone: str, key: str, etag: str, st: os.stat_result) -> None:
        """Best effort: a missing or stale sidecar only costs a recompute."""
        size, mtime_ns, ino, ctime_ns = _identity(st)
        body = {"key": key, "etag": etag, "size": size, "mtime_ns": mtime_ns, "ino": ino,
                "ctime_ns": ctime_ns}
        meta = self._meta_path(zone, key)
        try:
            meta.parent.mkdir(parents=True, exist_ok=True)
            self._tmp.mkdir(parents=True, exist_ok=True)
            replace_file(meta, orjson.dumps(body), tmp_dir=self._tmp, prefix="meta-")
        except OSError:
            pass

    def list(self, zone: str, prefix: str = "") -> Iterator[ObjectInfo]:
        """Objects whose key starts with ``prefix``, in key order (recursive)."""
        zdir = self.zone_dir(zone)
        for key in self._walk(zdir, "", prefix):
            try:
                yield self.head(zone, key)
            except (NotFoundError, InvalidKeyError):
                continue  # deleted meanwhile, or not a valid key

    def _walk(self, directory: Path, base: str, prefix: str) -> Iterator[str]:
        try:
            with os.scandir(directory) as it:
                entries = [(e.name, e.is_dir(follow_symlinks=False), e.is_file(follow_symlinks=False))
                           for e in it]
        except (FileNotFoundError, NotADirectoryError):
            return
        # a directory sorts as "name/" so that keys come out in full-key order
        entries.sort(key=lambda e: e[0] + "/" if e[1] else e[0])
        for name, is_dir, is_file in entries:
            key = base + name
            if is_dir and not base and name == ZONE_TMP:
                continue  # in-flight writes of a zone on its own filesystem, not objects
            if is_dir:
                sub = key + "/"
                if sub.startswith(prefix) or prefix.startswith(sub):
                    yield from self._walk(directory / name, sub, prefix)
            elif is_file and key.startswith(prefix):
                try:
                    yield validate_key(key)
                except InvalidKeyError:
                    continue

    # ---- deleting -----------------------------------------------------------------------
    def delete(self, zone: str, key: str) -> None:
        """Delete an object and its sidecar, then prune empty parents (absent is fine)."""
        path = self._path(zone, key)
        try:
            path.unlink()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            pass
        else:
            _fsync_dir(path.parent)
        self._meta_path(zone, key).unlink(missing_ok=True)
        zdir = self.zone_dir(zone)
        parent = path.parent
        while parent != zdir and parent.is_relative_to(zdir):
            try:
                parent.rmdir()
            except OSError:
                break
            parent = parent.parent

    def sweep_tmp(self, older_than_seconds: float = 3600.0) -> int:
        """Remove temp files left by crashed writers; returns how many were removed."""
        removed = 0
        cutoff = time.time() - older_than_seconds
        entries: list[os.DirEntry[str]] = []
        for tmp_dir in (self._tmp, *(self.root / zone / ZONE_TMP for zone in ZONES)):
            with contextlib.suppress(FileNotFoundError, NotADirectoryError):
                entries.extend(os.scandir(tmp_dir))
        for entry in entries:
            with contextlib.suppress(OSError):
                if entry.is_file(follow_symlinks=False) and entry.stat().st_mtime < cutoff:
                    os.unlink(entry.path)
                    removed += 1
        return removed


def _identity(st: os.stat_result) -> tuple[int, int, int, int]:
    return (st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns)


__all__ = ["FsObjectStore"]
