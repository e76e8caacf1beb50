"""The runs pages: every run (filtered by pipeline, status and time) and one run's detail —
counts, rejects grouped by reason with sample lines, what it wrote, its lineage root and its
quality result — with the two run actions: promote a batch run, rerun a failed file."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from lakeline.dq.gate import FAIL, PASS
from lakeline.dq.partitions import RESULT_PREFIX
from lakeline.errors import LakelineError, NotFoundError, UsageError
from lakeline.pipelines.base import RunEntry
from lakeline.ports.lineage_model import Node
from lakeline.promotion.gate import read_run_summary
from lakeline.promotion.promote import read_latest
from lakeline.status import (
    RUN_STATUSES,
    batch_run_of,
    find_run,
    promote_run,
    promoted_tables,
    promotion_summary,
    rerun_object,
    rerun_target,
    run_entries,
    run_rejects,
    run_root,
)
from lakeline.ui.render import Rendered, View, action, page

#: how many runs the overview lists unless ``limit`` says otherwise, and at most
DEFAULT_LIMIT, MAX_LIMIT = 100, 2000
#: how many runs are searched when a status or time filter is given
SCAN = 2000
#: how many runs' detail pages the static export writes: the newest, and each pipeline's newest
EXPORTED, EXPORTED_PER_PIPELINE = 50, 10
#: sample lines shown per reject reason
SAMPLES = 5
#: lineage nodes read for what a run wrote, at most
_WRITTEN_MAX = 2000
#: partitions whose quality result is looked up, at most
_QUALITY_MAX = 40
_STAMP = re.compile(r"run_auto-(\d{8}T\d{12})Z\.json$")


def _exported_runs(view: View, pipeline: str = "") -> list[RunEntry]:
    """The runs a static runs page lists (every pipeline's, or one's): their detail pages are
    exported."""
    if pipeline:
        return run_entries(view.lake, view.registry, EXPORTED_PER_PIPELINE, only=pipeline)
    return run_entries(view.lake, view.registry, EXPORTED)


def _latest(view: View) -> list[dict[str, Any]]:
    """The run detail pages of the export: the newest runs, and each pipeline's newest (the
    runs page of each pipeline lists them; the overview links each pipeline's last run)."""
    found = {(e.pipeline, e.run_id): None for e in _exported_runs(view)}
    for name in view.registry.names():
        found.update({(e.pipeline, e.run_id): None for e in _exported_runs(view, name)})
    return [{"pipeline": p, "run": r} for p, r in found]


def _runs_pages(view: View) -> list[dict[str, Any]]:
    """The runs pages of the export: every run, and each pipeline's (the overview links them)."""
    return [{}, *({"pipeline": name} for name in view.registry.names())]


@page("runs", "/runs", title="Runs", instances=_runs_pages)
def index(view: View, pipeline: str = "", status: str = "", since: str = "", until: str = "",
          limit: str = "") -> Rendered:
    """Every run, newest first (``lakeline runs``), filtered by pipeline, status and time
    (``since`` / ``until``: ISO dates or times, naive = UTC; a date ``until`` takes that day in).
    A static export lists the runs whose detail pages it has (and filters by pipeline only)."""
    lake, reg = view.lake, view.registry
    if pipeline and pipeline not in reg:
        raise UsageError(f"unknown pipeline {pipeline!r}; pipelines: {', '.join(reg.names())}")
    filters = {"pipeline": pipeline, "status": status, "since": since, "until": until, "limit": limit}
    if view.exporting:
        entries = _exported_runs(view, pipeline)
        want = scan_max = EXPORTED_PER_PIPELINE if pipeline else EXPORTED
        filtered, scanned = False, len(entries)
    else:
        want = _limit(limit)
        entries = run_entries(lake, reg, want, only=pipeline or None)
        known = {s.upper() for s in RUN_STATUSES} | {e.status.upper() for e in entries}
        if status and status.upper() not in known:
            raise UsageError(f"unknown status {status!r}; statuses: {', '.join(RUN_STATUSES)}")
        start, end = _instant(since, "since"), _instant(until, "until", end_of_day=True)
        if start and end and end <= start:
            raise UsageError(f"until ({until}) must be after since ({since})")
        filtered, scanned, scan_max = bool(status or start or end), len(entries), want
        if filtered:
            entries = run_entries(lake, reg, SCAN, only=pipeline or None)
            scanned, scan_max = len(entries), SCAN
            entries = [e for e in entries if _keep(e, status, start, end)][:want]
    return "runs.html", {
        "title": "Runs", "runs": [e.to_dict() for e in entries], "pipelines": reg.names(),
        "statuses": RUN_STATUSES, "filters": filters, "filtered": filtered, "scanned": scanned,
        "scan_max": scan_max, "limit": want}


