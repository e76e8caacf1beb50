"""``lakeline load FILE --pipeline P``: put + run in one command, durable at each step."""

from __future__ import annotations

from pathlib import Path

import orjson

from lakeline.cli.load import AFTER_PUT
from tests.e2e.helpers import RUN_LINE, Cli

IN_PROCESS = True  # the commands run in this process (tests/e2e/conftest.py)

SMALL_CHUNKS = {"LAKELINE__INGEST__CHUNK_BYTES": str(16 * 1024)}
REJECTS = "SELECT line_no, byte_offset, reason_code, message FROM quarantine.rejects ORDER BY line_no"
LINES = ("SELECT _source.line_no, shipment_id FROM silver.shipments ORDER BY _source.line_no")


def _bad_file(path: Path) -> Path:
    """1,000 lines over several chunks: blank lines and bad rows on both sides of chunk cuts."""
    rows = []
    for i in range(1, 1001):
        if i % 97 == 0:
            rows.append(b"")
        elif i % 89 == 0:
            rows.append(b'{"record_type": "shipments", "broken')
        elif i % 83 == 0:
            rows.append(orjson.dumps({"record_type": "shipments", "event_time": "2026-01-05T10:00:00Z",
                                      "shipment_id": f"s{i}", "weight_kg": "heavy"}))
        else:
            rows.append(orjson.dumps({"record_type": "shipments", "event_time": "2026-01-05T10:00:00Z",
                                      "shipment_id": f"s{i:04d}", "origin": "SZX", "weight_kg": 1.5}))
    path.write_bytes(b"\n".join(rows) + b"\n")
    return path


def test_load_lands_and_loads_every_record_once(lake: Cli) -> None:
    lake.ok("gen", "shipments", "--count", "5000", "--out", "s.jsonl")
    out = lake.ok("load", "s.jsonl", "--pipeline", "shipments").stdout
    assert out.startswith("landed shipments/")
    found = RUN_LINE.search(out)
    assert found is not None and found.group(1, 4, 5) == ("1", "5000", "0"), out
    assert lake.count() == 5000
    again = lake.json("load", "s.jsonl", "--pipeline", "shipments")  # the same bytes: a duplicate
    assert [item["duplicate"] for item in again["landed"]] == [True]
    assert (again["status"], again["loaded"], again["rejected"]) == ("success", 0, 0)
    assert lake.count() == 5000


def test_load_of_a_bad_file_rejects_what_put_and_run_reject(cli: Cli, tmp_path: Path) -> None:
    src = _bad_file(tmp_path / "bad.jsonl")
    one = type(cli)(tmp_path / "one", tmp_path)
    two = type(cli)(tmp_path / "two", tmp_path)
    for c in (one, two):
        c.ok("init", c.home)
    loaded = one("load", src, "--pipeline", "shipments", "--json", env=SMALL_CHUNKS)
    two.ok("put", src, "--pipeline", "shipments", env=SMALL_CHUNKS)
    ran = two("run", "--json", env=SMALL_CHUNKS)
    assert loaded.returncode == ran.returncode == 0
    a, b = orjson.loads(loaded.stdout), orjson.loads(ran.stdout)
    assert a["chunks"] == b["chunks"] > 2
    # 10 blank lines, 11 malformed rows, 12 weights that are not numbers
    assert (a["loaded"], a["rejected"]) == (b["loaded"], b["rejected"]) == (967, 23)
    rejects = one.json("sql", REJECTS)
    assert rejects == two.json("sql", REJECTS)
    assert [r["line_no"] for r in rejects] == sorted([*range(89, 1000, 89), *range(83, 1000, 83)])
    body = src.read_bytes()
    assert all(body.split(b"\n")[r["line_no"] - 1] == body[r["byte_offset"]:].split(b"\n")[0] for r in rejects)
    assert one.json("sql", LINES) == two.json("sql", LINES)


def test_a_crash_between_put_and_run_leaves_the_file_landed_and_run_loads_it_once(lake: Cli) -> None:
    lake.ok("gen", "shipments", "--count", "3000", "--out", "s.jsonl")
    crashed = lake("load", "s.jsonl", "--pipeline", "shipments", env={"LAKELINE_CRASH_AT": AFTER_PUT})
    assert crashed.returncode == 137
    assert "silver.shipments" not in str(lake.json("tables"))  # nothing ran
    landed = [p.name for p in (lake.home / "zones" / "landing" / "shipments").rglob("*") if p.is_file()]
    assert landed == ["s.jsonl"]  # durable before the run started
    assert lake.json("status")["queues"]["ingest"]["visible"] == 1  # and announced
    out = lake.ok("run").stdout
    found = RUN_LINE.search(out)
    assert found is not None and found.group(1, 4, 5) == ("1", "3000", "0"), out
    assert lake.count() == 3000
    lake.ok("run")
    assert lake.count() == 3000
    # loading the same file again after the crash: a duplicate, nothing added
    again = lake.json("load", "s.jsonl", "--pipeline", "shipments")
    assert [item["duplicate"] for item in again["landed"]] == [True]
    assert lake.count() == 3000


def test_load_help_teaches_and_mistakes_exit_2(lake: Cli) -> None:
    text = lake.ok("load", "--help").stdout
    for words in ("put", "run", "--pipeline", "lakeline load shipments.jsonl --pipeline shipments",
                  "exactly once", "--fail-on-rejects", "--target"):
        assert words in text, words
    lake.ok("gen", "shipments", "--count", "10", "--out", "s.jsonl")
    assert "--pipeline" in lake.fails(2, "load", "s.jsonl")
    assert "--target" in lake.fails(2, "load", "s.jsonl", "--pipeline", "shipments", "--target", "duckdb")
    assert "need FILE" in lake.fails(2, "load", "--pipeline", "shipments")
    assert "nope" in lake.fails(2, "load", "s.jsonl", "--pipeline", "nope")
