"""The retail run log and its failed batches are visible (seed 004): ``run_log`` returns the
seed's run-log items (pk, sk, run_id, dedupe) with each batch's outcome; a batch whose load
fails comes back as a FAILED report, is notified once, is listed by ``failures`` until a run
loads it, and never stops the other batches."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from lakeline.lake import Lake
from lakeline.pipelines.retail import job
from lakeline.pipelines.retail.pipeline import RETAIL
from lakeline.tables.iceberg import load_table
from tests.functional.helpers import settings

HEADER = "order_id,order_date,customer_id,product_id,qty,unit_price,channel\n"
GOOD = HEADER + '1,24/07/2025,10,100,2,"1,50",web\n2,25/07/2025,11,101,1,"4,00",store\n'
BAD = HEADER + '3,26/07/2025,10,100,1,"2,00",web\n4,2025-07-27,10,100,1,"1,00",web\n'  # line 3: ISO date
CUSTOMERS = "customer_id,customer_name,region\n10,Ann,North\n11,Bob,South\n"
PRODUCTS = "product_id,category\n100,Electronics\n101,Garden\n"
SUBJECT = "retail batch failed"


def _notes(home: Path) -> list[dict[str, Any]]:
    path = home / "outbox" / "notifications.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _land(lake: Lake, tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    key = job.land_retail(lake, path, today=date(2025, 10, 4))
    assert key is not None
    return key


@pytest.fixture
def landed(home: Path, tmp_path: Path):  # type: ignore[no-untyped-def]
    lake = Lake.open(settings(home))
    keys = {name: _land(lake, tmp_path, f"{name}.csv", text) for name, text in
            (("customers", CUSTOMERS), ("products", PRODUCTS), ("orders_good", GOOD), ("orders_bad", BAD))}
    return lake, keys


def test_a_failed_batch_is_reported_notified_listed_and_does_not_stop_the_others(landed, home: Path) -> None:  # type: ignore[no-untyped-def]
    lake, keys = landed
    bad_key = keys["orders_bad"]
    [report] = RETAIL.run(lake)
    assert report.status == "FAILED"
    assert bad_key in report.summary and "TIMESTAMP_ERROR" in report.summary and "`lakeline run`" in report.summary
    [failed] = report.data["failed"]
    assert (failed["key"], failed["status"]) == (bad_key, "FAILED")
    assert failed["error"].startswith(f"DataError: {bad_key} line 3: TIMESTAMP_ERROR")
    # the good file loaded all the same: 2 rows, exactly once
    [good] = report.data["batches"]
    assert (good["key"], good["rows"], good["appended"]) == (keys["orders_good"], 2, True)
    table = load_table(lake, job.TABLE)
    assert sorted(r["order_id"] for r in table.scan().to_arrow().to_pylist()) == [1, 2]
    [note] = [n for n in _notes(home) if n["subject"] == SUBJECT]
    assert bad_key in note["message"] and "TIMESTAMP_ERROR" in note["message"]

    [failure] = RETAIL.failures(lake)
    assert (failure.pipeline, failure.what, failure.command) == ("retail", bad_key, "lakeline run")
    assert f"batch {failed['run_id']}" in failure.error and "TIMESTAMP_ERROR" in failure.error

    entries = RETAIL.run_log(lake, 10)
    by_key = {e.key: e for e in entries}
    assert [e.key for e in entries] == [keys["orders_bad"], keys["orders_good"], keys["products"], keys["customers"]]
    bad, ok = by_key[bad_key], by_key[keys["orders_good"]]
    assert (bad.kind, bad.status, bad.run_id, bad.loaded) == ("batch", "FAILED", failed["run_id"], None)
    assert bad.error is not None and "TIMESTAMP_ERROR" in bad.error
    assert (ok.kind, ok.status, ok.records, ok.loaded, ok.rejected, ok.error) == ("batch", "SUCCEEDED", 2, 2, 0, None)
    assert (by_key[keys["customers"]].kind, by_key[keys["customers"]].status) == ("object", "LANDED")
    item = lake.state.get("retail_runlog", f"{bad.detail['pk']}|{bad.detail['sk']}")
    assert item is not None and bad.detail == item.data  # the seed's item, verbatim
    assert bad.detail["pk"] == "SRC#orders" and bad.detail["sk"].startswith("INGEST#")
    assert bad.detail["run_id"] == bad.run_id and len(bad.detail["dedupe"]) == 16
    assert [e.key for e in RETAIL.run_log(lake, 2)] == [keys["orders_bad"], keys["orders_good"]]

    # the next run retries it: FAILED again, not notified again, nothing loaded twice
    [again] = RETAIL.run(lake)
    assert (again.status, again.data["batches"], len(again.data["failed"])) == ("FAILED", [], 1)
    assert len([n for n in _notes(home) if n["subject"] == SUBJECT]) == 1
    assert load_table(lake, job.TABLE).scan().to_arrow().num_rows == 2

    # the fix: quarantine the violating row and load the rest
    lake2 = Lake.open(settings(home, pipelines__retail__on_violation="quarantine"))
    [fixed] = RETAIL.run(lake2)
    assert fixed.status == "SUCCEEDED" and fixed.data["failed"] == []
    [batch] = fixed.data["batches"]
    assert (batch["key"], batch["rows"], batch["rejected"]) == (bad_key, 1, 1)
    assert sorted(r["order_id"] for r in load_table(lake2, job.TABLE).scan().to_arrow().to_pylist()) == [1, 2, 3]
    assert RETAIL.failures(lake2) == []
    done = {e.key: e for e in RETAIL.run_log(lake2, 10)}[bad_key]
    assert (done.status, done.records, done.loaded, done.rejected, done.error) == ("SUCCEEDED", 2, 1, 1, None)
    assert RETAIL.run(lake2) == []


def test_an_orders_file_that_cannot_be_read_fails_its_batch(landed, home: Path) -> None:  # type: ignore[no-untyped-def]
    lake, keys = landed
    good_key = keys["orders_good"]
    body = lake.store.get("landing", good_key)
    lake.store.delete("landing", good_key)  # the landed object went missing before the load
    [report] = RETAIL.run(lake)
    assert report.status == "FAILED" and good_key in report.summary
    assert sorted(f.what for f in RETAIL.failures(lake)) == sorted([good_key, keys["orders_bad"]])
    assert job.pending_batches(lake) != []
    lake.store.put("landing", good_key, body)  # restored
    lake2 = Lake.open(settings(home, pipelines__retail__on_violation="quarantine"))
    [fixed] = RETAIL.run(lake2)
    assert (fixed.status, sorted(b["key"] for b in fixed.data["batches"])) == (
        "SUCCEEDED", sorted([good_key, keys["orders_bad"]]))
    assert RETAIL.failures(lake2) == [] and job.pending_batches(lake2) == []
    assert load_table(lake2, job.TABLE).scan().to_arrow().num_rows == 3
