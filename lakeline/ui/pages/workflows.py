"""The workflow pages: executions newest first with the shipped definitions, and one execution
drawn as the Step Functions console draws it — its state graph coloured by what the history says
happened, each state's input and output, a Map's iterations, the event history."""

from __future__ import annotations

from typing import Any

import orjson

from lakeline.errors import LakelineError, NotFoundError, UsageError
from lakeline.pipelines.tasks import workflows
from lakeline.status import find_run
from lakeline.ui.render import Rendered, View, page
from lakeline.workflow.engine import Execution, list_executions
from lakeline.workflow.history import (
    STATUSES,
    Reading,
    StateInfo,
    details,
    find_execution,
    read,
    summary,
    timestamp,
    walk,
)

#: executions the list shows, and those the static export writes a page for (the latest)
LISTED, EXPORTED = 200, 20
#: history events the table shows at most (the first and the last halves); details cut at DETAILS
HISTORY_ROWS, DETAILS = 2000, 2000
#: words for the statuses of :mod:`lakeline.workflow.history`
WORDS = {"failed": "failed", "aborted": "aborted", "running": "running", "caught": "caught or retried",
         "succeeded": "succeeded", "notrun": "not run"}
START, END = "__start__", "__end__"


def _latest(view: View) -> list[dict[str, Any]]:
    """The param sets the export writes: the latest executions."""
    return [{"execution": e.execution_arn} for e in list_executions(view.lake.state, EXPORTED)]


def _definitions(view: View) -> list[dict[str, Any]]:
    """Every shipped workflow (the export draws each)."""
    return [{"name": name} for name in sorted(workflows(view.registry))]


@page("workflows", "/workflows", title="Workflows")
def index(view: View) -> Rendered:
    """Executions newest first (linked to their graph), then the shipped workflow definitions."""
    found = list_executions(view.lake.state, LISTED)
    executions = []
    for i, ex in enumerate(found):
        row = _shown(summary(ex))
        row["linked"] = not view.exporting or i < EXPORTED
        row["duration"] = _duration(ex)
        executions.append(row)
    defined = [{"name": name, "comment": d.get("Comment", ""), "states": len(walk(d))}
               for name, d in sorted(workflows(view.registry).items())]
    return "workflows.html", {"title": "Workflows", "executions": executions, "definitions": defined,
                              "more": len(found) == LISTED, "listed": LISTED, "exported_n": EXPORTED}


@page("workflow", "/workflows/execution", title="Workflow execution", instances=_latest)
def detail(view: View, execution: str = "") -> Rendered:
    """One execution: its state graph coloured by state, each state's input and output (per Map
    iteration), and the event history. ``execution``: its ARN (a name or unique prefix works)."""
    if not execution:
        raise UsageError("which execution? /workflows/execution?execution=<its ARN, name or unique name "
                         "prefix>")
    try:
        ex = find_execution(view.lake.state, execution)
    except UsageError as exc:
        if exc.code == "EXECUTION_NOT_FOUND":
            raise NotFoundError(str(exc)) from None
        raise
    reading = read(ex)
    n = len(ex.history)
    half = HISTORY_ROWS // 2
    shown = range(n) if n <= HISTORY_ROWS else [*range(half), *range(n - half, n)]
    history = [{"id": ex.history[i].get("id"), "type": ex.history[i].get("type"),
                "timestamp": timestamp(ex.history[i]), "state": _place(reading, i),
                "details": _details_text(ex.history[i])} for i in shown]
    info = _shown(summary(ex))
    info.update(duration=_duration(ex), input=_json(ex.input), output=_json(ex.output),
                comment=ex.definition.get("Comment", ""), related=_related(view, ex))
    drawn = graph(reading, started=bool(ex.history), ended=_end_status(ex.status))
    return "workflow.html", {"title": f"Execution {ex.name}", "ex": info, "history": history, "events": n,
                             "graph": drawn, "maps": drawn["maps"], "definition": None}


