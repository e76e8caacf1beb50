"""The transactions batch pipeline on the local lake: validation, enrichment, the run protocol,
duplicates and condemned rows across runs, and the promotion gate — with exact figures."""

from __future__ import annotations

import hashlib
import threading
from datetime import UTC, datetime
from decimal import Decimal

import pyarrow.parquet as pq
import pytest

from lakeline.errors import NotFoundError, UsageError
from lakeline.lake import Lake
from lakeline.pipelines.transactions import gen as gen
from lakeline.pipelines.transactions.job import TABLE, execute_run, pending_files
from lakeline.promotion import runs as runs_mod
from lakeline.promotion.gate import read_run_summary
from lakeline.promotion.runs import lease_run_id, list_runs
from lakeline.stages.messages import object_id
from tests.functional.helpers import settings

HEADER = "TransactionID,CustomerID,TransactionAmount,Currency,TransactionTimestamp\n"
NOW = datetime(2026, 1, 29, 12, 0, 0, tzinfo=UTC)

# line numbers are file line numbers: the header is line 1
HAND_MADE = HEADER + (
    "TXN-1,C1,10.50,USD,2024-01-05T10:00:00Z\n"            # 2 valid (January)
    "TXN-2,,10.50,USD,2024-01-05T10:00:00Z\n"              # 3 NULL_VALUE_ERROR
    "TXN-3,C1,abc,USD,2024-01-05T10:00:00Z\n"              # 4 TYPE_ERROR
    "TXN-4,C1,1.00,XXX,2024-01-05T10:00:00Z\n"             # 5 CURRENCY_ERROR
    "TXN-5,C1,1.00,EUR,notatime\n"                         # 6 TIMESTAMP_ERROR
    "TXN-1,C2,3.00,EUR,2024-02-05T10:00:00Z\n"             # 7 DUPLICATE_FAILURE (of line 2)
    '"TXN-6","C,3",3.00,EUR,2024-02-05T10:00:00+02:00\n'   # 8 valid (quoted comma, offset)
    "\n"                                                   # 9 blank: not a row
    "TXN-7,C1,1,EUR,2024-02-01,extra\n"                    # 10 SCHEMA_ERROR (6 fields)
    "TXN-8,C1\n"                                           # 11 NULL_VALUE_ERROR (short row)
    "TXN-9,C1,12.345,EUR,2024-01-05T10:00:00Z\n"           # 12 TYPE_ERROR (3 decimals)
    "TXN-10,C1,5,usd,2024-01-05T10:00:00Z\n"               # 13 CURRENCY_ERROR (case-sensitive)
    "TXN-11,C1,5,EUR,infinity\n"                           # 14 TIMESTAMP_ERROR
    "   ,C1,5,EUR,2024-01-05\n"                            # 15 NULL_VALUE_ERROR (blank id)
)
EXPECTED = [
    (3, "NULL_VALUE_ERROR"), (4, "TYPE_ERROR"), (5, "CURRENCY_ERROR"), (6, "TIMESTAMP_ERROR"),
    (7, "DUPLICATE_FAILURE"), (10, "SCHEMA_ERROR"), (11, "NULL_VALUE_ERROR"), (12, "TYPE_ERROR"),
    (13, "CURRENCY_ERROR"), (14, "TIMESTAMP_ERROR"), (15, "NULL_VALUE_ERROR"),
]


@pytest.fixture
def lake(home):
    return Lake.open(settings(home))


def put(lake, key, text):
    lake.store.put("landing", key, text.encode() if isinstance(text, str) else text)
    return key


def rejects(lake, report):
    return pq.read_table(lake.store.local_path("error", report.rejects_key)).to_pylist()


def silver_rows(lake, report):
    rows = []
    for part in report.partitions:
        for key in part["files"]:
            rows.extend(pq.read_table(lake.store.local_path("silver", key)).to_pylist())
    return sorted(rows, key=lambda r: r["TransactionID"])


def row(txn, ts="2024-01-05T10:00:00Z", cust="C1", amount="1.00", cur="EUR"):
    return f"{txn},{cust},{amount},{cur},{ts}\n"


