"""Local bindings of the shipped workflows' Lambda tasks to lakeline steps.

A Task whose resource is ``arn:aws:states:::lambda:invoke`` with ``FunctionName`` (or a
function ARN) runs the lakeline step of that name, with Lambda's payload semantics (the
engine wraps the result as ``{"Payload": …, "StatusCode": 200}``). On AWS the same names are
the deployed functions (see :func:`lakeline.workflow.shipped.export`).

``lakeline-quality-gate`` runs the specs §3 expectations on a silver partition and
``lakeline-quarantine`` writes its quarantine marker (:mod:`lakeline.quality.expectations`).
``lakeline-carbon-*`` are the steps of the carbon workflow (:mod:`lakeline.carbon.job`).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from lakeline.lake import Lake
from lakeline.workflow.engine import TaskRegistry


def lakeline_tasks(lake: Lake) -> TaskRegistry:
    """A registry with every bound lakeline step."""
    reg = TaskRegistry()

    def run_batch(payload: dict[str, Any]) -> dict[str, Any]:
        from lakeline.batch.transactions import execute_run, pending_files
        from lakeline.errors import UsageError

        table = str(payload.get("table", "mortgages/transactions"))
        files = pending_files(lake, "transactions/", table=table)
        if not files:
            raise UsageError(f"no transactions files landed since the last run of {table}")
        return execute_run(lake, files, table=table).to_dict()

    def run_summary(payload: dict[str, Any]) -> dict[str, Any]:
        from lakeline.batch.gate import read_run_summary

        return read_run_summary(
            lake, str(payload.get("silver_prefix", "mortgages/transactions")), payload.get("run_key")
        )

    def promote(payload: dict[str, Any]) -> dict[str, Any]:
        from lakeline.batch.promote import promote as do_promote

        return do_promote(lake, payload)

    def notify(payload: dict[str, Any]) -> dict[str, Any]:
        sent = lake.notifier.notify(
            str(payload.get("subject", "lakeline workflow")),
            str(payload),
            {"execution": payload.get("execution")},
        )
        return {"message_id": sent.message_id}

    def replay(payload: dict[str, Any]) -> dict[str, Any]:
        from lakeline.stages.replay import replay as do_replay

        end = datetime.now(UTC)
        start = end - timedelta(hours=float(payload.get("window_hours", 24)))
        return do_replay(
            lake, str(payload.get("pipeline", "shipments")), start, end, mode=str(payload.get("mode", "copy"))
        )

    def quality_check(payload: dict[str, Any]) -> dict[str, Any]:
        since = datetime.fromisoformat(str(payload["since"]).replace("Z", "+00:00"))
        prefix = f"{payload.get('record_type', 'shipments')}/"
        fresh = [
            i.key
            for i in lake.store.list("silver", prefix)
            if i.key.endswith(".parquet") and i.last_modified >= since
        ]
        wanted = int(payload.get("min_parquet_objects", 1))
        return {"ok": len(fresh) >= wanted, "new_parquet_objects": len(fresh), "min_parquet_objects": wanted}

    def quality_gate(payload: dict[str, Any]) -> dict[str, Any]:
        from lakeline.quality.expectations import run_expectations

        return run_expectations(lake, str(payload["record_type"]), str(payload["dt"]), str(payload["run_id"]))

    def quarantine(payload: dict[str, Any]) -> dict[str, Any]:
        from lakeline.quality.expectations import quarantine as write_marker

        result = payload.get("result", {}).get("value", {})
        key = write_marker(lake, str(payload.get("record_type", "")), str(payload.get("dt", "")),
                           str(result.get("run_id", "manual")), result)
        return {"marker": key}

    from lakeline.carbon import job as carbon

    for name, fn in (
        ("lakeline-carbon-kickoff", lambda p: carbon.kickoff(lake, p)),
        ("lakeline-carbon-dq", lambda p: carbon.data_quality(lake, p)),
        ("lakeline-carbon-split", lambda p: carbon.split(lake, p)),
        ("lakeline-carbon-calculate", lambda p: carbon.calculate_batch(lake, p)),
        ("lakeline-carbon-publish", lambda p: carbon.publish(lake, p)),
        ("lakeline-quality-gate", quality_gate),
        ("lakeline-quarantine", quarantine),
        ("lakeline-run-batch", run_batch),
        ("lakeline-run-summary", run_summary),
        ("lakeline-promote", promote),
        ("lakeline-notify", notify),
        ("lakeline-replay", replay),
        ("lakeline-quality-check", quality_check),
    ):
        reg.register(name, fn)
    return reg
