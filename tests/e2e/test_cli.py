"""End-to-end tests of the ``lakeline`` command, run as a user runs it.

Every test drives the command line against its own lake home under ``tmp_path``; nothing is
imported from lakeline except in the one settings-precedence check, which runs in a subprocess.
``init`` runs the installed console script as a subprocess; the other commands run in this
process through the console script's entry point (:class:`tests.e2e.helpers.InProcess`: the same
exit codes, stdout and stderr without an interpreter start per command; commands in fresh
processes are tested by test_serve.py, tests/faults and tests/functional/test_sql_lazy.py).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import subprocess
import sys
import tomllib
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.helpers import RUN_LINE, Cli, runs_of

IN_PROCESS = True  # the `cli` and `lake` fixtures run the commands in this process (tests/e2e/conftest.py)

ZONES = ("landing", "raw", "error", "silver", "gold", "tmp")
EVERYTHING = ("--start", "2000-01-01T00:00:00Z", "--end", "2100-01-01T00:00:00Z")
COUNT = "SELECT count(*) AS n FROM silver.shipments"


def utc_today() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d")


def landing_files(home: Path) -> list[str]:
    root = home / "zones" / "landing"
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def assert_idle(status: dict[str, Any]) -> None:
    assert status["queues"] == {
        name: {"visible": 0, "in_flight": 0, "delayed": 0}
        for name in ("ingest", "ingest-dlq", "transform", "transform-dlq")
    }


# ---- init -----------------------------------------------------------------------------------
def test_init_creates_the_config_and_zones_and_keeps_an_existing_config(tmp_path: Path) -> None:
    cli = Cli(tmp_path / "lake", tmp_path)  # the installed console script, as a subprocess
    p = cli.ok("init", cli.home, home=False)
    assert re.fullmatch(rf"lake ready in {re.escape(str(cli.home))} \(\d+ paths created\)", p.stdout.splitlines()[0])
    assert f"export LAKELINE_HOME={cli.home}" in p.stdout
    config = cli.home / "lakeline.toml"
    data = tomllib.loads(config.read_text())
    # every setting is written with its documented default
    assert data["queue"]["max_receive_count"] == 5
    assert data["queue"]["visibility_timeout"] == 180
    assert data["ingest"]["idempotency_ttl_days"] == 30
    assert data["runner"]["workers"] == 1
    for zone in ZONES:
        assert (cli.home / "zones" / zone).is_dir(), zone

    edited = config.read_text().replace("max_receive_count = 5", "max_receive_count = 3")
    assert edited != config.read_text()
    config.write_text(edited + "# my note\n")
    # again, this time through --home (no DIR argument): nothing created, the file kept
    again = cli.json("--home", cli.home, "init", home=False)
    assert again == {"home": str(cli.home), "created": []}
    assert config.read_text() == edited + "# my note\n"


# ---- the main path ----------------------------------------------------------------------------
def test_gen_put_run_then_query_and_report(lake: Cli, tmp_path: Path) -> None:
    f = tmp_path / "f.jsonl"
    p = lake.ok("gen", "shipments", "--count", "1000", "--out", "f.jsonl", "--seed", "1")
    assert p.stderr.strip() == "wrote 1000 shipments records to f.jsonl"
    data = f.read_bytes()
    lines = data.decode().splitlines()
    assert len(lines) == 1000
    records = [json.loads(line) for line in lines]
    assert {r["record_type"] for r in records} == {"shipments"}
    # same seed, same bytes
    lake.ok("gen", "shipments", "--count", "1000", "--out", "same.jsonl", "--seed", "1")
    assert (tmp_path / "same.jsonl").read_bytes() == data

    before = utc_today()
    put = lake.json("put", "f.jsonl", "--pipeline", "shipments")
    key = put["landed"][0]["key"]
    assert key in {f"shipments/{before}/f.jsonl", f"shipments/{utc_today()}/f.jsonl"}
    assert put == {"landed": [{"key": key, "size": len(data), "etag": hashlib.md5(data).hexdigest(),
                               "announced": True, "duplicate": False}]}
    assert (lake.home / "zones" / "landing" / key).read_bytes() == data

    run = lake.json("run")
    assert {k: run[k] for k in ("ingested_objects", "skipped_objects", "chunks", "loaded", "rejected",
                                "failures", "errors", "workers")} == {
        "ingested_objects": 1, "skipped_objects": 0, "chunks": 1, "loaded": 1000, "rejected": 0,
        "failures": 0, "errors": [], "workers": 1}

    assert lake.json("sql", COUNT) == [{"n": 1000}]
    # silver is partitioned by the UTC date of each record's own event_time
    by_day = Counter(r["event_time"][:10] for r in records)
    assert lake.json("sql", "SELECT CAST(dt AS VARCHAR) AS dt, count(*) AS n FROM silver.shipments "
                            "GROUP BY dt ORDER BY dt") == [{"dt": d, "n": n} for d, n in sorted(by_day.items())]
    assert lake.json("sql", "SELECT count(DISTINCT shipment_id) AS ids, round(sum(weight_kg), 2) AS kg, "
                            "count(*) FILTER (WHERE _source.key = '" + key + "') AS from_file "
                            "FROM silver.shipments") == [{
        "ids": len({r["shipment_id"] for r in records}),
        "kg": round(sum(r["weight_kg"] for r in records), 2),
        "from_file": 1000}]

    csv_out = lake.ok("sql", "SELECT count(*) AS n, 'x' AS tag FROM silver.shipments", "--csv").stdout
    assert list(csv.reader(io.StringIO(csv_out))) == [["n", "tag"], ["1000", "x"]]

    tables = lake.json("tables")
    assert [t["name"] for t in tables] == ["silver.shipments"]
    assert tables[0]["files"] == len(by_day)  # one file per (object, chunk, day)
    assert tables[0]["bytes"] > 0

    runs = runs_of(lake)
    assert len(runs) == 1
    assert {k: runs[0][k] for k in ("pipeline", "key", "etag", "status", "records", "loaded", "rejected",
                                    "chunks", "format")} == {
        "pipeline": "shipments", "key": key, "etag": hashlib.md5(data).hexdigest(), "status": "COMPLETE",
        "records": 1000, "loaded": 1000, "rejected": 0, "chunks": 1, "format": "jsonl"}

    status = lake.json("status")
    assert status["home"] == str(lake.home)
    assert_idle(status)
    assert [r["key"] for r in status["last_runs"]] == [key]

    # a clean lake has no dead letters
    assert lake.json("dlq", "list") == []
    assert lake.json("dlq", "redrive") == {"redriven": {"ingest": 0, "transform": 0}}
    assert lake.json("dlq", "redrive", "--queue", "transform") == {"redriven": {"transform": 0}}
    assert lake.ok("dlq", "redrive").stdout.strip() == "ingest: 0 redriven, transform: 0 redriven"

    # the same bytes under the same key again: recognised, loads nothing
    again = lake.ok("put", "f.jsonl", "--pipeline", "shipments")
    assert again.stdout.strip() == (
        f"landed {key} ({len(data)} bytes, etag {hashlib.md5(data).hexdigest()}) (already landed: duplicate)")
    run = lake.json("run")
    assert (run["ingested_objects"], run["chunks"], run["loaded"], run["rejected"]) == (0, 0, 0, 0)
    assert lake.count() == 1000

    # --key: prefixed with the pipeline; the same bytes under another key are another object
    custom = lake.json("put", "f.jsonl", "--pipeline", "shipments", "--key", "custom/name.jsonl")
    assert [(x["key"], x["announced"]) for x in custom["landed"]] == [("shipments/custom/name.jsonl", True)]
    assert (lake.home / "zones" / "landing" / "shipments" / "custom" / "name.jsonl").read_bytes() == data
    done = lake("run")
    assert done.returncode == 1, done.stderr  # quarantined partitions: a failure the run saw
    text = done.stdout.strip()
    first, quality = text.splitlines()
    assert done.stderr.startswith("FAILED shipments: quality: ")
    assert "(see `lakeline dq report gold/_quality/results/shipments/dt=" in done.stderr
    m = RUN_LINE.fullmatch(first)
    assert m, text
    assert m.groups()[:5] == ("1", "0", "1", "1000", "0")
    # the same records landed twice: shipment_id is no longer unique in any day it touches
    assert quality.startswith(f"quality: {len(by_day)} shipments partition(s) checked against the "
                              f"rules, {len(by_day)} quarantined (shipments dt=")
    assert lake.count() == 2000
    assert [r["key"] for r in runs_of(lake)] == ["shipments/custom/name.jsonl", key]
    assert landing_files(lake.home) == sorted([key, "shipments/custom/name.jsonl"])


def test_putting_the_same_file_twice_counts_one_skipped_duplicate(lake: Cli, tmp_path: Path) -> None:
    lake.ok("gen", "shipments", "--count", "10", "--out", "f.jsonl", "--seed", "1")
    lake.ok("put", "f.jsonl", "--pipeline", "shipments")
    assert lake.json("run")["loaded"] == 10
    lake.ok("put", "f.jsonl", "--pipeline", "shipments")
    run = lake.json("run")
    assert (run["loaded"], run["ingested_objects"]) == (0, 0)
    assert run["skipped_objects"] == 1


# ---- rejects ------------------------------------------------------------------------------------
def _ship(**fields: Any) -> str:
    rec = {"record_type": "shipments", "event_time": "2026-01-04T07:29:44Z", "shipment_id": "shp_1",
           "origin": "SZX", "destination": "SFO", "carrier": "DHL", "weight_kg": 7.72}
    rec.update(fields)
    return json.dumps({k: v for k, v in rec.items() if v is not ...})


def _inv(**fields: Any) -> str:
    rec = {"record_type": "invoice_lines", "event_time": "2026-01-05T10:00:00Z", "invoice_id": "inv_1",
           "sku": "SKU-001", "quantity": 2, "unit_price": 3.5, "line_total": 7.0}
    rec.update(fields)
    return json.dumps(rec)


def test_dirty_file_rejects_are_queryable_with_line_offset_and_reason(lake: Cli, tmp_path: Path) -> None:
    lines: list[bytes] = [
        _ship().encode(),                                         # 1 loads
        b'{"record_type":"shipments", bad',                       # 2 MALFORMED_JSON
        _ship(weight_kg="heavy").encode(),                        # 3 TYPE_ERROR
        b"",                                                      # 4 blank: not a record
        b"[1, 2]",                                                # 5 NOT_AN_OBJECT
        _ship(record_type="parcels").encode(),                    # 6 SCHEMA_ERROR
        _ship(event_time="yesterday").encode(),                   # 7 TIMESTAMP_ERROR
        _ship(event_time=...).encode(),                           # 8 NULL_VALUE_ERROR
        _inv(quantity="3").encode(),                              # 9 loads: "3" parses exactly
        _inv(quantity=2.5).encode(),                              # 10 TYPE_ERROR: not cast silently
        _ship(shipment_id="shp_11", weight_kg="7.5").encode(),    # 11 loads
        b'{"record_type":"shipments","origin":"\xff\xfe"}',       # 12 ENCODING_ERROR
    ]
    data = b"\n".join(lines) + b"\n"
    (tmp_path / "dirty.jsonl").write_bytes(data)
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line) + 1)

    key = lake.json("put", "dirty.jsonl", "--pipeline", "shipments", "--key", "dirty.jsonl")["landed"][0]["key"]
    assert key == "shipments/dirty.jsonl"
    run = lake.json("run")
    assert (run["loaded"], run["rejected"], run["failures"]) == (3, 8, 0)

    expected = [(2, "MALFORMED_JSON"), (3, "TYPE_ERROR"), (5, "NOT_AN_OBJECT"), (6, "SCHEMA_ERROR"),
                (7, "TIMESTAMP_ERROR"), (8, "NULL_VALUE_ERROR"), (10, "TYPE_ERROR"), (12, "ENCODING_ERROR")]
    assert lake.json("sql", "SELECT line_no, reason_code FROM quarantine.rejects ORDER BY line_no") == [
        {"line_no": n, "reason_code": code} for n, code in expected]
    rows = lake.json("sql", "SELECT key, line_no, byte_offset, message, raw FROM quarantine.rejects "
                            "ORDER BY line_no")
    assert {r["key"] for r in rows} == {key}
    # (line 12's offset: see test_encoding_error_reject_keeps_its_byte_offset)
    assert [r["byte_offset"] for r in rows[:-1]] == [offsets[n - 1] for n, _ in expected[:-1]]
    by_line = {r["line_no"]: r for r in rows}
    assert by_line[2]["raw"] == '{"record_type":"shipments", bad'
    assert by_line[2]["message"].startswith("line is not valid JSON: ")
    assert "column" in by_line[2]["message"]
    assert by_line[3]["message"] == "weight_kg: heavy is not float64"
    assert by_line[10]["message"] == "quantity: 2.5 is not int64"
    assert by_line[12]["message"] == f"invalid UTF-8 at byte {lines[11].index(0xFF)} of the line"

    assert lake.json("sql", "SELECT _source.line_no AS line, shipment_id, weight_kg FROM silver.shipments "
                            "ORDER BY line") == [
        {"line": 1, "shipment_id": "shp_1", "weight_kg": 7.72},
        {"line": 11, "shipment_id": "shp_11", "weight_kg": 7.5}]
    assert lake.json("sql", "SELECT _source.line_no AS line, quantity FROM silver.invoice_lines") == [
        {"line": 9, "quantity": 3}]
    # counts reconcile: 11 non-blank lines = 3 loaded + 8 rejected
    entry = runs_of(lake)[0]
    assert (entry["status"], entry["records"], entry["loaded"], entry["rejected"]) == ("COMPLETE", 11, 3, 8)
    tables = [t["name"] for t in lake.json("tables")]
    assert {"quarantine.rejects", "silver.shipments", "silver.invoice_lines"} <= set(tables)


def test_encoding_error_reject_keeps_its_byte_offset(lake: Cli, tmp_path: Path) -> None:
    good = _ship().encode()
    (tmp_path / "bad.jsonl").write_bytes(good + b"\n" + b'{"origin":"\xff"}\n')
    lake.ok("put", "bad.jsonl", "--pipeline", "shipments")
    assert lake.json("run")["rejected"] == 1
    assert lake.json("sql", "SELECT line_no, reason_code, byte_offset FROM quarantine.rejects") == [
        {"line_no": 2, "reason_code": "ENCODING_ERROR", "byte_offset": len(good) + 1}]


def test_json_array_file_of_invoice_lines_loads(lake: Cli, tmp_path: Path) -> None:
    lake.ok("gen", "invoice_lines", "--count", "500", "--format", "json", "--out", "inv.json", "--seed", "7")
    records = json.loads((tmp_path / "inv.json").read_text())
    assert isinstance(records, list) and len(records) == 500
    assert {r["record_type"] for r in records} == {"invoice_lines"}

    lake.ok("put", "inv.json", "--pipeline", "shipments")
    run = lake.json("run")
    assert (run["ingested_objects"], run["loaded"], run["rejected"], run["failures"]) == (1, 500, 0, 0)
    assert lake.json("sql", "SELECT count(*) AS n, CAST(sum(quantity) AS BIGINT) AS q, "
                            "count(DISTINCT invoice_id) AS ids "
                            "FROM silver.invoice_lines") == [{
        "n": 500, "q": sum(r["quantity"] for r in records),
        "ids": len({r["invoice_id"] for r in records})}]
    entry = runs_of(lake)[0]
    assert (entry["format"], entry["records"], entry["loaded"], entry["status"]) == ("json", 500, 500, "COMPLETE")


def test_sql_json_prints_sums_and_decimals_as_numbers(lake: Cli) -> None:
    assert lake.json("sql", "SELECT sum(x) AS s, 1.5 AS d FROM range(5) t(x)") == [{"s": 10, "d": 1.5}]


# ---- replay --------------------------------------------------------------------------------------
def test_replay_copy_supersedes_its_original_and_queue_mode_rewrites(lake: Cli, tmp_path: Path) -> None:
    lake.ok("gen", "shipments", "--count", "300", "--out", "f.jsonl", "--seed", "3")
    key = lake.json("put", "f.jsonl", "--pipeline", "shipments", "--key", "2026/f.jsonl")["landed"][0]["key"]
    assert lake.json("run")["loaded"] == 300

    # a window that holds nothing
    none = lake.json("replay", "--pipeline", "shipments", "--start", "2100-01-01", "--end", "2101-01-01")
    assert (none["scanned"], none["copied"]) == (1, 0)

    copy = lake.json("replay", "--pipeline", "shipments", *EVERYTHING)
    assert (copy["scanned"], copy["copied"], copy["mode"]) == (1, 1, "copy")
    assert copy["dest_prefix"].startswith("shipments/replay/") and copy["dest_prefix"].endswith("/")
    assert (copy["start"], copy["end"]) == ("2000-01-01T00:00:00Z", "2100-01-01T00:00:00Z")
    assert landing_files(lake.home) == sorted([key, copy["dest_prefix"] + key])
    run = lake.json("run")
    assert (run["ingested_objects"], run["loaded"]) == (1, 300)
    assert lake.count() == 300  # a copy supersedes the rows of the object it copies: counts reconcile
    assert [r["key"] for r in runs_of(lake)] == [copy["dest_prefix"] + key, key]

    named = lake.json("replay", "--pipeline", "shipments", *EVERYTHING, "--name", "again")
    assert (named["scanned"], named["copied"], named["dest_prefix"]) == (1, 1, "shipments/replay/again/")

    queued = lake.json("replay", "--pipeline", "shipments", *EVERYTHING, "--mode", "queue")
    assert {k: queued[k] for k in ("scanned", "copied", "dest_prefix", "mode", "enqueued")} == {
        "scanned": 1, "copied": 1, "dest_prefix": None, "mode": "queue", "enqueued": 1}
    run = lake.json("run")
    # the named copy loads once more and the re-sent chunk rewrites its files: both in place
    assert (run["ingested_objects"], run["chunks"], run["loaded"]) == (1, 2, 600)
    assert lake.count() == 300
    assert_idle(lake.json("status"))


# ---- errors ----------------------------------------------------------------------------------------
def test_usage_errors_exit_2_with_a_clear_message(lake: Cli, tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_text(_ship() + "\n")
    (tmp_path / "b.jsonl").write_text(_ship() + "\n")

    err = lake.fails(2, "put", "a.jsonl", "--pipeline", "nope")
    assert err.strip() == "error: unknown pipeline 'nope'; pipelines: carbon, retail, shipments, totesys, transactions"
    assert landing_files(lake.home) == []  # nothing landed

    err = lake.fails(2, "sql", "SELEC 1")
    assert err.startswith("error: SQL error: Parser Error")
    err = lake.fails(2, "sql", "SELECT * FROM silver.nope")
    assert err.startswith("error: SQL error: Catalog Error")

    err = lake.fails(2, "put", "a.jsonl", "b.jsonl", "--pipeline", "shipments", "--key", "x.jsonl")
    assert err.strip() == "error: --key names one object; land several files without --key"
    err = lake.fails(2, "put", "missing.jsonl", "--pipeline", "shipments")
    assert "'missing.jsonl' does not exist" in err
    err = lake.fails(2, "replay", "--pipeline", "shipments", "--start", "yesterday", "--end", "2100-01-01")
    assert err.strip() == "error: not an ISO-8601 time: 'yesterday'"
    err = lake.fails(2, "replay", "--pipeline", "shipments", "--start", "2100-01-01", "--end", "2000-01-01")
    assert err.strip() == "error: replay window is empty: --end must be after --start"
    err = lake.fails(2, "replay", "--pipeline", "nope", *EVERYTHING)
    assert "unknown pipeline 'nope'" in err
    err = lake.fails(2, "gen", "parcels", "--count", "1", "--out", "p.jsonl")
    assert err.strip().startswith("error: no generator for 'parcels'; targets: carbon, invoice_lines, retail,")
    err = lake.fails(2, "frobnicate")
    assert "No such command 'frobnicate'" in err
    assert landing_files(lake.home) == []


def test_commands_refuse_a_directory_that_is_not_a_lake(cli: Cli, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    hint = f"error: {empty} is not a lakeline home; run `lakeline init {empty}` or pass --home / set LAKELINE_HOME"
    # via --home, via LAKELINE_HOME, and via the current directory (neither given)
    assert cli.fails(2, "--home", empty, "status", home=False).strip() == hint
    assert cli.fails(2, "run", env={"LAKELINE_HOME": str(empty)}, home=False).strip() == hint
    assert cli.fails(2, "sql", "SELECT 1", home=False, cwd=empty).strip() == hint
    assert cli.fails(2, "--home", tmp_path / "missing", "tables", home=False).strip().endswith(
        "or pass --home / set LAKELINE_HOME")
    assert list(empty.iterdir()) == []  # nothing was created
    assert not (tmp_path / "missing").exists()


def test_configuration_errors_name_the_variable_or_file(lake: Cli) -> None:
    err = lake.fails(2, "status", env={"LAKELINE__QUEUE__MAX_RECEIVE_COUNT": "abc"})
    assert err.strip() == ("error: environment LAKELINE__QUEUE__MAX_RECEIVE_COUNT: "
                           "queue.max_receive_count must be int, got 'abc'")
    err = lake.fails(2, "status", env={"LAKELINE__NOPE__X": "1"})
    assert err.strip() == ("error: environment: LAKELINE__NOPE__X is not LAKELINE__<SECTION>__<KEY> "
                           "or LAKELINE__PIPELINES__<NAME>__<KEY>")
    err = lake.fails(2, "runs", env={"LAKELINE__QUEUE__NOPE": "1"})
    assert err.strip().startswith("error: environment LAKELINE__QUEUE__NOPE: unknown setting queue.nope "
                                  "(settings: visibility_timeout, retention_seconds,")
    err = lake.fails(2, "status", env={"LAKELINE__QUEUE__MAX_RECEIVE_COUNT": "0"})
    assert err.strip() == "error: queue.max_receive_count must be 1..1000"

    config = lake.home / "lakeline.toml"
    original = config.read_text()
    config.write_text(original + "\n[nope]\nx = 1\n")
    unknown = (f"error: {config}: unknown section [nope] (sections: lake, ingest, transform, queue, runner, "
               "notify, aws, sql, quality, lineage; a pipeline's settings go in [pipelines.<name>])")
    assert lake.fails(2, "status").strip() == unknown
    assert lake.fails(2, "init", lake.home).strip() == unknown
    config.write_text(original.replace("max_receive_count = 5", 'max_receive_count = "five"'))
    assert lake.fails(2, "status").strip() == (
        f"error: {config}: queue.max_receive_count must be int, got 'five'")


def test_settings_precedence_file_then_environment_then_flags(lake: Cli) -> None:
    config = lake.home / "lakeline.toml"
    text = config.read_text()
    text = text.replace("max_receive_count = 5", "max_receive_count = 3").replace("workers = 1", "workers = 2")
    config.write_text(text)
    probe = ("from lakeline.config import load_settings; s = load_settings(); "
             "print(s.queue.max_receive_count, s.runner.workers)")

    def settings(env: dict[str, str]) -> str:
        p = subprocess.run([sys.executable, "-c", probe], env=lake.env(env), capture_output=True,
                           text=True, timeout=60, cwd=lake.cwd)
        assert p.returncode == 0, p.stderr
        return p.stdout.strip()

    assert settings({}) == "3 2"
    assert settings({"LAKELINE__QUEUE__MAX_RECEIVE_COUNT": "4"}) == "4 2"
    # the same precedence seen through the CLI: env beats the file, a flag beats env
    assert lake.json("run", env={"LAKELINE__RUNNER__WORKERS": "1"})["workers"] == 1
    assert lake.json("run", "--workers", "1", env={"LAKELINE__RUNNER__WORKERS": "3"})["workers"] == 1


HELP = {
    (): ["--home", "--version", "init", "put", "run", "serve", "sql", "replay", "dlq"],
    ("init",): ["DIRECTORY", "--json"],
    ("gen",): ["--count", "--out", "--format", "--seed", "--days", "shipments", "invoice_lines"],
    ("put",): ["--pipeline", "--key", "--json"],
    ("run",): ["--workers", "--json"],
    ("serve",): ["--workers", "Ctrl-C"],
    ("sql",): ["--json", "--csv", "--limit", "quarantine.rejects"],
    ("tables",): ["--json"],
    ("status",): ["--json"],
    ("runs",): ["--limit", "--json"],
    ("dlq",): ["list", "redrive"],
    ("dlq", "list"): ["--limit", "--json"],
    ("dlq", "redrive"): ["--queue", "ingest", "transform", "--json"],
    ("replay",): ["--pipeline", "--start", "--end", "--mode", "--name", "--json"],
}


@pytest.mark.parametrize("command", list(HELP), ids=lambda c: " ".join(c) or "lakeline")
def test_help_of_every_command(cli: Cli, command: tuple[str, ...]) -> None:
    p = cli.ok(*command, "--help")
    assert p.stdout.startswith(f"Usage: lakeline {' '.join(command)}".rstrip() + " ")
    for word in HELP[command]:
        assert word in p.stdout, word
