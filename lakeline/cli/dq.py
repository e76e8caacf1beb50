"""``lakeline dq``: run data quality rules on a file or a lake table, render and list them."""

from __future__ import annotations

import re
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import click
import orjson

from lakeline.cli.context import open_lake, pipelines
from lakeline.console import emit_json, emit_table
from lakeline.dq.engine import evaluate, evaluate_path
from lakeline.dq.gate import SUBJECT
from lakeline.dq.partitions import RESULT_PREFIX, partition_relation, quarantine
from lakeline.dq.report import render_html
from lakeline.dq.results import parse_result, summary_rows
from lakeline.dq.rules import Ruleset, ruleset_for
from lakeline.errors import NotFoundError, UsageError
from lakeline.lake import Lake
from lakeline.sql import connect
from lakeline.stages.spec import StreamTable

_TABLE = re.compile(r"^(silver|gold|quarantine)\.([A-Za-z_][\w]*)$")
_DT = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _lake() -> Lake:
    return open_lake()


@click.group()
def dq() -> None:
    """Data quality: rulesets from [pipelines.<p>.dq] (or built in), evaluated in one DuckDB pass.

    \b
    lakeline dq rules --pipeline carbon
    lakeline dq run --pipeline carbon activity.csv --html report.html
    lakeline dq run --pipeline shipments silver.shipments --dt 2026-01-05
    lakeline dq report _quality/results/shipments/dt=2026-01-05/run_<id>.json
    """


def _where(lake: Any, key: str) -> str:
    """A person-usable location of a gold object: its local path, else its URI."""
    path = lake.store.local_path("gold", key)
    return str(path) if path is not None else lake.store.scan_uri("gold", key)


def _stream_table(lake: Lake, pipeline: str, table: str | None) -> StreamTable | None:
    """``table`` of ``pipeline`` when the pipeline is streaming and has such a table."""
    spec = pipelines(lake).get(pipeline).stream(lake.settings)
    return spec.table_named(table) if spec is not None and table else None


def _ruleset(lake: Lake, pipeline: str, table: str | None) -> Ruleset:
    return ruleset_for(lake.settings, pipeline, table, defaults=pipelines(lake).get(pipeline).rulesets())


@dq.command("run")
@click.argument("target")
@click.option("--pipeline", required=True,
              help="Pipeline whose rules apply ([pipelines.<P>.dq] or built in).")
@click.option("--ruleset", "ruleset_name", help="Use this ruleset instead: <pipeline> or <pipeline>.<table>.")
@click.option("--dt", help="Tables: only this dt partition (YYYY-MM-DD).")
@click.option("--format", "fmt", type=click.Choice(["csv", "json", "parquet"]),
              help="Files: the format (default: from the suffix).")
@click.option("--column-profile/--no-column-profile", "with_profile", default=True, show_default=True,
              help="Also profile every column (--profile is the backend, as for every command).")
