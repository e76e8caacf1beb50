"""Edge inputs that held before issue 16 and must keep holding (part 10): empty and blank
objects, a 50 MB line, 10,000-deep nesting, awkward keys, two `run`s at once.

Each case lands its input in a real lake and runs the shipments pipeline; every line is either
loaded once or rejected once with a reason, and nothing crashes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson

from lakeline.lake import Lake
from tests.faults.conftest import Case
from tests.functional.helpers import land, query, rec, run, settings

LAKELINE = str(Path(sys.executable).with_name("lakeline"))


def _lines(n: int, prefix: str = "e") -> list[bytes]:
    return [orjson.dumps(rec(shipment_id=f"{prefix}{i:06d}")) for i in range(n)]


def _counts(lake: Lake) -> tuple[int, list[tuple[Any, ...]]]:
    [(rows,)] = query(lake, "SELECT count(*) FROM silver.shipments")
    rejects = query(lake, "SELECT key, line_no, reason_code FROM quarantine.rejects ORDER BY ALL")
    return int(rows), rejects


def test_empty_and_blank_objects_are_recorded_not_crashed_on(home: Path, fault: Case) -> None:
    fault("shipments: a 0-byte object, one of only blank lines and spaces, one of a lone newline",
          expected="each EMPTY in the run log, 0 records, 0 rejects; the good file beside them loads")
    lake = Lake.open(settings(home))
    land(lake, "shipments/zero.jsonl", b"")
    land(lake, "shipments/blank.jsonl", b"\n \n\t\r\n   \n")
    land(lake, "shipments/nl.jsonl", b"\n")
    land(lake, "shipments/good.jsonl", b"\n".join(_lines(5)) + b"\n")
    summary = run(lake.settings)
    entries = {e["key"]: e for e in lake.state.runs()}
    rows, rejects = _counts(lake)
    fault.saw(f"statuses { {k.split('/')[-1]: e['status'] for k, e in sorted(entries.items())} }, "
              f"{rows} rows, {len(rejects)} rejects, failures {summary['failures']}")
    assert {k: (e["status"], e["records"]) for k, e in entries.items() if "good" not in k} == {
        "shipments/zero.jsonl": ("EMPTY", 0), "shipments/blank.jsonl": ("EMPTY", 0),
        "shipments/nl.jsonl": ("EMPTY", 0)}
    assert entries["shipments/good.jsonl"]["status"] == "COMPLETE"
    assert (rows, rejects, summary["failures"]) == (5, [], 0)


def test_a_50_mb_line_loads_and_the_lines_around_it_keep_their_numbers(home: Path, fault: Case) -> None:
    fault("shipments: a 50 MB line between good lines, 1 MiB chunks",
          expected="its chunk grows to hold it: all 201 records load, the long value whole, line numbers exact")
    lake = Lake.open(settings(home, ingest__chunk_bytes=1 << 20))
    long = orjson.dumps(rec(shipment_id="long", origin="x" * (50 << 20)))
    body = b"\n".join([*_lines(100, "a"), long, *_lines(100, "b")]) + b"\n"
    land(lake, "shipments/long.jsonl", body)
    summary = run(lake.settings)
    rows, rejects = _counts(lake)
    [entry] = lake.state.runs()
    found = query(lake, "SELECT length(origin), _source.line_no FROM silver.shipments WHERE shipment_id = 'long'")
    last = query(lake, "SELECT max(_source.line_no) FROM silver.shipments")
    fault.saw(f"records {entry['records']}, loaded {summary['loaded']}, rejects {rejects}, long value "
              f"{found[0][0] if found else None} chars at line {found[0][1] if found else None}")
    assert (entry["records"], summary["loaded"], rows, rejects, summary["failures"]) == (201, 201, 201, [], 0)
    assert found == [(50 << 20, 101)] and last == [(201,)]


def test_10k_deep_nesting_neither_crashes_nor_loses_the_line(home: Path, fault: Case) -> None:
    fault("shipments: a shipment with a field nested 10,000 arrays deep, one 10,000 objects deep",
          expected="no RecursionError, no crash: both shipments load (the undeclared field is ignored), "
                   "on the fast and the exact path")
    deep_arrays = orjson.dumps(rec(shipment_id="deep-a"))[:-1] + b', "x": ' + b"[" * 10_000 + b"]" * 10_000 + b"}"
    deep_objects = (orjson.dumps(rec(shipment_id="deep-o"))[:-1] + b', "x": ' + b'{"a": ' * 10_000 + b"1"
                    + b"}" * 10_000 + b"}")
    body = b"\n".join([*_lines(3, "a"), deep_arrays, *_lines(3, "b"), deep_objects, *_lines(3, "c")]) + b"\n"
    for fast in (True, False):
        lake = Lake.open(settings(home / ("fast" if fast else "exact"), transform__fast_path=fast))
        land(lake, "shipments/deep.jsonl", body)
        summary = run(lake.settings)
        rows, rejects = _counts(lake)
        deep = query(lake, "SELECT shipment_id, _source.line_no FROM silver.shipments "
                           "WHERE shipment_id LIKE 'deep%' ORDER BY 1")
        fault.saw(f"{'fast' if fast else 'exact'}: {rows} rows, deep {deep}, rejects {rejects}")
        assert (rows, rejects, summary["failures"]) == (11, [], 0)
        assert deep == [("deep-a", 4), ("deep-o", 8)]


AWKWARD = [
    "shipments/with space/file one.jsonl", "shipments/unicode/été-日本-🚚.jsonl",
    "shipments/plus+and%2B/f.jsonl", "shipments/hash#and?query=1&x/f.jsonl",
    "shipments/-leading-dash/--f.jsonl", "shipments/quote'and\"double/f.jsonl",
    "shipments/" + "/".join(["long" * 50] * 4) + "/f.jsonl", "shipments/semi;colon,comma/f.jsonl",
]


def test_awkward_keys_load_and_keep_their_exact_key(home: Path, fault: Case) -> None:
    fault(f"shipments: {len(AWKWARD)} awkward keys (spaces, unicode, %2B, #?, quotes, 800+ chars)",
          expected="every file loads once; _source.key is the exact key")
    lake = Lake.open(settings(home))
    for n, key in enumerate(AWKWARD):
        land(lake, key, b"\n".join(_lines(2, f"k{n}-")) + b"\n")
    summary = run(lake.settings)
    keys = query(lake, "SELECT _source.key, count(*) FROM silver.shipments GROUP BY 1 ORDER BY 1")
    fault.saw(f"loaded {summary['loaded']}, {len(keys)} distinct keys, failures {summary['failures']}")
    assert summary["failures"] == 0
    assert keys == sorted((k, 2) for k in AWKWARD)


def test_two_runs_at_once_load_everything_once(home: Path, fault: Case) -> None:
    fault("two `lakeline run` processes started together on one lake",
          expected="one runs, the other exits 2 naming the active run (no wait, no damage); "
                   "every line loaded once")
    lake = Lake.open(settings(home))
    for f in range(6):
        land(lake, f"shipments/c/f{f}.jsonl", b"\n".join(_lines(2000, f"c{f}-")) + b"\n")
    env = dict(os.environ, LAKELINE__QUEUE__RETRY_DELAY="0", LAKELINE__RUNNER__POLL_INTERVAL="0.01")
    procs = [subprocess.Popen([LAKELINE, "--home", str(home), "run"], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    time.sleep(0.01)
    done = [p.communicate(timeout=300) for p in procs]
    codes = sorted(p.returncode for p in procs)
    refused = [err for p, (_, err) in zip(procs, done, strict=True) if p.returncode == 2]
    again = subprocess.run([LAKELINE, "--home", str(home), "run", "--json"], env=env, capture_output=True,
                           text=True, timeout=300)
    rows = query(lake, "SELECT count(*), count(DISTINCT shipment_id) FROM silver.shipments")
    fault.saw(f"exit codes {codes}, rows/distinct {rows[0]}, refusal {refused[0].strip()[:90] if refused else '-'}")
    assert codes in ([0, 0], [0, 2])  # the second either found the lock held or ran after the first
    if codes == [0, 2]:
        assert "another `lakeline run` or `serve` is active" in refused[0]
        assert "Traceback" not in refused[0]
    assert again.returncode == 0, again.stderr
    assert rows == [(12000, 12000)]