@page("workflow-definition", "/workflows/definition", title="Workflow definition", instances=_definitions)
def definition(view: View, name: str = "") -> Rendered:
    """A shipped workflow's state graph, before any execution (``name``: as ``workflow list`` shows)."""
    found = workflows(view.registry)
    if name not in found:
        raise NotFoundError(f"no workflow {name!r}; workflows: {', '.join(sorted(found))}")
    machine = found[name]
    drawn = graph(read(Execution(execution_arn="", name=name, status="", definition=machine)))
    about = {"name": name, "comment": machine.get("Comment", ""), "asl": _json(machine)}
    return "workflow.html", {"title": f"Workflow {name}", "ex": None, "history": [], "events": 0,
                             "graph": drawn, "maps": {}, "definition": about}


def _related(view: View, ex: Execution) -> list[dict[str, str]]:
    """Links to where the execution meets the other pages: the run of the pipeline whose
    workflow it is (its run id is the execution's name), the lineage root it wrote."""
    out = []
    for p in view.registry:
        if ex.definition not in p.workflows().values():
            continue
        try:
            run = find_run(view.lake, view.registry, p.name, ex.name)
        except NotFoundError:
            continue
        if view.links.linkable("run", pipeline=p.name, run=run.run_id):
            url = view.links.url("run", pipeline=p.name, run=run.run_id)
            out.append({"label": f"{p.name} run {run.run_id}", "url": url})
    found = [d.get("root_id") for d in (ex.input, ex.output) if isinstance(d, dict) and d.get("root_id")]
    root = found[0] if found else None
    if root and _has_root(view, str(root)) and view.links.linkable("lineage-root", root=str(root)):
        out.append({"label": f"lineage root {root}", "url": view.links.url("lineage-root", root=str(root))})
    return out


def _has_root(view: View, root: str) -> bool:
    try:
        return bool(view.lake.lineage.counts(root))
    except LakelineError:  # no lineage ledger
        return False


def graph(reading: Reading, *, started: bool = False, ended: str = "notrun") -> dict[str, Any]:
    """What workflow.js draws: cytoscape elements (one node per state, Map and Parallel as parents
    of their inner states, Start and End), each state's entries per Map iteration, the Maps'
    iterations. ``started``, ``ended``: the status of the Start and End nodes."""
    states = reading.states
    by_path = {s.path: s for s in states}
    nodes: list[dict[str, Any]] = [
        {"data": {"id": START, "label": "Start", "kind": "start",
                  "status": "succeeded" if started else "notrun"}},
        {"data": {"id": END, "label": "End", "kind": "end", "status": ended}},
    ]
    edges: list[dict[str, Any]] = []
    maps = _maps(reading)
    for s in states:
        status = reading.status(s.path, _default_iteration(s, by_path, maps))
        label = f"{s.name}\n{s.type}"
        if s.type == "Map" and maps.get(s.path):
            label = f"{s.name} (Map)\n{maps[s.path]['summary']}"
        elif s.type in ("Map", "Parallel"):
            label = f"{s.name} ({s.type})"
        data = {"id": s.path, "label": label, "name": s.name, "type": s.type, "kind": "state",
                "status": status}
        if s.parent is not None:
            data["parent"] = s.parent
        nodes.append({"data": data, "classes": "compound" if s.type in ("Map", "Parallel") else ""})
        if s.parent is None and s.start:
            edges.append(_edge(START, s.path, "next"))
        for t in s.transitions:
            if t.target in by_path:
                edges.append(_edge(s.path, t.target, t.kind, t.label))
        if s.parent is None and s.terminal:
            edges.append(_edge(s.path, END, "next"))
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for (iteration, path), entries in reading.runs.items():
        runs.setdefault(iteration, {})[path] = [r.to_dict() for r in entries]
    return {"elements": nodes + edges, "runs": runs, "maps": maps,
            "mode": "execution" if started else "definition",
            "states": {s.path: {"name": s.name, "type": s.type, "map": _enclosing_map(s, by_path),
                                "comment": s.comment, "asl": _json(s.definition)} for s in states}}