@click.option("--html", "html_out", type=click.Path(dir_okay=False), help="Also write the HTML report here.")
@click.option("--run-id", help="Run id (default: a timestamp and a random suffix).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def run_cmd(target: str, pipeline: str, ruleset_name: str | None, dt: str | None, fmt: str | None,
            with_profile: bool, html_out: str | None, run_id: str | None, as_json: bool) -> None:
    """Check TARGET — a local FILE or directory, or a TABLE like silver.shipments — and store the result.

    The result JSON and its HTML report go to the gold zone (tables of streaming pipelines:
    _quality/results/<table>/dt=<dt|all>/run_<id>.json as the quality gate writes them;
    others: _quality/results/<pipeline>/<table or file name>/run_<id>.json). A failing table of a
    streaming pipeline also gets its quarantine marker and a "Data Quality check failed"
    notification.
    Exit code 1 when the data fails the rules.
    """

    if dt is not None and not _DT.match(dt):
        raise UsageError(f"--dt must be YYYY-MM-DD, got {dt!r}")
    lake = _lake()
    run_id = run_id or datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid4().hex[:6]
    path = Path(target)
    table_match = None if path.exists() else _TABLE.match(target)
    if not path.exists() and table_match is None:
        raise UsageError(f"{target!r} is neither a file nor a table "
                         "(like silver.shipments or gold.emissions)")
    table = table_match.group(2) if table_match else None
    if ruleset_name:
        named, _, named_table = ruleset_name.partition(".")
        ruleset = _ruleset(lake, named, named_table or None)
    else:
        ruleset = _ruleset(lake, pipeline, table)
    if table_match:
        result = _run_table(lake, pipeline, target, table or "", dt, ruleset, run_id, with_profile)
    else:
        if dt is not None:
            raise UsageError("--dt is for tables, not files")
        result = _run_file(lake, pipeline, path, fmt, ruleset, run_id, with_profile)
    if html_out:
        Path(html_out).write_text(render_html(result), "utf-8")
        result["html"] = str(Path(html_out).resolve())
    if as_json:
        emit_json(result)
    else:
        emit_table(["rule", "column", "unexpected", "%", "result"], summary_rows(result["results"]),
                   f"{result.get('ruleset')} on {result.get('source')}")
        stats = result.get("statistics", {})
        verdict = "PASSED" if result["success"] else "FAILED"
        click.echo(f"{verdict}: {stats.get('successful')} of {stats.get('evaluated')} rules passed on "
                   f"{stats.get('rows')} rows")
        click.echo(f"result: {_where(lake, result['result_key'])}")
        click.echo(f"report: {result.get('html') or _where(lake, result['report_key'])}")
        if result.get("quarantine_marker"):
            click.echo(f"quarantined: silver/{result['quarantine_marker']}")
    if not result["success"]:
        sys.exit(1)


def _run_table(lake: Any, pipeline: str, target: str, table: str, dt: str | None, ruleset: Any, run_id: str,
               profile: bool) -> dict[str, Any]:

    zone, _, name = target.partition(".")
    con = connect(lake)
    try:
        exists = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = ? "
                             "AND table_name = ?", [zone, name]).fetchone()
        stream = _stream_table(lake, pipeline, table) if zone == "silver" else None
        shipments = stream is not None
        if not (exists and exists[0]) and not (shipments and dt):
            raise NotFoundError(f"no table {target} in the lake (yet)")
        if stream is not None and dt:
            relation = partition_relation(lake, table, dt, stream.columns)
        elif dt:
            # dt matched YYYY-MM-DD above, so it is safe inline (a relation is SQL text)
            relation = f"(SELECT * FROM {zone}.\"{name}\" WHERE CAST(dt AS VARCHAR) = '{dt}')"
        else:
            relation = f'{zone}."{name}"'
        source = lake.store.scan_uri(zone, f"{name}/" + (f"dt={dt}/" if dt else ""))
        dqr = evaluate(con, relation, ruleset, source=source, run_id=run_id, profile=profile)
    finally:
        con.close()
    result: dict[str, Any] = dqr.to_dict()
    if shipments:
        result.update(record_type=table, dt=dt or "all")
        base = f"{RESULT_PREFIX}/{table}/dt={dt or 'all'}/run_{run_id}"
    else:
        base = f"{RESULT_PREFIX}/{pipeline}/{target}" + (f"/dt={dt}" if dt else "") + f"/run_{run_id}"
    _store(lake, result, base, render_html)
    if shipments and not result["success"]:
        result["quarantine_marker"] = quarantine(lake, table, dt or "all", run_id, result)
        _notify(lake, f"silver table {target}" + (f" partition dt={dt}" if dt else ""), result)
    return result


def _run_file(lake: Any, pipeline: str, path: Path, fmt: str | None, ruleset: Any, run_id: str,
              profile: bool) -> dict[str, Any]:

    dqr = evaluate_path(str(path), ruleset, fmt=fmt, profile=profile, run_id=run_id)
    result: dict[str, Any] = dqr.to_dict()
    result["source"] = str(path.resolve())
    _store(lake, result, f"{RESULT_PREFIX}/{pipeline}/{path.name}/run_{run_id}", render_html)
    return result