def _limit(text: str) -> int:
    if not text:
        return DEFAULT_LIMIT
    if not text.isdigit() or not 1 <= int(text) <= MAX_LIMIT:
        raise UsageError(f"limit {text!r} must be a whole number from 1 to {MAX_LIMIT}")
    return int(text)


def _instant(text: str, name: str, *, end_of_day: bool = False) -> datetime | None:
    """An ISO date or time (naive = UTC); a date as ``until`` means the end of that day."""
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(f"{name} {text!r} is not an ISO date or time (like 2026-01-29 or "
                         "2026-01-29T12:00:00Z)") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    if end_of_day and re.fullmatch(r"\d{4}-\d{2}-\d{2}", text.strip()):
        value += timedelta(days=1)
    return value


def _when(e: RunEntry) -> datetime | None:
    text = e.started_at or e.finished_at
    if not text:
        return None
    try:
        value = datetime.fromisoformat(str(text))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _keep(e: RunEntry, status: str, start: datetime | None, end: datetime | None) -> bool:
    if status and e.status.upper() != status.upper():
        return False
    if start is None and end is None:
        return True
    when = _when(e)
    return when is not None and (start is None or when >= start) and (end is None or when < end)


# ---- one run ----------------------------------------------------------------------------------

@page("run", "/runs/detail", title="Run", instances=_latest)
def detail(view: View, pipeline: str, run: str) -> Rendered:
    """One run: counts, status, error, key; rejects by reason with sample lines; what it
    wrote; its lineage root and quality result; promote / rerun when they apply."""
    lake, reg = view.lake, view.registry
    entry = find_run(lake, reg, pipeline, run)
    batch = batch_run_of(lake, reg, entry) if entry.status == "LANDED" else None
    root = run_root(lake, reg, entry) or (run_root(lake, reg, batch) if batch is not None else None)
    counts = _lineage_counts(view, root)
    ids = [i for i in (root, batch.run_id if batch else None) if i]
    rejects = run_rejects(lake, entry, ids=ids, samples=SAMPLES)
    written = _written(view, root, counts, "" if batch is None else entry.key or "")
    partitions = _partitions(view, entry)
    quality = _quality(view, entry, root, counts, written)
    gate = _gate(view, entry)
    return "run.html", {
        "title": f"Run {entry.run_id}", "run": entry.to_dict(),
        "batch": None if batch is None else batch.to_dict(),
        "root": root, "lineage_counts": counts, "rejects": rejects, "written": written,
        "partitions": partitions, "quality": quality, "gate": gate,
        "promote": _promotable(entry, partitions, view), "rerun": _rerun(view, entry),
        "root_linked": root is not None and view.links.linkable("lineage-root", root=root),
        "batch_linked": batch is not None and view.links.linkable("run", pipeline=batch.pipeline,
                                                                  run=batch.run_id)}


def _lineage_counts(view: View, root: str | None) -> dict[str, int]:
    if root is None:
        return {}
    try:
        return view.lake.lineage.counts(root)
    except LakelineError:
        return {}


def _nodes(view: View, root: str | None, action_name: str, limit: int, counts: dict[str, int]) -> list[Node]:
    """The nodes of one action of ``root`` (none asked for when ``counts`` has none)."""
    if root is None or not counts.get(action_name):
        return []
    try:
        return view.lake.lineage.by_action(action_name, root, limit=limit)
    except LakelineError:
        return []