def test_every_reason_code_on_its_exact_line(lake):
    key = put(lake, "transactions/hand.csv", HAND_MADE)
    report = execute_run(lake, [key], now=NOW)
    assert (report.input_rows, report.valid_rows, report.quarantined_rows, report.condemned_rows) == (13, 2, 11, 0)
    assert report.quarantine_by_reason == {
        "CURRENCY_ERROR": 2, "DUPLICATE_FAILURE": 1, "NULL_VALUE_ERROR": 3, "SCHEMA_ERROR": 1,
        "TIMESTAMP_ERROR": 2, "TYPE_ERROR": 2,
    }
    got = rejects(lake, report)
    assert [(r["line_no"], r["reason_code"]) for r in got] == EXPECTED
    data = HAND_MADE.encode()
    lines = HAND_MADE.split("\n")
    etag = lake.store.head("landing", key).etag
    for r in got:
        assert r["raw"] == lines[r["line_no"] - 1]
        assert r["byte_offset"] == data.index((lines[r["line_no"] - 1] + "\n").encode())
        assert (r["pipeline"], r["bucket"], r["key"], r["etag"]) == ("transactions", "landing", key, etag)
    messages = {r["line_no"]: r["message"] for r in got}
    assert messages[3] == "missing required value: CustomerID"
    assert messages[7] == "TransactionID TXN-1 repeats line 2 of transactions/hand.csv"
    assert messages[10] == "row has 6 fields; the header has 5"
    assert messages[11] == "missing required value: TransactionAmount, Currency, TransactionTimestamp"
    assert messages[13] == "Currency usd is not an allowed ISO-4217 code"


def test_valid_rows_are_typed_and_enriched(lake):
    key = put(lake, "transactions/hand.csv", HAND_MADE)
    report = execute_run(lake, [key], now=NOW)
    schema = pq.read_schema(lake.store.local_path("silver", report.partitions[0]["files"][0]))
    assert [(f.name, str(f.type)) for f in schema] == [
        ("TransactionID", "string"), ("CustomerID", "string"), ("TransactionAmount", "decimal128(18, 2)"),
        ("Currency", "string"), ("TransactionTimestamp", "timestamp[us, tz=UTC]"), ("row_hash", "string"),
        ("source_file_id", "string"), ("ingestion_timestamp", "timestamp[us, tz=UTC]"),
    ]
    rows = silver_rows(lake, report)
    assert [(r["TransactionID"], r["CustomerID"], r["TransactionAmount"], r["Currency"],
             r["TransactionTimestamp"]) for r in rows] == [
        ("TXN-1", "C1", Decimal("10.50"), "USD", datetime(2024, 1, 5, 10, tzinfo=UTC)),
        ("TXN-6", "C,3", Decimal("3.00"), "EUR", datetime(2024, 2, 5, 8, tzinfo=UTC)),
    ]
    canonical = "\x1f".join(["TXN-1", "C1", "10.50", "USD", "2024-01-05T10:00:00.000000Z"])
    assert rows[0]["row_hash"] == hashlib.sha256(canonical.encode()).hexdigest()
    etag = lake.store.head("landing", key).etag
    assert {r["source_file_id"] for r in rows} == {object_id("landing", key, etag)}
    assert {r["ingestion_timestamp"] for r in rows} == {NOW}


def test_run_folders_markers_and_metrics(lake):
    report = execute_run(lake, [put(lake, "transactions/hand.csv", HAND_MADE)], now=NOW)
    assert report.run_id == "20260129T120000Z"
    keys = sorted(i.key for i in lake.store.list("silver"))
    assert keys == [
        "mortgages/transactions/year=2024/month=01/schema_v=v1/run_id=20260129T120000Z/_SUCCESS",
        "mortgages/transactions/year=2024/month=01/schema_v=v1/run_id=20260129T120000Z/part-00000.parquet",
        "mortgages/transactions/year=2024/month=02/schema_v=v1/run_id=20260129T120000Z/_SUCCESS",
        "mortgages/transactions/year=2024/month=02/schema_v=v1/run_id=20260129T120000Z/part-00000.parquet",
    ]
    import orjson
    marker = orjson.loads(lake.store.get("silver", keys[0]))
    assert {k: marker[k] for k in ("input_rows", "valid_rows", "quarantined_rows", "condemned_rows",
                                   "partition_rows", "started_at")} == {
        "input_rows": 13, "valid_rows": 2, "quarantined_rows": 11, "condemned_rows": 0,
        "partition_rows": 1, "started_at": "2026-01-29T12:00:00.000Z"}
    assert marker["quarantine_by_reason"]["NULL_VALUE_ERROR"] == 3
    assert marker["finished_at"] >= marker["started_at"]
    [run] = list_runs(lake, TABLE)
    assert (run.run_id, run.status, len(run.folders)) == ("20260129T120000Z", "COMPLETE", 2)


