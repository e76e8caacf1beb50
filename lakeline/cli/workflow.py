"""``lakeline workflow``: run Amazon States Language workflows on the local engine."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
import orjson

from lakeline.cli.context import open_lake, pipelines
from lakeline.console import emit_json, emit_table
from lakeline.errors import UsageError
from lakeline.lake import Lake
from lakeline.pipelines.tasks import definition, lake_tasks, workflows
from lakeline.workflow.engine import list_executions, redrive_execution, resolve_execution, run_definition
from lakeline.workflow.history import find_execution, summary
from lakeline.workflow.shipped import export


def _lake() -> Lake:
    return open_lake()


def _drive(lake: Lake) -> dict[str, Any]:
    """``lakeline-process`` of a workflow run from the CLI: the runner drives the queues."""
    from lakeline import runner  # heavy: the stages load DuckDB and Arrow

    return runner.process_queues(lake)

@click.group()
def workflow() -> None:
    """Run Step Functions state machines (ASL) locally; export them for AWS.

    \b
    lakeline workflow list
    lakeline workflow run etl_promote \
        --input '{"silver_bucket": "silver", "silver_prefix": "mortgages/transactions"}'
    lakeline workflow run --definition my.asl.json --input @input.json
    lakeline workflow history EXECUTION      (its ARN, name or a unique name prefix)
    lakeline workflow redrive EXECUTION      (restart a failed execution where it failed)
    lakeline workflow export carbon --out carbon.asl.json
    """


@workflow.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def list_cmd(as_json: bool) -> None:
    """Shipped workflows (lakeline's and every pipeline's) and recent executions."""
    lake = _lake()
    found = sorted(workflows(pipelines(lake)).items())
    shipped = [{"name": n, "comment": d.get("Comment", "")} for n, d in found]
    runs = [summary(e) for e in list_executions(lake.state, 20)]
    if as_json:
        emit_json({"workflows": shipped, "executions": runs})
        return
    emit_table(["workflow", "what it does"], [(w["name"], w["comment"]) for w in shipped], "workflows")
    if runs:
        rows = [(r["executionArn"], r["status"], r["startDate"]) for r in runs]
        emit_table(["execution", "status", "started"], rows, "recent executions")


@workflow.command("run")
@click.argument("name", required=False)
@click.option("--definition", "definition_file", type=click.Path(exists=True, dir_okay=False),
              help="An ASL file to run instead of a shipped workflow.")
@click.option("--input", "input_text", default="{}", show_default=True,
              help="Execution input: JSON text, or @FILE.")
@click.option("--execution-name", help="Execution name (default: a UUID).")
@click.option("--wait/--no-wait", default=True, show_default=True,
              help="Run to completion (the local engine always does; kept for Step Functions parity).")
@click.option("--json", "as_json", is_flag=True, help="Print the execution as JSON.")
def run_cmd(name: str | None, definition_file: str | None, input_text: str, execution_name: str | None,
            wait: bool, as_json: bool) -> None:
    """Run a shipped workflow NAME or --definition FILE; exit 1 unless it SUCCEEDED."""
    if bool(name) == bool(definition_file):
        raise UsageError("give a workflow NAME or --definition FILE (one of them)")
    lake = _lake()
    reg = pipelines(lake)
    defn = _read_definition(Path(definition_file)) if definition_file else definition(reg, str(name))
    raw = Path(input_text[1:]).read_text("utf-8") if input_text.startswith("@") else input_text
    try:
        payload = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise UsageError(f"--input is not JSON: {exc}") from None
    ex = run_definition(defn, payload, tasks=lake_tasks(lake, reg, drive=_drive), name=execution_name,
                        store=lake.state)
    _ended(ex, as_json)


def _read_definition(path: Path) -> dict[str, Any]:
    """The ASL state machine in ``path``; :class:`UsageError` naming the file unless it is a
    JSON object."""
    try:
        body = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise UsageError(f"--definition {path} is not JSON: {exc}") from None
    except OSError as exc:
        raise UsageError(f"--definition {path}: {exc.strerror}") from None
    if not isinstance(body, dict):
        raise UsageError(f"--definition {path} must be a JSON object (an ASL state machine), "
                         f"got a JSON {type(body).__name__}")
    return body


def _ended(ex: Any, as_json: bool) -> None:
    """Print an execution that ran to its end; exit 1 unless it SUCCEEDED."""
    if as_json:
        emit_json(summary(ex))
    else:
        click.echo(f"{ex.status}: {ex.execution_arn}")
        if ex.status == "SUCCEEDED":
            click.echo(orjson.dumps(ex.output, option=orjson.OPT_INDENT_2).decode())
        else:
            click.echo(f"error: {ex.error}: {ex.cause}", err=True)
    if ex.status != "SUCCEEDED":
        sys.exit(1)


@workflow.command("status")
@click.argument("execution")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def status_cmd(execution: str, as_json: bool) -> None:
    """Status of EXECUTION (its ARN, name or a unique name prefix), like DescribeExecution."""
    ex = find_execution(_lake().state, execution)
    data = summary(ex)
    emit_json(data) if as_json else emit_table(["field", "value"], list(data.items()))


@workflow.command("history")
@click.argument("execution")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def history_cmd(execution: str, as_json: bool) -> None:
    """The events of EXECUTION (ARN, name or unique name prefix), like GetExecutionHistory."""
    ex = find_execution(_lake().state, execution)
    if as_json:
        emit_json({"events": ex.history})
        return
    rows = [(e.get("id"), e.get("type"), e.get("timestamp")) for e in ex.history]
    emit_table(["id", "type", "timestamp"], rows)


@workflow.command("redrive")
@click.argument("execution")
@click.option("--json", "as_json", is_flag=True, help="Print the execution as JSON.")
def redrive_cmd(execution: str, as_json: bool) -> None:
    """Restart a FAILED, TIMED_OUT or ABORTED EXECUTION (ARN, name or unique name prefix) from
    the state that failed, like Step Functions' RedriveExecution: earlier states and the Map
    iterations that succeeded are not run again. Exit 1 unless it now SUCCEEDED; exit 2 when
    it cannot be redriven (running or succeeded)."""
    lake = _lake()
    arn = resolve_execution(lake.state, execution)
    ex = redrive_execution(lake.state, arn, tasks=lake_tasks(lake, pipelines(lake), drive=_drive))
    _ended(ex, as_json)


@workflow.command("export")
@click.argument("name")
@click.option("--sam", is_flag=True,
              help="Write the SAM form instead: {definition, substitutions}, each FunctionName a "
                   "${…Arn} DefinitionSubstitutions placeholder (what `deploy sam` puts in its template).")
@click.option("--out", type=click.Path(dir_okay=False), help="Write the definition here (default: stdout).")
def export_cmd(name: str, sam: bool, out: str | None) -> None:
    """The ASL definition of a shipped workflow NAME, exactly what Step Functions'
    CreateStateMachine (and asl-validator) takes; its Tasks invoke the deployed lakeline-*
    functions by name. ``--sam`` writes the SAM template form."""
    machine = definition(pipelines(_lake()), name)
    data = export(machine) if sam else machine
    text = orjson.dumps(data, option=orjson.OPT_INDENT_2).decode()
    if out:
        Path(out).write_text(text + "\n", "utf-8")
        click.echo(f"wrote {out}", err=True)
    else:
        click.echo(text)
