"""The workflow pages in a real browser: the executions list, the carbon execution's state graph
(one node per state, the Map as a parent of its inner state, coloured by what happened), each
state's input and output per Map iteration, the event history; a failed execution drawn red."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from lakeline.config import load_settings
from lakeline.lake import Lake
from lakeline.pipelines.carbon.pipeline import definition as carbon_definition
from lakeline.workflow import shipped
from lakeline.workflow.engine import Execution, TaskRegistry, list_executions, load_execution, run_definition
from lakeline.workflow.errors import TaskError
from tests.ui.conftest import opener

GREEN = "rgb(45,164,78)"
RED = "rgb(207,34,46)"
ORANGE = "rgb(225,111,36)"
GREY = "rgb(175,184,193)"
#: the state nodes: [id, status, border colour]
NODES = """window.workflowGraph.nodes("[kind = 'state']").map(
  n => [n.id(), n.data('status'), n.style('border-color').replace(/ /g, '')])"""

FN = "arn:aws:lambda:us-east-1:000000000000:function:"
#: a tiny workflow that retries, catches, and fails in the last of its Map's iterations
FAILING = {
    "Comment": "a tiny workflow that fails",
    "StartAt": "Prepare",
    "States": {
        "Prepare": {"Type": "Pass", "Result": {"items": [1, 2, 3]}, "Next": "Flaky"},
        "Flaky": {"Type": "Task", "Resource": FN + "flaky", "ResultPath": "$.flaky", "Next": "Risky",
                  "Retry": [{"ErrorEquals": ["TransientError"], "IntervalSeconds": 1, "MaxAttempts": 2}]},
        "Risky": {"Type": "Task", "Resource": FN + "boom", "ResultPath": "$.risky", "Next": "Done",
                  "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.caught", "Next": "Recover"}]},
        "Recover": {"Type": "Pass", "Next": "Each"},
        "Each": {"Type": "Map", "ItemsPath": "$.items", "MaxConcurrency": 1, "Next": "Done",
                 "ItemProcessor": {"StartAt": "Check", "States": {
                     "Check": {"Type": "Task", "Resource": FN + "check", "End": True}}}},
        "Done": {"Type": "Succeed"},
    },
}


def _states_in(machine: dict[str, Any]) -> int:
    """How many states a definition has, those of its Maps and Parallels included."""
    n = 0
    for state in machine["States"].values():
        n += 1
        inner = [state.get("ItemProcessor") or state.get("Iterator")] if state["Type"] == "Map" else \
            state.get("Branches", [])
        n += sum(_states_in(m) for m in inner)
    return n


@pytest.fixture(scope="module")
def carbon(demo_home: Path) -> Execution:
    """The demo lake's carbon execution, with its history."""
    state = Lake.open(load_settings(demo_home)).state
    [arn] = [e.execution_arn for e in list_executions(state) if e.name.startswith("carbon-")]
    ex = load_execution(state, arn)
    assert ex is not None
    return ex


def _entered(ex: Execution, name: str, after: int | None = None) -> dict[str, Any]:
    """The StateEntered event of state ``name`` (the one chained to event ``after``, if given)."""
    return next(e for e in ex.history if e["type"].endswith("StateEntered")
                and e["stateEnteredEventDetails"]["name"] == name
                and (after is None or e["previousEventId"] == after))


def _exited(ex: Execution, entered: dict[str, Any]) -> dict[str, Any]:
    """The StateExited event that closes ``entered`` (following previousEventId)."""
    last = entered["id"]
    while True:
        e = next(e for e in ex.history if e["previousEventId"] == last)
        if e["type"].endswith("StateExited"):
            return e
        last = e["id"]


def _click_node(page: Page, node: str) -> None:
    """A real mouse click on a node of the graph."""
    page.wait_for_function("window.workflowGraph !== undefined")
    x, y = page.evaluate("id => { const p = window.workflowGraph.getElementById(id).renderedPosition();"
                         " return [p.x, p.y]; }", node)
    box = page.locator("#workflow-graph").bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + x, box["y"] + y)