def test_bom_crlf_reordered_and_extra_columns(lake):
    text = ("\ufeffCurrency,Note,TransactionTimestamp,TransactionAmount,CustomerID,TransactionID\r\n"
            "EUR,hello,2024-03-01T00:00:00Z,7,C9,TXN-A\r\n"
            "GBP,x,2024-03-01T00:00:00Z,-2.5,C9,TXN-B\r\n"
            "JPY,x,2024-03-01T00:00:00Z,,C9,TXN-C\r\n")
    report = execute_run(lake, [put(lake, "transactions/bom.csv", text)], now=NOW)
    assert (report.valid_rows, report.quarantine_by_reason) == (2, {"NULL_VALUE_ERROR": 1})
    assert [(r["TransactionID"], r["TransactionAmount"]) for r in silver_rows(lake, report)] == [
        ("TXN-A", Decimal("7.00")), ("TXN-B", Decimal("-2.50"))]
    [rej] = rejects(lake, report)
    assert (rej["line_no"], rej["byte_offset"], rej["raw"]) == (4, text.encode().index(b"JPY"),
                                                                 "JPY,x,2024-03-01T00:00:00Z,,C9,TXN-C")


def test_missing_required_column_rejects_the_whole_file_once(lake):
    bad = put(lake, "transactions/bad.csv", "TransactionID,CustomerID,Amount,Currency,TransactionTimestamp\n"
              + row("TXN-1") + row("TXN-2") + row("TXN-3"))
    good = put(lake, "transactions/good.csv", HEADER + row("TXN-4"))
    report = execute_run(lake, [bad, good], now=NOW)
    assert (report.input_rows, report.valid_rows, report.quarantined_rows) == (4, 1, 3)
    assert report.quarantine_by_reason == {"SCHEMA_ERROR": 3}
    got = rejects(lake, report)
    assert [(r["key"], r["line_no"], r["reason_code"], r["message"]) for r in got] == [
        (bad, 1, "SCHEMA_ERROR", "missing required column(s): TransactionAmount")]
    summary = read_run_summary(lake, TABLE)
    assert summary["has_critical_errors"] is True and summary["promotion_allowed"] is False


def test_empty_file_without_header_is_a_schema_error(lake):
    report = execute_run(lake, [put(lake, "transactions/empty.csv", "")], now=NOW)
    assert (report.input_rows, report.partitions) == (0, [])
    assert [f["reason"] for f in report.rejected_files] == ["SCHEMA_ERROR"]
    assert read_run_summary(lake, TABLE)["has_critical_errors"] is True


def test_duplicates_within_a_run_keep_the_first_occurrence_across_files(lake):
    a = put(lake, "transactions/a.csv", HEADER + row("TXN-1") + row("TXN-2", cur="XXX") + row("TXN-2"))
    b = put(lake, "transactions/b.csv", HEADER + row("TXN-2") + row("TXN-1") + row("TXN-3"))
    report = execute_run(lake, [a, b], now=NOW)
    assert report.valid_rows == 3
    assert report.quarantine_by_reason == {"CURRENCY_ERROR": 1, "DUPLICATE_FAILURE": 2}
    got = [(r["key"], r["line_no"], r["reason_code"], r["message"]) for r in rejects(lake, report)]
    assert got == [
        (a, 3, "CURRENCY_ERROR", "Currency XXX is not an allowed ISO-4217 code"),
        (b, 2, "DUPLICATE_FAILURE", "TransactionID TXN-2 repeats line 4 of transactions/a.csv"),
        (b, 3, "DUPLICATE_FAILURE", "TransactionID TXN-1 repeats line 2 of transactions/a.csv"),
    ]


