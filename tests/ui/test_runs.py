"""The runs pages in a real browser: the list and its filters, a run's rejects by reason with
sample lines, its lineage root, bad input (400/404), and the promote and rerun actions."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import orjson
import pytest
from playwright.sync_api import Page, expect

from lakeline import api
from lakeline.config import load_settings
from lakeline.lake import Lake
from lakeline.pipelines.registry import registry
from lakeline.promotion.promote import read_latest
from lakeline.status import run_entries
from lakeline.ui.server import UiServer
from tests.ui.conftest import opener

#: the demo lake's runs: carbon 1, retail 4 (2 orders batches, customers, products),
#: transactions 2 (the batch run and its landed file), shipments 3 (three files)
DEMO_RUNS = 10
TYPE_ERROR_RAW = '{"record_type":"shipments","event_time":"2026-01-05T10:00:00Z","weight_kg":"heavy"}'
MALFORMED_RAW = '{"record_type": "shipments", "event_time": oops}'
TODAY = datetime.now(UTC).date()


def _base(server: UiServer) -> str:
    return server.url.split("?")[0].rstrip("/")


def _demo_root_of(demo_home: Path, name: str) -> str:
    """The lineage root whose first node is the landed file ``name`` (read from the ledger)."""
    lake = Lake.open(load_settings(demo_home))
    return next(r["root_id"] for r in lake.lineage.roots(50)
                if r["first_node"]["storage_location"].endswith("/" + name))


def test_runs_lists_every_run_and_the_dirty_file_shows_its_rejects_by_reason(visit, demo_home):
    page = visit("/runs")
    expect(page.locator("h1")).to_have_text("Runs")
    expect(page.locator("#runs tbody tr")).to_have_count(DEMO_RUNS)
    row = page.locator("#runs tbody tr", has_text="dirty.jsonl")
    expect(row).to_have_count(1)
    expect(row.locator("td").nth(1)).to_have_text("shipments")
    row.locator("a").click()

    expect(page).to_have_url(re.compile(r"/runs/detail\?pipeline=shipments&run=\d{8}T\d{6}\.\d{6}Z%23[0-9a-f]{16}$"))
    expect(page.locator("h1")).to_contain_text("Run ")
    expect(page.locator('[data-fact="key"]')).to_have_text(re.compile(r"^shipments/\d{4}-\d\d-\d\d/dirty\.jsonl$"))
    expect(page.locator('[data-fact="records"]')).to_have_text("4")
    expect(page.locator('[data-fact="loaded"]')).to_have_text("1")
    expect(page.locator('[data-fact="rejected"]')).to_have_text("3")
    expect(page.locator("#reject-total")).to_have_text("3")
    reasons = page.locator("#rejects section.reason")
    expect(reasons).to_have_count(3)
    assert sorted(reasons.evaluate_all("s => s.map(e => e.dataset.reason)")) == [
        "MALFORMED_JSON", "SCHEMA_ERROR", "TYPE_ERROR"]
    for reason, line, raw in (("TYPE_ERROR", "2", TYPE_ERROR_RAW),
                              ("SCHEMA_ERROR", "4", '{"record_type":"parcels","event_time":"2026-01-05T10:00:00Z"}'),
                              ("MALFORMED_JSON", "5", MALFORMED_RAW)):
        section = page.locator(f'section.reason[data-reason="{reason}"]')
        expect(section.locator(".count")).to_have_text("1")
        sample = section.locator("tr.sample")
        expect(sample).to_have_count(1)
        expect(sample.locator("td.file")).to_have_text(re.compile(r"^shipments/\d{4}-\d\d-\d\d/dirty\.jsonl$"))
        expect(sample.locator("td.line")).to_have_text(line)
        expect(sample.locator("td.raw")).to_have_text(raw)
    expect(page.locator("#written tbody tr")).to_have_count(1)
    expect(page.locator("#written tbody tr td").nth(0)).to_have_text("shipments dt=2026-01-05")
    expect(page.locator("#written tbody tr td").nth(1)).to_have_text("1")
    results = page.locator("#quality a.quality-result")
    expect(results).to_have_count(1)
    expect(results).to_have_attribute("href", re.compile(
        r"^/quality/result\?key=_quality%2Fresults%2Fshipments%2Fdt%3D2026-01-05%2Frun_auto-\d{8}T\d{12}Z\.json$"))

    root = _demo_root_of(demo_home, "dirty.jsonl")
    expect(page.locator("#lineage")).to_contain_text("BATCH_WRITTEN 1, FILE_INGESTED 1, RAW_DATA_INPUT 1, "
                                                     "REJECTS_WRITTEN 1, RUN_COMPLETE 1")
    page.locator("#lineage-root").click()
    expect(page).to_have_url(re.compile(rf"/lineage/root\?root={root}$"))


def test_a_batch_run_shows_its_partitions_gate_and_the_file_it_loaded(visit, demo_home):
    page = visit("/runs?pipeline=transactions")
    page.locator("#runs tbody tr[data-status='COMPLETE'] a").click()
    expect(page.locator('[data-fact="rejected"]')).to_have_text("20")
    expect(page.locator("#reject-total")).to_have_text("20")
    counts = page.locator("#rejects section.reason .count").all_inner_texts()
    assert counts == ["4"] * 5
    expect(page.locator("#partitions tbody tr[data-current='yes']")).to_have_count(3)
    expect(page.locator("#promote-note")).to_have_text("this run is current in every partition it wrote")
    expect(page.locator("#gate")).to_contain_text("quarantine rate 1.00 %, 20 quarantined, 0 condemned of 2,000 rows")
    expect(page.locator("#lineage-root")).to_have_text(_demo_root_of(demo_home, "transactions.csv"))

    page = visit("/runs?pipeline=transactions&status=LANDED")
    page.locator("#runs tbody tr a").click()
    expect(page.locator("#batch-run")).to_have_text(re.compile(r"^\d{8}T\d{6}Z$"))
    expect(page.locator("#reject-total")).to_have_text("20")  # the rows of this file in its batch run


def test_runs_filter_by_pipeline_status_and_time(visit):
    page = visit("/runs")
    page.locator("#run-filters select[name=pipeline]").select_option("transactions")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"/runs\?pipeline=transactions&status=&since=&until="))
    rows = page.locator("#runs tbody tr")
    expect(rows).to_have_count(2)
    assert rows.evaluate_all("rs => rs.map(r => r.dataset.pipeline)") == ["transactions", "transactions"]
    assert sorted(rows.evaluate_all("rs => rs.map(r => r.dataset.status)")) == ["COMPLETE", "LANDED"]
    expect(page.locator("#run-count")).to_contain_text("2 run(s)")

    page.locator("#run-filters select[name=pipeline]").select_option("shipments")
    page.locator("#run-filters select[name=status]").select_option("COMPLETE")
    page.get_by_role("button", name="Filter").click()
    expect(rows).to_have_count(3)
    page = visit("/runs?status=succeeded")  # any case
    expect(rows).to_have_count(3)  # carbon's execution and retail's two orders batches
    page = visit(f"/runs?since={TODAY.isoformat()}&until={TODAY.isoformat()}")
    expect(rows).to_have_count(DEMO_RUNS)
    page = visit(f"/runs?since={(TODAY + timedelta(days=1)).isoformat()}")
    expect(page.locator("#runs")).to_have_text("No run matches.")
    page = visit(f"/runs?until={(TODAY - timedelta(days=1)).isoformat()}")
    expect(page.locator("#runs")).to_have_text("No run matches.")


def _error_page(page: Page, server: UiServer, path: str) -> tuple[int, str]:
    """The status and error message of ``path`` (fetched with the page's cookie: a browser
    navigation to a 4xx page logs a console error, which fails the test)."""
    opener(page, server)("/")
    response = page.request.get(_base(server) + path)
    found = re.search(r'<p class="error" role="alert">(.*?)</p>', response.text(), re.S)
    return response.status, html.unescape(found.group(1)) if found else ""


@pytest.mark.parametrize(("query", "message"), [
    ("pipeline=nope", "unknown pipeline 'nope'; pipelines: "),
    ("status=DONEISH", "unknown status 'DONEISH'; statuses: LANDED, "),
    ("since=yesterday", "since 'yesterday' is not an ISO date or time (like 2026-01-29 or 2026-01-29T12:00:00Z)"),
    ("until=2026-13-01", "until '2026-13-01' is not an ISO date or time"),
    ("since=2026-02-01&until=2026-01-01", "until (2026-01-01) must be after since (2026-02-01)"),
    ("limit=0", "limit '0' must be a whole number from 1 to 2000"),
])
def test_bad_filters_get_400_with_a_clear_message(page, server, query, message):
    status, text = _error_page(page, server, f"/runs?{query}")
    assert status == 400
    assert text.startswith(message)


def test_an_unknown_run_is_404_naming_it(page, server):
    assert _error_page(page, server, "/runs/detail?pipeline=shipments&run=nope") == (
        404, "no run 'nope' of pipeline 'shipments' (see `lakeline runs --pipeline shipments`)")
    assert _error_page(page, server, "/runs/detail?pipeline=nope&run=x") == (
        404, "no run 'x' of pipeline 'nope' (see `lakeline runs --pipeline nope`)")
    assert _error_page(page, server, "/runs/detail?pipeline=shipments") == (  # no run named
        400, "bad parameters for /runs/detail: pipeline")


# ---- actions (on a copy of the demo lake) ------------------------------------------------------

def _transactions_csv(path: Path, ids: range, bad_currency: int = 0) -> Path:
    lines = ["TransactionID,CustomerID,TransactionAmount,Currency,TransactionTimestamp"]
    for n, i in enumerate(ids):
        currency = "XXX" if n < bad_currency else "EUR"
        lines.append(f"TXN-9{i:07d},CUST-000001,10.00,{currency},2024-01-15T10:00:00Z")
    path.write_text("\n".join(lines) + "\n")
    return path


def _newest_batch(lake: Lake) -> str:
    entries = run_entries(lake, registry(lake.settings), 50, only="transactions")
    return next(e.run_id for e in entries if e.kind == "batch")


JANUARY = "mortgages/transactions/year=2024/month=01/schema_v=v1"


def test_promote_a_batch_run_and_a_refusal_shows_the_gate_reason(page, fresh_server, tmp_path):
    lake = Lake.open(load_settings(tmp_path / "lake"))
    demo_run = read_latest(lake, JANUARY)["run_id"]
    api.put(lake, _transactions_csv(tmp_path / "clean.csv", range(30)), pipeline="transactions",
            key="transactions/2026-02-01/clean.csv")
    api.run(lake)
    clean = _newest_batch(lake)
    assert clean != demo_run and read_latest(lake, JANUARY)["run_id"] == demo_run  # not promoted yet

    visit = opener(page, fresh_server)
    page = visit(f"/runs/detail?pipeline=transactions&run={quote(clean)}")
    expect(page.locator("#partitions tbody tr")).to_have_count(1)
    expect(page.locator("#partitions tbody tr[data-current='no']")).to_have_count(1)
    page.get_by_role("button", name="Promote this run").click()  # confirm() is accepted
    expect(page.locator(".flash")).to_have_text(f"promoted run {clean}: 1 partition(s), 1 file(s) copied into current/")
    expect(page.locator("#partitions tbody tr[data-current='yes']")).to_have_count(1)
    expect(page.get_by_role("button", name="Promote this run")).to_have_count(0)
    latest = read_latest(lake, JANUARY)
    assert latest["run_id"] == clean and latest["input_rows"] == 30 and latest["files"] == [
        f"{JANUARY}/current/part-00000-{clean}.parquet"]

    api.put(lake, _transactions_csv(tmp_path / "dirty.csv", range(100, 110), bad_currency=5),
            pipeline="transactions", key="transactions/2026-02-02/dirty.csv")
    api.run(lake)
    dirty = _newest_batch(lake)
    page = visit(f"/runs/detail?pipeline=transactions&run={quote(dirty)}")
    expect(page.locator("#gate")).to_contain_text("refused")
    page.get_by_role("button", name="Promote this run").click()
    expect(page.locator(".flash")).to_have_text(
        f"not promoted: run {dirty} fails the promotion gate: quarantine rate 50.00%, 0 condemned, "
        "critical errors: False (`lakeline promote --force` overrides it)")
    assert read_latest(lake, JANUARY)["run_id"] == clean  # unchanged
    expect(page.locator("#partitions tbody tr[data-current='no']")).to_have_count(1)


def test_rerun_a_failed_file_replays_exactly_that_object(page, fresh_server, tmp_path):
    lake = Lake.open(load_settings(tmp_path / "lake"))
    key = "shipments/2026-02-01/utf16.jsonl"
    bad = tmp_path / "utf16.jsonl"
    bad.write_bytes('{"record_type": "shipments"}\n'.encode("utf-16"))
    etag = api.put(lake, bad, pipeline="shipments", key=key)["etag"]
    job_key = "transactions/2026-02-01/utf16.csv"  # a job pipeline moves its failed file away
    api.put(lake, bad, pipeline="transactions", key=job_key)
    api.run(lake)
    failed = next(e for e in run_entries(lake, registry(lake.settings), 50, only="shipments") if e.key == key)
    assert failed.status == "FAILED"
    job_failed = next(e for e in run_entries(lake, registry(lake.settings), 50, only="transactions")
                      if e.key == job_key)
    assert job_failed.status == "FAILED"

    visit = opener(page, fresh_server)
    page = visit(f"/runs/detail?pipeline=shipments&run={quote(failed.run_id)}")
    expect(page.locator('[data-fact="status"]')).to_have_text("FAILED")
    expect(page.locator('section.reason[data-reason="ENCODING_ERROR"] .count')).to_have_text("1")
    expect(page.locator('section.reason[data-reason="ENCODING_ERROR"] td.file')).to_have_text(key)
    page.get_by_role("button", name="Rerun this file").click()
    flash = page.locator(".flash")
    expect(flash).to_have_text(re.compile(
        rf"^rerun of {key}: copied to shipments/replay/rerun-\d{{8}}T\d{{12}}Z/{key}; "
        r"`lakeline run` \(or `serve`\) loads it$"))
    copy = re.search(r"copied to (\S+);", flash.inner_text()).group(1)
    copies = [i for i in lake.store.list("landing", "shipments/replay/")]
    assert [(i.key, i.etag) for i in copies] == [(copy, etag)]
    body = orjson.loads(lake.ingest_queue.peek(5)[0].body)
    assert body["Records"][0]["s3"]["object"]["key"] == copy

    api.run(lake)
    page = visit("/runs?pipeline=shipments&status=FAILED")
    rows = page.locator("#runs tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0).locator("td").nth(5)).to_have_text(copy)  # the newest: the copy, failed again
    expect(rows.nth(1).locator("td").nth(5)).to_have_text(key)
    rows.nth(0).locator("a").click()
    expect(page.locator("#rerun-note")).to_have_text(
        f"{copy} is a replayed copy (replays are never replayed): rerun the run of its original")

    # the original can be rerun again, until its landed object changes
    page = visit(f"/runs/detail?pipeline=shipments&run={quote(failed.run_id)}")
    expect(page.get_by_role("button", name="Rerun this file")).to_have_count(1)
    changed = lake.store.put("landing", key, b'{"record_type": "shipments"}\n')
    page.reload()
    expect(page.locator("#rerun-note")).to_have_text(
        f"landing/{key} changed since this run (etag {changed.etag}, the run's {etag}): "
        "the new version has its own run")
    page = visit(f"/runs/detail?pipeline=transactions&run={quote(job_failed.run_id)}")
    expect(page.get_by_role("button", name="Rerun this file")).to_have_count(0)
    expect(page.locator("#rerun-note")).to_have_text(
        f"{job_key} is not an object of a streaming pipeline; it was moved to error/objects/{job_key}: "
        "land it again, fixed (`lakeline put FILE --pipeline transactions`)")
