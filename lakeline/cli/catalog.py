"""``lakeline catalog``: the lake's tables in the AWS Glue catalog (what Athena queries)."""

from __future__ import annotations

import click

from lakeline.cli import context
from lakeline.console import emit_json, emit_table
from lakeline.errors import UsageError


@click.group()
def catalog() -> None:
    """The lake's tables in the Glue catalog, for Athena (`--profile aws`).

    \b
      lakeline catalog sync --profile aws     # register every table from its data
    """


@catalog.command("sync")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def sync(as_json: bool) -> None:
    """Register every table `deploy sam` cannot define up front in the lake's Glue database.

    The gold tables (carbon's emissions, the totesys star schema) and every SQL model's
    gold.NAME get their columns from the Parquet they hold (one footer, nested types too) and
    each Hive partition folder is registered, so Athena (`lakeline sql --engine athena`)
    queries them. Gold tables are named gold_<name>. On AWS it also runs by itself: a job
    function after each run, and the catalog function every hour. It creates or updates,
    never drops. Tables without data yet are listed as NO_DATA.
    """
    from lakeline.adapters.aws.session import clients  # heavy: boto3
    from lakeline.aws.catalog import lake_tables, sync_catalog

    lake = context.open_lake()
    if lake.is_local:
        raise UsageError("the Glue catalog is on AWS: add --profile aws")
    done = sync_catalog(lake, clients(lake.settings.aws), lake_tables(lake, context.pipelines(lake)))
    if as_json:
        emit_json({"database": lake.settings.aws.database(lake.settings.lake.name),
                   "tables": [d.to_dict() for d in done]})
        return
    emit_table(["table", "glue table", "status", "columns", "new partitions"],
               [[d.table, d.glue_table, d.status, d.columns, len(d.partitions)] for d in done])
