"""The ``retail`` pipeline object: its settings, landing, job, schedule and table."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from lakeline.config import Settings, check
from lakeline.errors import UsageError
from lakeline.lake import Lake
from lakeline.pipelines.base import (
    Failure,
    Generator,
    GenOptions,
    JobFunction,
    Pipeline,
    Report,
    RunEntry,
    Schedule,
)
from lakeline.pipelines.retail import gen, job, runlog
from lakeline.pipelines.retail.transform import ORDERS_SCHEMA
from lakeline.schedule import parse
from lakeline.tables.schema import Field, TableSpec


@dataclass(frozen=True)
class RetailSettings:
    """``[pipelines.retail]``: the fail-fast policy and the job's schedule under ``lakeline serve``.

    ``on_violation``: ``fail`` stops the batch on the first violation (the seed's behaviour);
    ``quarantine`` rejects the violating rows and loads the rest. ``schedule``: an
    EventBridge expression (``cron(15 1 * * ? *)``, ``rate(1 day)``); empty disables it.
    """

    #: `fail` stops the batch at the first violation (the seed's behaviour); `quarantine` rejects the
    #: violating rows and loads the rest
    on_violation: str = "fail"
    #: when `serve` runs the retail job: an EventBridge expression (`cron(15 1 * * ? *)`, `rate(1 day)`);
    #: empty: never
    schedule: str = "cron(15 1 * * ? *)"


_ARROW_TO_SILVER = {"int64": "int64", "int32": "int64", "date32[day]": "date", "double": "float64",
                    "string": "string"}


def _generate(target: str, o: GenOptions) -> str:
    if o.out is None:
        raise UsageError("--out (a directory) is required")
    paths = gen.write(Path(o.out), seed=o.seed, orders=8800 if o.count is None else o.count)
    return "; ".join(f"wrote {source} to {path}" for source, path in paths.items())


class RetailPipeline(Pipeline):
    """Orders, customers and products CSV files → the Iceberg table of seed 004."""

    name = "retail"
    description = "Orders enriched with customers and products into an Iceberg table (seed 004)"
    settings_class = RetailSettings

    def check_settings(self, values: Any, settings: Settings) -> None:
        check(values.on_violation in ("fail", "quarantine"), settings, self.name, "on_violation",
              f"must be fail or quarantine, got {values.on_violation!r}")
        if values.schedule:
            parse(values.schedule)

    def tables(self, settings: Settings) -> list[TableSpec]:
        fields = tuple(Field(f.name, _ARROW_TO_SILVER[str(f.type)]) for f in ORDERS_SCHEMA)
        return [TableSpec(job.TABLE, layout="iceberg", fields=fields, partition="order_date",
                          description="orders enriched with region and category, days(order_date)")]

    def landing_key(self, path: Path, key: str | None, today: str | None = None) -> str:
        if key is not None:
            final = key if key.startswith("retail/") else f"retail/{key}"
            runlog.source_of(final)  # validates retail/<source>/…
            return final
        source = next((s for s in runlog.SOURCES if path.name.startswith(s)), None)
        if source is None:
            raise UsageError(f"cannot tell the retail source of {path.name}; "
                             "name it orders*|customers*|products*")
        return runlog.landing_key(source, path.name, date.fromisoformat(today) if today else None)

    def land(self, lake: Lake, path: Path, key: str | None = None) -> dict[str, Any]:
        final = self.landing_key(path, key)
        landed = job.land_retail(lake, path, final)
        info = lake.store.head("landing", final)
        return {"key": final, "size": info.size, "etag": info.etag, "duplicate": landed is None}

    def on_landed(self, lake: Lake, key: str, etag: str, size: int) -> None:
        item = runlog.log_landing(lake.state, bucket=lake.store.bucket("landing"), key=key, etag=etag,
                                  size_bytes=size)
        if item is not None and runlog.source_of(key) == "orders":
            job.request_run(lake)

    def pending(self, lake: Lake) -> list[str]:
        return [str(b["key"]) for b in job.pending_batches(lake)]

    def run(self, lake: Lake) -> list[Report]:
        """The retail job over the pending orders files; each landed file that cannot be read at
        all comes back as its own FAILED report after the job's (it was moved to error/)."""
        if not job.pending_batches(lake):
            return []
        return self._run_job(lake)

    def _run_job(self, lake: Lake) -> list[Report]:
        policy = self.settings(lake.settings).on_violation
        result = job.run_retail(lake, on_violation="quarantine" if policy == "quarantine" else "fail")
        command = f"lakeline runs --pipeline {self.name}"
        bad = [Report(self.name, "FAILED", f"{q['error']} ({q['reason']}): moved to error/{q['error_key']}",
                      dict(q, command=command)) for q in result["quarantined"]]
        return [self._job_report(result), *bad]

    def _job_report(self, result: dict[str, Any]) -> Report:
        result["table"] = job.TABLE
        result["job_status"] = result.pop("status")  # COMPLETED, or SKIPPED_ACTIVE when a run holds the lease
        summary = (f"retail job: {len(result['batches'])} orders batch(es), {result['rows']} rows "
                   f"appended to {job.TABLE} ({result['job_status']})")
        if result["quarantined"]:
            summary += f"; {len(result['quarantined'])} unreadable file(s) moved to error/"
        if result["failed"]:
            failed = "; ".join(f"{f['key']} (batch {f['run_id']}): {f['error']}" for f in result["failed"])
            return Report(self.name, "FAILED",
                          f"{summary}; {len(result['failed'])} orders batch(es) FAILED and stay pending: "
                          f"{failed}; fix the cause, then `{job.RETRY_COMMAND}` loads them "
                          "(`lakeline runs --pipeline retail` lists every batch)", result)
        return Report(self.name, "SKIPPED" if result["job_status"] == "SKIPPED_ACTIVE" else "SUCCEEDED",
                      summary, result)

    def run_log(self, lake: Lake, limit: int) -> list[RunEntry]:
        """The seed's run-log items (one per landed file; ``detail`` is the item verbatim:
        ``pk``, ``sk``, ``run_id``, ``dedupe``…), newest first. An orders file is a ``batch``:
        SUCCEEDED once loaded, FAILED while its last attempt failed, else PENDING; a customers
        or products file is an ``object``, LANDED."""
        entries = []
        for r in job.run_log(lake, limit):
            item, batch, failure = r["item"], r["batch"], r["failure"]
            entry = RunEntry(self.name, "batch" if item.get("source") == "orders" else "object",
                             str(item["run_id"]), "LANDED", started_at=item.get("ingest_ts"),
                             key=item.get("key"), detail=item)
            if batch is not None:
                entry.status, entry.finished_at = "SUCCEEDED", batch.get("finished_at")
                entry.records, entry.loaded = batch.get("input_rows"), batch.get("rows")
                entry.rejected = batch.get("rejected")
            elif failure is not None:
                entry.status, entry.error = "FAILED", failure["error"]
                entry.finished_at = failure.get("failed_at") or failure.get("quarantined_at")
            elif entry.kind == "batch":
                entry.status = "PENDING"
            entries.append(entry)
        return entries

    def failures(self, lake: Lake) -> list[Failure]:
        """Orders files whose batch failed and is still pending (the next run retries it)."""
        return [Failure(self.name, str(f["key"]), f"batch {f['run_id']} failed {f['attempts']} time(s): "
                        f"{f['error']}", job.RETRY_COMMAND) for f in job.failures(lake)]

    def schedules(self, settings: Settings) -> list[Schedule]:
        expression = self.settings(settings).schedule
        return [Schedule("retail", expression, self._run_job)] if expression else []

    def job_function(self) -> JobFunction:
        """The retail job on AWS: Iceberg tables through pyiceberg's Glue catalog (a container
        image: the zip package has no pyiceberg), landing files read and moved to error/."""
        return JobFunction(memory=3008, timeout=900,
                           requirements=("pyiceberg[glue,pyarrow,pyiceberg-core]>=0.9,<1",))

    def generator(self) -> Generator | None:
        return Generator(("retail",), _generate,
                         "retail: orders (8,800 or --count), customers (500) and products (200) CSVs in "
                         "the seed's formats (quoted fields, dd/MM/yyyy, decimal commas) into the --out "
                         "directory")


RETAIL = RetailPipeline()
