"""Incremental extraction of the totesys tables into raw-zone packets of JSON lines (specs §2).

Per table, one run:

1. reads the committed state: ``<table>_latest_packet_id`` and
   ``<table>_latest_extracted_timestamp`` from the parameter store (``/lakeline/totesys/…``)
   and the packet's *boundary* object (the versions seen in the last ``overlap_seconds``);
2. selects rows with ``last_updated > watermark - overlap`` in chunks, ordered by
   ``(last_updated, pk)``. The overlap catches rows that share the watermark's timestamp or
   committed late; versions already extracted (same pk and ``last_updated``) are dropped;
3. writes the chunks as JSON lines (DuckDB's JSON writer, no Python per row) to a scratch file
   and stores the boundary object ``totesys/_state/<table>_<seq:08d>.json``, then the packet
   as ``totesys/<date>/<table>_<seq:08d>_<HHMMSSffffff>.jsonl`` in the raw zone;
4. only then publishes ``<table>_latest_packet_id`` = seq and the new watermark. A failure at
   any earlier point leaves the parameters as they were: the next run reads the same window.

A table with no changes writes no packet.

A **re-read** (``extract(..., since=…)``, ``lakeline extract --table T --since ISO``) reads the
rows of the named tables with ``last_updated >= since`` into a new packet: the way to recover a
packet reported missing. It publishes the packet id only; the watermark stays where it is (it
never moves backwards) and the packet's boundary object copies the previous one, so the next
incremental run continues exactly as before. Versions the star schema already holds are
dropped when the packet is processed, so a re-read never duplicates rows downstream.

Connection errors are retried with backoff
(``totesys.retries``, ``totesys.retry_delay``); a run that still fails increments
``/lakeline/totesys/consecutive_failed_runs`` and, from ``totesys.alert_after_failures`` (3)
on, the notifier alerts the administrators. A successful run resets the counter.
"""

from __future__ import annotations

import re
import shutil
import time
import uuid
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import duckdb
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from lakeline import log, secrets
from lakeline.errors import NotFoundError, TransientError
from lakeline.faults import crash_point
from lakeline.lake import Lake
from lakeline.pipelines.totesys import schema
from lakeline.pipelines.totesys.lease import Lease
from lakeline.pipelines.totesys.params import PARAM_ROOT
from lakeline.pipelines.totesys.settings import totesys_settings
from lakeline.pipelines.totesys.source import Source, engine_for, parse_url, resolve_source_url, retrying

__all__ = [
    "FAILURES_PARAM", "PARAM_ROOT", "RAW_PREFIX", "ExtractFailed", "ExtractReport", "TableResult",
    "committed_packet_id", "extract", "list_packets", "missing_packets", "param_name", "raise_if_failed",
    "recovered_packets", "recovery_since",
]

_log = log.get("totesys.extract")

FAILURES_PARAM: Final = f"{PARAM_ROOT}/consecutive_failed_runs"
RAW_PREFIX: Final = "totesys/"
STATE_PREFIX: Final = "totesys/_state/"
TS_FORMAT: Final = "%Y-%m-%dT%H:%M:%S.%f"
#: scratch space of extractions, under the lake's home (packets move into the raw zone by
#: rename) but outside ``HOME/work``, which a starting ``lakeline run`` / ``serve`` empties:
#: ``lakeline extract`` does not hold the runner lock, so it may run while one starts.
SCRATCH_DIR: Final = "work-totesys"
_PACKET = re.compile(r"^totesys/(\d{4}-\d{2}-\d{2})/([a-z_]+)_(\d{8})_(\d{12})\.jsonl$")


def param_name(table: str, what: str) -> str:
    """``/lakeline/totesys/<table>_<what>`` (``latest_packet_id``, ``latest_extracted_timestamp``)."""
    return f"{PARAM_ROOT}/{table}_{what}"


def committed_packet_id(lake: Lake, table: str) -> int:
    """The last packet id published for ``table`` (0 before the first packet)."""
    return int(lake.params.get(param_name(table, "latest_packet_id")) or 0)