def test_overview_to_the_carbon_execution_draws_its_state_graph(visit, carbon):
    page = visit("/")
    page.locator("#executions a", has_text=carbon.name).click()
    expect(page.locator("h1")).to_contain_text(carbon.name)
    page.wait_for_function("window.workflowGraph !== undefined")
    nodes = page.evaluate(NODES)
    assert len(nodes) == _states_in(carbon_definition()) == 8
    status = {n[0]: n[1] for n in nodes}
    assert status == {"Kickoff": "succeeded", "DataQuality": "succeeded", "Passed": "succeeded",
                      "DataQualityFailed": "notrun", "Split": "succeeded", "CalculateBatches": "succeeded",
                      "CalculateBatches/Calculate": "succeeded", "Publish": "succeeded"}
    assert {n[2] for n in nodes if n[1] == "succeeded"} == {GREEN}
    assert [n[2] for n in nodes if n[1] == "notrun"] == [GREY]
    # the Map is the parent of its inner state; Start and End; 9 arrows
    assert page.evaluate("window.workflowGraph.getElementById('CalculateBatches/Calculate').parent().id()") \
        == "CalculateBatches"
    assert page.evaluate("window.workflowGraph.nodes(\"[kind = 'start'], [kind = 'end']\").length") == 2
    assert page.evaluate("window.workflowGraph.edges().length") == 9
    assert "6 iterations: 6 succeeded" in page.evaluate(
        "window.workflowGraph.getElementById('CalculateBatches').data('label')")
    expect(page.locator('[data-map="CalculateBatches"] .map-summary')).to_have_text("6 iterations: 6 succeeded")
    expect(page.locator('select.iteration[data-map="CalculateBatches"] option')).to_have_count(6)
    # the event history: one row per event
    expect(page.locator("#history tbody tr")).to_have_count(len(carbon.history))
    assert len(carbon.history) == 70
    expect(page.locator("#history tbody tr").nth(21)).to_contain_text("Calculate (CalculateBatches #0)")
    # where it meets the other pages: the carbon run (named as the execution) and its lineage root
    root = carbon.input["root_id"]
    assert page.locator("#related a").evaluate_all("links => links.map(a => a.getAttribute('href'))") == [
        f"/runs/detail?pipeline=carbon&run={carbon.name}", f"/lineage/root?root={root}"]


def test_clicking_a_state_shows_its_input_and_output_per_map_iteration(visit, carbon):
    page = visit(f"/workflows/execution?execution={carbon.execution_arn}")
    expect(page.locator("#state-detail")).to_be_hidden()
    _click_node(page, "Publish")
    expect(page.locator("#state-name")).to_have_text("Publish")
    expect(page.locator("#state-status")).to_have_text("succeeded")
    entered = _entered(carbon, "Publish")
    assert json.loads(page.locator("#state-input").inner_text()) == \
        json.loads(entered["stateEnteredEventDetails"]["input"])
    assert json.loads(page.locator("#state-output").inner_text()) == \
        json.loads(_exited(carbon, entered)["stateExitedEventDetails"]["output"])
    # the Calculate state of the iteration picked in the Map's box
    page.locator('select.iteration[data-map="CalculateBatches"]').select_option("CalculateBatches#4")
    _click_node(page, "CalculateBatches/Calculate")
    expect(page.locator("#state-where")).to_contain_text("iteration CalculateBatches #4")
    started = next(e for e in carbon.history if e["type"] == "MapIterationStarted"
                   and e["mapIterationStartedEventDetails"]["index"] == 4)
    entered = _entered(carbon, "Calculate", after=started["id"])
    shown = json.loads(page.locator("#state-input").inner_text())
    assert shown == json.loads(entered["stateEnteredEventDetails"]["input"])
    assert shown["storage_location"].endswith("part_4.parquet")
    assert json.loads(page.locator("#state-output").inner_text()) == \
        json.loads(_exited(carbon, entered)["stateExitedEventDetails"]["output"])