def _short(view: View, location: str) -> str:
    """A storage location as ``<zone>/<key>`` when it is one of the lake's."""
    for zone in ("silver", "gold", "error", "landing", "raw"):
        base = view.lake.store.scan_uri(zone, "").rstrip("/") + "/"
        if location.startswith(base):
            return f"{zone}/{location[len(base):]}"
    return location


def _written(view: View, root: str | None, counts: dict[str, int], source_key: str) -> list[dict[str, Any]]:
    """What the run wrote, from its lineage root's ``BATCH_WRITTEN`` nodes (and a carbon
    workflow's ``GLUE_BATCH_SPLIT`` batches): one row per table partition (record type and dt,
    a batch partition, an Iceberg table, a batch file) with its rows and files (``source_key``:
    only what that input file wrote, for a file of a batch run)."""
    out: dict[str, dict[str, Any]] = {}
    parents: set[str] | None = None
    if source_key:
        parents = {n.node_id for n in _nodes(view, root, "RAW_DATA_INPUT", 1000, counts)
                   if n.attrs.get("key") == source_key}
    nodes = _nodes(view, root, "BATCH_WRITTEN", _WRITTEN_MAX, counts)
    nodes += _nodes(view, root, "GLUE_BATCH_SPLIT", _WRITTEN_MAX, counts)  # a workflow's batches
    for n in nodes:
        if parents is not None and n.parent_id not in parents:
            continue
        a = n.attrs
        if a.get("record_type") is not None:
            label = f"{a['record_type']}" + (f" dt={a['dt']}" if a.get("dt") else "")
        elif a.get("partition"):
            label = str(a["partition"])
        else:
            label = _short(view, n.storage_location)
        row = out.setdefault(label, {
            "partition": label, "record_type": a.get("record_type"), "dt": a.get("dt"), "rows": None,
            "files": 0, "location": _short(view, n.storage_location), "snapshot_id": a.get("snapshot_id")})
        if a.get("rows") is not None:
            row["rows"] = (row["rows"] or 0) + int(a["rows"])
        files = a.get("files")
        row["files"] += len(files) if isinstance(files, list) else int(files or 1)
        if row["files"] > 1 and row["location"].endswith(".parquet"):  # several files: their folder
            row["location"] = row["location"].rsplit("/", 1)[0] + "/"
    return sorted(out.values(), key=lambda r: r["partition"])


def _partitions(view: View, entry: RunEntry) -> list[dict[str, Any]]:
    """A batch run's partitions and which run each one's ``current/`` holds."""
    out = []
    for partition in entry.detail.get("partitions") or []:
        latest = read_latest(view.lake, str(partition))
        current = None if latest is None else latest.get("run_id")
        out.append({"partition": partition, "current": current, "is_current": current == entry.run_id,
                    "promoted_at": None if latest is None else latest.get("promoted_at")})
    return out


def _gate(view: View, entry: RunEntry) -> dict[str, Any] | None:
    """The promotion gate's verdict on a batch run of a promoted table (or why there is none)."""
    prefix = promoted_tables(view.registry).get(str(entry.detail.get("table")))
    if entry.kind != "batch" or prefix is None:
        return None
    try:
        return read_run_summary(view.lake, prefix, entry.run_id)
    except LakelineError as exc:
        return {"error": str(exc)}


