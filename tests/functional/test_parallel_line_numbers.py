"""Line numbers and byte offsets stay exact when a chunk's parts are numbered and scanned in
parallel (issue 18, part 3): blank lines and bad rows sit at chunk and part boundaries, and
the fast path (parts scanned by one COPY) loads and rejects exactly what the exact path does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from lakeline.lake import Lake
from lakeline.stages import fastpath, transform
from lakeline.stages.messages import ChunkMessage
from tests.functional.helpers import land, query, rec, run, settings

CHUNK = 16 * 1024
N = 1200
BAD = b'{"record_type": "shipments", "broken'
REJECTS = "SELECT line_no, byte_offset, reason_code FROM quarantine.rejects ORDER BY line_no"
LOADED = ("SELECT _source.line_no, shipment_id, CAST(dt AS VARCHAR) FROM silver.shipments "
          "ORDER BY _source.line_no")


def _body() -> tuple[bytes, dict[int, tuple[int, str]]]:
    """A file whose shipment ids name their lines; blank lines and bad rows are put across
    every fourth chunk cut (about ``CHUNK`` bytes) and in the middle of the chunk after it
    (where the fast path cuts its parts), so clean chunks (fast path, two parts) follow
    chunks with blank lines. Returns the bytes and ``line -> (offset, reason)`` of each
    rejected line."""
    lines: list[bytes] = []
    size = 0
    marks = {m for cut in range(CHUNK, N * 200, 4 * CHUNK) for m in (cut - 150, cut + CHUNK // 2)}
    rejects: dict[int, tuple[int, str]] = {}
    pending: list[bytes] = []
    line = 0
    while len(lines) < N:
        line += 1
        if pending:
            text = pending.pop(0)
        elif any(size <= m < size + 200 for m in marks):
            pending = [b"", b"   \r", BAD, b"", b'{"record_type": "shipments", "event_time": "never"}']
            text = pending.pop(0)
        else:
            text = orjson.dumps(rec(shipment_id=f"shp_{line:06d}", event_time=f"2026-01-0{5 + line % 3}T10:00:00Z"))
        if text == BAD:
            rejects[line] = (size, "MALFORMED_JSON")
        elif b"never" in text:
            rejects[line] = (size, "TIMESTAMP_ERROR")
        lines.append(text)
        size += len(text) + 1
    return b"\n".join(lines) + b"\n", rejects


def _load(home: Path, body: bytes, **overrides: Any) -> tuple[list[Any], list[Any], dict[str, Any]]:
    s = settings(home, ingest__chunk_bytes=CHUNK, runner__duckdb_threads=2, **overrides)
    lake = Lake.open(s)
    land(lake, "shipments/2026-01-05/edges.jsonl", body)
    summary = run(s)
    return query(lake, REJECTS), query(lake, LOADED), summary


def test_blank_lines_and_bad_rows_at_chunk_and_part_cuts_keep_exact_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every loaded row carries its own line (its shipment id names it), every reject its line
    and byte offset, on the fast path with two parts per chunk and on the exact path alike."""
    from lakeline.lake import init_home

    monkeypatch.setattr(fastpath, "MIN_PART", 2048)  # two parts per chunk
    monkeypatch.setattr(transform, "FAST_MISSES", 1000)  # every clean chunk tries the fast path
    kept: list[int] = []
    original = fastpath.FastPath.write

    def spy(self: fastpath.FastPath, msg: ChunkMessage, *args: Any, **kwargs: Any) -> Any:
        out = original(self, msg, *args, **kwargs)
        if out is not None:
            kept.append(msg.chunk)
        return out

    monkeypatch.setattr(fastpath.FastPath, "write", spy)
    body, rejects = _body()
    blank = sum(1 for t in body.split(b"\n")[:-1] if not t.strip(b" \r"))
    assert blank > 20 and len(rejects) > 20  # the cuts are really covered

    fast_home, exact_home = tmp_path / "fast", tmp_path / "exact"
    init_home(fast_home)
    init_home(exact_home)
    fast_rejects, fast_rows, summary = _load(fast_home, body)
    assert len(kept) >= summary["chunks"] // 3 and max(kept) > 4  # clean chunks after blank lines
    kept.clear()
    exact_rejects, exact_rows, _ = _load(exact_home, body, transform__fast_path=False)
    assert kept == []

    assert fast_rejects == [(line, offset, reason) for line, (offset, reason) in sorted(rejects.items())]
    for line, offset, _ in fast_rejects:
        assert body[offset:].startswith(body.split(b"\n")[line - 1])
    good = N - blank - len(rejects)
    assert (summary["loaded"], summary["rejected"]) == (good, len(rejects))
    assert len(fast_rows) == good
    assert all(sid == f"shp_{line:06d}" for line, sid, _ in fast_rows)
    assert (fast_rejects, fast_rows) == (exact_rejects, exact_rows)


def test_clean_chunks_take_the_parallel_parts_and_number_every_line(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A clean file in many chunks, each cut in two parts scanned by one COPY: one file per
    partition per chunk, and every row numbered by its line."""
    monkeypatch.setattr(fastpath, "MIN_PART", 2048)
    body = b"\n".join(orjson.dumps(rec(shipment_id=f"shp_{i:06d}", event_time=f"2026-01-0{5 + i % 3}T10:00:00Z"))
                      for i in range(1, N + 1)) + b"\n"
    _, rows, summary = _load(home, body)
    assert (summary["loaded"], summary["rejected"]) == (N, 0)
    assert [line for line, _, _ in rows] == list(range(1, N + 1))
    assert all(sid == f"shp_{line:06d}" for line, sid, _ in rows)
    lake = Lake.open(settings(home))
    files = [i.key for i in lake.store.list("silver", "shipments/") if i.key.endswith(".parquet")]
    chunks = summary["chunks"]
    assert chunks > 3
    assert len(files) == 3 * chunks  # one file per partition (three days) per chunk
