"""Issue 16, part 1, stream pipelines: gzip input loads like its plain twin, and a landed file
that cannot be read (binary, UTF-16, a truncated gzip, another compression) is one FAILED object
with its reason — never a thousand junk rejects — while the other files load.

Ingest sniffs the start of each object: a gzip object (``.gz`` or the magic bytes) is
decompressed, streamed, into the ``tmp`` zone and chunked from there (the chunk messages name
that staged text); rejects, lineage and ``_source`` keep the landed key, with the line numbers of
the decompressed text. The staged text is deleted once the object's load is complete.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from tests.e2e.helpers import Cli, runs_of
from tests.faults.conftest import Case
from tests.faults.test_bad_files_jobs import BINARY, _cli, _failed_lines, _outbox, _truncated_gzip

ITEMS = """
format = "csv"
[tables.items]
fields = [
  { name = "id", type = "int64", required = true },
  { name = "note" },
]
"""


def _staged(cli: Cli) -> list[Path]:
    root = cli.home / "zones" / "tmp" / "gunzip"
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def test_a_gzip_shipments_file_loads_exactly_like_its_plain_twin(fault: Case, tmp_path: Path) -> None:
    fault("shipments: gzip twin of a JSONL file (.jsonl.gz, and gzip bytes under a .jsonl name)",
          expected="the same rows and the same rejects (lines of the decompressed text) as the plain "
                   "file; _source names the landed key; the staged text is gone after the run")
    seen = []
    for name, key in (("plain", "shipments/s.jsonl"), ("gz", "shipments/s.jsonl.gz"),
                      ("magic", "shipments/s-gz.jsonl")):
        cli = _cli(tmp_path / name, tmp_path)
        if name == "plain":
            cli.ok("gen", "shipments", "--count", "3000", "--out", "s.jsonl", "--seed", "3")
            text = (tmp_path / "s.jsonl").read_bytes()
            lines = text.split(b"\n")
            lines[10] = b'{"record_type": "shipments", "shipment_id": '  # a broken line: a reject
            (tmp_path / "s.jsonl").write_bytes(b"\n".join(lines))
            (tmp_path / "s.gz").write_bytes(gzip.compress(b"\n".join(lines)))
        cli.ok("put", "s.jsonl" if name == "plain" else "s.gz", "--pipeline", "shipments", "--key", key)
        summary = cli.json("run")
        rows = cli.json("sql", "SELECT count(*) AS n, count(DISTINCT _source.key) AS keys, "
                               "min(_source.key) AS k FROM silver.shipments")[0]
        rejects = cli.json("sql", "SELECT key, line_no, byte_offset, reason_code FROM quarantine.rejects")
        seen.append((summary["loaded"], summary["rejected"], rows["n"], rows["k"], rejects, _staged(cli)))
    fault.saw(f"plain/gz/magic loaded, rejected: {[(s[0], s[1]) for s in seen]}, "
              f"staged left {[len(s[5]) for s in seen]}")
    plain, gz, magic = seen
    assert plain[1] == 1 and plain[0] > 2000
    assert (gz[0], gz[1], gz[2]) == (plain[0], plain[1], plain[2])
    assert (magic[0], magic[1], magic[2]) == (plain[0], plain[1], plain[2])
    assert (plain[3], gz[3], magic[3]) == ("shipments/s.jsonl", "shipments/s.jsonl.gz", "shipments/s-gz.jsonl")
    assert [(r["line_no"], r["byte_offset"], r["reason_code"]) for r in gz[4]] == [
        (r["line_no"], r["byte_offset"], r["reason_code"]) for r in plain[4]] == [(11, plain[4][0]["byte_offset"],
                                                                                   "MALFORMED_JSON")]
    assert gz[4][0]["key"] == "shipments/s.jsonl.gz"
    assert gz[5] == [] and magic[5] == []


def test_a_gzip_csv_file_loads_in_a_declared_pipeline(fault: Case, tmp_path: Path) -> None:
    fault("declared CSV pipeline: a gzip CSV with a header, chunked small",
          expected="every row loads with its line number, as from the plain file")
    cli = _cli(tmp_path / "lake", tmp_path)
    (cli.home / "pipelines").mkdir(exist_ok=True)
    (cli.home / "pipelines" / "items.toml").write_text(ITEMS)
    body = "id,note\n" + "".join(f"{i},n{i}\n" for i in range(1, 5001))
    (tmp_path / "i.csv.gz").write_bytes(gzip.compress(body.encode()))
    cli.ok("put", "i.csv.gz", "--pipeline", "items", "--key", "items/i.csv.gz")
    env = {"LAKELINE__INGEST__CHUNK_BYTES": "16384"}
    summary = cli.json("run", env=env)
    rows = cli.json("sql", "SELECT count(*) AS n, max(_source.line_no) AS last, "
                           "min(_source.key) AS k FROM silver.items")[0]
    [entry] = [r for r in runs_of(cli) if r["kind"] == "object"]
    fault.saw(f"loaded {summary['loaded']}, rejected {summary['rejected']}, chunks {entry.get('chunks')}, "
              f"last line {rows['last']}")
    assert (summary["loaded"], summary["rejected"]) == (5000, 0)
    assert (rows["n"], rows["last"], rows["k"]) == (5000, 5001, "items/i.csv.gz")
    assert entry["chunks"] > 1 and entry["status"] == "COMPLETE"
    assert _staged(cli) == []


def test_unreadable_stream_files_are_one_failed_object_each(fault: Case, tmp_path: Path) -> None:
    fault("shipments: truncated gzip, UTF-16, binary and a zip beside a good JSONL file",
          expected="each FAILED with its reason (one ENCODING_ERROR reject, copied to error/objects/, "
                   "notified), no line-by-line junk rejects; the good file loads; exit 1")
    cli = _cli(tmp_path / "lake", tmp_path)
    cli.ok("gen", "shipments", "--count", "500", "--out", "good.jsonl", "--seed", "4")
    plain = (tmp_path / "good.jsonl").read_bytes()
    bad = {"shipments/trunc.jsonl.gz": _truncated_gzip(plain),
           "shipments/u16.jsonl": plain.decode().encode("utf-16"),
           "shipments/bin.jsonl": BINARY,
           "shipments/z.jsonl": b"PK\x03\x04" + BINARY}
    for key, data in bad.items():
        (tmp_path / Path(key).name).write_bytes(data)
        cli.ok("put", Path(key).name, "--pipeline", "shipments", "--key", key)
    cli.ok("put", "good.jsonl", "--pipeline", "shipments", "--key", "shipments/good.jsonl")

    done = cli("run")
    summary = json.loads(cli("run", "--json").stdout or "{}")
    failed = _failed_lines(done.stderr, "shipments")
    rejects = cli.json("sql", "SELECT key, reason_code, message FROM quarantine.rejects ORDER BY key")
    loaded = cli.json("sql", "SELECT count(*) AS n FROM silver.shipments")[0]["n"]
    notes = [n for n in _outbox(cli) if n["subject"] == "lakeline: object rejected"]
    fault.saw(f"exit {done.returncode}, {len(failed)} FAILED line(s), {len(rejects)} reject rows, "
              f"{loaded} shipments loaded, {len(notes)} notified")
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert [(r["key"], r["reason_code"]) for r in rejects] == [
        (k, "ENCODING_ERROR") for k in sorted(bad)]
    why = {r["key"]: r["message"] for r in rejects}
    assert "gzip data is truncated or corrupt" in why["shipments/trunc.jsonl.gz"]
    assert "UTF-16LE text" in why["shipments/u16.jsonl"]
    assert "binary, not text" in why["shipments/bin.jsonl"]
    assert "a zip archive" in why["shipments/z.jsonl"]
    assert len(failed) == 4
    assert loaded > 0 and summary.get("status") != "error"
    for key, data in bad.items():
        assert (cli.home / "zones" / "error" / "objects" / key).read_bytes() == data
    assert sorted(n["attributes"]["key"] for n in notes) == sorted(bad)
    assert _staged(cli) == []


def test_a_replayed_gzip_object_supersedes_its_rows(fault: Case, tmp_path: Path) -> None:
    fault("replay (copy mode) of a gzip shipments object loaded in several chunks",
          expected="the copy is decompressed again and supersedes the original's rows: the same count")
    cli = _cli(tmp_path / "lake", tmp_path)
    cli.ok("gen", "shipments", "--count", "4000", "--out", "s.jsonl", "--seed", "9")
    (tmp_path / "s.gz").write_bytes(gzip.compress((tmp_path / "s.jsonl").read_bytes()))
    cli.ok("put", "s.gz", "--pipeline", "shipments", "--key", "shipments/s.jsonl.gz")
    env = {"LAKELINE__INGEST__CHUNK_BYTES": "200000"}
    first = cli.json("run", env=env)
    before = cli.json("sql", "SELECT count(*) AS n FROM silver.shipments")[0]["n"]
    replayed = cli.json("replay", "--pipeline", "shipments", "--start", "2000-01-01T00:00:00Z", "--end", "2100-01-01T00:00:00Z",
                        "--name", "r1", env=env)
    again = cli.json("run", env=env)
    after = cli.json("sql", "SELECT count(*) AS n, min(_source.key) AS k FROM silver.shipments")[0]
    fault.saw(f"first load {first['loaded']} in {first['chunks']} chunks; replay copied {replayed['copied']}; "
              f"rows before/after {before}/{after['n']}")
    assert first["chunks"] > 1 and before == first["loaded"] > 0
    assert replayed["copied"] == 1 and again["loaded"] == first["loaded"]
    assert after["n"] == before
    assert _staged(cli) == []
