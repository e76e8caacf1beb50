"""Start writing dirty file pages to disk early, so that a later ``fsync`` has less to wait for.

Durable writes end in ``fsync``, which waits while the kernel writes every dirty page of the
file. For a big file that wait comes after all the copying and hashing, although the disk was
idle meanwhile. :func:`start_writeback` asks the kernel to begin writing a range now, without
waiting (Linux ``sync_file_range(SYNC_FILE_RANGE_WRITE)``, as PostgreSQL's ``*_flush_after``
settings and RocksDB's ``bytes_per_sync`` do), so the disk works while the CPU does.

It promises nothing about durability -- the ``fsync`` is still made and still decides -- so
on systems without ``sync_file_range`` it simply does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from collections.abc import Callable
from pathlib import Path

SYNC_FILE_RANGE_WRITE = 2  # from <fcntl.h>: start writeback of dirty pages, do not wait


def _load() -> Callable[[int, int, int, int], int] | None:
    if os.uname().sysname != "Linux":
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        fn = libc.sync_file_range
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn  # type: ignore[no-any-return]


_sync_file_range = _load()


def available() -> bool:
    """True when this system can start writeback early (Linux)."""
    return _sync_file_range is not None


def start_writeback(fd: int, offset: int = 0, nbytes: int = 0) -> None:
    """Begin writing ``nbytes`` at ``offset`` of the open file ``fd`` to disk (0: to the end)
    and return at once. Best effort: errors are ignored, the caller's ``fsync`` decides."""
    if _sync_file_range is not None:
        _sync_file_range(fd, offset, nbytes, SYNC_FILE_RANGE_WRITE)


def start_writeback_tree(root: Path) -> int:
    """:func:`start_writeback` on every regular file under ``root``; how many files."""
    count = 0
    if _sync_file_range is None:
        return count
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            try:
                fd = os.open(os.path.join(dirpath, name), os.O_RDONLY)
            except OSError:
                continue
            try:
                start_writeback(fd)
                count += 1
            finally:
                os.close(fd)
    return count
