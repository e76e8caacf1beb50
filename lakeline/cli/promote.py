"""``lakeline run-summary`` and ``promote``: the promotion gate and publishing a batch run."""

from __future__ import annotations

import sys
from typing import Any

import click

from lakeline.cli import context
from lakeline.console import emit_json, emit_kv
from lakeline.errors import UsageError
from lakeline.lake import Lake
from lakeline.promotion.gate import read_run_summary
from lakeline.promotion.promote import promote as do_promote


def _batch_table(lake: Lake, table: str | None) -> str:
    """The silver prefix of a promoted (run folder) table (``None``: the only one there is)."""
    promoted = {t.name: t.prefix for _, t in context.pipelines(lake).tables() if t.layout == "runs"}
    if table is None and len(promoted) == 1:
        return next(iter(promoted.values()))
    if table is None:
        raise UsageError("name the table with --table; tables of promoted runs: "
                         f"{', '.join(sorted(promoted))}")
    if table not in promoted:
        raise UsageError(f"{table!r} is not a table of promoted runs; such tables: "
                         f"{', '.join(sorted(promoted))}")
    return promoted[table]


@click.command("run-summary")
@click.option("--table", help="A table of promoted runs (default: the only one, silver.transactions).")
@click.option("--run-key", help="A run id (default: the latest complete run).")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def run_summary(table: str | None, run_key: str | None, as_json: bool) -> None:
    """The promotion gate: a run's quality figures and whether it may be promoted.

    Promotion is allowed when the quarantine rate is below 5 %, fewer than 100 rows are
    condemned and no critical error (SCHEMA_ERROR) occurred.
    """
    lake = context.open_lake()
    summary = read_run_summary(lake, _batch_table(lake, table), run_key)
    if as_json:
        emit_json(summary)
    else:
        emit_kv(summary, f"run summary of {table or 'the promoted table'}")
    if not summary["promotion_allowed"]:
        sys.exit(1)


@click.command()
@click.option("--table", help="A table of promoted runs (default: the only one, silver.transactions).")
@click.option("--run-key", help="Promote exactly this run (default: the newest complete run).")
@click.option("--force", is_flag=True, help="Promote even when the gate says no.")
@click.option("--json", "as_json", is_flag=True, help="Print the specs §1 result as JSON.")
def promote(table: str | None, run_key: str | None, force: bool, as_json: bool) -> None:
    """Publish a complete run to current/ and _LATEST.json (readers switch atomically).

    The gate (`lakeline run-summary`) is checked first; exit 1 when it refuses or when
    promotion reports an error status.
    """
    lake = context.open_lake()
    prefix = _batch_table(lake, table)
    if not force:
        gate = read_run_summary(lake, prefix, run_key)
        if not gate["promotion_allowed"]:
            result: dict[str, Any] = {"status": "error", "code": "GATE_REFUSED", "reason": (
                f"run {gate['run_id']} fails the promotion gate: quarantine rate "
                f"{gate['quarantine_rate']:.2%}, {gate['condemned_rows']} condemned, critical errors: "
                f"{gate['has_critical_errors']} (use --force to override)"), "summary": gate}
            emit_json(result) if as_json else click.echo(f"error: {result['reason']}", err=True)
            sys.exit(1)
    event: dict[str, Any] = {"silver_bucket": lake.store.bucket("silver"), "silver_prefix": prefix,
                             "schema_version": "v1"}
    if run_key:
        event["run_key"] = run_key
    result = do_promote(lake, event)
    if as_json:
        emit_json(result)
    elif result.get("status") == "success":
        parts = result.get("partitions", [])
        files = sum(int(p.get("files_copied", 0)) for p in parts)
        note = " (already current: nothing changed)" if result.get("noop") else ""
        click.echo(f"promoted run {result['run_id']}: {len(parts)} partition(s), {files} file(s) "
                   f"copied into current/{note}")
        for p in parts:
            click.echo(f"  {p.get('current_prefix')}: {p.get('action')}")
    else:
        click.echo(f"error: {result.get('reason')}", err=True)
    if result.get("status") != "success":
        sys.exit(1)

