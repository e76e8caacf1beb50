"""The transform's fast path (``lakeline.stages.fastpath``) against the exact path.

The fast path may only ever change how fast a chunk loads, never what it loads: the same
silver rows (every column, ``_source`` included), the same files and the same rejects as the
exact path, whatever the bytes. These tests run the same landings through a lake with
``transform.fast_path = false`` and one with the default, prove which chunks really took the
fast path, check line numbers when a chunk is cut into parts, and check that a redelivered
chunk written as fewer parts leaves no stale file behind.
"""

from __future__ import annotations

import math
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import pyarrow.parquet as pq
import pytest

from lakeline.config import Settings
from lakeline.lake import Lake, init_home
from lakeline.pipelines.registry import registry
from lakeline.stages import fastpath
from lakeline.stages.ingest import Ingester
from lakeline.stages.messages import ChunkMessage
from lakeline.stages.transform import Transformer
from tests.functional.helpers import land, query, rec, run, settings

BOM = b"\xef\xbb\xbf"
SILVER_TABLES = ("shipments", "tracking_events", "invoice_lines")
T = '"event_time":"2026-01-05T10:00:00Z"'
SHP = '"record_type":"shipments"'
TRK = '"record_type":"tracking_events"'
INV = '"record_type":"invoice_lines"'
_FILE = re.compile(r"(?P<table>[a-z_]+)/dt=(?P<dt>[^/]+)/part-(?P<oid>[0-9a-f]{16})-c(?P<chunk>[0-9]{5})(?P<n>-[0-9]+)?\.parquet")


# ---- helpers ------------------------------------------------------------------------------
def jsonl(*records: object) -> bytes:
    return b"".join(orjson.dumps(r) + b"\n" for r in records)


def lines(*raw: str | bytes, end: bytes = b"\n") -> bytes:
    """Raw lines (JSON written by hand: NaN, trailing commas...) joined, each ended by ``end``."""
    return b"".join((r.encode() if isinstance(r, str) else r) + end for r in raw)


def new_lake(tmp_path: Path, name: str, **overrides: Any) -> tuple[Settings, Lake]:
    home = tmp_path / name
    init_home(home)
    s = settings(home, **overrides)
    return s, Lake.open(s)


def _norm(value: Any) -> Any:
    """A comparable form of a row value: floats by their bits (NaN equals NaN, -0.0 is not 0.0)."""
    if isinstance(value, float):
        return ("float", value.hex())
    if isinstance(value, dict):
        return tuple((k, _norm(v)) for k, v in sorted(value.items()))
    if isinstance(value, list | tuple):
        return tuple(_norm(v) for v in value)
    return value


def silver_files(lake: Lake) -> list[str]:
    return sorted(i.key for i in lake.store.list("silver") if i.key.endswith(".parquet"))


def rows(lake: Lake, table: str) -> list[tuple[Any, ...]]:
    """Every column of ``silver.<table>`` in source order ([] when the table has no file)."""
    if not any(k.startswith(table + "/") for k in silver_files(lake)):
        return []
    return query(lake, f"SELECT * FROM silver.{table} ORDER BY _source.key, _source.line_no")


def rejects(lake: Lake) -> list[tuple[Any, ...]]:
    if not any(True for _ in lake.store.list("error", "rejects/")):
        return []
    return query(lake, "SELECT key, line_no, byte_offset, reason_code, message, raw "
                       "FROM quarantine.rejects ORDER BY key, line_no")


def snapshot(lake: Lake) -> dict[str, Any]:
    """What a lake holds after a run: file names, each file's schema, rows of every silver
    table (all columns), rejects (all but the time of rejection)."""
    files = silver_files(lake)
    schemas = {}
    for k in files:
        path = lake.store.local_path("silver", k)
        assert path is not None
        schemas[k] = str(pq.read_schema(path))
    out: dict[str, Any] = {"files": files, "schemas": schemas, "rejects": rejects(lake)}
    for table in SILVER_TABLES:
        out[table] = _norm(rows(lake, table))
        if out[table]:
            out[table + ".columns"] = query(
                lake, f"SELECT column_name, column_type FROM (DESCRIBE silver.{table})")
    return out


def ids_by_line(lake: Lake, table: str, column: str) -> list[tuple[Any, ...]]:
    return query(lake, f"SELECT _source.line_no, {column} FROM silver.{table} ORDER BY _source.key, _source.line_no")


Calls = list[tuple[str, int]]


@pytest.fixture
def exact_calls(monkeypatch: pytest.MonkeyPatch) -> Calls:
    """``(key, chunk)`` of every chunk that took the exact path."""
    calls: Calls = []
    original = Transformer._exact_transform

    def spy(self: Transformer, msg: ChunkMessage, *args: Any, **kwargs: Any) -> None:
        calls.append((msg.key, msg.chunk))
        original(self, msg, *args, **kwargs)

    monkeypatch.setattr(Transformer, "_exact_transform", spy)
    return calls


@pytest.fixture
def no_exact(monkeypatch: pytest.MonkeyPatch) -> None:
    """The exact path fails: a chunk can only load through the fast path."""

    def refuse(self: Transformer, msg: ChunkMessage, *args: Any, **kwargs: Any) -> None:
        raise AssertionError(f"exact path taken for {msg.key} chunk {msg.chunk}")

    monkeypatch.setattr(Transformer, "_exact_transform", refuse)


