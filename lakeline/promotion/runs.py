"""The run protocol of batch pipelines: run ids, run folders, ``_SUCCESS`` markers, run listing.

A *run* processes a set of landed files at once and writes, for every partition it fills, a
*run folder* in the ``silver`` zone::

    <table>/year=YYYY/month=MM/schema_v=<v>/run_id=<run_id>/part-00000.parquet
    <table>/year=YYYY/month=MM/schema_v=<v>/run_id=<run_id>/_SUCCESS

**Run ids** have the form ``YYYYMMDDTHHMMSSZ`` (the run's start, UTC). They are unique even for
runs started in the same second: a run leases its id with a conditional put (``if_absent``)
on the state table ``run_ids``; when the id is taken it tries the next second. The leased item
is also the *run record*: the run's table, landed files, status and, at the end, its metrics.

**Commit.** A run writes every Parquet file of every folder first and the ``_SUCCESS`` markers
last (each one atomic ``put`` of JSON metrics); every marker names all the run's partitions.
A run is ``COMPLETE`` when every one of its folders has a marker and every partition its
markers name has a folder with a marker; anything else (a crash before or between markers, a
run still in progress) is ``INCOMPLETE`` and is never promoted. A run that loaded no valid row
has no folder at all; its state record alone says whether it completed. Only the ports are
used, so this works the same on the local lake and on S3 + DynamoDB.

**Runs lakeline did not write.** Glue and Spark commit a run folder with an *empty*
``_SUCCESS`` (Hadoop's output committer). Such a run is complete too; its metrics are not in
the marker (``metrics_source`` ``"files"``, also for a JSON marker without ``input_rows``) and
:func:`measure` counts its rows from the Parquet footers. A marker that is neither empty nor
a JSON object makes the run ``INVALID``: it is never promoted, and selecting it is an error
naming the marker's key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from lakeline.errors import ConditionFailed, NotFoundError, TransientError
from lakeline.lake import Lake
from lakeline.ports.objectstore import ObjectInfo
from lakeline.promotion.parquet_rows import parquet_rows

RUN_IDS = "run_ids"
SUCCESS = "_SUCCESS"
COMPLETE = "COMPLETE"
INCOMPLETE = "INCOMPLETE"
INVALID = "INVALID"
RUNNING = "RUNNING"
RUN_ID_FORMAT = "%Y%m%dT%H%M%SZ"
_RUN_ID_RE = re.compile(r"\d{8}T\d{6}Z")
_FOLDER_RE = re.compile(
    r"^(?P<partition>.+/schema_v=(?P<v>[^/]+))/run_id=(?P<run>[^/]+)/(?P<name>[^/]+)$"
)
_MAX_LEASE_TRIES = 3600


def format_run_id(t: datetime) -> str:
    """``YYYYMMDDTHHMMSSZ`` of ``t`` in UTC (naive means UTC)."""
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return t.astimezone(UTC).strftime(RUN_ID_FORMAT)


def parse_run_id(run_id: str) -> datetime:
    """The UTC time a run id names; :class:`ValueError` if it is not a run id."""
    if not _RUN_ID_RE.fullmatch(run_id):
        raise ValueError(f"{run_id!r} is not a run id (YYYYMMDDTHHMMSSZ)")
    return datetime.strptime(run_id, RUN_ID_FORMAT).replace(tzinfo=UTC)


def lease_run_id(lake: Lake, record: dict[str, Any], *, now: datetime | None = None) -> str:
    """Take a unique run id for a run starting at ``now`` and store ``record`` under it.

    The id is the start second; if another run holds it, the next free second is taken
    (compare-and-set ``if_absent`` on table ``run_ids``, so concurrent runs never share one).
    """
    t = datetime.now(UTC) if now is None else now
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    t = t.astimezone(UTC).replace(microsecond=0)
    for _ in range(_MAX_LEASE_TRIES):
        run_id = format_run_id(t)
        try:
            lake.state.put(RUN_IDS, run_id, dict(record, run_id=run_id, status=RUNNING), if_absent=True)
            return run_id
        except ConditionFailed:
            t += timedelta(seconds=1)
    raise TransientError(f"no free run id within {_MAX_LEASE_TRIES} s of {format_run_id(t)}")


def update_run_record(lake: Lake, run_id: str, **changes: Any) -> None:
    """Merge ``changes`` into a run record (only the run that leased the id writes it)."""
    item = lake.state.get(RUN_IDS, run_id)
    if item is None:
        raise NotFoundError(f"no run record {run_id}")
    lake.state.put(RUN_IDS, run_id, dict(item.data, **changes))


def partition_prefix(table: str, year: int, month: int, schema_version: str) -> str:
    """``<table>/year=YYYY/month=MM/schema_v=<v>``: where run folders, ``current/`` and
    ``_LATEST.json`` of one partition live."""
    return f"{table.strip('/')}/year={year:04d}/month={month:02d}/schema_v={schema_version}"


def run_folder(partition: str, run_id: str) -> str:
    """The run folder of ``run_id`` in ``partition``."""
    return f"{partition}/run_id={run_id}"


def write_marker(lake: Lake, folder: str, metrics: dict[str, Any]) -> ObjectInfo:
    """Write ``<folder>/_SUCCESS`` (atomically) holding ``metrics`` as JSON."""
    return lake.store.put("silver", f"{folder}/{SUCCESS}", orjson.dumps(metrics, option=orjson.OPT_INDENT_2))


@dataclass(frozen=True)
class RunFolder:
    """One run folder as listed: its Parquet files and its marker (None when missing)."""

    partition: str
    run_id: str
    parquet: tuple[str, ...]
    marker: ObjectInfo | None

    @property
    def prefix(self) -> str:
        """``<partition>/run_id=<run_id>``."""
        return run_folder(self.partition, self.run_id)


@dataclass(frozen=True)
class RunInfo:
    """A run of one table: ``status`` is COMPLETE, INCOMPLETE or INVALID (``problem`` says why).

    ``metrics_source`` says where ``metrics`` come from: ``"marker"`` (the ``_SUCCESS`` JSON),
    ``"record"`` (the run record of a run that wrote no folder) or ``"files"`` (an empty
    marker: row counts from the Parquet footers once :func:`measure` ran, else unknown).
    """

    run_id: str
    status: str
    folders: tuple[RunFolder, ...] = ()
    metrics: dict[str, Any] | None = None
    completed_at: datetime | None = None
    problem: str = ""
    record: dict[str, Any] = field(default_factory=dict)
    metrics_source: str = "marker"

    @property
    def complete(self) -> bool:
        """True if the run committed."""
        return self.status == COMPLETE

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (for the CLI)."""
        m = self.metrics or {}
        return {
            "run_id": self.run_id, "status": self.status, "problem": self.problem or None,
            "partitions": [f.partition for f in self.folders],
            "completed_at": None if self.completed_at is None else iso(self.completed_at),
            **{k: m.get(k) for k in ("input_rows", "valid_rows", "quarantined_rows", "condemned_rows")},
            "metrics_source": self.metrics_source,
        }


