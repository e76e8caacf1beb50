"""The overview page in a real browser: failures first, pipelines, queues, the DLQ redrive."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.ui.conftest import opener


def test_overview_lists_pipelines_queues_and_the_dead_lettered_message(visit):
    page = visit("/")
    expect(page.locator("h1")).to_have_text("Overview")
    expect(page.locator("#attention")).to_contain_text("1 message(s) in transform-dlq")
    names = page.locator("#pipelines tbody tr").evaluate_all("rows => rows.map(r => r.dataset.pipeline)")
    assert {"shipments", "transactions", "retail", "carbon", "totesys"} <= set(names)
    expect(page.locator("#dlq tbody tr")).to_have_count(1)
    expect(page.locator("#dlq")).to_contain_text('{"v": 1, "not": "a chunk"}')


def test_redriving_the_dlq_from_the_overview_moves_the_message_back(page, fresh_server):
    visit = opener(page, fresh_server)
    page = visit("/")
    page.get_by_role("button", name="Redrive all DLQ messages").click()  # confirm() is accepted
    expect(page.locator(".flash")).to_contain_text("transform: 1 redriven")
    expect(page.locator("#dlq")).to_have_text("The DLQs are empty.")
    expect(page.locator('[data-queue="transform"] .n')).to_have_text("1")


def test_each_pipeline_shows_its_last_run_and_its_reject_rate_over_its_recent_runs(visit):
    page = visit("/")
    cells = {name: page.locator(f'#pipelines tr[data-pipeline="{name}"] td').all_inner_texts()
             for name in ("shipments", "transactions", "carbon", "totesys")}
    # kind, status, runs, loaded, rejected, reject rate
    got = {name: [c[1], *c[3:8]] for name, c in cells.items()}
    assert got == {
        "shipments": ["stream", "COMPLETE", "3", "3,501", "3", "0.09 %"],
        "transactions": ["job", "COMPLETE", "2", "1,980", "20", "1.00 %"],
        "carbon": ["job", "SUCCEEDED", "1", "2,995", "5", "0.17 %"],
        "totesys": ["job", "", "", "", "", ""],
    }
    assert cells["totesys"][2] == "no run yet"
    page.locator('#pipelines tr[data-pipeline="transactions"] td a').nth(1).click()
    assert "/runs/detail?" in page.url and "pipeline=transactions" in page.url