def test_duplicates_across_runs_use_the_ledger_of_complete_runs(lake):
    first = execute_run(lake, [put(lake, "transactions/1.csv", HEADER + row("TXN-1") + row("TXN-2"))], now=NOW)
    second = execute_run(lake, [put(lake, "transactions/2.csv", HEADER + row("TXN-2") + row("TXN-3"))], now=NOW)
    assert second.run_id == "20260129T120001Z"
    assert (second.valid_rows, second.quarantine_by_reason) == (1, {"DUPLICATE_FAILURE": 1})
    [rej] = rejects(lake, second)
    assert (rej["line_no"], rej["message"]) == (2, f"TransactionID TXN-2 was loaded by run {first.run_id}")


def test_error_repeated_in_three_runs_is_condemned(lake):
    text = HEADER + row("TXN-1", amount="abc") + row("TXN-2", cur="XXX") + row("TXN-3")
    key = put(lake, "transactions/again.csv", text)
    r1, r2, r3 = (execute_run(lake, [key], now=NOW) for _ in range(3))
    assert (r1.quarantined_rows, r1.condemned_rows, r1.valid_rows) == (2, 0, 1)
    # attempt 2: TXN-3 is now a duplicate (attempt 1 of that pair)
    assert (r2.quarantine_by_reason, r2.condemned_rows) == (
        {"CURRENCY_ERROR": 1, "DUPLICATE_FAILURE": 1, "TYPE_ERROR": 1}, 0)
    assert (r3.quarantine_by_reason, r3.condemned_rows, r3.input_rows) == ({"DUPLICATE_FAILURE": 1}, 2, 3)
    got = {r["line_no"]: (r["reason_code"], r["message"]) for r in rejects(lake, r3)}
    assert got[2] == ("MAX_ATTEMPTS", "TYPE_ERROR in attempt 3: TransactionAmount abc is not a decimal "
                                      "number with at most 2 decimals")
    assert got[3][0] == "MAX_ATTEMPTS"
    r4 = execute_run(lake, [key], now=NOW, max_attempts=5)
    assert r4.condemned_rows == 0 and r4.quarantined_rows == 3


