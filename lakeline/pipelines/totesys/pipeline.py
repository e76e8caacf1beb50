"""The ``totesys`` pipeline object: extraction lands packets in raw; ``run`` builds the star."""

from __future__ import annotations

from typing import Any

import click

from lakeline.config import Settings
from lakeline.lake import Lake
from lakeline.pipelines.base import Generator, GenOptions, Pipeline, Report
from lakeline.pipelines.totesys.cli import extract, load
from lakeline.pipelines.totesys.params import in_use
from lakeline.pipelines.totesys.settings import TotesysSettings, totesys_settings
from lakeline.pipelines.totesys.source import mask
from lakeline.tables.schema import TableSpec

#: the gold tables of the star schema (specs §2).
GOLD_TABLES = ("fact_sales_order", "fact_purchase_order", "fact_payment", "dim_date", "dim_staff",
               "dim_location", "dim_currency", "dim_design", "dim_counterparty", "dim_payment_type",
               "dim_transaction")


def _generate(target: str, o: GenOptions) -> str:
    from lakeline.pipelines.totesys import gen  # heavy: SQLAlchemy

    if o.mutate:
        result = gen.mutate(o.db, seed=o.seed)
        changed = ", ".join(f"{t} {n}" for t, n in result["changed"].items() if n)
        return f"mutated {mask(o.db)} at {result['round_start']}: {changed}"
    counts = gen.create(o.db, scale=o.scale, seed=o.seed)
    return f"created {mask(o.db)}: " + ", ".join(f"{t} {n}" for t, n in counts.items())


class TotesysPipeline(Pipeline):
    """An OLTP database extracted incrementally into a star schema (seed 001)."""

    name = "totesys"
    description = "Incremental OLTP extraction into a gold star schema (seed 001)"
    settings_class = TotesysSettings

    @property
    def landing_prefix(self) -> str | None:
        return None  # `lakeline extract` writes packets to the raw zone; nothing lands

    def settings(self, settings: Settings) -> Any:
        return totesys_settings(settings)

    def tables(self, settings: Settings) -> list[TableSpec]:
        return [TableSpec(f"gold.{t}", layout="parquet", zone="gold", description="totesys star schema")
                for t in GOLD_TABLES]

    def run(self, lake: Lake) -> list[Report]:
        if not in_use(lake.params):
            return []
        from lakeline.pipelines.totesys.star import process_pending  # heavy: SQLAlchemy, DuckDB

        r = process_pending(lake)  # raw packets landed by `lakeline extract`
        if r is None:
            return []
        summary = (f"totesys: {r['packets']} packets, {r['rows_read']} rows into the star schema "
                   f"(facts {r['facts']}, dimensions rebuilt {sorted(r['dimensions'])})")
        return [Report(self.name, "SUCCEEDED", summary, r)]

    def status(self, lake: Lake) -> dict[str, Any]:
        if not in_use(lake.params):
            return {}
        from lakeline.pipelines.totesys.extract import missing_packets  # heavy: SQLAlchemy

        missing = missing_packets(lake)
        return {"missing_packets": missing,
                "notes": [f"warning: totesys {t}: packet ids missing from the raw zone: {ids}"
                          for t, ids in missing.items()]}

    def commands(self) -> list[click.Command]:

        return [extract, load]

    def generator(self) -> Generator | None:
        return Generator(("totesys",), _generate,
                         "totesys: create and fill a totesys OLTP database (--db, --scale), or --mutate it")


TOTESYS = TotesysPipeline()