@pytest.fixture
def fast_tries(monkeypatch: pytest.MonkeyPatch) -> Calls:
    """``(key, chunk)`` of every chunk the fast path was tried on (kept or not)."""
    tries: Calls = []
    original = fastpath.FastPath.write

    def spy(self: fastpath.FastPath, msg: ChunkMessage, *args: Any, **kwargs: Any) -> dict[str, list[Path]] | None:
        tries.append((msg.key, msg.chunk))
        return original(self, msg, *args, **kwargs)

    monkeypatch.setattr(fastpath.FastPath, "write", spy)
    return tries


def ingest_only(lake: Lake) -> list[ChunkMessage]:
    """Run ingest on every announced object; the chunk messages, in (key, chunk) order."""
    for m in lake.ingest_queue.receive(10):
        Ingester(lake, registry(lake.settings).route).handle_event(orjson.loads(m.body))
        lake.ingest_queue.delete(m.receipt_handle)
    msgs = [ChunkMessage.from_json(m.body) for m in lake.transform_queue.peek(100)]
    return sorted(msgs, key=lambda m: (m.key, m.chunk))


def files_by_chunk(lake: Lake, table: str) -> dict[tuple[str, str, int], set[str]]:
    """``(dt, object id, chunk) -> {"", "-1", ...}``: the part suffixes of each chunk's files."""
    out: dict[tuple[str, str, int], set[str]] = {}
    for key in silver_files(lake):
        m = _FILE.fullmatch(key)
        assert m is not None, key
        if m["table"] == table:
            out.setdefault((m["dt"], m["oid"], int(m["chunk"])), set()).add(m["n"] or "")
    return out


# ---- 1. equivalence -----------------------------------------------------------------------
SF = '"origin":"SZX","destination":"SEA","carrier":"UPS"'  # a shipment's string fields
CLEAN_MIXED = lines(  # every line loads; CRLF line ends; the first line is a shipment
    f'{{{SHP},{T},"shipment_id":"caf\\u00e9 \\ud83d\\ude00 😀 \\"q\\" a\\/b \\u0000 end","origin":5,'
    '"destination":"SEA","carrier":true,"weight_kg":12}',
    f'{{{SHP},"event_time":"2026-01-05T10:00:00+05:30","shipment_id":"s-exp",{SF},"weight_kg":1e2}}',
    f'{{{SHP},"event_time":"2026-01-05T10:00:00","shipment_id":"s-negzero",{SF},"weight_kg":-0.0}}',
    f'{{{SHP},"event_time":"2026-01-05 23:59:59","shipment_id":"s-bigint",{SF},"weight_kg":12345678901234567890}}',
    f'{{{SHP},"event_time":"2026-01-05T10:00:00.123456Z","shipment_id":"s-digits",{SF},'
    '"weight_kg":3.14159265358979323846264338327950288}',
    f'{{{SHP},{T},"shipment_id":"s-upper-exp",{SF},"weight_kg":-1.5E+2}}',
    f'{{{SHP},{T},"shipment_id":"s-numstr",{SF},"weight_kg":"12.5"}}',
    f'{{{SHP},{T},"shipment_id":"s-trailing-comma",{SF},}}',
    f'{{{SHP},{T},"shipment_id":"s-null-weight",{SF},"weight_kg":null}}',
    f'{{{TRK},{T},"shipment_id":"s1","status":"CREATED","city":"Montréal \\u00e9"}}',
    f'{{{INV},{T},"invoice_id":"i-2.0","sku":"K","quantity":2.0,"unit_price":1e2,"line_total":"12.5"}}',
    f'{{{INV},{T},"invoice_id":"i-1e3","sku":"K","quantity":1e3,"unit_price":-0.0}}',
    f'{{{INV},{T},"invoice_id":"i-big","sku":"K","quantity":9007199254740993,"unit_price":1E-300,'
    '"line_total":12345678901234567890}',
    f'{{{INV},{T},"invoice_id":"i-str","sku":"K","quantity":"7","unit_price":"0.1"}}',
    f'{{{TRK},"event_time":"2026-01-06T00:30:00+05:30","shipment_id":"s2","status":"OUT","city":"Pune"}}',
    end=b"\r\n",
)
# Clean too, but string fields are null or missing (a NULL once made the fast path fall back).
CLEAN_SPARSE = lines(
    f'{{{SHP},{T},"shipment_id":null,"origin":null,"weight_kg":null}}',
    f'{{{TRK},{T}}}',
    f'{{{INV},{T},"invoice_id":"i","quantity":null}}',
)

