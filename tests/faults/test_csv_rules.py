"""CSV read by the rules of CSV (issue 16, part 5): RFC 4180 quoted newlines are one record,
an unterminated or stray quote is a reject naming its line (the rows after it still load), and
a file separated by another delimiter than the pipeline's is refused whole with a reason.

Each case runs a declared CSV pipeline end to end (ingest, transform, publish) on both transform
paths (the fast path tries DuckDB's ``read_csv``; the exact path splits records itself) and with
chunks small enough that a chunk boundary falls inside a quoted field.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest

from lakeline.errors import ConfigError
from lakeline.lake import Lake, init_home
from lakeline.pipelines.declared import load_file
from lakeline.pipelines.transactions.job import execute_run
from lakeline.stages import csvscan
from lakeline.stages.spec import CsvOptions
from tests.faults.conftest import Case
from tests.functional.helpers import land, query, run, settings

ITEMS = """
format = "csv"
[tables.items]
fields = [
  { name = "id", type = "int64", required = true },
  { name = "note" },
  { name = "qty", type = "int64" },
]
"""
# the same table with no required column: nothing in the header is needed
LOOSE = ITEMS.replace(", required = true", "")

PATHS = [pytest.param(True, 1 << 20, id="fast"), pytest.param(False, 1 << 20, id="exact"),
         pytest.param(True, 1024, id="fast-1k-chunks")]
# row 1's note: with 1024-byte chunks, the first cut falls inside row 2's quoted field
FILL = b"p" * 1000


def lake_with(home: Path, text: str = ITEMS, **overrides: Any) -> Lake:
    init_home(home)
    s = settings(home, **overrides)
    (s.home / "pipelines").mkdir(exist_ok=True)
    (s.home / "pipelines" / "items.toml").write_text(text)
    return Lake.open(s)


def loaded(lake: Lake) -> list[tuple[Any, ...]]:
    return query(lake, "SELECT id, note, qty, _source.line_no FROM silver.items ORDER BY id")


def rejects(lake: Lake) -> list[tuple[Any, ...]]:
    return query(lake, "SELECT line_no, byte_offset, reason_code, message, raw FROM quarantine.rejects "
                       "ORDER BY line_no NULLS FIRST")


def counts(lake: Lake) -> tuple[int, int, int]:
    entry = lake.state.runs(limit=1)[0]
    return entry["records"], entry["loaded"], entry["rejected"]


def offset(body: bytes, line: int) -> int:
    """Byte offset of 1-based ``line`` of ``body``."""
    return sum(len(x) + 1 for x in body.split(b"\n")[: line - 1])


@pytest.mark.parametrize(("fast", "chunk"), PATHS)
def test_quoted_newlines_are_one_record_numbered_by_its_first_line(
        home: Path, fault: Case, fast: bool, chunk: int) -> None:
    fault(f"CSV quoted newlines ({'fast' if fast else 'exact'} path, {chunk}-byte chunks)",
          expected="one row per record, line_no its first line, nothing rejected")
    body = (b'id,note,qty\n1,' + FILL + b',1\n2,"three\nline\nnote",2\n3,"a ""quoted"", comma",3\r\n'
            b'4,"crlf\r\ninside",4\n5,last,5\n')
    lake = lake_with(home, transform__fast_path=fast, ingest__chunk_bytes=chunk)
    land(lake, "items/a.csv", body)
    summary = run(lake.settings)
    fault.saw(f"records/loaded/rejected {counts(lake)}, (id, line_no) {[(r[0], r[3]) for r in loaded(lake)]}")
    assert (summary["loaded"], summary["rejected"], summary["failures"]) == (5, 0, 0)
    assert counts(lake) == (5, 5, 0)
    assert loaded(lake) == [(1, FILL.decode(), 1, 2), (2, "three\nline\nnote", 2, 3), (3, 'a "quoted", comma', 3, 6),
                            (4, "crlf\r\ninside", 4, 7), (5, "last", 5, 9)]
    assert rejects(lake) == []


UNTERMINATED = (b'id,note,qty\n1,' + FILL + b',1\n2,"never closed,2\n3,c,3\n4,d,4\n5,"e",5\n6,f,6\n')


@pytest.mark.parametrize(("fast", "chunk"), PATHS)
def test_an_unterminated_quote_rejects_its_line_and_the_rows_after_it_load(
        home: Path, fault: Case, fast: bool, chunk: int) -> None:
    fault(f"CSV unterminated quote mid-file ({'fast' if fast else 'exact'} path, {chunk}-byte chunks)",
          expected="line 3 rejected (SCHEMA_ERROR, names the quote), lines 2 and 4-7 load; 6 = 5 + 1")
    lake = lake_with(home, transform__fast_path=fast, ingest__chunk_bytes=chunk)
    land(lake, "items/a.csv", UNTERMINATED)
    summary = run(lake.settings)
    fault.saw(f"records/loaded/rejected {counts(lake)}, rejects {[r[:3] for r in rejects(lake)]}")
    assert (summary["loaded"], summary["rejected"]) == (5, 1)
    assert counts(lake) == (6, 5, 1)
    assert [r[:2] for r in loaded(lake)] == [(1, FILL.decode()), (3, "c"), (4, "d"), (5, "e"), (6, "f")]
    assert [r[3] for r in loaded(lake)] == [2, 4, 5, 6, 7]
    assert rejects(lake) == [(3, offset(UNTERMINATED, 3), "SCHEMA_ERROR",
                              "line 3: a quote opened in field 2 is never closed "
                              "(its next quote, 3 lines below, is followed by 'e')", '2,"never closed,2')]


def test_an_unterminated_quote_on_the_last_line_rejects_that_line_only(home: Path, fault: Case) -> None:
    fault("CSV unterminated quote on the last line", expected="only that line rejected, counts reconcile")
    body = b'id,note,qty\n1,a,1\n2,b,2\n3,"open,3\n'
    lake = lake_with(home)
    land(lake, "items/a.csv", body)
    run(lake.settings)
    fault.saw(f"records/loaded/rejected {counts(lake)}, rejects {[r[:3] for r in rejects(lake)]}")
    assert counts(lake) == (3, 2, 1)
    assert rejects(lake) == [(4, offset(body, 4), "SCHEMA_ERROR",
                              "line 4: a quote opened in field 2 is never closed", '3,"open,3')]


STRAY = b'id,note,qty\n1,a 12" pipe,1\n2,' + FILL + b',2\n3,"x"y,3\n4,2" by 4",4\n5,e,5\n'


@pytest.mark.parametrize(("fast", "chunk"), PATHS)
def test_a_stray_quote_is_a_reject_naming_its_line_not_a_value(
        home: Path, fault: Case, fast: bool, chunk: int) -> None:
    fault(f"CSV stray quotes ({'fast' if fast else 'exact'} path, {chunk}-byte chunks)",
          expected="lines 2, 4, 5 rejected naming the quote; no value holds a stray quote; 5 = 2 + 3")
    lake = lake_with(home, transform__fast_path=fast, ingest__chunk_bytes=chunk)
    land(lake, "items/a.csv", STRAY)
    run(lake.settings)
    fault.saw(f"records/loaded/rejected {counts(lake)}, rejects {[r[:3] for r in rejects(lake)]}, "
              f"values with a quote {[r[1] for r in loaded(lake) if chr(34) in r[1]]}")
    assert loaded(lake) == [(2, FILL.decode(), 2, 3), (5, "e", 5, 6)]
    assert counts(lake) == (5, 2, 3)
    assert rejects(lake) == [
        (2, offset(STRAY, 2), "SCHEMA_ERROR", "line 2: a quote stands inside the unquoted field 2",
         '1,a 12" pipe,1'),
        (4, offset(STRAY, 4), "SCHEMA_ERROR", "line 4: the quoted field 2 is followed by 'y', "
                                              "not a delimiter or a line end", '3,"x"y,3'),
        (5, offset(STRAY, 5), "SCHEMA_ERROR", "line 5: a quote stands inside the unquoted field 2",
         '4,2" by 4",4'),
    ]


@pytest.mark.parametrize("text", [ITEMS, LOOSE], ids=["required-id", "nothing-required"])
def test_a_semicolon_file_given_to_a_comma_pipeline_is_refused_with_the_fix(
        home: Path, fault: Case, text: str) -> None:
    fault(f"CSV ;-separated file, comma pipeline ({'id required' if text == ITEMS else 'nothing required'})",
          expected="object dropped to error/, reason names csv.delimiter")
    lake = lake_with(home, text)
    land(lake, "items/semi.csv", b"id;note;qty\n1;a;1\n2;b;2\n")
    land(lake, "items/good.csv", b"id,note,qty\n3,c,3\n")
    run(lake.settings)
    got = rejects(lake)
    fault.saw(f"rejects {[r[2:4] for r in got]}, the other file's rows {[r[0] for r in loaded(lake)]}")
    assert got == [(None, None, "SCHEMA_ERROR", 'line 1: the header looks ";"-separated (it has: id;note;qty); '
                    'set csv.delimiter = ";" in the pipeline', None)]
    assert loaded(lake) == [(3, "c", 3, 2)]  # the other file still loads
    assert (home / "zones" / "error" / "objects" / "items" / "semi.csv").read_bytes() == b"id;note;qty\n1;a;1\n2;b;2\n"
    runs = {e["key"]: e for e in lake.state.runs(limit=5)}
    assert (runs["items/semi.csv"]["status"], runs["items/semi.csv"]["dropped"]) == ("FAILED", 1)


def test_a_comma_header_matching_the_pipeline_is_not_taken_for_another_delimiter(home: Path) -> None:
    # a declared column whose name holds a ';' must not trigger the hint
    lake = lake_with(home, LOOSE.replace('name = "note"', 'name = "note", column = "a;b"'))
    land(lake, "items/a.csv", b'id,"a;b",qty\n1,x,1\n')
    run(lake.settings)
    assert loaded(lake) == [(1, "x", 1, 2)]
    assert rejects(lake) == []


def test_delimiter_auto_is_a_config_error_saying_the_delimiter_is_declared(tmp_path: Path) -> None:
    path = tmp_path / "items.toml"
    path.write_text(ITEMS.replace('format = "csv"', 'format = "csv"\n[csv]\ndelimiter = "auto"'))
    with pytest.raises(ConfigError) as exc:
        load_file(path)
    assert str(exc.value) == (
        f"{path}: csv.delimiter must be one character (not a line end), got 'auto' (a file's delimiter "
        "is declared, never guessed: a file whose header is written with another common one is refused, "
        "naming it)")


# ---- the scanner itself: record ends at a block end that is not the object's end -------------------
def test_an_open_quote_at_a_block_end_waits_for_more_data() -> None:
    opts = CsvOptions()
    block = b'1,a,1\n2,"multi\nline'
    assert csvscan.record_ends(block, opts, final=False).tolist() == [5]  # line 2 may close later
    assert csvscan.record_ends(block, opts).tolist() == [5, 14]  # at the end: line 2 alone is bad
    recs = csvscan.records(block, opts)
    assert (recs.line.tolist(), recs.bad) == ([1, 2, 3], {1: "a quote opened in field 2 is never closed"})


def test_well_quoted_records_keep_the_vectorised_scan() -> None:
    opts = CsvOptions(delimiter=";")
    data = b'1;"a;""b""\nc";2\n3;"";4\n'
    assert csvscan.record_ends(data, opts).tolist() == [15, 22]
    assert csvscan.well_quoted(data, opts)
    assert not csvscan.well_quoted(b'1;x"y;2\n', opts)
    assert np.array_equal(csvscan.records(data, opts).line, [1, 3])


def _reference(data: bytes, delim: bytes) -> tuple[list[int], set[int]]:
    """RFC 4180 read character by character: record ends, and the starts of bad records (a bad
    record is its first line; reading resumes at the next line)."""
    ends: list[int] = []
    bad: set[int] = set()
    n, pos = len(data), 0
    while pos < n:
        i, end, ok = pos, -1, True
        while True:  # at a field start
            if data[i:i + 1] == b'"':
                j = i + 1
                while (k := data.find(b'"', j)) >= 0 and data[k + 1:k + 2] == b'"':
                    j = k + 2
                nxt = data[k + 1:k + 2] if k >= 0 else b"?"
                if k >= 0 and nxt == delim:
                    i = k + 2
                    continue
                ok = k >= 0 and (nxt in (b"", b"\n") or (nxt == b"\r" and data[k + 2:k + 3] in (b"\n", b"")))
                end = -1 if not ok or k + 1 + (nxt == b"\r") >= n else k + 1 + (nxt == b"\r")
                break
            j = i
            while j < n and data[j:j + 1] not in (delim, b"\n", b'"'):
                j += 1
            if data[j:j + 1] == delim:
                i = j + 1
                continue
            ok, end = data[j:j + 1] != b'"', (j if j < n else -1)
            break
        if not ok:
            bad.add(pos)
            end = data.find(b"\n", pos)
        if end < 0:
            break
        ends.append(end)
        pos = end + 1
    return ends, bad


@pytest.mark.parametrize("window", [16, 1 << 20])
def test_the_scanner_agrees_with_a_character_by_character_reader(monkeypatch: pytest.MonkeyPatch,
                                                                 window: int) -> None:
    monkeypatch.setattr(csvscan, "_WINDOW", window)  # small windows: many walks across their edges
    rnd = random.Random(16)
    checked = bad_records = 0
    for delim in (",", ";"):
        opts = CsvOptions(delimiter=delim)
        pieces = ["a", '"', '"', delim, "\n", "\r\n", " ", "xy", '""']
        for _ in range(1000):
            data = "".join(rnd.choice(pieces) for _ in range(rnd.randint(0, 60))).encode()
            ends, bad = csvscan._scan(data, opts, True)
            assert (ends.tolist(), set(bad)) == _reference(data, delim.encode()), data
            checked += 1
            bad_records += len(bad)
    assert checked == 2000 and bad_records > 1000  # the inputs are mostly badly quoted


# ---- the transactions job pipeline reads its CSV by the same rules ---------------------------

TXN_HEADER = b"TransactionID,CustomerID,TransactionAmount,Currency,TransactionTimestamp\n"
TXN_NOW = datetime(2026, 1, 29, 12, 0, 0, tzinfo=UTC)


def _txn_run(home: Path, body: bytes) -> tuple[Any, list[dict[str, Any]], list[dict[str, Any]]]:
    lake = Lake.open(settings(home))
    lake.store.put("landing", "transactions/q.csv", body)
    report = execute_run(lake, ["transactions/q.csv"], now=TXN_NOW)
    rejected = (pq.read_table(lake.store.local_path("error", report.rejects_key)).to_pylist()
                if report.rejects_key else [])
    rows = [r for p in report.partitions for k in p["files"]
            for r in pq.read_table(lake.store.local_path("silver", k)).to_pylist()]
    return report, sorted(rows, key=lambda r: r["TransactionID"]), rejected


def test_transactions_quoted_newlines_are_one_row(home: Path, fault: Case) -> None:
    fault("transactions CSV: a quoted field spanning lines, a quoted comma, CRLF inside quotes",
          expected="one row per record with the newline kept, nothing rejected, later lines keep numbers")
    body = (TXN_HEADER + b'TXN-1,"C1\nsecond line",10.50,USD,2024-01-05T10:00:00Z\n'
            b'TXN-2,"C,2",1.00,EUR,2024-01-05T10:00:00Z\r\n'
            b'TXN-3,"a\r\nb ""q""",2.00,EUR,2024-01-05T10:00:00Z\n'
            b'TXN-4,C4,x,EUR,2024-01-05T10:00:00Z\n')
    report, rows, rejected = _txn_run(home, body)
    fault.saw(f"input/valid/quarantined {(report.input_rows, report.valid_rows, report.quarantined_rows)}, "
              f"customers {[r['CustomerID'] for r in rows]}, rejects {[(r['line_no'], r['reason_code']) for r in rejected]}")
    assert (report.input_rows, report.valid_rows, report.quarantined_rows) == (4, 3, 1)
    assert [r["CustomerID"] for r in rows] == ["C1\nsecond line", "C,2", 'a\r\nb "q"']
    assert [(r["line_no"], r["byte_offset"], r["reason_code"]) for r in rejected] == [
        (7, body.index(b"TXN-4"), "TYPE_ERROR")]


