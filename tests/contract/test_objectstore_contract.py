"""Object store contract: S3 semantics every backend must honour."""
# ruff: noqa: F811  (pytest fixtures imported from store_backends are redefined as arguments)

from __future__ import annotations

import hashlib
import os
import shutil
import threading
from datetime import timedelta
from pathlib import Path

import pytest

from lakeline.errors import InvalidKeyError, NotFoundError
from lakeline.ports import ObjectStore
from tests.contract.store_backends import moto_endpoint, object_store, skip_backend  # noqa: F401

BAD_KEYS = ["../x", "a/../../x", "/etc/passwd", "a\x00b", "", "a//b", "./a", "a/.", "..", "a\\b"]
ODD_KEYS = [
    "données/été 2024+x%2B.json",
    "with space/a b.csv",
    "plus+sign.csv",
    "pct%2Bencoded.csv",
    "ünïcødé/日本語/🙂.bin",
    "dots.../x..y",
]


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def local_root(store: ObjectStore) -> Path:
    path = store.local_path("raw", "probe")
    if path is None:
        pytest.skip("backend has no local filesystem")
    return path.parent.parent


def test_put_get_head(object_store: ObjectStore) -> None:
    data = b"id,value\n1,2\n"
    info = object_store.put("raw", "sales/2024/a.csv", data)
    assert info.etag == md5(data)
    assert info.size == len(data)
    assert info.zone == "raw" and info.key == "sales/2024/a.csv"
    assert info.last_modified.tzinfo is not None
    assert info.last_modified.utcoffset() == timedelta(0)
    assert object_store.get("raw", "sales/2024/a.csv") == data
    head = object_store.head("raw", "sales/2024/a.csv")
    assert (head.etag, head.size) == (md5(data), len(data))
    assert head.last_modified.tzinfo is not None
    assert object_store.exists("raw", "sales/2024/a.csv")
    assert not object_store.exists("raw", "sales/2024/b.csv")


def test_bucket_names(object_store: ObjectStore) -> None:
    assert object_store.bucket("raw") == "acme-raw"
    assert object_store.bucket("landing") == "landing"
    with pytest.raises(InvalidKeyError):
        object_store.bucket("nope")


def test_same_bytes_same_etag_and_overwrite(object_store: ObjectStore) -> None:
    a = object_store.put("raw", "a", b"same")
    b = object_store.put("silver", "b/c", b"same")
    assert a.etag == b.etag == md5(b"same")
    c = object_store.put("raw", "a", b"different")
    assert c.etag == md5(b"different") != a.etag
    assert object_store.get("raw", "a") == b"different"
    assert object_store.head("raw", "a").etag == c.etag


def test_zero_byte_object(object_store: ObjectStore) -> None:
    info = object_store.put("landing", "empty.csv", b"")
    assert info.etag == md5(b"") == "d41d8cd98f00b204e9800998ecf8427e"
    assert info.size == 0
    assert object_store.get("landing", "empty.csv") == b""
    assert object_store.head("landing", "empty.csv").etag == md5(b"")


def test_get_range(object_store: ObjectStore) -> None:
    object_store.put("raw", "r", b"0123456789")
    assert object_store.get_range("raw", "r", 0, 4) == b"0123"
    assert object_store.get_range("raw", "r", 3, 7) == b"3456"
    assert object_store.get_range("raw", "r", 8, 100) == b"89"
    assert object_store.get_range("raw", "r", 10, 20) == b""
    assert object_store.get_range("raw", "r", 50, 60) == b""
    assert object_store.get_range("raw", "r", 5, 5) == b""
    with pytest.raises(NotFoundError):
        object_store.get_range("raw", "missing", 0, 1)


def test_list_by_prefix_in_key_order(object_store: ObjectStore) -> None:
    keys = ["b/2", "a-c", "a/b", "a/a/z", "a.x", "ab", "a/b2", "c"]
    for k in keys:
        object_store.put("silver", k, k.encode())
    object_store.put("gold", "a/other-zone", b"x")
    listed = [i.key for i in object_store.list("silver")]
    assert listed == sorted(keys)
    assert [i.key for i in object_store.list("silver", "a/")] == ["a/a/z", "a/b", "a/b2"]
    assert [i.key for i in object_store.list("silver", "a/b")] == ["a/b", "a/b2"]
    assert [i.key for i in object_store.list("silver", "a")] == sorted(
        k for k in keys if k.startswith("a")
    )
    assert list(object_store.list("silver", "zzz")) == []
    assert list(object_store.list("error")) == []
    info = next(iter(object_store.list("silver", "c")))
    assert info.etag == md5(b"c") and info.size == 1