def _store(lake: Any, result: dict[str, Any], base: str, render: Any) -> None:
    lake.store.put("gold", base + ".json", orjson.dumps(result, option=orjson.OPT_INDENT_2))
    lake.store.put("gold", base + ".html", render(result).encode("utf-8"))
    result["result_key"], result["report_key"] = base + ".json", base + ".html"


def _notify(lake: Any, what: str, result: dict[str, Any]) -> None:

    failed = [r for r in result["results"] if not r.get("success")]
    lines = [f"Data Quality check failed for {what}: {len(failed)} of {len(result['results'])} rules "
             f"failed ({result['statistics']['rows']} rows); "
             f"quarantine marker silver/{result['quarantine_marker']}."]
    for r in failed:
        res = r.get("result") or {}
        figure = res.get("unexpected_count", res.get("observed_value"))
        lines.append(f"- {r.get('rule')} on {(r.get('kwargs') or {}).get('column', '(table)')}: {figure}")
    lines.append(f"Report: gold/{result['report_key']}")
    lake.notifier.notify(SUBJECT, "\n".join(lines), {
        "record_type": result.get("record_type"), "dt": result.get("dt"), "run_id": result["run_id"],
        "result_key": result["result_key"], "report_key": result["report_key"]})


@dq.command("report")
@click.argument("result_ref")
@click.option("--out", type=click.Path(dir_okay=False),
              help="HTML file to write (default: beside the result: .json → .html).")
def report_cmd(result_ref: str, out: str | None) -> None:
    """Render RESULT — a local result JSON file or a gold key (_quality/results/…) — as HTML."""

    local = Path(result_ref)
    key = result_ref.removeprefix("gold/")
    if local.is_file():
        data = local.read_bytes()
    else:
        lake = _lake()
        if not lake.store.exists("gold", key):
            raise NotFoundError(f"{result_ref}: neither a local file nor a result in the gold zone")
        data = lake.store.get("gold", key)
    page = render_html(parse_result(data, result_ref))
    if out or local.is_file():
        target = Path(out) if out else local.with_suffix(".html")
        target.write_text(page, "utf-8")
        click.echo(str(target.resolve()))
        return
    html_key = key.removesuffix(".json") + ".html"
    lake.store.put("gold", html_key, page.encode("utf-8"))
    click.echo(_where(lake, html_key))


@dq.command("rules")
@click.option("--pipeline", required=True, help="Pipeline.")
@click.option("--table", help="A table of the pipeline (default: every table's ruleset).")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def rules_cmd(pipeline: str, table: str | None, as_json: bool) -> None:
    """The effective ruleset of a pipeline (config first, else the pipeline's own)."""
    lake = _lake()
    own = pipelines(lake).get(pipeline).rulesets()
    if table is None and "" not in own and own:
        sets = [_ruleset(lake, pipeline, name) for name in own]
    else:
        sets = [_ruleset(lake, pipeline, table)]
    data: list[dict[str, Any]] = [
        {"ruleset": rs.name, "builtin": rs in own.values(),
         "rules": [{"name": r.label, "kind": r.kind, "column": r.column, "params": r.params,
                    "mostly": r.mostly} for r in rs.rules]} for rs in sets]
    if as_json:
        emit_json(data if len(data) > 1 else data[0])
        return
    for d in data:
        rows = [(r["name"], r["kind"], r["column"] or "",
                 orjson.dumps(r["params"]).decode() if r["params"] else "", r["mostly"]) for r in d["rules"]]
        emit_table(["rule", "kind", "column", "params", "mostly"], rows,
                   f"ruleset {d['ruleset']} ({'the pipeline' if d['builtin'] else 'lakeline.toml'})")
