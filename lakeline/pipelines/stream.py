"""Streaming pipelines: landed objects → chunks → typed silver tables, with quality after each run.

:class:`StreamPipeline` is what every streaming pipeline shares; a subclass only says what its
data is (:meth:`~lakeline.pipelines.base.Pipeline.stream`) and which rules its tables keep
(:meth:`StreamPipeline.rulesets`). Declared pipelines (:mod:`lakeline.pipelines.declared`) and
``shipments`` are streaming pipelines.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from lakeline.config import Settings
from lakeline.dq.after_run import check_new_partitions
from lakeline.dq.rules import Ruleset, ruleset_for
from lakeline.errors import NotFoundError
from lakeline.lake import Lake
from lakeline.pipelines.base import Pipeline, Report
from lakeline.stages.evolution import evolved
from lakeline.stages.spec import StreamSpec
from lakeline.tables.schema import TableSpec


class StreamPipeline(Pipeline):
    """A pipeline whose landed objects the streaming stages ingest and transform."""

    def stream(self, settings: Settings) -> StreamSpec:  # pragma: no cover - subclasses say
        raise NotImplementedError

    def rulesets(self) -> Mapping[str, Ruleset]:
        """The pipeline's own quality rules by table name (``[pipelines.<p>.dq.<table>]``
        replaces them)."""
        return {}

    def ruleset(self, settings: Settings, table: str) -> Ruleset | None:
        """The effective ruleset of ``table`` (config first, then the pipeline's), if any."""
        try:
            return ruleset_for(settings, self.name, table, defaults=self.rulesets())
        except NotFoundError:
            return None

    def tables(self, settings: Settings) -> list[TableSpec]:
        spec = self.stream(settings)
        return [spec.table_spec(t) for t in spec.tables]

    def land(self, lake: Lake, path: Path, key: str | None = None) -> dict[str, Any]:
        """Land ``path`` as every pipeline does; a JSON-lines file is also cut into chunks (its
        lines counted) from the local file while the landing copy is written — the copy waits
        on the disk — and the plan is kept for ingest (:func:`~lakeline.stages.ingest.save_plan`),
        which then does not read the landed object again. The plan is kept only when the file
        did not change meanwhile (inode, size and modification time before and after, and the
        landed size is the planned size)."""
        before = os.stat(path)
        if self.stream(lake.settings).format != "jsonl" or not stat.S_ISREG(before.st_mode) \
                or not before.st_size:  # a pipe is read once, by the copy; /proc files have no size
            return super().land(lake, path, key)
        from lakeline.stages.chunking import plan_file, same_file  # heavy: numpy, beside the copy
        from lakeline.stages.ingest import save_plan

        target = self.landing_key(path, key)
        with ThreadPoolExecutor(1, thread_name_prefix="lakeline-plan") as pool:
            planned = pool.submit(plan_file, path, target, lake.settings.ingest.chunk_bytes)
            landed = super().land(lake, path, key)
            found = planned.result()
        if found is not None and found[0] == landed["key"] and same_file(before, os.stat(path)) \
                and before.st_size == landed["size"]:
            save_plan(lake, landed["key"], landed["etag"], found[1])
        return landed

    def after_run(self, lake: Lake) -> Report | None:
        spec = self.stream(lake.settings)
        rulesets = {t.name: rs for t in spec.tables
                    if (rs := self.ruleset(lake.settings, t.name)) is not None}
        result = check_new_partitions(lake, self.name, rulesets)
        if result is None:
            return None
        failed = result["failed"]
        bad = ", ".join(f"{f['record_type']} dt={f['dt']}" for f in failed) or "none failed"
        if failed:  # what shows more: the first failed partition's report
            result = dict(result, command=f"lakeline dq report gold/{failed[0]['result_key']}")
        return Report(self.name, "FAILED" if failed else "SUCCEEDED",
                      f"quality: {result['partitions']} {self.name} partition(s) checked against the "
                      f"rules, {len(failed)} quarantined ({bad})", result)

    def describe(self, settings: Settings) -> dict[str, Any]:
        out = super().describe(settings)
        spec = self.stream(settings)
        out.update(format=spec.format, route_field=spec.route_field, time_field=spec.time_field,
                   table_format=spec.table_format, on_unknown_field=spec.on_unknown_field,
                   on_duplicate=spec.on_duplicate)
        if spec.format == "csv":
            out["csv"] = dict(spec.csv.__dict__)
        for t, d in zip(spec.tables, out["tables"], strict=True):
            d["key"] = list(t.key)
            if spec.route_field:
                d["route"] = t.route_value
        return out

    def describe_lake(self, lake: Lake) -> dict[str, Any]:
        """:meth:`describe` plus what schema evolution added in ``lake``."""
        out = self.describe(lake.settings)
        spec = evolved(lake, self.stream(lake.settings))
        for t, d in zip(spec.tables, out["tables"], strict=True):
            d["added"] = [{"name": f.name, "type": f.type} for f in t.added]
        return out
