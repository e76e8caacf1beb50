"""``lakeline pipeline``: make a pipeline from a sample file, list, show and validate pipelines."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from lakeline.cli.context import open_lake, settings
from lakeline.console import emit_json, emit_kv, emit_table
from lakeline.errors import ConfigError, LakelineError, UsageError
from lakeline.pipelines.base import Pipeline, check_name
from lakeline.pipelines.declared import load_file
from lakeline.pipelines.infer import new_pipeline
from lakeline.pipelines.registry import PIPELINES_DIR, load, pipeline_files, registry
from lakeline.pipelines.stream import StreamPipeline
from lakeline.stages.evolution import history


@click.group("pipeline")
def pipeline_group() -> None:
    """Pipelines: the reference ones, yours in HOME/pipelines/*.toml, installed ones.

    \b
    Make one from a sample, load a file, query it:
      lakeline pipeline new orders --sample orders.csv --key order_id
      lakeline put orders.csv --pipeline orders
      lakeline run
      lakeline sql "SELECT count(*) FROM silver.orders"
    \b
      lakeline pipeline list
      lakeline pipeline show orders
      lakeline pipeline validate
    """


@pipeline_group.command("new")
@click.argument("name")
@click.option("--sample", "sample", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="A file like the ones the pipeline will load (CSV, JSON lines, JSON array, Parquet).")
@click.option("--format", "fmt", type=click.Choice(["csv", "jsonl", "json", "parquet"]),
              help="The sample's format (default: from its name).")
@click.option("--time-field", help="The timestamp or date field whose day partitions the table "
                                   "(default: the first timestamp column, else the first date column).")
@click.option("--key", "keys", multiple=True,
              help="A field unique within a load (repeat for a compound key).")
@click.option("--force", is_flag=True, help="Replace an existing pipeline file of that name.")
@click.option("--json", "as_json", is_flag=True, help="Print {path, text} as JSON.")
def new_cmd(name: str, sample: Path, fmt: str | None, time_field: str | None, keys: tuple[str, ...],
            force: bool, as_json: bool) -> None:
    """Write HOME/pipelines/NAME.toml inferred from a sample (DuckDB's sniffer) and print it.

    Every setting is commented; edit the file, then `lakeline pipeline validate NAME`. The
    table is silver.NAME. Nothing is written when the sample cannot be read or NAME is taken.
    """
    s = settings()
    check_name(name, "pipeline NAME")
    path = s.home / PIPELINES_DIR / f"{name}.toml"
    reg = load(s)
    if name in reg and not (force and path.exists()):
        where = reg.get(name).origin
        raise UsageError(f"a pipeline named {name!r} exists already ({where}); choose another name"
                         + ("" if not path.exists() else " or pass --force to replace the file"))
    taken = {t.name: p.name for p, t in reg.tables() if p.name != name}
    if f"silver.{name}" in taken:
        raise UsageError(f"the table silver.{name} is written by pipeline {taken[f'silver.{name}']!r}; "
                         "choose another name")
    text = new_pipeline(name, sample, fmt=fmt, time_field=time_field, keys=keys)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, "utf-8")
    if as_json:
        emit_json({"path": str(path), "text": text})
        return
    click.echo(text, nl=False)
    click.echo(f"wrote {path}; next: lakeline put {sample} --pipeline {name} && lakeline run", err=True)


def _summary(p: Pipeline, s: Any) -> dict[str, Any]:
    d = p.describe(s)
    return {"name": p.name, "kind": d["kind"], "format": d.get("format", ""), "origin": p.origin,
            "landing_prefix": p.landing_prefix, "tables": [t["name"] for t in d["tables"]],
            "description": p.description}


@pipeline_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def list_cmd(as_json: bool) -> None:
    """Every pipeline: name, kind (stream or job), format, tables and where it comes from."""
    s = settings()
    reg = registry(s)
    rows = [_summary(reg.get(n), s) for n in reg.names()]
    if as_json:
        emit_json(rows)
        return
    emit_table(["pipeline", "kind", "format", "tables", "from", "what it does"],
               [(r["name"], r["kind"], r["format"], ", ".join(r["tables"]), r["origin"], r["description"])
                for r in rows])


@pipeline_group.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def show_cmd(name: str, as_json: bool) -> None:
    """A pipeline's settings, tables and fields (with the fields schema evolution added and
    when), tasks, schedules and generator."""
    lake = open_lake()
    p = registry(lake.settings).get(name)
    data = p.describe_lake(lake) if isinstance(p, StreamPipeline) else p.describe(lake.settings)
    if isinstance(p, StreamPipeline):
        for t in data["tables"]:
            t["history"] = history(lake, p.name, t["name"].split(".", 1)[1])
    if as_json:
        emit_json(data)
        return
    emit_kv({k: v for k, v in data.items() if k not in ("tables", "csv")}, f"pipeline {name}")
    if data.get("csv"):
        emit_kv(data["csv"], "csv")
    for t in data["tables"]:
        rows = [(f["name"], f["type"], "yes" if f["required"] else "", "", "") for f in t["fields"]]
        added = {a["name"]: v for v in t.get("history", []) for a in [{"name": n} for n in v["added"]]}
        rows += [(a["name"], a["type"], "", "added", f"by {added[a['name']]['source']}" if a["name"] in added
                  else "") for a in t.get("added", [])]
        key = f", key {', '.join(t['key'])}" if t.get("key") else ""
        title = f"{t['name']} ({t['layout']}{key})"
        emit_table(["field", "type", "required", "evolution", "source"], rows, title)


@pipeline_group.command("validate")
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print {valid, problems} as JSON.")
def validate_cmd(name: str | None, as_json: bool) -> None:
    """Check pipeline files (all, or NAME) and the registry as a whole: every problem with its
    file, key or line, and what is allowed. Exit 2 when there is one."""
    s = settings()
    files = pipeline_files(s.home)
    if name is not None:
        files = [f for f in files if f.stem == name]
        if not files and name not in load(s):
            raise UsageError(f"no pipeline {name!r} (no {s.home / PIPELINES_DIR / (name + '.toml')})")
    problems = []
    for path in files:
        try:
            load_file(path)
        except ConfigError as exc:
            problems.append(str(exc))
    if not problems:
        try:
            registry(s)
        except LakelineError as exc:
            problems.append(str(exc))
    checked = [f.stem for f in files] or ([name] if name else [])
    if as_json:
        emit_json({"valid": not problems, "checked": checked, "problems": problems})
    elif not problems:
        click.echo(f"valid: {', '.join(checked) if checked else 'no pipeline files'}"
                   f" ({len(load(s).names())} pipelines in all)")
    for p in problems:
        click.echo(f"error: {p}", err=True)
    if problems:
        sys.exit(2)
