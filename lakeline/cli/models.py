"""``lakeline models``: SQL files under HOME/models materialised as gold tables."""

from __future__ import annotations

import sys

import click

from lakeline.cli.context import open_lake, pipelines
from lakeline.console import emit_json, emit_table
from lakeline.errors import UsageError
from lakeline.lake import Lake
from lakeline.tables.schema import TableSpec


def _lake_and_tables() -> tuple[Lake, list[TableSpec]]:
    lake = open_lake()
    return lake, [t for _, t in pipelines(lake).tables()]


@click.group()
def models() -> None:
    """SQL models: HOME/models/NAME.sql holds one SELECT, materialised as the table gold.NAME.

    \b
    HOME/models/daily_counts.sql:
      -- shipments per day and carrier
      WITH s AS (SELECT * FROM silver.shipments WHERE weight_kg > 0)
      SELECT dt, carrier, count(*) AS n FROM s GROUP BY ALL

    \b
    lakeline models validate         check every file (exit 2 when one is bad)
    lakeline models run              materialise the models whose inputs changed
    lakeline models run daily_counts materialise this one now
    lakeline models list             last status, rows and time of each model
    lakeline sql "SELECT * FROM gold.daily_counts ORDER BY dt"

    \b
    A model is one query (SELECT, WITH … SELECT, UNION) in DuckDB's SQL. It names
    tables with their schema: silver.x, gold.y, quarantine.rejects, or an Iceberg
    namespace.table (`lakeline tables` lists them). A model may read another model's
    gold table; it runs after it. The file name is the table name: lower-case
    letters, digits and _ (no __), and no table a pipeline writes.
    A run writes the whole result to one file, gold/NAME/data.parquet, replaced at
    once: readers see the old table or the new one. A model that fails keeps its
    previous table; the models reading it are skipped.
    """


@models.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def list_cmd(as_json: bool) -> None:
    """Every model with its inputs, last status, rows and time.

    Status NEW: never materialised; SUCCEEDED or FAILED: how its last run went (a failure is in
    the error column, and the table keeps its previous data); INVALID: the file has a problem,
    shown in the error column (see `lakeline models validate`).
    """
    from lakeline.models import model_status  # heavy: sqlglot parses the model files

    lake, tables = _lake_and_tables()
    rows = model_status(lake, tables)
    if as_json:
        emit_json(rows)
        return
    emit_table(["model", "inputs", "status", "rows", "materialised_at", "error"],
               [(r["name"], ", ".join(r["inputs"]), r["status"], r["rows"], r["materialised_at"], r["error"])
                for r in rows], title="models")


@models.command("run")
@click.argument("name", required=False)
@click.option("--force", is_flag=True, help="Materialise every model, changed or not.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@click.option("--engine", type=click.Choice(["duckdb", "athena"]), default="duckdb", show_default=True,
              help="duckdb computes here; athena runs each model's query (translated) as a CTAS on "
                   "Athena over the lake's Glue tables (--profile aws), then writes gold/NAME as "
                   "duckdb does.")
def run_cmd(name: str | None, force: bool, as_json: bool, engine: str) -> None:
    """Materialise models into gold, in dependency order.

    \b
    Without NAME: every model that is due (never ran, its SQL or an input
    changed, its last run failed, or a model it reads was just materialised);
    the others are reported as skipped (up to date).
    With NAME: that model alone, now.

    Exit code 1 when a model failed (its table keeps the previous data), 2 when a model
    file is bad (nothing runs then: see `lakeline models validate`).
    """
    from lakeline.models import run_models  # heavy: sqlglot parses the model files

    lake, tables = _lake_and_tables()
    writer = None
    if engine == "athena":
        from lakeline.adapters.aws.session import clients  # heavy: boto3
        from lakeline.aws.models import athena_writer

        if lake.is_local:
            raise UsageError("--engine athena runs the models on AWS: add --profile aws")
        aws = lake.settings.aws
        writer = athena_writer(clients(aws), database=aws.database(lake.settings.lake.name),
                               workgroup=aws.workgroup(lake.settings.lake.name))
    results = run_models(lake, tables, only=name, force=force, writer=writer)
    if as_json:
        emit_json([r.to_dict() for r in results])
    else:
        for r in results:
            click.echo(r.summary())
        if not results:
            click.echo(f"no models: write one SELECT per file in {lake.settings.home / 'models'}/NAME.sql")
    if any(r.status == "FAILED" for r in results):
        sys.exit(1)


@models.command("validate")
@click.option("--json", "as_json", is_flag=True, help="Print the models and problems as JSON.")
def validate_cmd(as_json: bool) -> None:
    """Check every model file against the lake's tables; run nothing.

    Reports each problem as FILE:LINE:COLUMN: what is wrong and what is allowed (a file that
    does not parse, more than one statement, not a query, a bad name, a table that does not
    exist, a cycle between models, a name a pipeline's table has). Exit code 2 when any.
    """
    from lakeline.models import check_models  # heavy: sqlglot parses the model files

    lake, tables = _lake_and_tables()
    checked = check_models(lake, tables)
    if as_json:
        emit_json({"valid": not checked.problems, "order": checked.order,
                   "models": [{"name": m.name, "file": str(m.path), "inputs": list(m.inputs)}
                              for m in checked.models if m.name not in checked.problems],
                   "problems": [{"name": n, "error": checked.problems[n]} for n in sorted(checked.problems)]})
    elif not checked.problems:
        for m in checked.models:
            click.echo(f"model {m.name}: reads {', '.join(m.inputs) or 'no table'}")
        click.echo(f"{len(checked.models)} model(s) valid; run order: {', '.join(checked.order) or '-'}")
    checked.raise_problems()
