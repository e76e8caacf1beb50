"""The ``transactions`` reference pipeline (seed 000): landed CSV files validated as one run into
``silver.transactions``, with the promotion gate and promotion into ``current/``.

- :mod:`~lakeline.pipelines.transactions.job` — validate, enrich, write a run;
- :mod:`~lakeline.pipelines.transactions.validate` — the DuckDB validation pass and its reasons;
- :mod:`~lakeline.pipelines.transactions.gen` — fake transactions CSV;
- ``etl_promote.asl.json`` — ETL → gate → promote as a state machine.

Run folders, ``_SUCCESS``, the gate and promotion are generic (:mod:`lakeline.promotion`).
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import orjson

from lakeline.config import Settings
from lakeline.errors import UsageError
from lakeline.lake import Lake
from lakeline.pipelines.base import Generator, GenOptions, Pipeline, Report, TaskSpec, Trigger
from lakeline.pipelines.transactions import gen
from lakeline.pipelines.transactions.job import (
    PIPELINE,
    SCHEMA_VERSION,
    TABLE,
    execute_run,
    pending_files,
    screen_files,
)
from lakeline.promotion.gate import read_run_summary
from lakeline.promotion.promote import promote
from lakeline.tables.schema import Field, TableSpec

#: the columns of a run's Parquet files (:func:`~lakeline.pipelines.transactions.validate.enriched_sql`)
FIELDS = (
    Field("TransactionID"), Field("CustomerID"), Field("TransactionAmount", "decimal(18,2)"),
    Field("Currency"), Field("TransactionTimestamp", "timestamp"), Field("row_hash"),
    Field("source_file_id"), Field("ingestion_timestamp", "timestamp"),
)


def _summary(r: dict[str, Any]) -> str:
    return (f"batch run {r['run_id']} of {r['table']}: {r['input_rows']} rows, {r['valid_rows']} valid, "
            f"{r['quarantined_rows']} quarantined, {r['condemned_rows']} condemned ({r['run_status']})")


def _quarantined(pipeline: str, q: dict[str, Any]) -> Report:
    """The FAILED report of a file quarantined because it cannot be read."""
    return Report(pipeline, "FAILED", f"{q['error']} ({q['reason']}): moved to error/{q['error_key']}",
                  dict(q, command=f"lakeline runs --pipeline {pipeline}"))


def _generate(target: str, o: GenOptions) -> str:
    if o.out is None or o.count is None:
        raise UsageError("--out and --count are required")
    n = gen.write(o.count, Path(o.out), seed=o.seed, dirty_rate=o.dirty_rate, first_id=o.first_id)
    return f"wrote {n} transactions records to {o.out}"


class TransactionsPipeline(Pipeline):
    """Batch runs over landed transactions CSV files (seed 000)."""

    name = PIPELINE
    description = "Mortgage transactions CSV validated as runs, gated and promoted (seed 000)"

    def tables(self, settings: Settings) -> list[TableSpec]:
        return [TableSpec("silver.transactions", layout="runs", location=TABLE, fields=FIELDS,
                          description="promoted runs of the transactions pipeline")]

    def pending(self, lake: Lake) -> list[str]:
        return pending_files(lake, self.landing_prefix or "", table=TABLE)

    def run(self, lake: Lake) -> list[Report]:
        """One run over the pending files; each file that cannot be read at all is quarantined
        and comes back as its own FAILED report (the run goes on with the others)."""
        files = self.pending(lake)
        if not files:
            return []
        texts, bad = screen_files(lake, files)
        reports = [_quarantined(self.name, q) for q in bad]
        if texts:
            r = execute_run(lake, list(texts), table=TABLE, texts=texts).to_dict()
            r["run_status"] = r.pop("status")  # the run folder's status: COMPLETE
            reports.insert(0, Report(self.name, "SUCCEEDED", _summary(r), r))
        return reports

    def tasks(self) -> list[TaskSpec]:
        return [
            TaskSpec("lakeline-run-batch",
                     "Workflow task: validate the transactions landed since the last run",
                     _run_batch, timeout=900, memory=2048, s3_read=("landing",),
                     s3_write=("silver", "error", "tmp")),
            TaskSpec("lakeline-run-summary", "Workflow task: the promotion gate's run summary", _run_summary,
                     timeout=60, s3_read=("silver",), state_write=False),
            TaskSpec("lakeline-promote", "Workflow task: promote a finished silver run",
                     lambda lake, p: promote(lake, p), timeout=300, memory=1024, s3_write=("silver", "gold")),
        ]

    def workflows(self) -> Mapping[str, dict[str, Any]]:
        text = (resources.files(__name__) / "etl_promote.asl.json").read_text("utf-8")
        return {"etl_promote": orjson.loads(text)}

    def triggers(self, settings: Settings) -> list[Trigger]:
        """On AWS landed transactions files start ``etl_promote`` (seed 000: run, gate, promote)
        for the table, one execution at a time (serial): the run takes every file landed since
        the last one, so files landed together are one run and no execution finds nothing."""
        return [Trigger(f"{self.name}/", workflow="etl_promote", serial=True,
                        input={"silver_prefix": TABLE, "schema_version": SCHEMA_VERSION})]

    def generator(self) -> Generator | None:
        return Generator(("transactions",), _generate,
                         "transactions: mortgage-transactions CSV (TransactionID, CustomerID, "
                         "TransactionAmount, Currency, TransactionTimestamp); --dirty-rate adds defects "
                         "of every reject reason; --first-id starts the ids")


def _schema_version(payload: dict[str, Any]) -> str:
    version = payload.get("schema_version") or SCHEMA_VERSION
    if not isinstance(version, str) or "/" in version:
        raise UsageError(f"schema_version must be a name like v1, got {version!r}")
    return version


def _run_batch(lake: Lake, payload: dict[str, Any]) -> dict[str, Any]:
    table = str(payload.get("table", TABLE))
    version = _schema_version(payload)
    files = pending_files(lake, f"{PIPELINE}/", table=table, schema_version=version)
    texts, bad = screen_files(lake, files)
    if not texts:
        why = f" ({len(bad)} unreadable file(s) moved to error/objects/)" if bad else ""
        raise UsageError(f"no transactions files landed since the last run of {table}{why}")
    out = execute_run(lake, list(texts), table=table, schema_version=version, texts=texts).to_dict()
    out["quarantined_files"] = bad
    return out


def _run_summary(lake: Lake, payload: dict[str, Any]) -> dict[str, Any]:
    return read_run_summary(lake, str(payload.get("silver_prefix", TABLE)), payload.get("run_key"),
                            schema_version=_schema_version(payload))


TRANSACTIONS = TransactionsPipeline()
