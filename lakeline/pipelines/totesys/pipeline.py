"""The ``totesys`` pipeline object: extraction lands packets in raw; ``run`` builds the star."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lakeline import log
from lakeline.config import Settings
from lakeline.errors import LockedError
from lakeline.lake import Lake
from lakeline.pipelines.base import Generator, GenOptions, JobFunction, Pipeline, Report, Schedule, Trigger
from lakeline.pipelines.totesys.params import in_use
from lakeline.pipelines.totesys.settings import TotesysSettings, totesys_settings
from lakeline.tables.schema import TableSpec

if TYPE_CHECKING:
    import click

_log = log.get("totesys.schedule")

#: the gold tables of the star schema (specs §2).
GOLD_TABLES = ("fact_sales_order", "fact_purchase_order", "fact_payment", "dim_date", "dim_staff",
               "dim_location", "dim_currency", "dim_design", "dim_counterparty", "dim_payment_type",
               "dim_transaction")


def _generate(target: str, o: GenOptions) -> str:
    from lakeline.pipelines.totesys import gen  # heavy: SQLAlchemy
    from lakeline.pipelines.totesys.source import mask  # heavy: SQLAlchemy

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

    def triggers(self, settings: Settings) -> list[Trigger]:
        """On AWS each packet `extract` stores in the raw zone starts the star-schema
        processing (the job function's :meth:`run`)."""
        return [Trigger(f"{self.name}/", zone="raw")]

    def job_function(self) -> JobFunction:
        """Extraction and the star schema: the source read, packets in ``raw``, the star in
        ``gold``; the watermarks and packet ids are parameters it writes; SQLAlchemy and psycopg
        read the source (a container image: the zip package has neither)."""
        return JobFunction(memory=2048, timeout=900, s3_read=("raw",),
                           s3_write=("raw", "gold", "error", "tmp"), params_write=True,
                           requirements=("sqlalchemy>=2.0,<3", "psycopg[binary]>=3.1,<4"))

    def schedules(self, settings: Settings) -> list[Schedule]:
        """``pipelines.totesys.schedule``, once a source is configured (without one every tick
        would fail and, after a few, alert the administrators)."""
        cfg = totesys_settings(settings)
        if not cfg.schedule or not cfg.has_source:
            return []
        return [Schedule(self.name, cfg.schedule, self.scheduled_extraction)]

    def scheduled_extraction(self, lake: Lake) -> list[Report]:
        """One tick of the schedule: an incremental extraction, then the star schema of what it
        landed. A tick while another extraction holds the lease is SKIPPED (that extraction
        covers it): one extraction at a time."""
        try:
            from lakeline.pipelines.totesys.extract import extract as run_extraction  # heavy: SQLAlchemy

            report = run_extraction(lake)
        except LockedError as exc:
            _log.warning("totesys scheduled extraction skipped: another extraction is running",
                         extra={"pipeline": self.name, "data": {"reason": str(exc)}})
            return [Report(self.name, "SKIPPED", f"totesys scheduled extraction skipped: {exc}",
                           {"step": "extract"})]
        data = report.to_dict()
        if report.status != "SUCCEEDED":
            return [Report(self.name, "FAILED", f"totesys scheduled extraction failed: {report.error} "
                           "(lakeline runs --pipeline totesys shows the runs)", data)]
        _log.info("totesys scheduled extraction", extra={
            "run_id": report.run_id, "pipeline": self.name,
            "data": {"rows": report.rows, "packets": report.packets}})
        done = Report(self.name, "SUCCEEDED",
                      f"totesys scheduled extraction: {report.rows} rows in {report.packets} packets", data)
        return [done, *self.run(lake)]

    def status(self, lake: Lake) -> dict[str, Any]:
        if not in_use(lake.params):
            return {}
        # heavy: SQLAlchemy (the zip Lambda package has none: loaded when the work runs)
        from lakeline.pipelines.totesys.extract import missing_packets, recovered_packets, recovery_since

        lost = missing_packets(lake)
        recovered = recovered_packets(lake, lost)
        missing = {t: left for t, ids in lost.items()
                   if (left := [i for i in ids if i not in recovered.get(t, [])])}
        return {"missing_packets": missing, "recovered_packets": recovered,
                "notes": [f"warning: totesys {t}: packet ids missing from the raw zone: {ids}; re-read them "
                          f"with: lakeline extract --pipeline totesys --table {t} "
                          f"--since {recovery_since(lake, t, ids[0])}"
                          for t, ids in missing.items()]}

    def commands(self) -> list[click.Command]:
        # the CLI's click is not in the Lambda package: the commands load only when asked for
        from lakeline.pipelines.totesys.cli import extract, load  # heavy: click

        return [extract, load]

    def generator(self) -> Generator | None:
        return Generator(("totesys",), _generate,
                         "totesys: create and fill a totesys OLTP database (--db, --scale), or --mutate it")


TOTESYS = TotesysPipeline()