# One defect per file, between two good lines: (line, reason code of the defect or None if
# the line loads). Every one of them must make the chunk take the exact path.
GOOD_A = orjson.dumps(rec(shipment_id="good-a")).decode()
GOOD_B = orjson.dumps(rec("tracking_events", shipment_id="good-b")).decode()
DEFECTS: dict[str, tuple[str | bytes, str | None]] = {
    "string-holds-object": (f'{{{SHP},{T},"shipment_id":{{"nested":1}}}}', "TYPE_ERROR"),
    "string-holds-array": (f'{{{SHP},{T},"carrier":["UPS"]}}', "TYPE_ERROR"),
    "null-line": ("null", "MALFORMED_JSON"),
    "empty-object": ("{}", "SCHEMA_ERROR"),
    "two-objects": (f'{{{SHP},{T}}} {{{SHP},{T}}}', "MALFORMED_JSON"),
    "malformed": (f'{{{SHP},"event_time": oops}}', "MALFORMED_JSON"),
    "array-line": ("[1]", "NOT_AN_OBJECT"),
    "number-line": ("5", "NOT_AN_OBJECT"),
    "duplicate-keys": (f'{{{SHP},{T},"shipment_id":"first","shipment_id":"second"}}', "DUPLICATE_FIELD"),
    "invalid-utf8": (b'{"record_type":"shipments","event_time":"2026-01-05T10:00:00Z","city":"\xff\xfe"}',
                     "ENCODING_ERROR"),
    "unknown-record-type": (f'{{"record_type":"parcels",{T}}}', "SCHEMA_ERROR"),
    "missing-record-type": (f'{{{T},"shipment_id":"x"}}', "SCHEMA_ERROR"),
    "missing-event-time": (f'{{{SHP},"shipment_id":"x"}}', "NULL_VALUE_ERROR"),
    "bad-timestamp": (f'{{{SHP},"event_time":"yesterday"}}', "TIMESTAMP_ERROR"),
    "epoch-timestamp": (f'{{{SHP},"event_time":1767607200}}', "TIMESTAMP_ERROR"),
    "float-not-a-number": (f'{{{SHP},{T},"weight_kg":"heavy"}}', "TYPE_ERROR"),
    "float-is-boolean": (f'{{{SHP},{T},"weight_kg":true}}', "TYPE_ERROR"),
    "int-fraction": (f'{{{INV},{T},"quantity":2.5}}', "TYPE_ERROR"),
    "int-overflow": (f'{{{INV},{T},"quantity":99999999999999999999}}', "TYPE_ERROR"),
    "int-nan": (f'{{{INV},{T},"quantity":NaN}}', "TYPE_ERROR"),
    "float-nan": (f'{{{SHP},{T},"weight_kg":NaN}}', "TYPE_ERROR"),  # not finite: no measurement
    "float-overflow": (f'{{{SHP},{T},"weight_kg":-1e400}}', "TYPE_ERROR"),
    "single-quotes": ("{'record_type':'shipments'}", "MALFORMED_JSON"),
    "form-feed-line": ("\x0c", "MALFORMED_JSON"),  # a record for ingest, skipped by read_json
    "vertical-tab-line": ("\x0b", "MALFORMED_JSON"),
}


def equivalence_landings() -> dict[str, bytes]:
    files = {
        CLEAN_SINGLE: jsonl(
            *(rec(shipment_id=f"s{i:03d}", weight_kg=i / 4, event_time=f"2026-01-0{5 + i % 2}T10:00:00Z")
              for i in range(40))),
        CLEAN_MIXED_KEY: CLEAN_MIXED,
        CLEAN_SPARSE_KEY: CLEAN_SPARSE,
        "shipments/2026-01-05/blank-line.jsonl": lines(GOOD_A, "", GOOD_B),
        "shipments/2026-01-05/whitespace-line.jsonl": lines(GOOD_A, " \t\r", GOOD_B),
        "shipments/2026-01-05/null-whole-line-only.jsonl": lines("null"),
    }
    for name, (defect, _) in DEFECTS.items():
        d = defect.encode() if isinstance(defect, str) else defect
        files[f"shipments/2026-01-05/bad-{name}.jsonl"] = lines(GOOD_A, d, GOOD_B)
    files[DIRTY_ALL] = lines(GOOD_A, *(d for d, _ in DEFECTS.values()), "", GOOD_B, end=b"\r\n")
    return files


CLEAN_SINGLE = "shipments/2026-01-05/clean-single.jsonl"
CLEAN_MIXED_KEY = "shipments/2026-01-05/clean-mixed.jsonl"
CLEAN_SPARSE_KEY = "shipments/2026-01-05/clean-sparse.jsonl"
DIRTY_ALL = "shipments/2026-01-05/dirty-all.jsonl"


def run_both(tmp_path: Path, landings: dict[str, bytes], calls: Calls, **overrides: Any
             ) -> dict[str, tuple[Lake, dict[str, Any], set[str]]]:
    """Land ``landings`` in an exact-path lake and a default lake and run each: per lake,
    the lake, the run summary and the keys that reached the exact path."""
    out = {}
    for name, path_overrides in (("exact", {"transform__fast_path": False}), ("fast", {})):
        s, lake = new_lake(tmp_path, name, **overrides, **path_overrides)
        for key, data in landings.items():
            land(lake, key, data)
        calls.clear()
        summary = run(s)
        out[name] = (lake, summary, {k for k, _ in calls})
    return out