def _quality(view: View, entry: RunEntry, root: str | None, counts: dict[str, int],
             written: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The run's quality results (gold keys of the result JSON): the file gate of its lineage
    root (``DQ_CHECK_PASS`` / ``DQ_CHECK_FAIL``), and for each partition it wrote the first
    check of that partition after the run finished."""
    out: list[dict[str, Any]] = []
    for action_name in (PASS, FAIL):
        for n in _nodes(view, root, action_name, 10, counts):
            key = n.attrs.get("result_key")
            if key:
                out.append({"label": "file gate", "key": str(key), "success": action_name == PASS})
    finished = _stamp(entry.finished_at or entry.started_at)
    for w in written[:_QUALITY_MAX]:
        if not w.get("dt") or not w.get("record_type") or finished is None:
            continue
        prefix = f"{RESULT_PREFIX}/{w['record_type']}/dt={w['dt']}/"
        found = sorted((m.group(1), i.key) for i in view.lake.store.list("gold", prefix)
                       if (m := _STAMP.search(i.key)) is not None and m.group(1) >= finished)
        if not found:
            out.append({"label": w["partition"], "key": None, "success": None})
            continue
        key = found[0][1]
        try:
            success = bool(orjson.loads(view.lake.store.get("gold", key)).get("success"))
        except (NotFoundError, orjson.JSONDecodeError):
            continue
        out.append({"label": w["partition"], "key": key, "success": success})
    if out:
        for q in out:
            q["linked"] = bool(q["key"]) and view.links.linkable("quality-result", key=q["key"])
    return out


def _stamp(text: str | None) -> str | None:
    """A run-log time as the ``YYYYMMDDTHHMMSSffffff`` of an automatic quality check's id."""
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    return (value.astimezone(UTC) if value.tzinfo else value).strftime("%Y%m%dT%H%M%S%f")


def _promotable(entry: RunEntry, partitions: list[dict[str, Any]], view: View) -> dict[str, Any] | None:
    """Whether the promote button shows: a complete batch run of a promoted table that is not
    ``current`` in every partition it wrote."""
    if entry.kind != "batch" or str(entry.detail.get("table")) not in promoted_tables(view.registry):
        return None
    if entry.status != "COMPLETE":
        return {"allowed": False, "note": f"a {entry.status} run is never promoted"}
    if partitions and all(p["is_current"] for p in partitions):
        return {"allowed": False, "note": "this run is current in every partition it wrote"}
    return {"allowed": True, "note": ""}


def _rerun(view: View, entry: RunEntry) -> dict[str, Any] | None:
    """Whether the rerun button shows (a failed landed object of a streaming pipeline), or
    what to do instead."""
    if entry.status != "FAILED":
        return None
    if entry.kind != "object":
        arn = entry.detail.get("execution_arn")
        if arn:
            return {"allowed": False, "note": "redrive its workflow execution", "execution": arn}
        return {"allowed": False, "note": "a failed batch stays pending: the next `lakeline run` retries it"}
    try:
        rerun_target(view.lake, view.registry, entry)
    except UsageError as exc:
        return {"allowed": False, "note": str(exc)}
    return {"allowed": True, "note": ""}


# ---- actions ---------------------------------------------------------------------------------

def _form_run(view: View, form: dict[str, str]) -> RunEntry:
    pipeline, run_id = form.get("pipeline", ""), form.get("run", "")
    if not pipeline or not run_id:
        raise UsageError("the form names no pipeline and run")
    return find_run(view.lake, view.registry, pipeline, run_id)


@action("run-promote", "/actions/run-promote")
def promote(view: View, form: dict[str, str]) -> tuple[str, str]:
    """Promote a batch run (``lakeline promote --table T --run-key R``): the gate first; a
    refusal is the flash message."""
    entry = _form_run(view, form)
    back = view.links.url("run", pipeline=entry.pipeline, run=entry.run_id)
    prefix = promoted_tables(view.registry).get(str(entry.detail.get("table")))
    if entry.kind != "batch" or prefix is None:
        raise UsageError(f"run {entry.run_id} of {entry.pipeline} is not a batch run of a promoted table")
    result = promote_run(view.lake, prefix, entry.run_id,
                         override="`lakeline promote --force` overrides it")
    if result.get("status") != "success":
        return f"not promoted: {result.get('reason')}", back
    return promotion_summary(result), back


@action("run-rerun", "/actions/run-rerun")
def rerun(view: View, form: dict[str, str]) -> tuple[str, str]:
    """Run a failed file again: a copy-mode replay of exactly that object (``lakeline
    replay``), loaded by the next ``lakeline run`` or ``serve``."""
    entry = _form_run(view, form)
    result = rerun_object(view.lake, view.registry, entry)
    copies = ", ".join(result.get("copies") or []) or "nothing"
    return (f"rerun of {entry.key}: copied to {copies}; `lakeline run` (or `serve`) loads it",
            view.links.url("run", pipeline=entry.pipeline, run=entry.run_id))
