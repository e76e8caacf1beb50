"""The lineage pages in a real browser: the roots, tracing a record to its file and line, the
carbon root as a collapsed graph (failures in red, a group expanding into its records), bad
input, and a synthetic 10,000-record root that draws collapsed and fast."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from playwright.sync_api import Page, expect

from lakeline.config import load_settings
from lakeline.lake import Lake
from lakeline.ui.pages import lineage as lineage_page
from lakeline.ui.server import UiServer
from tests.e2e.helpers import Cli
from tests.ui.conftest import opener
from tests.ui.demo_lake import CARBON_BATCH, CARBON_RECORDS, TRACED

#: what the carbon root holds: file, profile, gate, 6 batches, 3,000 records of which 5 failed
BATCHES, FAILED = CARBON_RECORDS // CARBON_BATCH, 5
LEDGER_NODES = 3 + BATCHES


@pytest.fixture(scope="module")
def demo(demo_home: Path) -> dict[str, Any]:
    """Facts of the demo lake read without the UI: the carbon root, the traced record's file
    key (in the raw zone) and its line in the generated CSV (the header is line 1)."""
    lake = Lake.open(load_settings(demo_home))
    carbon = [r for r in lake.lineage.roots(50) if "/carbon/" in r["first_node"]["storage_location"]]
    assert len(carbon) == 1
    keys = [i.key for i in lake.store.list("raw", "carbon/") if i.key.endswith("/activities.csv")]
    assert len(keys) == 1
    lines = (demo_home.parent / "data" / "activities.csv").read_text().splitlines()
    line = next(i for i, text in enumerate(lines, start=1) if text.startswith(f'"{TRACED}",'))
    return {"root": carbon[0]["root_id"], "key": keys[0], "line": line, "roots": len(lake.lineage.roots(50))}


def graph(page: Page) -> Page:
    page.wait_for_function("window.lineageGraph !== undefined")
    return page


def count(page: Page, selector: str = "") -> int:
    return int(page.evaluate(f"window.lineageGraph.nodes({selector!r}).length" if selector
                             else "window.lineageGraph.nodes().length"))


def click_node(page: Page, node_id: str, *, top: bool = False) -> None:
    """A real click on the canvas where node ``node_id`` is drawn (``top``: on its top edge, the
    header of an expanded group's box, above its members)."""
    pos = page.evaluate("id => { const n = window.lineageGraph.getElementById(id); "
                        "return [n.renderedPosition(), n.renderedBoundingBox()]; }", node_id)
    box = page.locator("#lineage-graph").bounding_box()
    assert box is not None
    y = pos[1]["y1"] + 8 if top else pos[0]["y"]
    page.mouse.click(box["x"] + pos[0]["x"], box["y"] + y)


def test_lineage_page_lists_the_roots_with_counts_and_failures(visit, demo):
    page = visit("/lineage")
    expect(page.locator("h1")).to_have_text("Lineage")
    expect(page.locator("#roots tbody tr")).to_have_count(demo["roots"])
    row = page.locator(f'#roots tr[data-root="{demo["root"]}"]')
    expect(row.locator("td").nth(4)).to_have_text(f"{CARBON_RECORDS + LEDGER_NODES:,}")
    expect(row.locator("td").nth(5)).to_have_text(str(FAILED))
    expect(row.locator("td").nth(2)).to_have_text("RAW_DATA_INPUT")
    row.get_by_role("link", name=demo["root"]).click()
    expect(page).to_have_url(f"{page.url.split('/lineage')[0]}/lineage/root?root={demo['root']}")


def test_searching_a_record_traces_it_to_its_file_and_line(visit, demo):
    page = visit("/lineage")
    page.get_by_label("record or node id").fill(TRACED)
    page.get_by_role("button", name="Trace").click()
    expect(page.locator("#trace h2")).to_have_text(f"Trace of {TRACED}")
    expect(page.locator("#source-key")).to_have_text(demo["key"])
    expect(page.locator("#source-line")).to_have_text(str(demo["line"]))
    assert demo["line"] == 44  # record 42 of the file: the header, then records 0..41
    actions = page.locator("#trace-path tbody tr").evaluate_all("rows => rows.map(r => r.dataset.action)")
    assert actions == ["CALCULATION_COMPLETE", "GLUE_BATCH_SPLIT", "DQ_CHECK_PASS", "PROFILE_COMPLETE",
                       "RAW_DATA_INPUT"]
    # the raw file: the first node's location is the landed file of that key
    last = page.locator("#trace-path tbody tr").last
    expect(last.locator("td").nth(2)).to_contain_text(f"/landing/{demo['key']}")
    page.locator("#trace").get_by_role("link", name=demo["root"], exact=True).click()
    graph(page)


def test_an_unknown_node_says_so(visit):
    page = visit("/lineage?node=no-such-record")
    expect(page.locator("#trace-problem")).to_have_text(
        "No lineage node 'no-such-record' is recorded: check the id (a record id like an "
        "activity_event_id, a batch or file node id).")
    expect(page.locator("#trace")).to_have_count(0)
    expect(page.locator("#roots")).to_be_visible()


def test_carbon_root_draws_collapsed_with_the_failures_in_red(visit, demo):
    page = graph(visit(f"/lineage/root?root={demo['root']}"))
    # the ledger's nodes (file, profile, gate, 6 batches), one group of records per batch, 5 failures
    assert count(page) == LEDGER_NODES + BATCHES + FAILED == 20
    assert count(page, ".group") == BATCHES
    assert count(page, "node.failed") == FAILED
    assert page.evaluate("window.lineageGraph.nodes('.failed').map(n => n.data('action'))") == \
        ["CALCULATION_FAILED"] * FAILED
    assert page.evaluate("window.lineageGraph.nodes('.group').map(n => n.data('count'))"
                         ".reduce((a, b) => a + b, 0)") == CARBON_RECORDS - FAILED
    assert page.evaluate("window.lineageGraph.edges().length") == 20 - 1
    # drawn red: the failure nodes' border is the failure colour
    assert set(page.evaluate("window.lineageGraph.nodes('.failed').map(n => n.style('border-color'))")) == \
        {"rgb(207,34,46)"}
    expect(page.locator("#failures tbody tr")).to_have_count(FAILED)
    expect(page.locator('#counts tr[data-action="CALCULATION_FAILED"] td').nth(1)).to_have_text(str(FAILED))
    failed = page.evaluate("window.lineageGraph.nodes('.failed')[0].id()")
    click_node(page, failed)
    details = page.locator("#node-details")
    expect(details.locator("h3")).to_have_text("CALCULATION_FAILED")
    expect(details).to_contain_text(failed)
    expect(details).to_contain_text('"reason":')
    details.get_by_role("link", name="trace it back to its file").click()
    expect(page.locator("#trace h2")).to_have_text(f"Trace of {failed}")


def test_expanding_a_group_draws_its_500_records_and_collapsing_removes_them(visit, demo):
    page = graph(visit(f"/lineage/root?root={demo['root']}"))
    full = page.evaluate(f"window.lineageGraph.nodes('.group').filter(n => n.data('count') === {CARBON_BATCH})"
                         ".map(n => n.id())")
    assert full, "a batch without failures has all its 500 records in one group"
    before = count(page)
    click_node(page, full[0])
    page.wait_for_function(f"window.lineageGraph.nodes().length === {before + CARBON_BATCH}")
    members = page.evaluate(f"window.lineageGraph.nodes('.member').filter(n => n.data('group') === {full[0]!r})"
                            ".length")
    assert members == CARBON_BATCH
    expect(page.locator("#node-details h3")).to_have_text(f"{CARBON_BATCH} × CALCULATION_COMPLETE")
    click_node(page, full[0], top=True)  # the expanded box's header: collapse again
    page.wait_for_function(f"window.lineageGraph.nodes().length === {before}")
    assert count(page, ".member") == 0


def test_a_root_that_does_not_exist_is_a_404_and_no_root_a_400(visit):
    page = visit("/lineage/root?root=no-such-root")
    expect(page.locator(".error")).to_have_text("no lineage recorded for root no-such-root")
    response = page.goto(page.url)
    assert response is not None and response.status == 404
    response = page.goto(page.url.split("?")[0])
    assert response is not None and response.status == 400
    expect(page.locator(".error")).to_contain_text("bad parameters for /lineage/root")


# ---- a synthetic root of 10,000 records ---------------------------------------------------
BIG_ROOT, BIG_BATCHES, BIG_PER_BATCH, BIG_FAILED_EVERY = "synthetic-10k", 10, 1000, 1000
#: collapsed, the 10,000-record root draws at most this many nodes (file, gate, batches, one
#: group per batch, the failures)
BIG_BOUND = 50


@pytest.fixture(scope="module")
def big_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh lake with one root: file → gate → 10 batches → 1,000 records each (one failed)."""
    base = tmp_path_factory.mktemp("ui-lineage-10k")
    home = base / "lake"
    Cli(home, base).ok("init", home)
    lake = Lake.open(load_settings(home))
    led = lake.lineage
    raw = led.record(BIG_ROOT, BIG_ROOT, "RAW_DATA_INPUT", "landing/synthetic/big.csv", node_id="big-raw")
    gate = led.record(BIG_ROOT, raw.node_id, "DQ_CHECK_PASS", "raw/synthetic/big.csv", node_id="big-dq")
    led.record_many(BIG_ROOT, "GLUE_BATCH_SPLIT", pa.table({
        "node_id": [f"big-batch-{b}" for b in range(BIG_BATCHES)], "parent_id": [gate.node_id] * BIG_BATCHES,
        "storage_location": [f"silver/transformed/{BIG_ROOT}/part_{b}.parquet" for b in range(BIG_BATCHES)]}))
    for b in range(BIG_BATCHES):
        n = [b * BIG_PER_BATCH + i for i in range(BIG_PER_BATCH)]
        failed = [i % BIG_FAILED_EVERY == 7 for i in n]
        led.write_records(BIG_ROOT, f"part_{b}", pa.table({
            "node_id": [f"rec-{i:06d}" for i in n], "parent_id": [f"big-batch-{b}"] * BIG_PER_BATCH,
            "action_taken": ["CALCULATION_FAILED" if f else "CALCULATION_COMPLETE" for f in failed],
            "storage_location": ["gold/emissions"] * BIG_PER_BATCH,
            "attrs": ['{"reason": "FACTOR_NOT_FOUND"}' if f else None for f in failed],
            "source_key": ["synthetic/big.csv"] * BIG_PER_BATCH, "line_no": [i + 2 for i in n]}))
    assert led.seal_records(BIG_ROOT) == BIG_BATCHES * BIG_PER_BATCH
    return home


@pytest.fixture(scope="module")
def big_server(big_home: Path) -> Iterator[UiServer]:
    s = UiServer(Lake.open(load_settings(big_home))).start()
    yield s
    s.stop()


def test_a_10000_record_root_draws_collapsed_and_fast(page, big_server, capsys):
    visit = opener(page, big_server)
    failures = BIG_BATCHES * BIG_PER_BATCH // BIG_FAILED_EVERY
    started = time.perf_counter()
    graph(visit(f"/lineage/root?root={BIG_ROOT}"))
    wall = time.perf_counter() - started
    drawn = page.evaluate("window.lineageDrawMs")  # ms from navigation start to the graph drawn
    nodes = count(page)
    assert nodes == 2 + BIG_BATCHES + BIG_BATCHES + failures == 32
    assert nodes <= BIG_BOUND
    assert count(page, "node.failed") == failures
    expect(page.locator("#root-summary")).to_contain_text(f"{BIG_BATCHES * BIG_PER_BATCH + 2 + BIG_BATCHES:,} nodes")
    # expanding one batch's group draws its 999 records
    group = page.evaluate("window.lineageGraph.nodes('.group')[0].id()")
    click_node(page, group)
    page.wait_for_function(f"window.lineageGraph.nodes().length === {nodes + BIG_PER_BATCH - 1}")
    script, expand = page.evaluate("[window.lineageScriptMs, window.lineageExpandMs]")
    with capsys.disabled():
        print(f"\n10,000-record root: {nodes} nodes drawn collapsed {drawn:.0f} ms after navigation start "
              f"(the graph's script {script:.0f} ms; {wall:.2f} s wall in the test); expanding "
              f"{BIG_PER_BATCH - 1} records {expand:.0f} ms")
    assert drawn < 5000
    assert expand < 2000


def test_the_graph_is_the_same_read_at_once_or_node_by_node(big_home, demo_home, demo, monkeypatch):
    """A root up to LOAD_MAX nodes is read in one query; a larger one node by node: same graph."""
    for home, root in ((big_home, BIG_ROOT), (demo_home, demo["root"])):
        ledger = Lake.open(load_settings(home)).lineage
        at_once = lineage_page.lineage_graph(ledger, root)
        monkeypatch.setattr(lineage_page, "LOAD_MAX", 0)
        assert lineage_page.lineage_graph(ledger, root) == at_once
        monkeypatch.undo()
    assert sum(g["embedded"] for g in at_once["groups"]) == CARBON_RECORDS - FAILED


def test_the_static_export_draws_the_latest_roots_and_expands_offline(page, demo_export, demo):
    out = demo_export[0]
    page.goto((out / "lineage.html").as_uri())
    expect(page.locator("#trace-form")).to_have_count(0)  # searching needs the server
    expect(page.locator("#roots tbody tr")).to_have_count(demo["roots"])
    expect(page.locator("#roots a")).to_have_count(min(demo["roots"], lineage_page.EXPORTED_ROOTS))
    page.locator(f'#roots tr[data-root="{demo["root"]}"] a').click()
    graph(page)
    assert page.url.startswith("file://")
    assert count(page) == LEDGER_NODES + BATCHES + FAILED
    full = page.evaluate(f"window.lineageGraph.nodes('.group').filter(n => n.data('count') === {CARBON_BATCH})"
                         ".map(n => n.id())")
    click_node(page, full[0])
    page.wait_for_function(f"window.lineageGraph.nodes().length === {LEDGER_NODES + BATCHES + FAILED + CARBON_BATCH}")
    expect(page.locator("#failures a")).to_have_count(0)  # no trace links without the server
