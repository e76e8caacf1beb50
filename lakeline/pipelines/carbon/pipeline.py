"""The ``carbon`` pipeline object: one workflow execution per landed activity file."""

from __future__ import annotations

from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import orjson

from lakeline.config import Settings
from lakeline.dq.rules import Ruleset
from lakeline.errors import UsageError
from lakeline.lake import Lake
from lakeline.pipelines.base import (
    Failure,
    Generator,
    GenOptions,
    Pipeline,
    Report,
    RunEntry,
    TaskSpec,
    Trigger,
    task_registry,
)
from lakeline.pipelines.carbon import gen, job
from lakeline.pipelines.carbon.rules import RULES
from lakeline.pipelines.carbon.settings import CarbonSettings, carbon_settings
from lakeline.tables.schema import TableSpec


def _summary(r: dict[str, Any]) -> str:
    if r["status"] == "SUCCEEDED":
        return (f"carbon {r['key']}: {r['records']} records in {r['batches']} batches, {r['calculated']} "
                f"calculated into {r['table']}, {r['failed']} rejected (root_id {r['root_id']})")
    if r.get("error") == job.DQ_FAILED:
        why = f" Failed: {r['reason']}." if r.get("reason") else ""
        return (f"carbon {r['key']}: workflow {r['status']}: {r.get('error')}: {r.get('cause')}.{why} "
                f"(execution {r['execution']})")
    return (f"carbon {r['key']}: workflow {r['status']} in state {r.get('state')}: {r.get('error')}: "
            f"{r.get('cause')}; fix the cause, then `{r['command']}` finishes it")


def _generate(target: str, o: GenOptions) -> str:
    if o.out is None or o.count is None:
        raise UsageError("--out and --count are required")
    n = gen.write(o.count, Path(o.out), seed=o.seed, dirty_rate=o.dirty_rate)
    return f"wrote {n} carbon records to {o.out}"


class CarbonPipeline(Pipeline):
    """CarbonLake (seed 003): DQ gate, split, Map of CO2e calculations, gold.emissions."""

    name = job.PIPELINE
    description = "Activity data → quality gate → batches → CO2e into gold.emissions (seed 003)"
    settings_class = CarbonSettings

    def settings(self, settings: Settings) -> Any:
        return carbon_settings(settings)

    def tables(self, settings: Settings) -> list[TableSpec]:
        return [TableSpec(f"gold.{job.GOLD_TABLE}", layout="parquet", zone="gold",
                          description="CO2e per activity, keyed by activity_event_id")]

    def pending(self, lake: Lake) -> list[str]:
        return list(job.waiting(lake)["files"])

    def run(self, lake: Lake) -> list[Report]:
        reports = job.run_pending(lake, task_registry(lake, self.tasks()), definition())
        return [Report(self.name, "SUCCEEDED" if r["status"] == "SUCCEEDED" else "FAILED", _summary(r), r)
                for r in reports]

    def status(self, lake: Lake) -> dict[str, Any]:
        w = job.waiting(lake)
        notes = []
        if w["files"] or w["interrupted"]:
            notes.append(f"carbon: {len(w['files'])} file(s) waiting in landing, {len(w['interrupted'])} "
                         "interrupted execution(s); `lakeline run` starts or resumes them")
        return {**w, "notes": notes}

    def run_log(self, lake: Lake, limit: int) -> list[RunEntry]:
        """One entry per file's workflow execution, newest first; ``detail`` holds the
        execution's ARN, root_id, the state it stopped in and its redrive count."""
        entries = []
        for r in job.run_log(lake, limit):
            out = r["output"] or {}
            error = f"{r['error']}: {r['cause']}" if r["error"] else None
            entries.append(RunEntry(
                self.name, "job", str(r["execution_name"]), str(r["status"]), started_at=r.get("started_at"),
                finished_at=r.get("stopped_at"), key=r.get("key"), records=out.get("records"),
                loaded=out.get("calculated"), rejected=out.get("failed"), error=error,
                detail={"execution_arn": r["execution_arn"], "root_id": r.get("root_id"), "state": r["state"],
                        "redrive_count": r["redrive_count"]}))
        return entries

    def failures(self, lake: Lake) -> list[Failure]:
        """Files whose workflow failed after (or before) the gate for another reason than the
        quality rules, until a redrive or a new landing of the key finishes them."""
        return [Failure(self.name, str(f["key"]),
                        f"execution {f['execution_name']} {f['status']} in state {f['state']}: "
                        f"{f['error']}: {f['cause']}", str(f["command"]))
                for f in job.failures(lake)]

    def rulesets(self) -> Mapping[str, Ruleset]:
        return {"": RULES}

    def tasks(self) -> list[TaskSpec]:
        return [
            TaskSpec("lakeline-carbon-kickoff", "Carbon workflow: root_id and lineage RAW_DATA_INPUT",
                     job.kickoff, timeout=60, s3_read=("landing",)),
            TaskSpec("lakeline-carbon-dq", "Carbon workflow: profile, data quality rules and the file gate",
                     job.data_quality, timeout=900, memory=2048,
                     s3_write=("landing", "raw", "error", "gold")),
            TaskSpec("lakeline-carbon-split", "Carbon workflow: split the raw file into batches", job.split,
                     timeout=900, memory=2048, s3_read=("raw",), s3_write=("silver",)),
            TaskSpec("lakeline-carbon-calculate", "Carbon workflow: CO2e of one batch", job.calculate_batch,
                     timeout=300, memory=1024, s3_read=("silver",), s3_write=("tmp", "error")),
            TaskSpec("lakeline-carbon-publish", "Carbon workflow: merge the results into gold.emissions",
                     job.publish, timeout=900, memory=2048, s3_write=("tmp", "error", "gold")),
        ]

    def workflows(self) -> Mapping[str, dict[str, Any]]:
        return {job.WORKFLOW: definition()}

    def triggers(self, settings: Settings) -> list[Trigger]:
        """On AWS each landed activity file starts one execution of the carbon state machine
        with ``{"key": <key>}`` (the local driver adds the ``root_id`` it chose; kickoff makes one
        when absent)."""
        return [Trigger(f"{self.name}/", workflow=job.WORKFLOW)]

    def generator(self) -> Generator | None:
        return Generator(("carbon",), _generate,
                         "carbon: activity CSV of carbon.md over the packaged factor table's categories and "
                         "activities (units spelled several known ways; --dirty-rate adds rows to reject)")


def definition() -> dict[str, Any]:
    """The shipped carbon workflow definition (``carbon.asl.json``)."""
    text = (resources.files(__package__ or "") / "carbon.asl.json").read_text("utf-8")
    data: dict[str, Any] = orjson.loads(text)
    return data


CARBON = CarbonPipeline()