def test_run_ids_are_unique_within_one_second(lake):
    key = put(lake, "transactions/a.csv", HEADER + row("TXN-1"))
    ids = [execute_run(lake, [key], now=NOW).run_id for _ in range(2)]
    assert ids == ["20260129T120000Z", "20260129T120001Z"]
    leased: list[str] = []
    same = datetime(2030, 5, 1, 8, 0, 0, 999_000, tzinfo=UTC)

    def take():
        leased.append(lease_run_id(lake, {"table": "t"}, now=same))

    threads = [threading.Thread(target=take) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(leased) == [f"20300501T08000{i}Z" for i in range(8)]


def test_crash_before_the_marker_leaves_an_incomplete_run_that_is_redone(lake, monkeypatch):
    key = put(lake, "transactions/jan_feb.csv",
              HEADER + row("TXN-1") + row("TXN-2", ts="2024-02-02T00:00:00Z"))
    calls = []

    def crash_on_second(lake_, folder, metrics):  # first marker written, then the process "dies"
        calls.append(folder)
        if len(calls) == 2:
            raise SystemExit("killed")
        return original(lake_, folder, metrics)

    original = runs_mod.write_marker
    monkeypatch.setattr("lakeline.pipelines.transactions.job.write_marker", crash_on_second)
    with pytest.raises(SystemExit):
        execute_run(lake, [key], now=NOW)
    monkeypatch.undo()
    [run] = list_runs(lake, TABLE)
    assert (run.run_id, run.status) == ("20260129T120000Z", "INCOMPLETE")
    assert "no _SUCCESS in mortgages/transactions/year=2024/month=02/schema_v=v1" in run.problem
    assert pending_files(lake) == [key]
    with pytest.raises(NotFoundError):
        read_run_summary(lake, TABLE)
    redo = execute_run(lake, [key], now=NOW)  # the crashed run's ids are not in the ledger
    assert (redo.run_id, redo.valid_rows, redo.quarantined_rows) == ("20260129T120001Z", 2, 0)
    assert [(r.run_id, r.status) for r in list_runs(lake, TABLE)] == [
        ("20260129T120000Z", "INCOMPLETE"), ("20260129T120001Z", "COMPLETE")]
    assert pending_files(lake) == []


def test_crash_before_any_marker_is_incomplete(lake, monkeypatch):
    key = put(lake, "transactions/a.csv", HEADER + row("TXN-1"))

    def boom(*args, **kwargs):
        raise SystemExit("killed")

    monkeypatch.setattr("lakeline.pipelines.transactions.job.write_marker", boom)
    with pytest.raises(SystemExit):
        execute_run(lake, [key], now=NOW)
    [run] = list_runs(lake, TABLE)
    assert run.status == "INCOMPLETE" and len(run.folders) == 1 and run.folders[0].marker is None


def test_pending_files_tracks_objects_by_key_and_etag(lake):
    a = put(lake, "transactions/a.csv", HEADER + row("TXN-1"))
    b = put(lake, "transactions/b.csv", HEADER + row("TXN-2"))
    put(lake, "shipments/x.jsonl", "{}\n")
    assert pending_files(lake) == [a, b]
    execute_run(lake, [a])
    assert pending_files(lake) == [b]
    put(lake, a, HEADER + row("TXN-3"))  # changed bytes: a new object
    assert pending_files(lake) == [a, b]
    with pytest.raises(UsageError):
        execute_run(lake, [])


def test_generated_dirty_file_rejects_exactly_the_planted_defects(lake, tmp_path):
    path = tmp_path / "gen.csv"
    gen.write(20_000, path, seed=7, dirty_rate=0.05)
    lake.store.put_file("landing", "transactions/gen.csv", path)
    report = execute_run(lake, ["transactions/gen.csv"], now=NOW)
    expected = gen.defect_counts(20_000, 0.05)
    assert report.quarantine_by_reason == expected == {
        "NULL_VALUE_ERROR": 200, "TYPE_ERROR": 200, "CURRENCY_ERROR": 200, "TIMESTAMP_ERROR": 200,
        "DUPLICATE_FAILURE": 200}
    assert (report.valid_rows, report.input_rows) == (19_000, 20_000)
    assert [p["partition"].split("/")[3] for p in report.partitions] == ["month=01", "month=02", "month=03"]
    assert sum(p["rows"] for p in report.partitions) == 19_000


def test_gate_summary_thresholds_and_run_key(lake):
    with pytest.raises(NotFoundError):
        read_run_summary(lake, TABLE)
    clean = execute_run(lake, [put(lake, "transactions/a.csv", HEADER + "".join(
        row(f"TXN-{i}") for i in range(100)))], now=NOW)
    dirty = execute_run(lake, [put(lake, "transactions/b.csv", HEADER + "".join(
        row(f"TXN-B{i}") for i in range(94)) + "".join(row(f"TXN-X{i}", cur="XXX") for i in range(6)))],
        now=NOW)
    assert read_run_summary(lake, TABLE) == {
        "run_id": dirty.run_id, "quarantined_rows": 6, "quarantine_rate": 0.06, "condemned_rows": 0,
        "input_rows": 100, "has_critical_errors": False, "promotion_allowed": False,
        "quarantine_by_reason": {"CURRENCY_ERROR": 6}, "metrics_source": "marker",
    }
    assert read_run_summary(lake, TABLE, max_quarantine_rate=0.07)["promotion_allowed"] is True
    assert read_run_summary(lake, TABLE, critical_reasons=("CURRENCY_ERROR",), max_quarantine_rate=1)[
        "has_critical_errors"] is True
    first = read_run_summary(lake, TABLE, run_key=clean.run_id)
    assert (first["run_id"], first["quarantine_rate"], first["promotion_allowed"]) == (clean.run_id, 0.0, True)
    with pytest.raises(NotFoundError):
        read_run_summary(lake, TABLE, run_key="20990101T000000Z")


def test_gate_counts_condemned_rows(lake):
    key = put(lake, "transactions/a.csv", HEADER + "".join(row(f"TXN-{i}", amount="bad") for i in range(3)))
    for _ in range(3):
        execute_run(lake, [key], now=NOW)
    s = read_run_summary(lake, TABLE, max_condemned=3)
    assert (s["condemned_rows"], s["quarantined_rows"], s["promotion_allowed"]) == (3, 0, False)
    assert read_run_summary(lake, TABLE, max_condemned=4)["promotion_allowed"] is True
