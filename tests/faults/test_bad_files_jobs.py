"""Issue 16, part 1, job pipelines: a landed file that cannot be read is quarantined, never a
blocker, and gzip input loads like its plain twin (transactions, retail, carbon).

Before the fix one gzip or UTF-16 transactions CSV made every later ``lakeline run`` crash
(``_csv.Error`` in ``read_header``), leaving an INCOMPLETE run folder each time and running
nothing after it. Each case drives the real CLI over a real lake, in-process through
``lakeline.cli.main.main`` (:class:`tests.e2e.helpers.InProcess`: exit codes, stdout and stderr
as a subprocess sees them, without paying an interpreter start per command).
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from lakeline.stages.textinput import UnreadableInput, problem, text_bytes, text_path
from tests.e2e.helpers import Cli, InProcess, runs_of

#: a gzip header whose mtime bytes hold a CR inside the first "line": the old reader took the
#: raw bytes as a CSV header and crashed (``new-line character seen in unquoted field``)
POISON_MTIME = 0x41410D41
BINARY = bytes(range(256)) * 40


def _cli(home: Path, cwd: Path) -> InProcess:
    cli = InProcess(home, cwd)
    cli.ok("init", cli.home)
    return cli


@pytest.fixture
def lake(tmp_path: Path) -> Cli:
    return _cli(tmp_path / "lake", tmp_path)


def _truncated_gzip(data: bytes) -> bytes:
    packed = gzip.compress(data, mtime=POISON_MTIME)
    return packed[: len(packed) // 2]


def _outbox(cli: Cli) -> list[dict[str, Any]]:
    path = cli.home / "outbox" / "notifications.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _failed_lines(stderr: str, pipeline: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith(f"FAILED {pipeline}:")]


def test_unreadable_transactions_files_are_quarantined_and_the_good_ones_load(fault, lake: Cli,
                                                                               tmp_path: Path) -> None:
    fault("transactions: truncated gzip, UTF-16 and binary CSV beside a plain and a gzip one",
          expected="3 moved to error/objects/ with reasons, FAILED in runs, notified, exit 1 with one "
                   "line each; 500 good rows load; no INCOMPLETE run")
    lake.ok("gen", "transactions", "--count", "300", "--out", "a.csv", "--seed", "1")
    lake.ok("gen", "transactions", "--count", "200", "--out", "b.csv", "--seed", "2", "--first-id", "10001")
    plain = (tmp_path / "a.csv").read_bytes()
    bad = {"transactions/d/trunc.csv.gz": _truncated_gzip(plain),
           "transactions/d/u16.csv": plain.decode().encode("utf-16"),
           "transactions/d/bin.csv": BINARY}
    for key, data in bad.items():
        (tmp_path / Path(key).name).write_bytes(data)
        lake.ok("put", Path(key).name, "--pipeline", "transactions", "--key", key)
    (tmp_path / "b.csv.gz").write_bytes(gzip.compress((tmp_path / "b.csv").read_bytes()))
    lake.ok("put", "a.csv", "--pipeline", "transactions", "--key", "transactions/d/a.csv")
    lake.ok("put", "b.csv.gz", "--pipeline", "transactions", "--key", "transactions/d/b.csv.gz")

    done = lake("run")
    failed = _failed_lines(done.stderr, "transactions")
    loaded = lake.json("sql", "SELECT count(*) AS n FROM silver.transactions__runs")[0]["n"]
    errors = {key: (lake.home / "zones" / "error" / "objects" / key) for key in bad}
    runs = runs_of(lake, "--pipeline", "transactions")
    notes = [n for n in _outbox(lake) if n["subject"] == "lakeline: object rejected"]
    rejects = lake.json("sql", "SELECT key, reason_code, message FROM quarantine.rejects "
                               "WHERE pipeline = 'transactions' ORDER BY key")
    fault.saw(f"exit {done.returncode}, {len(failed)} FAILED line(s), {loaded} rows loaded, "
              f"{sum(p.exists() for p in errors.values())} in error/objects/, {len(notes)} notified")

    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert len(failed) == 3
    for key in bad:
        assert sum(key in line for line in failed) == 1, (key, failed)
    assert "gzip data is truncated or corrupt" in next(line for line in failed if "trunc.csv.gz" in line)
    assert "UTF-16LE text" in next(line for line in failed if "u16.csv" in line)
    assert "binary, not text" in next(line for line in failed if "bin.csv" in line)
    assert "batch run" in done.stdout and "500 rows, 500 valid, 0 quarantined" in done.stdout
    assert loaded == 500
    # moved, byte for byte, out of landing into error/objects/
    for key, data in bad.items():
        assert errors[key].read_bytes() == data
        assert not (lake.home / "zones" / "landing" / key).exists()
    assert [(r["key"], r["reason_code"]) for r in rejects] == [
        ("transactions/d/bin.csv", "ENCODING_ERROR"), ("transactions/d/trunc.csv.gz", "ENCODING_ERROR"),
        ("transactions/d/u16.csv", "ENCODING_ERROR")]
    assert all(r["message"].startswith(r["key"] + ": ") for r in rejects)
    by_key = {r["key"]: r for r in runs if r["kind"] == "object"}
    assert {k: by_key[k]["status"] for k in bad} == dict.fromkeys(bad, "FAILED")
    assert all(by_key[k]["error"].startswith(f"{k}: ") for k in bad)
    assert [r["status"] for r in runs if r["kind"] == "batch"] == ["COMPLETE"]
    assert sorted(n["attributes"]["key"] for n in notes) == sorted(bad)
    # the next run has nothing left to do and succeeds
    again = lake.json("run")
    assert again["batch_runs"] == [] and again["status"] == "success"


def test_a_transactions_header_no_csv_reader_takes_is_quarantined(fault, lake: Cli, tmp_path: Path) -> None:
    fault("transactions: a header with a lone CR inside, a 200 KB header field",
          expected="both moved to error/objects/ (SCHEMA_ERROR naming line 1), the good file loads, exit 1")
    lake.ok("gen", "transactions", "--count", "50", "--out", "a.csv", "--seed", "5")
    body = (tmp_path / "a.csv").read_text().split("\n", 1)[1]
    bad = {"transactions/cr.csv": "TransactionID,Cust\romerID,TransactionAmount,Currency,TransactionTimestamp\n" + body,
           "transactions/wide.csv": "TransactionID," + "x" * 200_000 + "\n" + body}
    for key, text in bad.items():
        (tmp_path / Path(key).name).write_text(text)
        lake.ok("put", Path(key).name, "--pipeline", "transactions", "--key", key)
    lake.ok("put", "a.csv", "--pipeline", "transactions", "--key", "transactions/a.csv")

    done = lake("run")
    failed = _failed_lines(done.stderr, "transactions")
    rejects = lake.json("sql", "SELECT key, reason_code, message FROM quarantine.rejects ORDER BY key")
    loaded = lake.json("sql", "SELECT count(*) AS n FROM silver.transactions__runs")[0]["n"]
    fault.saw(f"exit {done.returncode}, {len(failed)} FAILED line(s), {loaded} rows loaded, "
              f"rejects {[(r['key'], r['reason_code']) for r in rejects]}")

    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert len(failed) == 2 and loaded == 50
    assert [(r["key"], r["reason_code"]) for r in rejects] == [
        ("transactions/cr.csv", "SCHEMA_ERROR"), ("transactions/wide.csv", "SCHEMA_ERROR")]
    assert [r["message"] for r in rejects] == [
        "transactions/cr.csv: line 1: the header is not a CSV line (a carriage return inside the line)",
        "transactions/wide.csv: line 1: the header is not a CSV line (a field longer than 131072 characters)"]
    for key in bad:
        assert (lake.home / "zones" / "error" / "objects" / key).exists()


def test_a_gzip_transactions_file_loads_exactly_like_its_plain_twin(fault, tmp_path: Path) -> None:
    fault("transactions: gzip twin of a plain CSV (with and without .gz in the key)",
          expected="the same rows (row_hash) as the plain file")
    rows = []
    for name, key in (("plain", "transactions/t.csv"), ("gz", "transactions/t.csv.gz"),
                      ("magic", "transactions/t-gz-without-suffix.csv")):
        cli = _cli(tmp_path / name, tmp_path)
        if name == "plain":
            cli.ok("gen", "transactions", "--count", "400", "--out", "t.csv", "--seed", "7", "--dirty-rate", "0.05")
            (tmp_path / "t.gz").write_bytes(gzip.compress((tmp_path / "t.csv").read_bytes()))
        cli.ok("put", "t.csv" if name == "plain" else "t.gz", "--pipeline", "transactions", "--key", key)
        [batch] = cli.json("run")["batch_runs"]
        rows.append((batch["input_rows"], batch["valid_rows"], batch["quarantine_by_reason"], cli.json(
            "sql", 'SELECT "TransactionID" AS id, row_hash FROM silver.transactions__runs ORDER BY 1')))
    fault.saw(f"plain/gz/magic: {[(r[0], r[1]) for r in rows]}")
    assert rows[0][0] == 400 and 0 < rows[0][1] < 400 and len(rows[0][3]) == rows[0][1]
    assert rows[1] == rows[0] and rows[2] == rows[0]


def test_unreadable_retail_files_are_quarantined_and_gzip_orders_load(fault, lake: Cli, tmp_path: Path) -> None:
    fault("retail: truncated gzip orders, UTF-16 newest customers, gzip orders",
          expected="bad ones moved to error/objects/ and FAILED; the gzip orders load with the older "
                   "customers file; exit 1 with one line per bad file")
    lake.ok("gen", "retail", "--out", "d", "--count", "300")
    orders = (tmp_path / "d" / "orders.csv").read_bytes()
    (tmp_path / "orders-good.csv.gz").write_bytes(gzip.compress(orders))
    (tmp_path / "orders-bad.csv.gz").write_bytes(_truncated_gzip(orders))
    (tmp_path / "customers-2.csv").write_bytes((tmp_path / "d" / "customers.csv").read_text().encode("utf-16"))
    lake.ok("put", "d/customers.csv", "d/products.csv", "--pipeline", "retail")
    lake.ok("put", "customers-2.csv", "--pipeline", "retail", "--key",
            "retail/customers/ingest_date=2025-10-02/customers-2.csv")
    lake.ok("put", "orders-bad.csv.gz", "--pipeline", "retail", "--key",
            "retail/orders/ingest_date=2025-10-01/orders-bad.csv.gz")
    lake.ok("put", "orders-good.csv.gz", "--pipeline", "retail")  # lands under today's date

    done = lake("run")
    failed = _failed_lines(done.stderr, "retail")
    table = lake.json("sql", "SELECT count(*) AS n, count(*) FILTER (WHERE region IS NULL) AS no_region "
                             "FROM retail_silver.orders_silver")[0]
    runs = {r["key"]: r for r in runs_of(lake, "--pipeline", "retail")}
    bad = ["retail/customers/ingest_date=2025-10-02/customers-2.csv",
           "retail/orders/ingest_date=2025-10-01/orders-bad.csv.gz"]
    notes = sorted(n["attributes"]["key"] for n in _outbox(lake) if n["subject"] == "lakeline: object rejected")
    fault.saw(f"exit {done.returncode}, {len(failed)} FAILED line(s), {table['n']} rows loaded "
              f"({table['no_region']} without region), {len(notes)} notified")

    assert done.returncode == 1, done.stderr
    assert len(failed) == 2 and all(sum(k in line for line in failed) == 1 for k in bad), failed
    assert "gzip data is truncated or corrupt" in next(line for line in failed if "orders-bad" in line)
    assert "UTF-16LE text" in next(line for line in failed if "customers-2" in line)
    assert (table["n"], table["no_region"]) == (300, 0)
    for key in bad:
        assert (lake.home / "zones" / "error" / "objects" / key).exists()
        assert not (lake.home / "zones" / "landing" / key).exists()
        assert runs[key]["status"] == "FAILED" and runs[key]["error"].startswith(f"{key}: ")
    assert notes == bad
    good = next(r for k, r in runs.items() if k.endswith("orders-good.csv.gz"))
    assert (good["status"], good["loaded"]) == ("SUCCEEDED", 300)
    again = lake.json("run")  # quarantined files are not retried
    assert again["status"] == "success" and again["batch_runs"] == []


def test_unreadable_carbon_files_are_gated_with_their_reason_and_gzip_loads(fault, lake: Cli,
                                                                             tmp_path: Path) -> None:
    fault("carbon: gzip without .gz, truncated gzip, UTF-16, binary",
          expected="the gzip loads all its records; the others go to error/ with the reason in the "
                   "FAILED line, FAILED in runs, notified")
    lake.ok("gen", "carbon", "--count", "60", "--out", "c.csv", "--seed", "3")
    plain = (tmp_path / "c.csv").read_bytes()
    files = {"carbon/a/packed.csv": gzip.compress(plain), "carbon/a/trunc.csv.gz": _truncated_gzip(plain),
             "carbon/a/u16.csv": plain.decode().encode("utf-16"), "carbon/a/bin.csv": BINARY}
    for key, data in files.items():
        (tmp_path / Path(key).name).write_bytes(data)
        lake.ok("put", Path(key).name, "--pipeline", "carbon", "--key", key)

    done = lake("run")
    failed = _failed_lines(done.stderr, "carbon")
    gold = lake.json("sql", "SELECT count(*) AS n FROM gold.emissions")[0]["n"]
    runs = {r["key"]: r for r in runs_of(lake, "--pipeline", "carbon")}
    notes = [n["attributes"]["key"] for n in _outbox(lake) if n["subject"] == "Data Quality check failed"]
    fault.saw(f"exit {done.returncode}, {len(failed)} FAILED line(s), {gold} rows in gold.emissions")

    assert done.returncode == 1, done.stderr
    assert gold == 60 and runs["carbon/a/packed.csv"]["status"] == "SUCCEEDED"
    assert len(failed) == 3
    for key, why in (("carbon/a/trunc.csv.gz", "gzip data is truncated or corrupt"),
                     ("carbon/a/u16.csv", "UTF-16LE text"), ("carbon/a/bin.csv", "binary, not text")):
        [line] = [line for line in failed if f"carbon {key}:" in line]
        assert f"Failed: readable CSV: {key}: " in line and why in line
        assert (lake.home / "zones" / "error" / key).read_bytes() == files[key]
        assert runs[key]["status"] == "FAILED"
    assert sorted(notes) == sorted(k for k in files if k != "carbon/a/packed.csv")


def test_a_poisoned_transactions_file_does_not_stop_retail_or_carbon(fault, lake: Cli, tmp_path: Path) -> None:
    fault("poisoned transactions gzip in a run with retail and carbon",
          expected="retail and carbon load, the good transactions file loads; one FAILED line; no "
                   "INCOMPLETE run left")
    lake.ok("gen", "transactions", "--count", "100", "--out", "t.csv", "--seed", "4")
    lake.ok("gen", "retail", "--out", "r", "--count", "250")
    lake.ok("gen", "carbon", "--count", "40", "--out", "c.csv", "--seed", "4")
    (tmp_path / "poison.csv.gz").write_bytes(_truncated_gzip((tmp_path / "t.csv").read_bytes() * 5))
    lake.ok("put", "poison.csv.gz", "--pipeline", "transactions", "--key", "transactions/poison.csv.gz")
    lake.ok("put", "t.csv", "--pipeline", "transactions", "--key", "transactions/t.csv")
    lake.ok("put", "r/customers.csv", "r/products.csv", "r/orders.csv", "--pipeline", "retail")
    lake.ok("put", "c.csv", "--pipeline", "carbon", "--key", "carbon/c.csv")

    done = lake("run")
    counts = lake.json("sql", "SELECT (SELECT count(*) FROM silver.transactions__runs) AS t, "
                              "(SELECT count(*) FROM retail_silver.orders_silver) AS r, "
                              "(SELECT count(*) FROM gold.emissions) AS c")[0]
    lines = [line for line in done.stderr.splitlines() if line.startswith("FAILED ")]
    batches = [r for r in runs_of(lake) if r["kind"] == "batch" and r["pipeline"] == "transactions"]
    fault.saw(f"exit {done.returncode}, FAILED lines {len(lines)}, loaded transactions/retail/carbon "
              f"{counts['t']}/{counts['r']}/{counts['c']}, batch runs {[b['status'] for b in batches]}")

    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert len(lines) == 1 and lines[0].startswith("FAILED transactions: transactions/poison.csv.gz: gzip data")
    assert counts == {"t": 100, "r": 250, "c": 40}
    assert [b["status"] for b in batches] == ["COMPLETE"]
    assert lake.json("run")["status"] == "success"


# ---- the sniffing itself (lakeline.stages.textinput): one reason per kind of unreadable input ----
@pytest.mark.parametrize(("head", "why"), [
    (b"PK\x03\x04rest", "the object is a zip archive; only gzip (.gz) is decompressed: land it as plain or gzip CSV"),
    (b"BZh91AY&SY", "the object is bzip2-compressed; only gzip (.gz) is decompressed: land it as plain or gzip CSV"),
    (b"\xff\xfe\x00\x00a\x00\x00\x00", "the object is UTF-32LE text (byte-order mark FF FE 00 00); land it as UTF-8"),
    ("a,b\n".encode("utf-16-be"),
     "the object looks like UTF-16 text (NUL bytes between letters, no byte-order mark); land it as UTF-8"),
    (b"a,b\n1,\x002\n", "the object is binary, not text (a NUL byte at offset 6)"),
    (bytes(range(128, 256)) * 2, "the object is binary, not text (256 of the first 256 characters are not UTF-8 text)"),
])
def test_sniffing_names_why_a_file_is_not_text(head: bytes, why: str) -> None:
    assert problem(head) == why


def test_sniffing_lets_text_with_a_few_bad_bytes_through_and_decompresses_gzip(tmp_path: Path) -> None:
    latin1 = "id,name\n1,Zoë\n2,Ana\n3,Bob\n".encode("latin-1")  # one bad line: a per-line reject
    assert problem(latin1) is None and problem(b"\xef\xbb\xbfa,b\r\n1,2\r\n") is None
    assert text_bytes(gzip.compress(latin1), "x/plain-name.csv") == latin1  # by the magic bytes
    with pytest.raises(UnreadableInput, match=r"^x/a\.csv\.gz: gzip data is truncated or corrupt \(Not a gzipped"):
        text_bytes(latin1, "x/a.csv.gz")  # named gzip, but is not
    (tmp_path / "t.gz").write_bytes(_truncated_gzip(latin1 * 1000))
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(UnreadableInput, match=r"^x/t\.csv\.gz: gzip data is truncated or corrupt \(the stream "
                                              r"ends before its end marker\); land the whole file again$"):
        text_path(tmp_path / "t.gz", "x/t.csv.gz", work)
    assert list(work.iterdir()) == []  # no partial output left behind
    (tmp_path / "ok.gz").write_bytes(gzip.compress(latin1 * 1000))
    assert text_path(tmp_path / "ok.gz", "x/ok.csv.gz", work).read_bytes() == latin1 * 1000