def test_fast_and_exact_paths_load_identical_rows_files_and_rejects(tmp_path: Path, exact_calls: Calls) -> None:
    """Clean files take the fast path and dirty ones fall back, and the default lake ends
    exactly like the exact-path lake: same file names and schemas, same rows in every column
    (floats compared by their bits), same rejects; and the figures are the expected ones."""
    landings = equivalence_landings()
    both = run_both(tmp_path, landings, exact_calls)
    for _, summary, _ in both.values():
        assert (summary["loaded"], summary["rejected"], summary["failures"]) == (114, 51, 0)
    assert both["exact"][2] == set(landings)
    # the clean files never reached the exact path
    assert both["fast"][2] == set(landings) - {CLEAN_SINGLE, CLEAN_MIXED_KEY, CLEAN_SPARSE_KEY}

    exact, fast = snapshot(both["exact"][0]), snapshot(both["fast"][0])
    assert fast.keys() == exact.keys()
    for part in exact:
        assert fast[part] == exact[part], part

    # the figures themselves. 28 files hold GOOD_A and GOOD_B (25 bad-*, blank-line,
    # whitespace-line, dirty-all); every defect is a reject.
    assert {t: len(exact[t]) for t in SILVER_TABLES} == {
        "shipments": 40 + 9 + 1 + 28, "tracking_events": 2 + 1 + 28, "invoice_lines": 4 + 1}
    expected_rejects = sorted(
        [(f"shipments/2026-01-05/bad-{name}.jsonl", 2, reason) for name, (_, reason) in DEFECTS.items() if reason]
        + [(DIRTY_ALL, 2 + i, reason) for i, (_, reason) in enumerate(DEFECTS.values()) if reason]
        + [("shipments/2026-01-05/null-whole-line-only.jsonl", 1, "MALFORMED_JSON")])
    assert [(k, n, r) for k, n, _, r, _, _ in exact["rejects"]] == expected_rejects
    dirty = landings[DIRTY_ALL].split(b"\r\n")
    for key, line_no, offset, reason, _, raw in exact["rejects"]:
        if key == DIRTY_ALL:
            assert offset == sum(len(x) + 2 for x in dirty[: line_no - 1]), (line_no, reason)
            if reason != "ENCODING_ERROR":
                assert raw.encode() == dirty[line_no - 1] + b"\r"

    lake = both["fast"][0]
    got = query(lake, "SELECT _source.line_no, shipment_id, origin, carrier, weight_kg, "
                      "strftime(event_time, '%Y-%m-%d %H:%M:%S.%f'), CAST(dt AS VARCHAR) "
                      f"FROM silver.shipments WHERE _source.key = '{CLEAN_MIXED_KEY}' ORDER BY 1")
    assert [g[:4] for g in got] == [
        (1, 'café \U0001f600 \U0001f600 "q" a/b \x00 end', "5", "true"),
        (2, "s-exp", "SZX", "UPS"), (3, "s-negzero", "SZX", "UPS"), (4, "s-bigint", "SZX", "UPS"),
        (5, "s-digits", "SZX", "UPS"), (6, "s-upper-exp", "SZX", "UPS"), (7, "s-numstr", "SZX", "UPS"),
        (8, "s-trailing-comma", "SZX", "UPS"), (9, "s-null-weight", "SZX", "UPS"),
    ]
    weights = [g[4] for g in got]
    assert weights[:5] == [12.0, 100.0, 0.0, 12345678901234567890.0, 3.141592653589793]
    assert math.copysign(1.0, weights[2]) == -1.0 and weights[5] == -150.0
    assert weights[6:] == [12.5, None, None]
    assert [(g[5], g[6]) for g in got[:5]] == [
        ("2026-01-05 10:00:00.000000", "2026-01-05"), ("2026-01-05 04:30:00.000000", "2026-01-05"),
        ("2026-01-05 10:00:00.000000", "2026-01-05"), ("2026-01-05 23:59:59.000000", "2026-01-05"),
        ("2026-01-05 10:00:00.123456", "2026-01-05"),
    ]
    assert query(lake, "SELECT invoice_id, quantity, unit_price, line_total FROM silver.invoice_lines "
                       f"WHERE _source.key = '{CLEAN_MIXED_KEY}' AND invoice_id <> 'i-big' ORDER BY _source.line_no") == [
        ("i-2.0", 2, 100.0, 12.5), ("i-1e3", 1000, -0.0, None), ("i-str", 7, 0.1, None)]
    assert query(lake, "SELECT quantity, unit_price, line_total FROM silver.invoice_lines "
                       "WHERE invoice_id = 'i-big'") == [(9007199254740993, 1e-300, 12345678901234567890.0)]
    assert query(lake, "SELECT city, CAST(dt AS VARCHAR), _source.line_no FROM silver.tracking_events "
                       f"WHERE _source.key = '{CLEAN_MIXED_KEY}' ORDER BY 3") == [
        ("Montréal é", "2026-01-05", 10), ("Pune", "2026-01-05", 15)]
    assert query(lake, "SELECT shipment_id FROM silver.shipments "
                       "WHERE _source.key LIKE '%bad-duplicate-keys.jsonl' ORDER BY _source.line_no") == [
        ("good-a",)]


