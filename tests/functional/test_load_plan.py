"""``put`` and ``load`` plan a JSON-lines file from the local file while its landing copy is
written; ingest then uses that plan instead of reading the landed copy (issue 18, part 3,
lever a)."""

from __future__ import annotations

import os
from pathlib import Path

import orjson
import pytest

from lakeline import landing
from lakeline.lake import Lake
from lakeline.pipelines.registry import registry
from lakeline.stages import chunking, ingest
from lakeline.stages.chunking import plan_chunks, plan_file
from tests.functional.helpers import query, rec, run, settings

CHUNK = 8 * 1024


def _body() -> bytes:
    rows = [orjson.dumps(rec(shipment_id=f"s{i:05d}")) for i in range(1, 600)]
    rows[10] = b""
    rows[200] = b"  \r"
    rows[300] = b"x" * (3 * CHUNK)  # a line longer than a chunk: the chunk grows
    return b"\xef\xbb\xbf" + b"\r\n".join(rows) + b"\r\n"


@pytest.mark.parametrize("name", ["a.jsonl", "a.json", "a.txt"])
def test_the_local_plan_is_the_plan_of_the_landed_copy(home: Path, tmp_path: Path, name: str) -> None:
    s = settings(home, ingest__chunk_bytes=CHUNK)
    lake = Lake.open(s)
    spec = registry(s).stream("shipments")
    for body in (_body(), b'[{"record_type": "shipments"}]\n'):
        src = tmp_path / name
        src.write_bytes(body)
        key = f"shipments/2026-01-05/{name}"
        info = lake.store.put_file("landing", key, src)
        found = plan_file(src, key, CHUNK)
        assert found is not None
        assert found == (key, plan_chunks(lake, key, info.size, CHUNK, spec))


def test_gzip_files_are_not_planned_locally(tmp_path: Path) -> None:
    src = tmp_path / "a.jsonl.gz"
    src.write_bytes(b"\x1f\x8b\x08\x00rest")
    assert plan_file(src, "shipments/a.jsonl.gz", CHUNK) is None


def test_put_keeps_the_plan_and_ingest_uses_it_once(home: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    s = settings(home, ingest__chunk_bytes=CHUNK)
    lake = Lake.open(s)
    src = tmp_path / "a.jsonl"
    src.write_bytes(_body())
    landed = registry(s).get("shipments").land(lake, src)  # what `lakeline put` and `load` call
    key, etag = landed["key"], landed["etag"]
    kept = lake.state.get(ingest.PLANS, f"{key}#{etag}")
    assert kept is not None
    spec = registry(s).stream("shipments")
    expected = plan_chunks(lake, key, landed["size"], CHUNK, spec)
    assert kept.data["chunks"] == [[c.start, c.end, c.first_line, c.records, c.lines] for c in expected.chunks]
    planned: list[str] = []
    original = ingest.plan_chunks

    def spy(*args: object, **kwargs: object) -> object:
        planned.append(str(args[1]))
        return original(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ingest, "plan_chunks", spy)
    landing.announce(lake, key)
    summary = run(s)
    assert planned == []  # the landed copy was not read to plan it
    assert (summary["loaded"], summary["rejected"]) == (596, 1)  # 2 blank lines; the long line rejects
    assert query(lake, "SELECT line_no FROM quarantine.rejects") == [(301,)]
    assert query(lake, "SELECT min(_source.line_no), max(_source.line_no) FROM silver.shipments") == [(1, 599)]
    assert lake.state.get(ingest.PLANS, f"{key}#{etag}") is None  # used once, then forgotten


def test_a_plan_of_other_chunk_sizes_or_a_file_that_changed_is_not_used(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = settings(home, ingest__chunk_bytes=CHUNK)
    lake = Lake.open(s)
    src = tmp_path / "a.jsonl"
    src.write_bytes(_body())
    landed = registry(s).get("shipments").land(lake, src)
    assert ingest._saved_plan(lake, landed["key"], landed["etag"]) is not None
    bigger = Lake.open(settings(home, ingest__chunk_bytes=2 * CHUNK))
    assert ingest._saved_plan(bigger, landed["key"], landed["etag"]) is None

    other = tmp_path / "b.jsonl"
    other.write_bytes(_body())
    original = chunking.plan_file

    def then_change(path: Path, key: str, chunk_bytes: int) -> object:
        found = original(path, key, chunk_bytes)
        os.utime(path, ns=(1, 1))  # the file changes while it lands
        return found

    monkeypatch.setattr(chunking, "plan_file", then_change)
    landed = registry(s).get("shipments").land(lake, other)
    assert lake.state.get(ingest.PLANS, f"{landed['key']}#{landed['etag']}") is None