def scan_folders(lake: Lake, table: str, schema_version: str) -> dict[str, list[RunFolder]]:
    """Every run folder of ``table`` for ``schema_version``, by run id (one listing)."""
    found: dict[tuple[str, str], tuple[list[str], list[ObjectInfo]]] = {}
    for info in lake.store.list("silver", table.strip("/") + "/"):
        m = _FOLDER_RE.match(info.key)
        if m is None or m["v"] != schema_version:
            continue
        files, markers = found.setdefault((m["run"], m["partition"]), ([], []))
        if m["name"] == SUCCESS:
            markers.append(info)
        elif m["name"].endswith(".parquet"):
            files.append(info.key)
    out: dict[str, list[RunFolder]] = {}
    for (run_id, partition), (files, markers) in sorted(found.items()):
        out.setdefault(run_id, []).append(
            RunFolder(partition, run_id, tuple(files), markers[0] if markers else None)
        )
    return out


def list_runs(
    lake: Lake, table: str, *, schema_version: str = "v1"
) -> list[RunInfo]:
    """Every run of ``table`` (complete or not), oldest run id first.

    Runs come from the silver listing (any ``run_id=`` folder, even one whose marker never
    came) and from the run records of table ``run_ids`` (runs that wrote no folder).
    """
    table = table.strip("/")
    folders = scan_folders(lake, table, schema_version)
    records = {
        i.key: dict(i.data, _updated_at=i.updated_at) for i in lake.state.query(RUN_IDS)
        if i.data.get("table") == table and i.data.get("schema_version", schema_version) == schema_version
    }
    runs = [_run_info(lake, rid, folders.get(rid, []), records.get(rid, {}))
            for rid in sorted(set(folders) | set(records))]
    return runs