def test_transactions_stray_and_unterminated_quotes_are_rejects_naming_the_line(home: Path, fault: Case) -> None:
    fault("transactions CSV: an unterminated quote, a stray quote inside a field",
          expected="each its own SCHEMA_ERROR naming the line; no value holds a quote; the rows after load")
    body = (TXN_HEADER + b'TXN-1,"C1,10.50,USD,2024-01-05T10:00:00Z\n'
            b'TXN-2,C2,1.00,EUR,2024-01-05T10:00:00Z\n'
            b'TXN-3,C3 12" pipe,1.00,EUR,2024-01-05T10:00:00Z\n'
            b'TXN-4,C4,1.00,EUR,2024-01-05T10:00:00Z\n')
    report, rows, rejected = _txn_run(home, body)
    fault.saw(f"input/valid/quarantined {(report.input_rows, report.valid_rows, report.quarantined_rows)}, "
              f"rejects {[(r['line_no'], r['reason_code']) for r in rejected]}")
    assert (report.input_rows, report.valid_rows, report.quarantined_rows) == (4, 2, 2)
    assert report.quarantine_by_reason == {"SCHEMA_ERROR": 2}
    assert [r["TransactionID"] for r in rows] == ["TXN-2", "TXN-4"]
    assert [(r["line_no"], r["byte_offset"], r["reason_code"], r["message"], r["raw"]) for r in rejected] == [
        (2, len(TXN_HEADER), "SCHEMA_ERROR",
         "line 2: a quote opened in field 2 is never closed (its next quote, 2 lines below, is followed by ' ')",
         'TXN-1,"C1,10.50,USD,2024-01-05T10:00:00Z'),
        (4, body.index(b"TXN-3"), "SCHEMA_ERROR", "line 4: a quote stands inside the unquoted field 2",
         'TXN-3,C3 12" pipe,1.00,EUR,2024-01-05T10:00:00Z'),
    ]