# ---- 2. line numbers across parts ---------------------------------------------------------
def test_parts_of_a_chunk_keep_file_line_numbers(home: Path, monkeypatch: pytest.MonkeyPatch,
                                                   exact_calls: Calls) -> None:
    """With small parts and two DuckDB threads every clean chunk is cut in two parts, numbered
    from their own first lines and scanned in parallel by one COPY, which writes one file per
    partition (``-c<chunk>``); each row keeps the line number of its line in the file, and a
    chunk with a bad line falls back as a whole."""
    monkeypatch.setattr(fastpath, "MIN_PART", 4096)
    s = settings(home, runner__duckdb_threads=2, ingest__chunk_bytes=64 * 1024)
    lake = Lake.open(s)
    n = 3000
    body_lines = [orjson.dumps(rec(shipment_id=f"shp_{i:06d}", event_time=f"2026-01-0{5 + i % 3}T10:00:00Z"))
                  for i in range(1, n + 1)]
    body_lines[1499] = b'{"record_type": "shipments", "broken'
    body = b"\n".join(body_lines) + b"\n"
    land(lake, "shipments/2026-01-05/many.jsonl", body)
    summary = run(s)
    assert (summary["loaded"], summary["rejected"], summary["failures"]) == (n - 1, 1, 0)
    entry = lake.state.runs()[0]
    assert (entry["status"], entry["records"], entry["loaded"], entry["rejected"]) == ("COMPLETE", n, n - 1, 1)
    chunks = entry["chunks"]
    assert chunks == math.ceil(len(body) / (64 * 1024))

    # one chunk, the one holding line 1500, took the exact path
    assert len(exact_calls) == 1
    bad_chunk = exact_calls[0][1]
    assert query(lake, "SELECT line_no, byte_offset, reason_code FROM quarantine.rejects") == [
        (1500, body.index(b'{"record_type": "shipments", "broken'), "MALFORMED_JSON")]
    assert query(lake, "SELECT count(*), count(DISTINCT _source.line_no), min(_source.line_no), "
                       "max(_source.line_no), count(*) FILTER (WHERE shipment_id <> printf('shp_%06d', _source.line_no)) "
                       "FROM silver.shipments") == [(n - 1, n - 1, 1, n, 0)]
    assert query(lake, "SELECT CAST(dt AS VARCHAR), count(*) FROM silver.shipments GROUP BY 1 ORDER BY 1") == [
        ("2026-01-05", 999), ("2026-01-06", 1000), ("2026-01-07", 1000)]  # line 1500 was a 2026-01-05

    files = files_by_chunk(lake, "shipments")
    assert {c for _, _, c in files} == set(range(chunks))
    for (dt, _, chunk), suffixes in files.items():
        assert suffixes == {""}, (dt, chunk)
    assert len(files) == 3 * chunks
    assert bad_chunk in range(chunks)


# ---- 3. the fast path is really taken, or really not --------------------------------------
def test_clean_file_loads_without_the_exact_path(home: Path, no_exact: None, fast_tries: Calls) -> None:
    """A clean JSON-lines file loads, every row, with the exact path made to fail."""
    s = settings(home, ingest__chunk_bytes=4096)
    lake = Lake.open(s)
    land(lake, "shipments/2026-01-05/clean.jsonl", jsonl(
        *(rec(shipment_id=f"s{i}") if i % 3 else rec("invoice_lines", invoice_id=f"i{i}") for i in range(1, 101))))
    summary = run(s)
    assert (summary["loaded"], summary["rejected"], summary["failures"]) == (100, 0, 0)
    chunks = lake.state.runs()[0]["chunks"]
    assert chunks > 1
    assert fast_tries == [("shipments/2026-01-05/clean.jsonl", c) for c in range(chunks)]
    assert query(lake, "SELECT count(*), sum(_source.line_no) FROM silver.shipments") == [
        (67, sum(i for i in range(1, 101) if i % 3))]
    assert query(lake, "SELECT count(*), sum(_source.line_no) FROM silver.invoice_lines") == [
        (33, sum(i for i in range(1, 101) if not i % 3))]


@pytest.mark.parametrize(("name", "body", "overrides", "rejected", "tracking_line"), [
    ("one-bad-line", lines(GOOD_A, '{"broken', GOOD_B), {}, 1, 3),
    ("bad-line-last-type", lines(GOOD_A, GOOD_B, f'{{{INV},{T},"invoice_id":"i","sku":"K","quantity":2.5}}'), {}, 1, 2),
    ("blank-line", lines(GOOD_A, "", GOOD_B), {}, 0, 3),
    ("fast-path-off", lines(GOOD_A, GOOD_B), {"transform__fast_path": False}, 0, 2),
    ("json-array", orjson.dumps([rec(shipment_id="a"), rec("tracking_events")]), {}, 0, 2),
    ("iceberg", lines(GOOD_A, GOOD_B), {"pipelines__shipments__table_format": "iceberg"}, 0, 2),
], ids=["one-bad-line", "bad-line-last-type", "blank-line", "fast-path-off", "json-array", "iceberg"])
def test_chunks_that_must_take_the_exact_path_do(
    home: Path, exact_calls: Calls, fast_tries: Calls, name: str, body: bytes, overrides: dict[str, Any],
    rejected: int, tracking_line: int,
) -> None:
    """A bad line (even of a type met after the first line), a blank line, the fast path
    switched off, a JSON array, an Iceberg table: the chunk takes the exact path, exactly
    once, the good lines load and the fast path leaves no file behind. Only a bad line is
    found by trying the fast path; the others never try it."""
    s = settings(home, **overrides)
    lake = Lake.open(s)
    key = f"shipments/2026-01-05/{name}." + ("json" if name == "json-array" else "jsonl")
    land(lake, key, body)
    summary = run(s)
    assert (summary["loaded"], summary["rejected"], summary["failures"]) == (2, rejected, 0)
    assert exact_calls == [(key, 0)]
    assert fast_tries == ([(key, 0)] if name in {"one-bad-line", "bad-line-last-type"} else [])
    if name != "iceberg":
        assert [k.split("/")[0] for k in silver_files(lake)] == ["shipments", "tracking_events"]
        assert all(k.endswith("-c00000.parquet") for k in silver_files(lake))
        assert query(lake, "SELECT _source.line_no FROM silver.shipments") == [(1,)]
        assert query(lake, "SELECT _source.line_no FROM silver.tracking_events") == [(tracking_line,)]


