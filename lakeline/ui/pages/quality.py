"""The quality pages: per table or pipeline the history of its stored quality results (a chart
of pass rates over time and a table of results), and one result with its rules and the HTML
report of :func:`lakeline.dq.report.render_html` embedded."""

from __future__ import annotations

from typing import Any

from lakeline.dq.report import render_html
from lakeline.dq.results import LIMIT, StoredResult, list_results, load_result, summarise, summary_rows
from lakeline.ui.render import Rendered, View, page

#: results the static export writes a page of (the newest)
EXPORTED_RESULTS = 50


def _exported(results: list[StoredResult]) -> list[StoredResult]:
    """The results whose page the static export writes: the newest :data:`EXPORTED_RESULTS`."""
    return sorted(results, key=lambda r: (r.generated_at, r.key), reverse=True)[:EXPORTED_RESULTS]


def _result_pages(view: View) -> list[dict[str, Any]]:
    return [{"key": r.key} for r in _exported(list_results(view.lake))]


@page("quality", "/quality", title="Quality")
def index(view: View) -> Rendered:
    """Per subject (a table or a pipeline) its results over time; one chart of every result's
    pass rate (rules passed / rules evaluated), one line per subject."""
    results = list_results(view.lake)
    urls = [view.links.url("quality-result", key=r.key) if view.links.linkable("quality-result", key=r.key)
            else None for r in results]
    subjects: dict[str, list[dict[str, Any]]] = {}
    for r, url in zip(results, urls, strict=True):
        subjects.setdefault(r.subject, []).append({**r.to_dict(), "url": url})
    names = sorted(subjects)
    # the chart: one point per result on a shared time-ordered axis, one line per subject
    chart = {
        "labels": [f"{r.generated_at[:19].replace('T', ' ')} {r.subject} {r.part}".strip() for r in results],
        "datasets": [{"label": name, "data": [_rate(r) if r.subject == name else None for r in results]}
                     for name in names],
        "urls": urls,
    }
    summary = [{"subject": name, "results": len(subjects[name]),
                "failed": sum(1 for e in subjects[name] if not e["success"]),
                "latest": subjects[name][-1]} for name in names]
    return "quality.html", {"title": "Quality", "subjects": {n: subjects[n] for n in names},
                            "summary": summary, "chart": chart, "count": len(results), "limit": LIMIT}


def _rate(r: StoredResult) -> float | None:
    """The pass rate in percent (None: no rule evaluated)."""
    return None if r.pass_rate is None else round(100 * r.pass_rate, 2)


@page("quality-result", "/quality/result", title="Quality result", instances=_result_pages)
def detail(view: View, key: str) -> Rendered:
    """The result stored at gold ``key`` (``_quality/results/…/run_<id>.json``): its rules and
    its HTML report."""
    result = load_result(view.lake, key)
    stored = summarise(key, result)
    gate = result.get("gate") or {}
    root = str(result.get("run_id") or "") if gate else ""
    if root and not view.lake.lineage.counts(root):
        root = ""  # a gate's run id names its file's lineage root when lineage was recorded
    if root and not view.links.linkable("lineage-root", root=root):
        root = ""  # the export draws the latest roots only
    return "quality_result.html", {
        "title": f"Quality {stored.subject} {stored.part}".strip(), "key": key, "result": stored,
        "rules": summary_rows(result.get("results") or []), "gate": gate, "root": root,
        "source": result.get("source"), "report": render_html(result)}
