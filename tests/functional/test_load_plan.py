"""``lakeline load`` plans a JSON-lines file from the local file while its landing copy is
written; ingest then uses that plan instead of reading the landed copy (issue 18, part 3)."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from lakeline import landing
from lakeline.cli.load import plan_local
from lakeline.lake import Lake
from lakeline.pipelines.registry import registry
from lakeline.stages import ingest
from lakeline.stages.chunking import plan_chunks
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
        found = plan_local(src, key, CHUNK)
        assert found is not None
        assert found == (key, plan_chunks(lake, key, info.size, CHUNK, spec))


def test_gzip_files_are_not_planned_locally(tmp_path: Path) -> None:
    src = tmp_path / "a.jsonl.gz"
    src.write_bytes(b"\x1f\x8b\x08\x00rest")
    assert plan_local(src, "shipments/a.jsonl.gz", CHUNK) is None


def test_ingest_uses_a_remembered_plan_once(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    s = settings(home, ingest__chunk_bytes=CHUNK)
    lake = Lake.open(s)
    src = tmp_path / "a.jsonl"
    src.write_bytes(_body())
    key = "shipments/2026-01-05/a.jsonl"
    info = lake.store.put_file("landing", key, src)
    found = plan_local(src, key, CHUNK)
    assert found is not None
    ingest.remember_plan(key, info.etag, found[1])
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
    assert (key, info.etag) not in ingest._PLANNED