def test_after_two_misses_the_objects_other_chunks_skip_the_fast_path(
    home: Path, exact_calls: Calls, fast_tries: Calls,
) -> None:
    """A file with a bad line in every chunk: the fast path misses on its first two chunks (and
    the third, started while the second was publishing), which is wasted work; then the other
    chunks go straight to the exact path. One miss is not enough: a file with one bad line
    keeps the fast path for its other chunks (test_parts_of_a_chunk_keep_file_line_numbers).
    A clean file after it tries the fast path again."""
    s = settings(home, ingest__chunk_bytes=2048)
    lake = Lake.open(s)
    rows = [GOOD_A if i % 10 else '{"broken' for i in range(1, 121)]
    land(lake, "shipments/2026-01-05/dirty.jsonl", lines(*rows))
    summary = run(s)
    chunks = lake.state.runs()[0]["chunks"]
    assert chunks > 3 and (summary["loaded"], summary["rejected"]) == (108, 12)
    assert fast_tries == [("shipments/2026-01-05/dirty.jsonl", c) for c in (0, 1, 2)]
    assert sorted(c for _, c in exact_calls) == list(range(chunks))
    land(lake, "shipments/2026-01-05/clean.jsonl", lines(GOOD_A, GOOD_B))
    run(s)
    assert fast_tries[-1] == ("shipments/2026-01-05/clean.jsonl", 0)


def test_fast_path_off_in_the_config_file(home: Path, exact_calls: Calls) -> None:
    """``[transform] fast_path = false`` in lakeline.toml sends clean chunks to the exact path."""
    cfg = home / "lakeline.toml"
    text = cfg.read_text("utf-8")
    assert "[transform]\nfast_path = true\n" in text
    cfg.write_text(text.replace("[transform]\nfast_path = true\n", "[transform]\nfast_path = false\n"), "utf-8")
    s = settings(home)
    assert s.transform.fast_path is False
    lake = Lake.open(s)
    land(lake, "shipments/2026-01-05/a.jsonl", lines(GOOD_A, GOOD_B))
    assert run(s)["loaded"] == 2
    assert exact_calls == [("shipments/2026-01-05/a.jsonl", 0)]