def _run_info(lake: Lake, run_id: str, folders: list[RunFolder], record: dict[str, Any]) -> RunInfo:
    if not folders:
        if record.get("status") == COMPLETE and not record.get("partitions"):
            done = datetime.fromtimestamp(float(record.get("_updated_at", 0.0)), UTC)
            return RunInfo(run_id, COMPLETE, (), record.get("metrics"), done, record=record,
                           metrics_source="record")
        return RunInfo(run_id, INCOMPLETE, (), None, None, "no run folder written", record)
    marked = [f for f in folders if f.marker is not None]
    if len(marked) < len(folders):
        missing = ", ".join(f.partition for f in folders if f.marker is None)
        return RunInfo(run_id, INCOMPLETE, tuple(folders), None, None, f"no {SUCCESS} in {missing}", record)
    completed = max(f.marker.last_modified for f in folders if f.marker is not None)
    key = f"{marked[0].prefix}/{SUCCESS}"
    try:
        raw = lake.store.get("silver", key)
    except NotFoundError:  # deleted between the listing and now
        return RunInfo(run_id, INCOMPLETE, tuple(folders), None, None, f"{key} vanished", record)
    if not raw.strip():  # Glue / Spark: an empty marker commits the run, metrics are in the files
        return RunInfo(run_id, COMPLETE, tuple(folders), {}, completed, record=record, metrics_source="files")
    try:
        metrics = orjson.loads(raw)
        if not isinstance(metrics, dict):
            raise ValueError(f"it holds a JSON {type(metrics).__name__}, not an object")
    except (orjson.JSONDecodeError, ValueError) as exc:
        return RunInfo(run_id, INVALID, tuple(folders), None, completed,
                       f"{SUCCESS} object {key} (zone silver) is neither empty nor a JSON object: {exc}",
                       record)
    declared = set(metrics.get("partitions", [f.partition for f in folders]))
    absent = declared - {f.partition for f in folders}
    if absent:
        return RunInfo(run_id, INCOMPLETE, tuple(folders), None, None,
                       "partitions without a run folder: " + ", ".join(sorted(absent)), record)
    # JSON without the run metrics (another writer's note): count the files, never assume zeros
    source = "marker" if "input_rows" in metrics else "files"
    return RunInfo(run_id, COMPLETE, tuple(folders), metrics, completed, record=record, metrics_source=source)


def measure(lake: Lake, run: RunInfo) -> RunInfo:
    """``run`` with its row counts when its marker was empty: ``input_rows`` = ``valid_rows`` =
    the rows of its Parquet files (from their footers), ``rows_by_partition`` per folder;
    ``quarantined_rows`` and ``condemned_rows`` stay unknown (None). Other runs unchanged."""
    if run.metrics_source != "files" or (run.metrics or {}).get("input_rows") is not None:
        return run
    by_partition = {f.partition: sum(parquet_rows(lake, k) for k in f.parquet) for f in run.folders}
    total = sum(by_partition.values())
    metrics = {**(run.metrics or {}), "input_rows": total, "valid_rows": total, "quarantined_rows": None,
               "condemned_rows": None, "rows_by_partition": by_partition}
    return replace(run, metrics=metrics)


def newest(runs: list[RunInfo]) -> RunInfo | None:
    """The most recently completed run (ties broken by run id), or None."""
    done = [r for r in runs if r.complete]
    if not done:
        return None
    floor = datetime.min.replace(tzinfo=UTC)
    return max(done, key=lambda r: (r.completed_at or floor, r.run_id))


def find_run(runs: list[RunInfo], run_key: str) -> RunInfo | None:
    """The run whose id (or the ``run_key`` it was started with) is ``run_key``."""
    key = run_key.removeprefix("run_id=")
    for r in reversed(runs):
        if r.run_id == key or (r.metrics or r.record).get("run_key") == run_key:
            return r
    return None


def iso(t: datetime) -> str:
    """ISO-8601 UTC with milliseconds and ``Z`` (``2026-01-29T12:05:00.000Z``)."""
    return t.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
