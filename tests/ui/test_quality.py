"""The quality pages in a real browser: the history of every stored result as a chart of pass
rates and tables per table/pipeline, one result with its rules and its embedded HTML report,
and bad keys."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson
import pytest
from playwright.sync_api import expect

from lakeline.config import load_settings
from lakeline.lake import Lake
from tests.ui.conftest import opener


@pytest.fixture(scope="module")
def stored(demo_home: Path) -> dict[str, Any]:
    """The result JSONs of the demo lake, read from the store without the UI."""
    lake = Lake.open(load_settings(demo_home))
    keys = sorted(i.key for i in lake.store.list("gold", "_quality/results/") if i.key.endswith(".json"))
    results = {k: orjson.loads(lake.store.get("gold", k)) for k in keys}
    carbon = [k for k in keys if k.startswith("_quality/results/carbon/")]
    assert len(carbon) == 1
    lineage = {r["root_id"] for r in lake.lineage.roots(50)}
    return {"keys": keys, "results": results, "carbon": carbon[0], "roots": lineage,
            "subjects": Counter(k.split("/")[2] for k in keys)}


def test_quality_page_charts_one_point_per_result_and_lists_them(visit, stored):
    page = visit("/quality")
    expect(page.locator("h1")).to_have_text("Quality")
    page.wait_for_function("window.qualityChart !== undefined")
    # the demo lake: the carbon file gate's result, the checks after the shipments run (7 dt each)
    assert stored["subjects"] == {"carbon": 1, "shipments": 7, "tracking_events": 7}
    labels = page.evaluate("window.qualityChart.data.datasets.map(d => d.label)")
    assert labels == sorted(stored["subjects"])
    # one drawn point per result: each line has the points of its subject
    points = page.evaluate("window.qualityChart.data.datasets.map((d, i) => "
                           "window.qualityChart.getDatasetMeta(i).data.filter(p => !p.skip).length)")
    assert dict(zip(labels, points, strict=True)) == stored["subjects"]
    assert page.evaluate("window.qualityChart.data.labels.length") == len(stored["keys"])
    # every demo result passed all its rules: 100 %
    values = page.evaluate("window.qualityChart.data.datasets.flatMap(d => d.data.filter(v => v !== null))")
    assert values == [100] * len(stored["keys"])
    expect(page.locator("#subjects tbody tr")).to_have_count(3)
    expect(page.locator('#subjects tr[data-subject="shipments"] td').nth(1)).to_have_text("7")
    for subject, n in stored["subjects"].items():
        expect(page.locator(f'section[data-subject="{subject}"] tbody tr')).to_have_count(n)
    carbon = stored["results"][stored["carbon"]]
    row = page.locator(f'section[data-subject="carbon"] tr[data-key="{stored["carbon"]}"]')
    expect(row.locator("td").nth(4)).to_have_text(
        f"{carbon['statistics']['successful']} / {carbon['statistics']['evaluated']}")
    expect(row.locator("td").nth(6)).to_have_text(f"{carbon['statistics']['rows']:,}")
    row.get_by_role("link").click()
    expect(page.locator("#result-key")).to_have_text(f"gold/{stored['carbon']}")


def test_a_chart_point_opens_its_result(visit, stored):
    page = visit("/quality")
    page.wait_for_function("window.qualityChart !== undefined")
    index = page.evaluate("window.qualityChart.data.datasets.findIndex(d => d.label === 'carbon')")
    point = page.evaluate(f"(() => {{ const p = window.qualityChart.getDatasetMeta({index}).data"
                          ".find(p => !p.skip); return [p.x, p.y]; })()")
    box = page.locator("#quality-chart").bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + point[0], box["y"] + point[1])
    expect(page.locator("#result-key")).to_have_text(f"gold/{stored['carbon']}")


def test_quality_result_shows_its_rules_and_embeds_the_report(visit, stored):
    key = stored["carbon"]
    result = stored["results"][key]
    page = visit(f"/quality/result?key={quote(key)}")
    n = len(result["results"])
    expect(page.locator("#rules tbody tr")).to_have_count(n)
    expect(page.locator("#rules-passed")).to_have_text(f"{n} / {n}")
    expect(page.locator("#rules tbody tr").first.locator("td").first).to_have_text(result["results"][0]["rule"])
    report = page.frame_locator("iframe#report")
    expect(report.locator("h1")).to_have_text("Data quality: carbon — passed")
    expect(report.locator("body")).to_contain_text(f"{n} of {n} rules passed")
    expect(report.locator("body")).to_contain_text(result["run_id"])
    # the file gate's run id is the file's lineage root
    assert result["run_id"] in stored["roots"]
    page.locator("#lineage-link").click()
    page.wait_for_function("window.lineageGraph !== undefined")
    expect(page.locator("h1")).to_contain_text(result["run_id"])


@pytest.mark.parametrize(("key", "status", "message"), [
    ("_quality/results/carbon/nope/run_x.json", 404, "no quality result gold/_quality/results/carbon/nope/run_x.json"),
    ("_quality/results/../../silver/x.json", 400, "has an empty, '.' or '..' segment"),
    ("silver/_lineage/records/x.json", 400, "is not a result: results are .json keys under _quality/results/"),
    ("_quality/results/shipments/dt=2026-01-01/run_x.html", 400, "is not a result"),
])
def test_a_bad_result_key_is_refused(visit, key, status, message):
    page = visit("/quality")
    response = page.goto(page.url.split("/quality")[0] + f"/quality/result?key={quote(key)}")
    assert response is not None and response.status == status
    expect(page.locator(".error")).to_contain_text(message)


def test_quality_result_without_a_key_is_a_400(visit):
    page = visit("/quality")
    response = page.goto(page.url + "/result")
    assert response is not None and response.status == 400


def test_the_static_export_has_the_history_and_each_report(page, demo_export, stored):
    out = demo_export[0]
    page.goto((out / "quality.html").as_uri())
    page.wait_for_function("window.qualityChart !== undefined")
    assert page.evaluate("window.qualityChart.data.labels.length") == len(stored["keys"])
    page.locator('section[data-subject="carbon"] tbody a').click()
    assert page.url.startswith("file://")
    expect(page.frame_locator("iframe#report").locator("h1")).to_have_text("Data quality: carbon — passed")


def test_a_result_that_cannot_be_read_is_skipped_not_a_500(page, fresh_server, stored, tmp_path):
    lake = Lake.open(load_settings(tmp_path / "lake"))  # the copy fresh_server serves
    lake.store.put("gold", "_quality/results/broken/run_x.json", b"{not json")
    lake.store.put("gold", "_quality/results/broken/run_y.json", b'{"no": "results"}')
    page = opener(page, fresh_server)("/quality")
    page.wait_for_function("window.qualityChart !== undefined")
    assert page.evaluate("window.qualityChart.data.labels.length") == len(stored["keys"])
    expect(page.locator('section[data-subject="broken"]')).to_have_count(0)
    response = page.goto(page.url + "/result?key=" + quote("_quality/results/broken/run_x.json"))
    assert response is not None and response.status == 400
    expect(page.locator(".error")).to_contain_text("_quality/results/broken/run_x.json: not a result JSON")