# ---- 4. stale files of a redelivered chunk ------------------------------------------------
def test_redelivery_in_fewer_parts_deletes_the_chunks_stale_files_only(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A chunk an earlier lakeline wrote as two files per partition (``-c<chunk>`` and
    ``-c<chunk>-1``), redelivered now (fast path: one file per partition, whatever the parts;
    then the exact path), leaves exactly one file: its ``-1`` file is deleted, rows never
    duplicate, and the files of its other chunk and of another object in the same partition
    stay."""
    s = settings(home, ingest__chunk_bytes=16 * 1024)
    lake = Lake.open(s)
    land(lake, "shipments/2026-01-05/a.jsonl", jsonl(*(rec(shipment_id=f"a{i:04d}") for i in range(200))))
    land(lake, "shipments/2026-01-05/b.jsonl", jsonl(*(rec(shipment_id=f"b{i:04d}") for i in range(70))))
    msgs = ingest_only(lake)
    assert [(m.key, m.chunk) for m in msgs] == [
        ("shipments/2026-01-05/a.jsonl", 0), ("shipments/2026-01-05/a.jsonl", 1), ("shipments/2026-01-05/b.jsonl", 0)]
    assert all(m.end - m.start >= 2 * 4096 for m in msgs)
    a0, a1, b0 = msgs
    part = "shipments/dt=2026-01-05/part-"
    ones = {f"{part}{a0.object_id}-c00000.parquet", f"{part}{a1.object_id}-c00001.parquet",
            f"{part}{b0.object_id}-c00000.parquet"}
    stale = f"{part}{a0.object_id}-c00000-1.parquet"
    counts = "SELECT count(*), count(DISTINCT shipment_id) FROM silver.shipments"
    transformer = Transformer(lake, registry(lake.settings).stream, threads=2)
    try:
        monkeypatch.setattr(fastpath, "MIN_PART", 4096)  # two parts, one COPY
        for m in msgs:
            result = transformer.process(m)
            assert len(result.files) == 1
        assert set(silver_files(lake)) == ones
        assert query(lake, counts) == [(270, 270)]

        # what an earlier lakeline left: the chunk's rows split over two files
        first = lake.store.get("silver", f"{part}{a0.object_id}-c00000.parquet")
        lake.store.put("silver", stale, first)
        assert query(lake, counts) == [(270 + a0.records, 270)]
        result = transformer.process(a0)
        assert result.files == [f"{part}{a0.object_id}-c00000.parquet"]
        assert set(silver_files(lake)) == ones
        assert query(lake, counts) == [(270, 270)]
    finally:
        transformer.close()

    lake.store.put("silver", stale, first)
    exact_lake = Lake.open(settings(home, ingest__chunk_bytes=16 * 1024, transform__fast_path=False))
    exact = Transformer(exact_lake, registry(exact_lake.settings).stream, threads=2)
    try:
        result = exact.process(a0)
    finally:
        exact.close()
    assert result.files == [f"{part}{a0.object_id}-c00000.parquet"]
    assert set(silver_files(lake)) == ones
    assert query(lake, counts) == [(270, 270)]
    assert query(lake, "SELECT min(_source.line_no), max(_source.line_no) FROM silver.shipments "
                       "WHERE shipment_id LIKE 'a%'") == [(1, 200)]

    # chunk numbers past five digits: the name of chunk 10000 is a prefix of chunk 100000's
    far = Transformer(lake, registry(lake.settings).stream, threads=2)
    try:
        monkeypatch.setattr(fastpath, "MIN_PART", 4096)
        far.process(replace(a0, chunk=100000))
        lake.store.put("silver", f"{part}{a0.object_id}-c10000-1.parquet", first)
        lake.store.put("silver", f"{part}{a0.object_id}-c100000-1.parquet", first)
        far.process(replace(a0, chunk=10000))
    finally:
        far.close()
    assert set(silver_files(lake)) - ones == {
        f"{part}{a0.object_id}-c100000.parquet", f"{part}{a0.object_id}-c100000-1.parquet",
        f"{part}{a0.object_id}-c10000.parquet"}


# ---- 5. edges -----------------------------------------------------------------------------
def test_last_line_without_newline_and_crlf(home: Path, no_exact: None) -> None:
    """Files whose last line has no newline (LF and CRLF), over several chunks, load through
    the fast path with every line and its number."""
    s = settings(home, ingest__chunk_bytes=2048)
    lake = Lake.open(s)
    lf = b"\n".join(orjson.dumps(rec(shipment_id=f"{i}")) for i in range(1, 51))
    crlf = b"\r\n".join(orjson.dumps(rec("tracking_events", shipment_id=f"{i}")) for i in range(1, 52))
    assert not lf.endswith(b"\n") and not crlf.endswith(b"\n")
    land(lake, "shipments/2026-01-05/lf.jsonl", lf)
    land(lake, "shipments/2026-01-05/crlf.jsonl", crlf)
    summary = run(s)
    assert (summary["loaded"], summary["rejected"], summary["failures"]) == (101, 0, 0)
    assert query(lake, "SELECT count(*), count(*) FILTER (WHERE shipment_id <> CAST(_source.line_no AS VARCHAR)), "
                       "max(_source.line_no) FROM silver.shipments") == [(50, 0, 50)]
    assert query(lake, "SELECT count(*), count(*) FILTER (WHERE shipment_id <> CAST(_source.line_no AS VARCHAR)), "
                       "max(_source.line_no), count(*) FILTER (WHERE city <> 'Seattle') "
                       "FROM silver.tracking_events") == [(51, 0, 51, 0)]
    assert {r["key"]: r["chunks"] > 1 for r in lake.state.runs()} == {
        "shipments/2026-01-05/lf.jsonl": True, "shipments/2026-01-05/crlf.jsonl": True}


def test_bom_file_takes_the_fast_path_and_counts_lines_from_one(tmp_path: Path, exact_calls: Calls) -> None:
    """A UTF-8 BOM is skipped by ingest, so the chunk is clean and takes the fast path, with
    the same rows as the exact path; a bad line after a BOM keeps its offset in the file."""
    clean = BOM + jsonl(rec(shipment_id="a"), rec("invoice_lines"), rec(shipment_id="c"))
    dirty = BOM + lines(GOOD_A, "[1]")
    both = run_both(tmp_path, {"shipments/2026-01-05/bom.jsonl": clean,
                               "shipments/2026-01-05/bom-dirty.jsonl": dirty}, exact_calls)
    assert both["fast"][2] == {"shipments/2026-01-05/bom-dirty.jsonl"}
    assert snapshot(both["fast"][0]) == snapshot(both["exact"][0])
    lake = both["fast"][0]
    assert ids_by_line(lake, "shipments", "shipment_id") == [(1, "good-a"), (1, "a"), (3, "c")]
    assert ids_by_line(lake, "invoice_lines", "invoice_id") == [(2, "inv_0000000001")]
    assert rejects(lake) == [("shipments/2026-01-05/bom-dirty.jsonl", 2, 3 + len(GOOD_A) + 1, "NOT_AN_OBJECT",
                              "line is JSON but not an object", "[1]")]


def test_record_types_met_after_the_first_line(home: Path, no_exact: None) -> None:
    """Types first met after line 1 (found by the census), and a first line whose type cannot
    be guessed (a trailing comma is not JSON for the guess), still load every row on the fast path."""
    s = settings(home)
    lake = Lake.open(s)
    later = [rec(shipment_id=f"s{i}") for i in range(5)] + [rec("tracking_events", shipment_id="t1")] \
        + [rec("invoice_lines", invoice_id=f"i{i}") for i in range(3)] + [rec("tracking_events", shipment_id="t2")]
    land(lake, "shipments/2026-01-05/later.jsonl", jsonl(*later))
    land(lake, "shipments/2026-01-05/unguessable.jsonl", lines(
        f'{{{INV},{T},"invoice_id":"nan","sku":"K","quantity":1,"unit_price":2.5,}}',
        orjson.dumps(rec(shipment_id="after-nan")),
        orjson.dumps(rec("invoice_lines", invoice_id="i-after")),
    ))
    land(lake, "shipments/2026-01-05/no-shipments.jsonl", jsonl(
        rec("tracking_events", shipment_id="t3"), rec("invoice_lines", invoice_id="i-only")))
    summary = run(s)
    assert (summary["loaded"], summary["rejected"], summary["failures"]) == (15, 0, 0)
    assert query(lake, "SELECT regexp_extract(_source.key, '[a-z-]+\\.jsonl'), _source.line_no, shipment_id "
                       "FROM silver.tracking_events ORDER BY 1, 2") == [
        ("later.jsonl", 6, "t1"), ("later.jsonl", 10, "t2"), ("no-shipments.jsonl", 1, "t3")]
    assert query(lake, "SELECT regexp_extract(_source.key, '[a-z-]+\\.jsonl'), _source.line_no, invoice_id, "
                       "isnan(unit_price) FROM silver.invoice_lines ORDER BY 1, 2") == [
        ("later.jsonl", 7, "i0", False), ("later.jsonl", 8, "i1", False), ("later.jsonl", 9, "i2", False),
        ("no-shipments.jsonl", 2, "i-only", False),
        ("unguessable.jsonl", 1, "nan", False), ("unguessable.jsonl", 3, "i-after", False)]
    assert query(lake, "SELECT count(*), sum(_source.line_no) FROM silver.shipments") == [(6, 1 + 2 + 3 + 4 + 5 + 2)]


# ---- bugs these tests found, fixed ---------------------------------------------------------
def test_form_feed_or_vertical_tab_around_an_object_is_malformed_on_both_paths(
    tmp_path: Path, exact_calls: Calls
) -> None:
    """Lines ``\\f{...}``, ``\\v{...}`` and ``{...}\\f`` are rejected by both paths alike."""
    body = lines(b"\x0c" + GOOD_A.encode(), b"\x0b" + GOOD_A.encode(), GOOD_A.encode() + b"\x0c", GOOD_B)
    both = run_both(tmp_path, {"shipments/2026-01-05/ff.jsonl": body}, exact_calls)
    assert [(r[1], r[3]) for r in rejects(both["exact"][0])] == [
        (1, "MALFORMED_JSON"), (2, "MALFORMED_JSON"), (3, "MALFORMED_JSON")]
    assert snapshot(both["fast"][0]) == snapshot(both["exact"][0])


def test_clean_chunk_with_null_or_missing_string_fields_takes_the_fast_path(
    tmp_path: Path, exact_calls: Calls
) -> None:
    """The sparse clean file loads on the fast path, as the exact path would load it."""
    both = run_both(tmp_path, {CLEAN_SPARSE_KEY: CLEAN_SPARSE}, exact_calls)
    assert both["fast"][1]["loaded"] == both["exact"][1]["loaded"] == 3
    assert snapshot(both["fast"][0]) == snapshot(both["exact"][0])
    assert both["fast"][2] == set()


def test_string_value_that_looks_like_json_is_a_string(home: Path) -> None:
    """``"sku": "[]"`` is a string, not an array: the line loads."""
    s = settings(home)
    lake = Lake.open(s)
    land(lake, "shipments/2026-01-05/s.jsonl", lines(
        f'{{{INV},{T},"invoice_id":"i","sku":"[]"}}', f'{{{INV},{T},"invoice_id":"j","sku":"{{\\"a\\":1}}"}}'))
    summary = run(s)
    assert (summary["loaded"], summary["rejected"]) == (2, 0)


def test_event_times_outside_years_1_to_9999_are_timestamp_errors(home: Path) -> None:
    """``infinity``, ``-infinity`` and year 10000 cast in DuckDB but name no ``dt``: both paths
    reject them as TIMESTAMP_ERROR (they once loaded into ``dt=infinity`` and crashed the
    after-run check), and years 0001 and 9999 still load."""
    for fast in (True, False):
        h = home.parent / f"lake-{fast}"
        init_home(h)
        s = settings(h, transform__fast_path=fast)
        lake = Lake.open(s)
        land(lake, "shipments/2026-01-05/inf.jsonl", lines(
            *(f'{{{SHP},"event_time":"{t}",{SF},"shipment_id":"x{i}"}}' for i, t in enumerate(
                ["infinity", "-infinity", "10000-01-01T00:00:00Z", "0001-01-01T00:00:00Z",
                 "9999-12-31T23:59:59Z"]))))
        summary = run(s)
        assert (summary["loaded"], summary["rejected"], summary["failures"]) == (2, 3, 0)
        assert [(r[1], r[3], r[4]) for r in rejects(lake)] == [
            (1, "TIMESTAMP_ERROR", "event_time infinity is not a timestamp in years 0001-9999"),
            (2, "TIMESTAMP_ERROR", "event_time -infinity is not a timestamp in years 0001-9999"),
            (3, "TIMESTAMP_ERROR", "event_time 10000-01-01T00:00:00Z is not a timestamp in years 0001-9999")]
        assert query(lake, "SELECT CAST(dt AS VARCHAR) FROM silver.shipments ORDER BY 1") == [
            ("0001-01-01",), ("9999-12-31",)]
