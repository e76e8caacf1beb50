"""A model's query as Athena (Trino) SQL, for materialising it on Athena (``lakeline models run
--engine athena --profile aws``).

The model is DuckDB SQL; sqlglot translates it (functions, types), and lakeline adds what the
translation cannot know:

- **table names** become the Glue names of the lake's database: ``silver.x`` → ``"<db>"."x"``,
  ``gold.y`` → ``"<db>"."gold_y"`` (what ``lakeline catalog sync`` registers), Iceberg
  ``namespace.table`` names stay;
- DuckDB's **GROUP BY ALL** (every selected expression that is not an aggregate) and **ORDER BY
  ALL** (every selected column) are spelled out by position: Trino has neither;
- the query is wrapped in a **CTAS** writing zstd Parquet to a fresh location, which lakeline
  then turns into ``gold/NAME/data.parquet`` exactly as the DuckDB engine writes it.
"""

from __future__ import annotations

import sqlglot
from sqlglot import exp

from lakeline.errors import UsageError
from lakeline.models.spec import Model


def _quoted(name: str) -> exp.Identifier:
    return exp.to_identifier(name, quoted=True)


def athena_query(model: Model, database: str) -> str:
    """``model``'s query in Athena SQL over the lake's Glue database ``database``."""
    try:
        tree = sqlglot.parse_one(model.query, read="duckdb")
    except sqlglot.errors.ParseError as exc:
        raise UsageError(f"model {model.name}: {exc}") from None
    if tree.find(exp.GenerateSeries) is not None:  # sqlglot's UNNEST(SEQUENCE(…)) loses the column alias
        raise UsageError(f"model {model.name} uses range()/generate_series(), which has no faithful Athena "
                         "translation: run it with --engine duckdb")
    ctes = {c.alias_or_name for c in tree.find_all(exp.CTE)}
    for table in tree.find_all(exp.Table):
        if table.name in ctes and not table.db:
            continue
        if table.db == "silver":
            table.set("db", _quoted(database))
            table.set("this", _quoted(table.name))
        elif table.db == "gold":
            table.set("db", _quoted(database))
            table.set("this", _quoted(f"gold_{table.name}"))
    for select in tree.find_all(exp.Select):
        _spell_out_all(select)
    return tree.sql(dialect="athena")


def _spell_out_all(select: exp.Select) -> None:
    """GROUP BY ALL / ORDER BY ALL (DuckDB) as positions (Trino)."""
    columns = select.expressions
    group = select.args.get("group")
    if isinstance(group, exp.Group) and group.args.get("all"):
        keys = [exp.Literal.number(i + 1) for i, e in enumerate(columns) if not e.find(exp.AggFunc)]
        select.set("group", exp.Group(expressions=keys) if keys else None)
    order = select.args.get("order")
    if isinstance(order, exp.Order) and [o.this for o in order.expressions] == [exp.Var(this="ALL")]:
        first = order.expressions[0]
        select.set("order", exp.Order(expressions=[
            exp.Ordered(this=exp.Literal.number(i + 1), desc=first.args.get("desc"),
                        nulls_first=first.args.get("nulls_first")) for i in range(len(columns))]))


def ctas(model: Model, database: str, table: str, location: str) -> str:
    """The CTAS statement materialising ``model`` as Parquet at ``location`` (a fresh prefix),
    registered as ``"<database>"."<table>"`` while lakeline collects it."""
    return (f'CREATE TABLE "{database}"."{table}" WITH (format = \'PARQUET\', write_compression = \'ZSTD\', '
            f"external_location = '{location}') AS\n{athena_query(model, database)}")


__all__ = ["athena_query", "ctas"]