def test_copy_preserves_etag(object_store: ObjectStore) -> None:
    src = object_store.put("raw", "src/x.csv", b"payload")
    dst = object_store.copy("raw", "src/x.csv", "silver", "dst/y.csv")
    assert dst.etag == src.etag
    assert dst.zone == "silver" and dst.key == "dst/y.csv"
    assert object_store.get("silver", "dst/y.csv") == b"payload"
    assert object_store.get("raw", "src/x.csv") == b"payload"
    with pytest.raises(NotFoundError):
        object_store.copy("raw", "nope", "silver", "z")


def test_delete(object_store: ObjectStore) -> None:
    object_store.put("raw", "d/e/f", b"1")
    object_store.put("raw", "d/g", b"2")
    object_store.delete("raw", "d/e/f")
    assert not object_store.exists("raw", "d/e/f")
    assert [i.key for i in object_store.list("raw")] == ["d/g"]
    object_store.delete("raw", "d/e/f")  # absent is fine
    object_store.delete("raw", "never")
    # the prefix is free again: "d/e" can now be an object
    object_store.put("raw", "d/e", b"3")
    assert object_store.get("raw", "d/e") == b"3"


def test_not_found(object_store: ObjectStore) -> None:
    with pytest.raises(NotFoundError):
        object_store.get("raw", "missing")
    with pytest.raises(NotFoundError):
        object_store.head("raw", "missing")
    object_store.put("raw", "dir/file", b"x")
    with pytest.raises(NotFoundError):
        object_store.head("raw", "dir")  # a prefix is not an object
    with pytest.raises(NotFoundError):
        object_store.get("raw", "dir/file/deeper")


@pytest.mark.parametrize("key", BAD_KEYS)
def test_refused_keys(object_store: ObjectStore, tmp_path: Path, key: str) -> None:
    before = {p for p in tmp_path.rglob("*")}
    with pytest.raises(InvalidKeyError):
        object_store.put("raw", key, b"evil")
    with pytest.raises(InvalidKeyError):
        object_store.get("raw", key)
    with pytest.raises(InvalidKeyError):
        object_store.delete("raw", key)
    src = tmp_path / "src.bin"
    src.write_bytes(b"evil")
    with pytest.raises(InvalidKeyError):
        object_store.put_file("raw", key, src)
    assert src.read_bytes() == b"evil"
    src.unlink()
    after = {p for p in tmp_path.rglob("*")}
    created = after - before
    assert all(".tmp" in p.parts or ".meta" in p.parts for p in created), created
    assert not any(p.is_file() for p in created if ".tmp" in p.parts)


def test_unknown_zone(object_store: ObjectStore) -> None:
    with pytest.raises(InvalidKeyError):
        object_store.put("../raw", "x", b"x")
    with pytest.raises(InvalidKeyError):
        object_store.get("bronze", "x")


def test_key_directory_collisions(object_store: ObjectStore) -> None:
    skip_backend(object_store, "aws", "S3 has no directories: objects 'a' and 'a/b' coexist; the"
                 " collision is a limitation of the filesystem backend")
    object_store.put("raw", "a/b", b"1")
    with pytest.raises(InvalidKeyError, match="prefix"):
        object_store.put("raw", "a", b"2")
    object_store.put("raw", "f", b"3")
    with pytest.raises(InvalidKeyError, match="prefix"):
        object_store.put("raw", "f/g", b"4")
    with pytest.raises(InvalidKeyError):
        object_store.copy("raw", "f", "raw", "a")
    assert object_store.get("raw", "a/b") == b"1"
    assert object_store.get("raw", "f") == b"3"


@pytest.mark.parametrize("key", ODD_KEYS)
def test_odd_keys_round_trip(object_store: ObjectStore, key: str) -> None:
    info = object_store.put("landing", key, key.encode())
    assert info.key == key
    assert object_store.get("landing", key) == key.encode()
    assert object_store.head("landing", key).etag == md5(key.encode())
    assert [i.key for i in object_store.list("landing")] == [key]
    object_store.delete("landing", key)
    assert list(object_store.list("landing")) == []


def test_put_file_copy_and_move(object_store: ObjectStore, tmp_path: Path) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    src = tmp_path / "upload.bin"
    src.write_bytes(data)
    info = object_store.put_file("raw", "big/copied.bin", src)
    assert info.etag == md5(data) and info.size == len(data)
    assert src.exists()
    moved = object_store.put_file("raw", "big/moved.bin", src, move=True)
    assert moved.etag == md5(data)
    assert object_store.get("raw", "big/moved.bin") == data
    assert object_store.head("raw", "big/moved.bin").etag == md5(data)
    path = object_store.local_path("raw", "big/moved.bin")
    if path is not None:
        assert not src.exists()  # consumed by the rename


