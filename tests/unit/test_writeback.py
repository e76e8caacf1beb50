"""Early writeback: best effort, never changes content, a no-op where unsupported."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from lakeline import writeback


def test_available_on_linux() -> None:
    assert writeback.available() is sys.platform.startswith("linux")


def test_start_writeback_keeps_content_and_fsync_still_works(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    payload = os.urandom(3 << 20)
    with open(path, "wb") as f:
        f.write(payload)
        f.flush()
        writeback.start_writeback(f.fileno(), 0, 1 << 20)
        writeback.start_writeback(f.fileno(), 1 << 20)  # to the end
        os.fsync(f.fileno())
    assert path.read_bytes() == payload


def test_start_writeback_ignores_a_closed_descriptor(tmp_path: Path) -> None:
    fd = os.open(tmp_path / "g", os.O_CREAT | os.O_WRONLY, 0o644)
    os.close(fd)
    writeback.start_writeback(fd)  # EBADF is ignored: the caller's fsync decides


@pytest.mark.skipif(not writeback.available(), reason="sync_file_range is Linux only")
def test_start_writeback_tree_counts_regular_files(tmp_path: Path) -> None:
    (tmp_path / "a" / "dt=2026-01-01").mkdir(parents=True)
    (tmp_path / "a" / "dt=2026-01-01" / "x.parquet").write_bytes(b"x" * 10)
    (tmp_path / "a" / "y.parquet").write_bytes(b"y")
    (tmp_path / "b").mkdir()
    assert writeback.start_writeback_tree(tmp_path) == 2
    assert writeback.start_writeback_tree(tmp_path / "missing") == 0
