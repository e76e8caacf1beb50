"""``lakeline run-summary`` and ``promote``: the promotion gate and publishing a batch run.

Both take the run folders of a pipeline's table (``--table``) or of any silver prefix laid out
as seed 000 describes (``--prefix``: ``<prefix>/year=YYYY/month=MM/schema_v=<v>/run_id=<id>/``
with ``_SUCCESS``), e.g. runs a Glue or Spark job wrote. Failures are raised as lakeline
errors carrying a code (``RUN_NOT_FOUND``, ``NO_COMPLETED_RUN``, …), which ``main()`` prints
as ``error: …`` or, under ``--json``, as ``{"status": "error", "code", "reason"}``.
"""

from __future__ import annotations

import re
import sys
from datetime import datetime

import click

from lakeline.cli import context
from lakeline.console import emit_json, emit_kv
from lakeline.errors import UsageError
from lakeline.lake import Lake
from lakeline.promotion.gate import read_run_summary
from lakeline.status import promote_run, promoted_tables, promotion_summary

_VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
#: path segments that belong below a table prefix, never in it
_LAYOUT_SEGMENT = re.compile(r"(year|month|schema_v|run_id)=.*|current|_LATEST\.json|_SUCCESS")


def _batch_table(lake: Lake, table: str | None) -> str:
    """The silver prefix of a promoted (run folder) table (``None``: the only one there is)."""
    promoted = promoted_tables(context.pipelines(lake))
    if table is None and len(promoted) == 1:
        return next(iter(promoted.values()))
    if table is None:
        raise UsageError("name the table with --table (or a silver prefix with --prefix); tables of "
                         f"promoted runs: {', '.join(sorted(promoted))}")
    if table not in promoted:
        raise UsageError(f"{table!r} is not a table of promoted runs; such tables: "
                         f"{', '.join(sorted(promoted))} (runs elsewhere in silver: --prefix PREFIX)")
    return promoted[table]


def _check_prefix(prefix: str) -> str:
    """``--prefix`` as a silver key prefix (the level above ``year=``), or :class:`UsageError`."""
    clean = prefix.strip().strip("/")
    if not clean:
        raise UsageError("--prefix must name a key prefix in the silver zone, "
                         "e.g. silver/mortgages/transactions")
    if "://" in clean:
        raise UsageError(f"--prefix {prefix!r} is a key prefix in the silver zone, not a URI "
                         "(the bucket is the lake's silver zone)")
    for part in clean.split("/"):
        if part in ("", ".", ".."):
            raise UsageError(f"--prefix {prefix!r} has an empty, '.' or '..' path segment")
        if _LAYOUT_SEGMENT.fullmatch(part):
            raise UsageError(f"--prefix {prefix!r} goes below the table: give the prefix above "
                             f"year=YYYY/month=MM/schema_v=<v>/run_id=<id> (segment {part!r})")
    return clean


def _silver_prefix(lake: Lake, table: str | None, prefix: str | None) -> str:
    if table is not None and prefix is not None:
        raise UsageError("give --table or --prefix, not both")
    return _check_prefix(prefix) if prefix is not None else _batch_table(lake, table)


def _check_version(version: str) -> str:
    if not _VERSION.fullmatch(version):
        raise UsageError(f"--schema-version {version!r} is not a schema version (like v1): letters, digits, "
                         "'_', '.', '-'")
    return version


_TABLE_HELP = "A table of promoted runs (default: the only one, silver.transactions)."
_PREFIX_HELP = ("Runs under this silver key prefix instead of a pipeline table (e.g. runs Glue wrote at "
                "silver/mortgages/transactions/year=…/month=…/schema_v=v1/run_id=…/).")
_VERSION_HELP = "The schema_v=<v> folders to read."


@click.command("run-summary")
@click.option("--table", help=_TABLE_HELP)
@click.option("--prefix", help=_PREFIX_HELP)
@click.option("--schema-version", default="v1", show_default=True, help=_VERSION_HELP)
@click.option("--run-key", help="A run id (default: the latest complete run).")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def run_summary(table: str | None, prefix: str | None, schema_version: str, run_key: str | None,
                as_json: bool) -> None:
    """The promotion gate: a run's quality figures and whether it may be promoted.

    Promotion is allowed when the quarantine rate is below 5 %, fewer than 100 rows are
    condemned and no critical error (SCHEMA_ERROR) occurred. A run with an empty _SUCCESS
    (written by Glue or Spark) is allowed when its Parquet files hold at least one row; its
    quarantine figures are unknown (null, metrics_source "files"). Exit 1 when refused.
    """
    lake = context.open_lake()
    silver = _silver_prefix(lake, table, prefix)
    summary = read_run_summary(lake, silver, run_key, schema_version=_check_version(schema_version))
    if as_json:
        emit_json(summary)
    else:
        emit_kv(summary, f"run summary of {table or prefix or 'the promoted table'}")
    if not summary["promotion_allowed"]:
        sys.exit(1)


@click.command()
@click.option("--table", help=_TABLE_HELP)
@click.option("--prefix", help=_PREFIX_HELP)
@click.option("--schema-version", default="v1", show_default=True, help=_VERSION_HELP)
@click.option("--run-key", help="Promote exactly this run (default: the newest complete run).")
@click.option("--glue-job-run-id", help="Recorded in _LATEST.json (traceability, specs §1).")
@click.option("--execution-arn", help="Recorded in _LATEST.json (traceability, specs §1).")
@click.option("--execution-start-time", help="ISO-8601; recorded in _LATEST.json.")
@click.option("--force", is_flag=True, help="Promote even when the gate says no.")
@click.option("--json", "as_json", is_flag=True, help="Print the specs §1 result as JSON.")
def promote(table: str | None, prefix: str | None, schema_version: str, run_key: str | None,
            glue_job_run_id: str | None, execution_arn: str | None, execution_start_time: str | None,
            force: bool, as_json: bool) -> None:
    """Publish a complete run to current/ and _LATEST.json (readers switch atomically).

    The gate (`lakeline run-summary`) is checked first, on the run that would be promoted;
    exit 1 when it refuses or when promotion reports an error status.
    """
    lake = context.open_lake()
    silver = _silver_prefix(lake, table, prefix)
    version = _check_version(schema_version)
    if execution_start_time is not None:
        try:
            datetime.fromisoformat(execution_start_time)
        except ValueError:
            raise UsageError(f"--execution-start-time {execution_start_time!r} is not an ISO-8601 time "
                             "(like 2026-01-29T12:00:00.000Z)") from None
    trace = {"glue_job_run_id": glue_job_run_id, "execution_arn": execution_arn,
             "execution_start_time": execution_start_time}
    result = promote_run(lake, silver, run_key, schema_version=version, force=force, trace=trace)
    if as_json:
        emit_json(result)
    elif result.get("status") == "success":
        click.echo(promotion_summary(result))
        for p in result.get("partitions", []):
            click.echo(f"  {p.get('current_prefix')}: {p.get('action')}")
    else:
        click.echo(f"error: {result.get('reason')}", err=True)
    if result.get("status") != "success":
        sys.exit(1)