@dataclass
class TableResult:
    """What one run did for one table."""

    table: str
    rows: int = 0
    duplicates_dropped: int = 0
    packet_id: int | None = None
    key: str | None = None
    previous_watermark: str | None = None
    watermark: str | None = None
    attempts: int = 0
    since: str | None = None  # a re-read: the window's inclusive start


@dataclass
class ExtractReport:
    """The result of one extraction run (``lakeline extract --json`` prints it)."""

    run_id: str
    source: str
    status: str = "RUNNING"
    started_at: str = ""
    finished_at: str = ""
    rows: int = 0
    packets: int = 0
    tables: list[TableResult] = field(default_factory=list)
    error: str | None = None
    consecutive_failures: int = 0
    alerted: bool = False
    elapsed_s: float = 0.0
    mode: str = "incremental"  # or "reread" (rows since a point in time, watermarks unchanged)
    since: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The report as plain data."""
        return {**asdict(self), "pipeline": "totesys", "step": "extract"}


def _now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def extract(lake: Lake, source_url: str | None = None, *, source: Source | None = None,
            tables: Iterable[str] = schema.TABLES, since: datetime | None = None) -> ExtractReport:
    """Run one incremental extraction of ``tables`` (or, with ``since``, a re-read of the rows
    changed at or after it: see the module docstring) and return its report.

    The source is ``source`` (an open :class:`Source`), else ``source_url``, else the URL the
    settings resolve to (see :func:`lakeline.pipelines.totesys.source.resolve_source_url`). Never raises
    for source failures: the report says ``FAILED`` with the (password-free) error. Raises
    :class:`~lakeline.errors.LockedError` when another extraction holds the lease.
    """
    cfg = totesys_settings(lake.settings)
    tables = list(tables)
    for table in tables:
        schema.table(table)  # unknown names fail before any work
    own = source is None
    if source is None:
        url = parse_url(resolve_source_url(lake, source_url))
        source = Source(engine=engine_for(url), chunk_rows=cfg.chunk_rows)
    started = time.monotonic()
    report = ExtractReport(run_id=f"totesys-{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}",
                           source=source.display_url, started_at=_now_iso(),
                           mode="incremental" if since is None else "reread",
                           since=None if since is None else since.strftime(TS_FORMAT))
    # one extraction at a time: two would both claim the next packet id of a table
    lease = Lease(lake.state, report.run_id, cfg.lease_seconds,
                  {"started_at": report.started_at, "mode": report.mode})
    try:
        lease.acquire()
    except Exception:
        if own:
            source.close()
        raise
    try:
        # the lease holder is the only extraction alive: what is left here, a killed one left
        shutil.rmtree(_scratch_root(lake), ignore_errors=True)
        crash_point("totesys.extract.leased")
        _run_tables(lake, source, tables, report, lease, since)
    finally:
        lease.release()
        if own:
            source.close()
    report.finished_at = _now_iso()
    report.elapsed_s = round(time.monotonic() - started, 3)
    _record_outcome(lake, report)
    return report


def _scratch_root(lake: Lake) -> Path:
    return lake.settings.home / SCRATCH_DIR


def _run_tables(lake: Lake, source: Source, tables: Iterable[str], report: ExtractReport, lease: Lease,
                since: datetime | None) -> None:
    cfg = totesys_settings(lake.settings)
    _log.info("totesys extraction started", extra={"run_id": report.run_id, "pipeline": "totesys",
                                                   "data": {"source": report.source, "mode": report.mode,
                                                            "since": report.since}})
    try:
        for table in tables:
            lease.renew()
            result, attempts = retrying(
                lambda t=table: _extract_table(lake, source, t, lease, since),  # type: ignore[misc]
                attempts=cfg.retries, delay=cfg.retry_delay, what=f"extract {table}")
            result.attempts = attempts
            report.tables.append(result)
            report.rows += result.rows
            report.packets += result.packet_id is not None
        report.status = "SUCCEEDED"
    except Exception as exc:
        report.status = "FAILED"
        report.error = secrets.mask_error(exc)  # a driver's message may echo connection details
        _log.error("totesys extraction failed", extra={"run_id": report.run_id, "pipeline": "totesys",
                                                       "data": {"error": report.error}})


def _record_outcome(lake: Lake, report: ExtractReport) -> None:
    cfg = totesys_settings(lake.settings)
    # a re-read is a person's recovery step: it leaves the count of failed runs alone
    if report.mode == "incremental" and report.status == "SUCCEEDED":
        lake.params.put(FAILURES_PARAM, "0")
    elif report.mode == "incremental":
        failures = int(lake.params.get(FAILURES_PARAM) or 0) + 1
        lake.params.put(FAILURES_PARAM, str(failures))
        report.consecutive_failures = failures
        if failures >= cfg.alert_after_failures:
            lake.notifier.notify(
                f"totesys extraction failed {failures} times in a row",
                f"The totesys extraction from {report.source} failed in {failures} consecutive runs. "
                f"Last error: {report.error}. Watermarks are unchanged; the next successful run "
                "catches up.",
                {"pipeline": "totesys", "run_id": report.run_id, "consecutive_failures": failures},
            )
            report.alerted = True
    lake.state.log_run(f"{report.started_at}#{report.run_id}", {
        "pipeline": "totesys", "key": "extract", "status": report.status, "records": report.rows,
        "loaded": report.rows, "rejected": 0, "chunks": report.packets, "started_at": report.started_at,
        "finished_at": report.finished_at, "error": report.error, "source": report.source,
        "mode": report.mode, "since": report.since,
    })


# ---- one table --------------------------------------------------------------------------
def _parse_ts(text: str) -> datetime:
    return datetime.strptime(text, TS_FORMAT)


def _boundary_key(seq: int, table: str) -> str:
    return f"{STATE_PREFIX}{table}_{seq:08d}.json"


def _load_boundary(lake: Lake, table: str, seq: int) -> dict[str, Any]:
    if seq == 0:
        return {"watermark": None, "ids": [], "last_updated": []}
    try:
        data: dict[str, Any] = orjson.loads(lake.store.get("raw", _boundary_key(seq, table)))
    except NotFoundError:
        _log.warning("totesys boundary object missing; duplicates of the overlap window are dropped "
                     "by processing instead", extra={"data": {"table": table, "packet_id": seq}})
        return {"watermark": None, "ids": [], "last_updated": []}
    return data


def _keys(ids: Any, stamps: Any) -> Any:
    """``"<pk>|<last_updated ISO>"`` strings identifying row versions."""
    text = pc.strftime(stamps, format="%Y-%m-%dT%H:%M:%S")  # %S carries the microseconds
    join: Any = pc.binary_join_element_wise
    joined = join(pc.cast(ids, pa.string()), text, "|")
    return joined.combine_chunks() if isinstance(joined, pa.ChunkedArray) else joined


def _extract_table(lake: Lake, source: Source, table: str, lease: Lease,
                   reread_since: datetime | None = None) -> TableResult:
    """One table's packet: the changes since its watermark (incremental), or with
    ``reread_since`` every row changed at or after it (watermark and boundary unchanged)."""
    cfg = totesys_settings(lake.settings)
    pk = schema.PRIMARY_KEYS[table]
    seq = committed_packet_id(lake, table)
    boundary = _load_boundary(lake, table, seq)
    param_wm = lake.params.get(param_name(table, "latest_extracted_timestamp"))
    marks = [m for m in (param_wm, boundary.get("watermark")) if m]
    watermark = max(_parse_ts(m) for m in marks) if marks else None
    overlap = timedelta(seconds=cfg.overlap_seconds)
    reread = reread_since is not None
    if reread:
        since, seen = reread_since, pa.array([], pa.string())  # everything in the window, again
    else:
        since = None if watermark is None else watermark - overlap
        seen = pa.array([f"{i}|{lu}" for i, lu in zip(boundary["ids"], boundary["last_updated"],
                                                        strict=True)], pa.string())
    result = TableResult(table=table, previous_watermark=param_wm,
                         since=None if reread_since is None else reread_since.strftime(TS_FORMAT))

    scratch = _scratch_root(lake) / f"{table}-{uuid.uuid4().hex}"
    scratch.mkdir(parents=True)
    packet = scratch / "packet.jsonl"
    tail_ids: Any = pa.array([], pa.int64())
    tail_lu: Any = pa.array([], pa.timestamp("us"))
    high: datetime | None = None
    con = duckdb.connect()
    try:
        with open(packet, "wb") as out:
            for n, chunk in enumerate(source.read_changes(table, since, inclusive=reread)):
                if len(seen) and watermark is not None:
                    keys = _keys(chunk[pk], chunk["last_updated"])
                    keep = pc.invert(pc.is_in(keys, value_set=seen))
                    before = chunk.num_rows
                    chunk = chunk.filter(keep)
                    result.duplicates_dropped += before - chunk.num_rows
                if chunk.num_rows == 0:
                    continue
                chunk_high = chunk["last_updated"][-1].as_py()  # ordered by last_updated
                high = chunk_high if high is None else max(high, chunk_high)
                if not reread:
                    # the versions of the last `overlap` seconds become the next run's boundary
                    cut = pa.scalar(high - overlap, pa.timestamp("us"))
                    recent = chunk.filter(pc.greater(chunk["last_updated"], cut))
                    old = pc.greater(tail_lu, cut)
                    tail_ids = pa.concat_arrays([tail_ids.filter(old), recent[pk].combine_chunks()])
                    tail_lu = pa.concat_arrays([tail_lu.filter(old), recent["last_updated"].combine_chunks()])
                _append_json(con, chunk, scratch / f"part-{n}.jsonl", out)
                result.rows += chunk.num_rows
            out.flush()
        if result.rows == 0 or high is None:
            result.watermark = param_wm
            return result
        new_seq = seq + 1
        now = datetime.now(UTC)
        key = f"{RAW_PREFIX}{now:%Y-%m-%d}/{table}_{new_seq:08d}_{now:%H%M%S%f}.jsonl"
        if reread:
            # the incremental state goes on unchanged: same watermark, same boundary versions
            new_wm = param_wm
            state = {**boundary, "table": table, "packet_id": new_seq, "packet_key": key, "rows": result.rows,
                     "reread_since": result.since}
        else:
            # boundary entries of earlier runs that are still inside the new overlap window
            cut_dt = high - overlap
            carried = [(i, lu) for i, lu in zip(boundary["ids"], boundary["last_updated"], strict=True)
                       if _parse_ts(lu) > cut_dt]
            new_ids = [*(i for i, _ in carried), *tail_ids.to_pylist()]
            new_lu = [*(lu for _, lu in carried),
                      *pc.strftime(tail_lu, format="%Y-%m-%dT%H:%M:%S").to_pylist()]
            new_wm = high.strftime(TS_FORMAT)
            state = {"table": table, "packet_id": new_seq, "packet_key": key, "watermark": new_wm,
                     "rows": result.rows, "ids": new_ids, "last_updated": new_lu}
        lease.renew()  # a lost lease means another extraction may claim this packet id: stop here
        # the boundary object first: its key is fixed by the packet id, so one a failed write
        # leaves behind is overwritten by the retry (and never read before the id is
        # published), while a packet (its key carries the time) would stay as a second copy
        lake.store.put("raw", _boundary_key(new_seq, table), orjson.dumps(state))
        lake.store.put_file("raw", key, packet, move=True)
        # the commit point: the packet is durably stored, now publish it
        lake.params.put(param_name(table, "latest_packet_id"), str(new_seq))
        if not reread:
            lake.params.put(param_name(table, "latest_extracted_timestamp"), str(new_wm))
        result.packet_id, result.key, result.watermark = new_seq, key, new_wm
        _log.info("totesys packet stored", extra={"pipeline": "totesys", "data": {
            "table": table, "packet_id": new_seq, "key": key, "rows": result.rows, "watermark": new_wm,
            "reread_since": result.since}})
        return result
    finally:
        con.close()
        shutil.rmtree(scratch, ignore_errors=True)


def _append_json(con: duckdb.DuckDBPyConnection, chunk: pa.Table, part: Path, out: Any) -> None:
    """Append ``chunk`` as JSON lines to ``out`` (timestamps as ISO-8601 with microseconds)."""
    cols = []
    for f in chunk.schema:
        quoted = '"' + f.name.replace('"', '""') + '"'
        if pa.types.is_timestamp(f.type):
            cols.append(f"strftime({quoted}, '{TS_FORMAT}') AS {quoted}")
        else:
            cols.append(quoted)
    con.register("chunk", chunk)
    try:
        con.execute(f"COPY (SELECT {', '.join(cols)} FROM chunk) TO '{part}' (FORMAT json)")
    finally:
        con.unregister("chunk")
    with open(part, "rb") as src:
        shutil.copyfileobj(src, out, 1024 * 1024)
    part.unlink()


# ---- packets in the raw zone ------------------------------------------------------------
def list_packets(lake: Lake) -> dict[str, dict[int, str]]:
    """Stored packets by table and packet id (the newest key when a crash left two with one id)."""
    found: dict[str, dict[int, tuple[str, str]]] = {}
    for info in lake.store.list("raw", RAW_PREFIX):
        m = _PACKET.match(info.key)
        if m is None:
            continue
        day, table, seq, clock = m.groups()
        order = day + clock
        current = found.setdefault(table, {}).get(int(seq))
        if current is None or order > current[0]:
            found[table][int(seq)] = (order, info.key)
    return {t: {s: k for s, (_, k) in by_seq.items()} for t, by_seq in found.items()}


def missing_packets(lake: Lake, packets: dict[str, dict[int, str]] | None = None) -> dict[str, list[int]]:
    """Packet ids published in the parameter store but absent from the raw zone, by table."""
    packets = list_packets(lake) if packets is None else packets
    missing: dict[str, list[int]] = {}
    for table in schema.TABLES:
        latest = committed_packet_id(lake, table)
        have = packets.get(table, {})
        gaps = [s for s in range(1, latest + 1) if s not in have]
        if gaps:
            missing[table] = gaps
    return missing


def recovery_since(lake: Lake, table: str, packet_id: int) -> str:
    """The ``--since`` that re-reads every row packet ``packet_id`` of ``table`` held: the
    window start of that packet (the previous packet's watermark minus the overlap), or the
    epoch for a first packet or when the previous boundary object is gone."""
    previous = _load_boundary(lake, table, packet_id - 1) if packet_id > 1 else {}
    mark = previous.get("watermark")
    if not mark:
        return "1970-01-01T00:00:00"
    start = _parse_ts(str(mark)) - timedelta(seconds=totesys_settings(lake.settings).overlap_seconds)
    return start.strftime("%Y-%m-%dT%H:%M:%S.%f")


def recovered_packets(lake: Lake, missing: dict[str, list[int]]) -> dict[str, list[int]]:
    """The ``missing`` packet ids a later re-read covered (its ``--since`` at or before the
    missing packet's window start, :func:`recovery_since`), by table."""
    recovered: dict[str, list[int]] = {}
    for table, ids in missing.items():
        rereads: list[tuple[int, datetime]] = []
        for seq in range(min(ids) + 1, committed_packet_id(lake, table) + 1):
            try:
                state = orjson.loads(lake.store.get("raw", _boundary_key(seq, table)))
            except NotFoundError:
                continue
            if state.get("reread_since"):
                rereads.append((seq, _parse_ts(str(state["reread_since"]))))
        starts = {k: datetime.fromisoformat(recovery_since(lake, table, k)) for k in ids}
        covered = [k for k in ids if any(seq > k and since <= starts[k] for seq, since in rereads)]
        if covered:
            recovered[table] = covered
    return recovered


class ExtractFailed(TransientError):
    """An extraction run failed (the report carries the reason)."""


def raise_if_failed(report: ExtractReport) -> None:
    """Raise :class:`ExtractFailed` for a failed report (the CLI's exit code 1)."""
    if report.status != "SUCCEEDED":
        raise ExtractFailed(f"totesys extraction failed: {report.error}")