def _edge(source: str, target: str, kind: str, label: str = "") -> dict[str, Any]:
    return {"data": {"id": f"{source}->{target}:{kind}:{label}", "source": source, "target": target,
                     "kind": kind, "label": label}}


def _enclosing_map(s: StateInfo, by_path: dict[str, StateInfo]) -> str | None:
    """The nearest Map the state runs in (its entries are per iteration of that Map)."""
    parent = s.parent
    while parent is not None:
        if by_path[parent].type == "Map":
            return parent
        parent = by_path[parent].parent
    return None


def _default_iteration(s: StateInfo, by_path: dict[str, StateInfo], maps: dict[str, Any]) -> str:
    owner = _enclosing_map(s, by_path)
    return maps[owner]["selected"] if owner and owner in maps else ""


def _maps(reading: Reading) -> dict[str, dict[str, Any]]:
    """Per Map that ran: its iterations (key, label, status), their counts in words, and the
    iteration shown first (the first that failed, else the first)."""
    out: dict[str, dict[str, Any]] = {}
    for s in reading.states:
        if s.type != "Map" or (s.path not in reading.iterations and s.path not in reading.lengths):
            continue
        counts = reading.counts(s.path)
        total = sum(counts.values())
        words = ", ".join(f"{n:,} {WORDS[k]}" for k, n in counts.items())
        iterations = [{"key": it.key, "label": _iteration_label(it.key), "status": it.status}
                      for it in sorted(reading.iterations.get(s.path, {}).values(),
                                       key=lambda it: (it.key.rpartition("|")[0], it.index))]
        worst = min(iterations, key=lambda it: STATUSES.index(it["status"]), default=None)
        selected = worst["key"] if worst and worst["status"] != "succeeded" else (
            iterations[0]["key"] if iterations else "")
        out[s.path] = {"summary": f"{total:,} iteration{'s' if total != 1 else ''}: {words}" if total else
                       "0 iterations", "counts": counts, "iterations": iterations, "selected": selected}
    return out


def _iteration_label(key: str) -> str:
    """``Outer #2 > Inner #0`` for a key of :func:`lakeline.workflow.history.iteration_key`."""
    parts = []
    for part in key.split("|"):
        path, _, index = part.rpartition("#")
        parts.append(f"{path.rsplit('/', 1)[-1]} #{index}")
    return " > ".join(parts)


def _place(reading: Reading, i: int) -> str:
    """The state (and Map iteration) a history event belongs to, as the history table shows it."""
    place = reading.places[i] if i < len(reading.places) else None
    if place is None or place.state is None:
        return ""
    name = place.state.rsplit("/", 1)[-1]
    return f"{name} ({_iteration_label(place.iteration)})" if place.iteration else name


def _details_text(event: dict[str, Any]) -> str:
    """An event's details as compact JSON (cut at :data:`DETAILS` characters: a state's whole
    input and output are in the graph's panel)."""
    found = details(event)
    text = orjson.dumps(found, default=str).decode() if found else ""
    return text if len(text) <= DETAILS else text[:DETAILS] + f"… ({len(text) - DETAILS:,} more characters)"


def _json(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2, default=str).decode()


def _shown(row: dict[str, Any]) -> dict[str, Any]:
    """An execution's summary with its times as the pages show them (UTC, to the second)."""
    for key in ("startDate", "stopDate"):
        if row.get(key):
            row[key] = row[key][:19].replace("T", " ") + " UTC"
    return row


def _duration(ex: Execution) -> str:
    if ex.stop_date is None:
        return ""
    seconds = (ex.stop_date - ex.start_date).total_seconds()
    return f"{seconds:,.1f} s" if seconds < 120 else f"{seconds / 60:,.1f} min"


def _end_status(status: str) -> str:
    return {"SUCCEEDED": "succeeded", "RUNNING": "notrun", "ABORTED": "aborted"}.get(status, "failed")
