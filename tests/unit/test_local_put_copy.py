"""The local object store's file put: an in-kernel copy hashed on a helper thread, and what
happens when the source changes meanwhile or the kernel cannot copy."""

from __future__ import annotations

import errno
import hashlib
import io
import os
from pathlib import Path
from typing import Any

import pytest

from lakeline.adapters.local import objectstore
from lakeline.adapters.local.objectstore import FsObjectStore


def md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


@pytest.fixture
def store(tmp_path: Path) -> FsObjectStore:
    return FsObjectStore(tmp_path / "zones")


@pytest.fixture
def copies(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the kernel copy calls (and still copies)."""
    calls: list[int] = []
    real = os.copy_file_range

    def counted(*args: Any) -> int:
        n: int = real(*args)
        calls.append(n)
        return n

    monkeypatch.setattr(os, "copy_file_range", counted)
    return calls


def test_a_file_is_copied_in_the_kernel_and_its_etag_is_the_md5(
    store: FsObjectStore, tmp_path: Path, copies: list[int]
) -> None:
    src = tmp_path / "big.jsonl"
    data = os.urandom(3 * 1024 * 1024 + 17)
    src.write_bytes(data)
    info = store.put_file("landing", "a/big.jsonl", src)
    assert (info.etag, info.size) == (md5(data), len(data))
    assert store.get("landing", "a/big.jsonl") == data
    assert sum(copies) == len(data)  # copied in the kernel
    assert store.head("landing", "a/big.jsonl").etag == md5(data)


def test_an_empty_file(store: FsObjectStore, tmp_path: Path) -> None:
    src = tmp_path / "empty"
    src.write_bytes(b"")
    assert store.put_file("landing", "e", src).etag == md5(b"")


def test_a_source_growing_during_the_copy_gets_the_etag_of_what_was_stored(
    store: FsObjectStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The source is hashed while the kernel copies; when it changed meanwhile, the stored
    bytes are hashed instead, so the etag always matches the object. A file still being
    appended to is stored as it was when the put began (the copy does not chase it)."""
    src = tmp_path / "grows"
    src.write_bytes(b"first\n" * 1000)
    real = os.copy_file_range

    def grow_then_copy(*args: Any) -> int:
        with open(src, "ab") as f:
            f.write(b"late\n")
        return int(real(*args))

    monkeypatch.setattr(os, "copy_file_range", grow_then_copy)
    info = store.put_file("landing", "g", src)
    stored = store.get("landing", "g")
    assert info.etag == md5(stored) == store.head("landing", "g").etag
    assert stored == b"first\n" * 1000
    assert info.size == len(stored)
    assert src.read_bytes().endswith(b"late\n")  # it did grow meanwhile


@pytest.mark.parametrize("code", [errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP])
def test_when_the_kernel_cannot_copy_the_bytes_are_streamed(
    store: FsObjectStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    src = tmp_path / "s"
    data = b"x" * 100_000
    src.write_bytes(data)

    def refuse(*args: Any) -> int:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, "copy_file_range", refuse)
    info = store.put_file("landing", "s", src)
    assert (info.etag, store.get("landing", "s")) == (md5(data), data)


def test_another_kernel_error_is_raised_and_nothing_is_stored(
    store: FsObjectStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "s"
    src.write_bytes(b"abc")

    def broken(*args: Any) -> int:
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(os, "copy_file_range", broken)
    with pytest.raises(OSError, match="I/O error"):
        store.put_file("landing", "s", src)
    assert not store.exists("landing", "s")
    assert list((store.root / ".tmp").iterdir()) == []  # the temp file is gone too


def test_streams_that_are_not_regular_files_are_read_and_hashed(store: FsObjectStore) -> None:
    assert objectstore._kernel_copy(io.BytesIO(b"abc"), io.BytesIO()) is None
    r, w = os.pipe()
    os.write(w, b"piped bytes")
    os.close(w)
    with os.fdopen(r, "rb") as pipe:
        assert objectstore._kernel_copy(pipe, io.BytesIO()) is None


def test_a_source_rewritten_in_place_is_detected_by_its_identity(
    store: FsObjectStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Same size, new content during the copy: the source hash is not trusted (its identity
    changed), the stored bytes are hashed."""
    src = tmp_path / "rewritten"
    src.write_bytes(b"A" * 5000)
    real_copy, real_md5 = os.copy_file_range, objectstore._md5_of
    hashed: list[int] = []

    def copy_then_rewrite(*args: Any) -> int:
        n = int(real_copy(*args))
        with open(src, "r+b") as f:
            f.write(b"B" * 5000)
        os.utime(src, ns=(1, 1))  # a different mtime even on a coarse clock
        return n

    def md5_of(fd: int, size: int) -> str:
        hashed.append(fd)
        return "not-trusted" if len(hashed) == 1 else real_md5(fd, size)

    monkeypatch.setattr(os, "copy_file_range", copy_then_rewrite)
    monkeypatch.setattr(objectstore, "_md5_of", md5_of)
    info = store.put_file("landing", "r", src)
    assert info.etag == md5(store.get("landing", "r")) == md5(b"A" * 5000)
    assert len(hashed) == 2