def test_external_file_gets_right_etag(object_store: ObjectStore, tmp_path: Path) -> None:
    root = local_root(object_store)
    target = root / "landing" / "dropped" / "file.csv"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"dropped by hand\n")
    listed = list(object_store.list("landing"))
    assert [i.key for i in listed] == ["dropped/file.csv"]
    assert listed[0].etag == md5(b"dropped by hand\n")
    # edited in place, even with the old mtime restored: the cached etag must not be reused
    stat = target.stat()
    target.write_bytes(b"Dropped by hand\n")
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert object_store.head("landing", "dropped/file.csv").etag == md5(b"Dropped by hand\n")
    # replaced by a copy
    other = tmp_path / "other.csv"
    other.write_bytes(b"another version, longer\n")
    shutil.copy(other, target)
    assert object_store.head("landing", "dropped/file.csv").etag == md5(other.read_bytes())


def test_local_path_and_scan_uri(object_store: ObjectStore) -> None:
    root = local_root(object_store)
    object_store.put("silver", "t/part-0.parquet", b"x")
    path = object_store.local_path("silver", "t/part-0.parquet")
    assert path is not None and path.read_bytes() == b"x"
    assert Path(object_store.scan_uri("silver", "t")) == root / "silver" / "t"
    assert Path(object_store.scan_uri("silver", "t/")) == root / "silver" / "t"
    assert Path(object_store.scan_uri("silver")) == root / "silver"
    with pytest.raises(InvalidKeyError):
        object_store.scan_uri("silver", "../gold")


def test_symlink_escape_refused(object_store: ObjectStore, tmp_path: Path) -> None:
    root = local_root(object_store)
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "raw").mkdir(parents=True, exist_ok=True)
    (root / "raw" / "link").symlink_to(outside)
    with pytest.raises(InvalidKeyError):
        object_store.put("raw", "link/x", b"evil")
    assert list(outside.iterdir()) == []


def test_concurrent_writes_leave_one_complete_version(object_store: ObjectStore) -> None:
    versions = [bytes([65 + i]) * (512 * 1024 + i) for i in range(2)]
    errors: list[BaseException] = []

    def writer(data: bytes) -> None:
        try:
            for _ in range(20):
                object_store.put("raw", "hot/key.bin", data)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(v,)) for v in versions]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    final = object_store.get("raw", "hot/key.bin")
    assert final in versions
    assert object_store.head("raw", "hot/key.bin").etag == md5(final)


# ---- local backend specifics ----------------------------------------------------------------
def test_local_etag_cache_is_used_and_rebuilt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from lakeline.adapters.local.objectstore import FsObjectStore

    store = FsObjectStore(tmp_path / "zones")
    data = b"x" * 1000
    store.put("raw", "k", data)
    calls: list[str] = []
    real = FsObjectStore._rehash

    def counting(self: FsObjectStore, zone: str, key: str, path: Path):  # type: ignore[no-untyped-def]
        calls.append(key)
        return real(self, zone, key, path)

    monkeypatch.setattr(FsObjectStore, "_rehash", counting)
    assert store.head("raw", "k").etag == md5(data)
    assert calls == []  # served from the sidecar
    shutil.rmtree(tmp_path / "zones" / ".meta")  # a crash right after the rename
    assert store.head("raw", "k").etag == md5(data)
    assert store.head("raw", "k").etag == md5(data)
    assert calls == ["k"]  # recomputed once, then cached again
    copied = store.copy("raw", "k", "gold", "k2")
    assert store.head("gold", "k2").etag == copied.etag == md5(data)
    assert calls == ["k"]


def test_local_delete_prunes_dirs_and_sweeps_tmp(tmp_path: Path) -> None:
    from lakeline.adapters.local.objectstore import FsObjectStore

    store = FsObjectStore(tmp_path / "zones")
    store.put("raw", "a/b/c/d.csv", b"1")
    store.delete("raw", "a/b/c/d.csv")
    assert (tmp_path / "zones" / "raw").is_dir()
    assert list((tmp_path / "zones" / "raw").iterdir()) == []
    stale = tmp_path / "zones" / ".tmp" / "obj-crashed"
    stale.write_bytes(b"partial")
    os.utime(stale, (0, 0))
    assert store.sweep_tmp(older_than_seconds=60) == 1
    assert not stale.exists()
    assert list((tmp_path / "zones" / ".tmp").iterdir()) == []  # no temp file leaked


def test_local_refuses_overlong_segments(tmp_path: Path) -> None:
    from lakeline.adapters.local.objectstore import FsObjectStore

    store = FsObjectStore(tmp_path / "zones")
    for key in ["x" * 256, "a/" + "é" * 128 + "/b"]:
        with pytest.raises(InvalidKeyError, match="longer than 255"):
            store.put("raw", key, b"1")
        with pytest.raises(InvalidKeyError):
            store.head("raw", key)
    assert store.put("raw", "x" * 255, b"1").size == 1
