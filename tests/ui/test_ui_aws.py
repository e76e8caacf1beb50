"""The same pages on the aws profile: a lake on S3, SQS, DynamoDB (moto's server over HTTP),
its carbon workflow run, browsed through ``lakeline ui`` in the real browser."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from lakeline import runner
from lakeline.lake import Lake
from lakeline.ui.server import UiServer
from tests.aws_server import moto_endpoint  # noqa: F401
from tests.functional.test_carbon_pipeline import KEY, ROWS, _csv
from tests.integration.aws_lake import aws_settings, provision
from tests.ui.conftest import opener


@pytest.fixture
def aws_ui(moto_endpoint, tmp_path) -> Iterator[tuple[UiServer, dict]]:  # noqa: F811
    settings = aws_settings(tmp_path / "ws", provision(moto_endpoint),
                            **{"runner.settle_seconds": 0.0, "pipelines.carbon.batch_size": 2})
    lake = Lake.open(settings)
    lake.store.put("landing", KEY, _csv(ROWS))
    [report] = [b for b in runner.run(settings)["batch_runs"] if b.get("pipeline") == "carbon"]
    lake.transform_queue.send('{"v": 1, "not": "a chunk"}')  # dead-lettered by the next run
    runner.run(settings)
    server = UiServer(Lake.open(settings)).start()
    yield server, report
    server.stop()


def test_the_pages_work_on_the_aws_profile(page, aws_ui):
    server, report = aws_ui
    visit = opener(page, server)
    visit("/")
    expect(page.locator("header .home")).to_contain_text("aws ·")
    expect(page.locator('#pipelines tr[data-pipeline="carbon"]')).to_contain_text("SUCCEEDED")
    expect(page.locator("#attention")).to_contain_text("message(s) in")  # the SQS DLQ
    expect(page.locator("#dlq tbody tr")).to_have_count(1)
    visit("/lineage")
    expect(page.locator("main")).to_contain_text(report["root_id"])
    visit("/workflows")
    page.locator("main a", has_text="carbon-").first.click()
    page.wait_for_function("window.workflowGraph && window.workflowGraph.nodes().length > 0")
    visit("/tables")
    expect(page.locator("main")).to_contain_text("gold.emissions")
    visit("/")
    page.get_by_role("button", name="Redrive all DLQ messages").click()
    expect(page.locator(".flash")).to_contain_text("transform: 1 redriven")