def test_the_workflows_page_lists_executions_and_the_shipped_definitions(visit, carbon):
    page = visit("/workflows")
    rows = page.locator("#executions tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(carbon.name)
    expect(rows.first.locator(".badge")).to_have_text("SUCCEEDED")
    names = page.locator("#definitions tbody tr").evaluate_all("rows => rows.map(r => r.dataset.workflow)")
    assert names == ["carbon", "etl_promote", "ops_replay_quality", "quality_gate"]
    expect(page.locator('#definitions tr[data-workflow="carbon"]')).to_contain_text("CarbonLake (seed 003")
    expect(page.locator('#definitions tr[data-workflow="carbon"] td.num')).to_have_text("8")
    rows.first.locator("a").click()
    expect(page.locator("h1")).to_contain_text(carbon.name)


def test_a_shipped_definition_is_drawn_before_any_execution(visit):
    page = visit("/workflows")
    page.locator('#definitions tr[data-workflow="ops_replay_quality"] a').click()
    expect(page.locator("h1")).to_have_text("Workflow ops_replay_quality")
    page.wait_for_function("window.workflowGraph !== undefined")
    machine = shipped.definition("ops_replay_quality")
    nodes = page.evaluate(NODES)
    assert len(nodes) == _states_in(machine) == 10
    assert {n[1] for n in nodes} == {"notrun"}
    assert page.evaluate("window.workflowGraph.edges(\"[kind = 'catch']\").length") == 3
    _click_node(page, "QualityCheck")
    expect(page.locator("#state-name")).to_have_text("QualityCheck")
    assert json.loads(page.locator("#state-asl").inner_text()) == machine["States"]["QualityCheck"]
    expect(page.locator("#history")).to_have_count(0)


def test_a_failed_execution_shows_the_failed_state_red_and_its_error(page, fresh_server, tmp_path):
    calls = {"flaky": 0}

    def flaky(payload: Any) -> Any:
        calls["flaky"] += 1
        if calls["flaky"] == 1:
            raise TaskError("TransientError", "try again")
        return {"ok": True}

    def boom(payload: Any) -> Any:
        raise TaskError("Boom", "risky always fails")

    def check(item: Any) -> Any:
        if item == 3:
            raise TaskError("BadItem", "item 3 is bad")
        return {"item": item, "ok": True}

    state = Lake.open(load_settings(tmp_path / "lake")).state  # the fresh server's copy
    ex = run_definition(FAILING, {"run": 1}, tasks=TaskRegistry({"flaky": flaky, "boom": boom, "check": check}),
                        name="tiny-fails", store=state, sleep=lambda s: None)
    assert (ex.status, ex.error) == ("FAILED", "BadItem")
    visit = opener(page, fresh_server)
    page = visit("/workflows")
    expect(page.locator('#executions tr[data-status="FAILED"]')).to_contain_text("BadItem: item 3 is bad")
    page.locator("#executions a", has_text="tiny-fails").click()
    expect(page.locator("#execution-error")).to_have_text("BadItem: item 3 is bad")
    page.wait_for_function("window.workflowGraph !== undefined")
    nodes = {n[0]: (n[1], n[2]) for n in page.evaluate(NODES)}
    assert nodes == {"Prepare": ("succeeded", GREEN), "Flaky": ("caught", ORANGE), "Risky": ("caught", ORANGE),
                     "Recover": ("succeeded", GREEN), "Each": ("failed", RED), "Each/Check": ("failed", RED),
                     "Done": ("notrun", GREY)}
    assert page.evaluate("window.workflowGraph.getElementById('__end__').data('status')") == "failed"
    expect(page.locator('[data-map="Each"] .map-summary')).to_have_text("3 iterations: 1 failed, 2 succeeded")
    _click_node(page, "Each/Check")  # the failed iteration is the one shown first
    expect(page.locator("#state-where")).to_contain_text("iteration Each #2")
    expect(page.locator("#state-status")).to_have_text("failed")
    expect(page.locator("#state-error")).to_have_text("BadItem: item 3 is bad")
    expect(page.locator("#state-input")).to_have_text("3")
    page.locator('select.iteration[data-map="Each"]').select_option("Each#0")
    assert page.evaluate("window.workflowGraph.getElementById('Each/Check').data('status')") == "succeeded"
    expect(page.locator("#state-status")).to_have_text("succeeded")
    assert json.loads(page.locator("#state-output").inner_text()) == {"item": 1, "ok": True}
    _click_node(page, "Flaky")
    expect(page.locator("#state-status")).to_have_text("caught or retried")
    expect(page.locator("#state-where")).to_contain_text("1 failed attempt(s)")
    expect(page.locator("#state-error")).to_have_text("retried after TransientError: try again")
    _click_node(page, "Risky")
    expect(page.locator("#state-error")).to_have_text("caught: Boom: risky always fails")
    expect(page.locator("#state-output")).to_have_text("— (no output: it failed and a Catch moved on)")
    expect(page.locator("#history tbody tr")).to_have_count(len(ex.history))
    expect(page.locator("#history tbody tr.failed")).to_have_count(6)  # 3 TaskFailed, the iteration, the Map, the execution


def test_an_unknown_or_missing_execution_is_refused(visit, server):
    page = visit("/")  # the cookie; page.request shares it (and logs no console error for a 404)
    base = server.url.split("?")[0].rstrip("/")
    response = page.request.get(base + "/workflows/execution?execution=no-such-execution")
    assert response.status == 404
    assert "no execution &#39;no-such-execution&#39;" in response.text()
    response = page.request.get(base + "/workflows/execution")
    assert response.status == 400
    assert "which execution?" in response.text()
    response = page.request.get(base + "/workflows/definition?name=nope")
    assert response.status == 404
    assert "no workflow &#39;nope&#39;; workflows: carbon, etl_promote" in response.text()
