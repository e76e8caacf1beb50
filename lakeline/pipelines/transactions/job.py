"""The ``transactions`` batch pipeline (seed 000): landed CSV files → one validated silver run.

``execute_run(lake, files)`` takes landing keys (``transactions/...``), validates every row in
one DuckDB pass (:mod:`lakeline.pipelines.transactions.validate`), and writes one run
(:mod:`lakeline.promotion.runs`). Every file is read as text first — gzip (``.gz`` or the
gzip magic bytes) is decompressed, so a gzip file loads exactly like its plain twin — and
:func:`screen_files` quarantines a file that is not readable text at all (truncated gzip,
UTF-16, binary) before the run starts, so it never blocks the others:

1. lease the run id (state table ``run_ids``; the record lists the run's files);
2. the ledgers of earlier *complete* runs: their silver TransactionIDs (duplicates) and their
   ``attempts`` files (error repeats, for MAX_ATTEMPTS) — read as Parquet with DuckDB, so a
   million ids cost one scan, not a million state reads;
3. valid rows, typed and enriched (``row_hash``, ``source_file_id``, ``ingestion_timestamp``),
   to ``<table>/year=YYYY/month=MM/schema_v=v1/run_id=<run_id>/part-NNNNN.parquet`` (split by
   the year/month of TransactionTimestamp);
4. rejects to ``error/rejects/transactions/`` (file, line, byte offset, reason, raw;
   the shared rejects table that ``quarantine.rejects`` reads)
   and this run's attempts to ``error/attempts/<table>/run_id=<run_id>/attempts.parquet``;
5. the ``_SUCCESS`` marker of every run folder, last; then the run record becomes COMPLETE.

A crash anywhere before step 5 leaves an INCOMPLETE run: its files are ignored by the ledgers
and by promotion, and its landed files stay in :func:`pending_files`, so running again is safe.
Concurrent runs over the *same* new TransactionIDs may both accept them (the ledger only sees
complete runs); drive one run at a time per table.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.parquet as pq

from lakeline import reasons
from lakeline.duck import duckdb_connection
from lakeline.errors import UsageError
from lakeline.lake import Lake
from lakeline.pipelines.transactions import lineage, validate
from lakeline.promotion.runs import (
    COMPLETE,
    RunInfo,
    iso,
    lease_run_id,
    list_runs,
    partition_prefix,
    run_folder,
    update_run_record,
    write_marker,
)
from lakeline.sqltext import lit
from lakeline.stages.lines import blank_undecodable, chunk_table
from lakeline.stages.messages import object_id
from lakeline.stages.quarantine import quarantine_object
from lakeline.stages.rejects import reject_row, rejects_schema
from lakeline.stages.textinput import UnreadableInput, text_bytes

PIPELINE = "transactions"
TABLE = "mortgages/transactions"
LANDING_PREFIX = "transactions/"
SCHEMA_VERSION = "v1"
MAX_ATTEMPTS = 3


@dataclass
class RunReport:
    """What one run did (``to_dict`` is JSON-ready)."""

    run_id: str
    table: str
    schema_version: str
    input_rows: int = 0
    valid_rows: int = 0
    quarantined_rows: int = 0
    condemned_rows: int = 0
    quarantine_by_reason: dict[str, int] = field(default_factory=dict)
    partitions: list[dict[str, Any]] = field(default_factory=list)
    sources: list[dict[str, str]] = field(default_factory=list)
    rejected_files: list[dict[str, Any]] = field(default_factory=list)
    rejects_key: str | None = None
    started_at: str = ""
    finished_at: str = ""
    status: str = COMPLETE

    def to_dict(self) -> dict[str, Any]:
        """The report as plain JSON types."""
        return asdict(self)


def pending_files(lake: Lake, prefix: str = LANDING_PREFIX, *, table: str = TABLE,
                  schema_version: str = SCHEMA_VERSION) -> list[str]:
    """Landed objects under ``prefix`` that no complete run of ``table`` has processed
    (an object is a key *and* its etag: a re-landed changed file is pending again)."""
    done = {s["object_id"] for r in list_runs(lake, table, schema_version=schema_version)
            if r.complete for s in _sources(r)}
    bucket = lake.store.bucket("landing")
    return [i.key for i in lake.store.list("landing", prefix)
            if object_id(bucket, i.key, i.etag) not in done]


def _sources(run: RunInfo) -> list[dict[str, str]]:
    found: list[dict[str, str]] = (run.metrics or {}).get("sources") or run.record.get("sources") or []
    return found


def _rejects_key(table: str, run_id: str) -> str:
    return f"rejects/{PIPELINE}/part-{table.replace('/', '_')}-{run_id}.parquet"


def _drop_stale_rejects(lake: Lake, runs: list[RunInfo], sources: list[dict[str, str]], table: str) -> None:
    """Delete the rejects file of every earlier run that never completed and read one of
    ``sources``: this run loads those files again, and ``quarantine.rejects`` reads every
    rejects file, so a run that failed after its rejects were written (before its ``_SUCCESS``)
    would otherwise show each of its rejects twice."""
    ours = {s["object_id"] for s in sources}
    for run in runs:
        if not run.complete and ours & {s.get("object_id") for s in run.record.get("sources") or []}:
            lake.store.delete("error", _rejects_key(table, run.run_id))


def screen_files(lake: Lake, files: list[str]) -> tuple[dict[str, bytes], list[dict[str, Any]]]:
    """Read the landed objects ``files`` as text (gzip decompressed) before a run starts.

    Returns the text of each readable one by key, and one record per object that cannot be
    read at all (a truncated gzip, UTF-16, binary, a header no CSV reader takes): each of those
    is quarantined whole (:func:`~lakeline.stages.quarantine.quarantine_object`: moved to
    ``error/objects/``, FAILED in the run log, notified), so it neither crashes nor joins the
    run and the other files still load."""
    texts: dict[str, bytes] = {}
    bad: list[dict[str, Any]] = []
    for key in dict.fromkeys(files):
        try:
            texts[key] = _text(lake.store.get("landing", key), key)
        except UnreadableInput as exc:
            bad.append(quarantine_object(lake, pipeline=PIPELINE, key=key, reason=exc.reason,
                                         message=str(exc)))
    return texts, bad


def _text(raw: bytes, key: str) -> bytes:
    """The object's text; raises UnreadableInput when it is not text or its header is not CSV."""
    data = text_bytes(raw, key)
    try:
        validate.read_header(data.removeprefix(validate.BOM))
    except UnreadableInput as exc:
        raise UnreadableInput(f"{key}: {exc}", exc.reason) from exc
    return data


def execute_run(
    lake: Lake, files: list[str], *, now: datetime | None = None, table: str = TABLE,
    schema_version: str = SCHEMA_VERSION, currencies: tuple[str, ...] = validate.DEFAULT_CURRENCIES,
    max_attempts: int = MAX_ATTEMPTS, run_key: str | None = None, texts: Mapping[str, bytes] | None = None,
) -> RunReport:
    """Validate the landed CSV objects ``files`` (landing keys) as one run and commit it.

    ``texts`` holds the files' text when :func:`screen_files` read them already; without it
    every file is read here, before the run id is leased, and one that cannot be read raises
    :class:`~lakeline.stages.textinput.UnreadableInput` (no run is started)."""
    if not files:
        raise UsageError("a run needs at least one landed file")
    if max_attempts < 1:
        raise UsageError(f"max_attempts must be at least 1, got {max_attempts}")
    if texts is None:
        texts = {key: _text(lake.store.get("landing", key), key) for key in dict.fromkeys(files)}
    table = table.strip("/")
    clock = time.monotonic()
    started = (datetime.now(UTC) if now is None else now).astimezone(UTC)
    bucket = lake.store.bucket("landing")
    infos = [lake.store.head("landing", key) for key in dict.fromkeys(files)]
    sources = [{"key": i.key, "etag": i.etag, "object_id": object_id(bucket, i.key, i.etag)} for i in infos]
    runs = list_runs(lake, table, schema_version=schema_version)
    earlier = [r for r in runs if r.complete]
    _drop_stale_rejects(lake, runs, sources, table)
    run_id = lease_run_id(lake, {"table": table, "schema_version": schema_version, "sources": sources,
                                 "run_key": run_key, "started_at": iso(started)}, now=started)
    report = RunReport(run_id, table, schema_version, sources=sources, started_at=iso(started))
    work = Path(tempfile.mkdtemp(prefix=f"run-{run_id}-", dir=lake.work_dir))
    con = duckdb_connection(lake.settings.runner.duckdb_threads)
    try:
        datas, extra = _load(con, sources, texts, report)
        _ledgers(lake, con, earlier, table, work)
        validate.classify(con, currencies=currencies, max_attempts=max_attempts)
        _count(con, report, extra)
        folders = _write_silver(lake, con, report, started, work)
        _write_rejects(lake, con, report, sources, datas, extra, work)
        _write_attempts(lake, con, report, work)
        finished = started + timedelta(seconds=time.monotonic() - clock)
        report.finished_at = iso(max(finished, started))
        metrics = _metrics(report, run_key)
        for part in report.partitions:
            write_marker(lake, folders[part["partition"]],
                         dict(metrics, partition=part["partition"], partition_rows=part["rows"]))
        update_run_record(lake, run_id, status=COMPLETE, partitions=metrics["partitions"],
                          metrics=metrics, finished_at=report.finished_at)
        lineage.transactions_run(lake, con, report)
    finally:
        con.close()
        shutil.rmtree(work, ignore_errors=True)
    return report


# ---- steps ----------------------------------------------------------------------------------


def _load(con: duckdb.DuckDBPyConnection, sources: list[dict[str, str]], texts: Mapping[str, bytes],
          report: RunReport) -> tuple[list[tuple[bytes, int]], list[dict[str, Any]]]:
    """Register every file's text as ``chunks``/``files``/``objects``. Returns each file's
    (data, BOM length) and the rejects found before SQL: a file missing a required column
    (one SCHEMA_ERROR for the whole file), lines that are not UTF-8 (ENCODING_ERROR) and records
    whose quotes break RFC 4180 (SCHEMA_ERROR)."""
    tables: list[pa.Table] = []
    records: list[pa.Table] = []
    rows: list[dict[str, Any]] = []
    datas: list[tuple[bytes, int]] = []
    extra: list[dict[str, Any]] = []
    for n, src in enumerate(sources):
        raw = texts[src["key"]]
        bom = len(validate.BOM) if raw.startswith(validate.BOM) else 0
        data = raw[bom:]
        datas.append((data, bom))
        header = validate.read_header(data)
        rows.append(validate.files_row(n, header))
        if header.missing:
            bad_file = {"file_no": n, "key": src["key"], "line_no": header.line_no,
                        "reason": reasons.SCHEMA_ERROR,
                        "message": "missing required column(s): " + ", ".join(header.missing)}
            report.rejected_files.append(bad_file)
            extra.append(bad_file)
        if b'"' in data:  # quotes: records by RFC 4180 (a quoted field may span lines)
            data, bad = blank_undecodable(data)
            recs, bad_quotes = validate.records_table(n, data)
            records.append(recs)
        else:
            chunks, bad = chunk_table(data)
            tables.append(chunks.append_column("file_no", pa.array([n] * chunks.num_rows, pa.int64())))
            bad_quotes = []
        extra.extend({"file_no": n, "key": src["key"], "line_no": idx, "reason": reasons.ENCODING_ERROR,
                      "message": message, "row": True} for idx, message in bad)
        extra.extend({"file_no": n, "key": src["key"], "line_no": idx, "reason": reasons.SCHEMA_ERROR,
                      "message": message, "raw": raw, "row": True} for idx, message, raw in bad_quotes)
    con.register("chunks", pa.concat_tables(tables) if tables else pa.table(
        {"content": pa.array([], pa.string()), "base": pa.array([], pa.int64()),
         "file_no": pa.array([], pa.int64())}))
    con.register("records", pa.concat_tables(records) if records else validate.RECORDS_SCHEMA.empty_table())
    con.register("files", pa.Table.from_pylist(rows, schema=validate.FILES_SCHEMA))
    con.register("objects", pa.table({
        "file_no": pa.array(range(len(sources)), pa.int64()),
        **{name: pa.array([s[name] for s in sources], pa.string()) for name in ("object_id", "key", "etag")},
    }))
    return datas, extra


def _ledgers(lake: Lake, con: duckdb.DuckDBPyConnection, earlier: list[RunInfo], table: str,
             work: Path) -> None:
    """Tables ``seen`` (ids loaded by earlier complete runs) and ``prior`` (their rejects)."""
    ids = [key for r in earlier for f in r.folders for key in f.parquet]
    paths = _readable(lake, "silver", ids, work / "ids")
    if paths:
        con.execute(
            "CREATE OR REPLACE TEMP TABLE seen AS SELECT \"TransactionID\", "
            "min(regexp_extract(filename, 'run_id=([^/]+)', 1)) AS run_id "
            "FROM read_parquet(?, filename=true, hive_partitioning=false) GROUP BY 1", [paths])
    else:
        con.execute("CREATE OR REPLACE TEMP TABLE seen (\"TransactionID\" VARCHAR, run_id VARCHAR)")
    done = {r.run_id for r in earlier}
    keys = [i.key for i in lake.store.list("error", f"attempts/{table}/")
            if i.key.split("/")[-2].removeprefix("run_id=") in done]
    paths = _readable(lake, "error", keys, work / "attempts")
    if paths:
        con.execute(
            "CREATE OR REPLACE TEMP TABLE prior AS SELECT \"TransactionID\", reason_code, count(*) AS n "
            "FROM read_parquet(?, hive_partitioning=false) GROUP BY ALL", [paths])
    else:
        con.execute("CREATE OR REPLACE TEMP TABLE prior "
                    "(\"TransactionID\" VARCHAR, reason_code VARCHAR, n BIGINT)")


def _readable(lake: Lake, zone: str, keys: list[str], into: Path) -> list[str]:
    """Paths DuckDB can read for ``keys``: the files themselves on the local lake, copies in
    the scratch directory on a remote store (the key is kept in the path)."""
    out: list[str] = []
    for key in keys:
        local = lake.store.local_path(zone, key)
        if local is None:
            local = into / key
            local.parent.mkdir(parents=True, exist_ok=True)
            local.write_bytes(lake.store.get(zone, key))
        out.append(str(local))
    return out


def _count(con: duckdb.DuckDBPyConnection, report: RunReport, extra: list[dict[str, Any]]) -> None:
    rows = con.execute("SELECT reason, count(*) FROM classified GROUP BY ALL ORDER BY ALL").fetchall()
    by_reason: dict[str, int] = {}
    for f in extra:  # rows rejected before SQL (not UTF-8, quotes breaking RFC 4180)
        if f.get("row"):
            by_reason[f["reason"]] = by_reason.get(f["reason"], 0) + 1
    for reason, n in rows:
        if reason is None:
            report.valid_rows = int(n)
        elif reason == reasons.MAX_ATTEMPTS:
            report.condemned_rows = int(n)
        else:
            by_reason[str(reason)] = by_reason.get(str(reason), 0) + int(n)
    report.quarantine_by_reason = dict(sorted(by_reason.items()))
    report.quarantined_rows = sum(by_reason.values())
    report.input_rows = report.valid_rows + report.quarantined_rows + report.condemned_rows


def _write_silver(lake: Lake, con: duckdb.DuckDBPyConnection, report: RunReport, started: datetime,
                  work: Path) -> dict[str, str]:
    """Write the valid rows' run folders; returns partition → run folder."""
    out = work / "silver"
    con.execute(
        f"COPY ({validate.enriched_sql(started.isoformat())}) TO '{out}' "
        "(FORMAT parquet, PARTITION_BY (year, month), COMPRESSION zstd)")
    counts = dict(((y, m), int(n)) for y, m, n in con.execute(
        "SELECT strftime(ts_utc, '%Y'), strftime(ts_utc, '%m'), count(*) FROM classified "
        "WHERE reason IS NULL GROUP BY ALL").fetchall())
    folders: dict[str, str] = {}
    for (year, month), rows in sorted(counts.items()):
        partition = partition_prefix(report.table, int(year), int(month), report.schema_version)
        folder = folders[partition] = run_folder(partition, report.run_id)
        produced = sorted((out / f"year={year}" / f"month={month}").glob("*.parquet"))
        keys = [f"{folder}/part-{i:05d}.parquet" for i in range(len(produced))]
        for path, key in zip(produced, keys, strict=True):
            lake.store.put_file("silver", key, path, move=True)
        report.partitions.append({"partition": partition, "run_folder": folder, "year": int(year),
                                  "month": int(month), "rows": rows, "files": keys})
    return folders


def _write_rejects(lake: Lake, con: duckdb.DuckDBPyConnection, report: RunReport,
                   sources: list[dict[str, str]], datas: list[tuple[bytes, int]],
                   extra: list[dict[str, Any]], work: Path) -> None:
    """All rejects of the run as one Parquet file of the shared rejects table
    (:func:`rejects_schema`, same key layout as :func:`write_rejects`), built column-wise:
    a run that rejects a million rows must not build a million Python dicts."""
    at = datetime.now(UTC)
    table = con.sql(
        f"SELECT '{PIPELINE}' AS pipeline, {lit(lake.store.bucket('landing'))} AS bucket, o.key, o.etag, "
        "CAST(0 AS BIGINT) AS chunk, c.idx AS line_no, CAST(NULL AS BIGINT) AS byte_offset, "
        f"'{PIPELINE}' AS record_type, c.reason AS reason_code, "
        f"coalesce(CASE WHEN c.reason = '{reasons.MAX_ATTEMPTS}' THEN "
        "c.first_reason || ' in attempt ' || c.attempt || ': ' END, '') || c.message AS message, "
        f"left(c.line, {validate.MAX_RAW}) AS raw, "
        f"CAST({lit(at.isoformat())} AS TIMESTAMPTZ) AS rejected_at, "
        "c.file_no FROM classified AS c JOIN objects AS o USING (file_no) "
        "WHERE c.reason IS NOT NULL AND NOT c.bad ORDER BY c.file_no, c.idx").to_arrow_table()
    offsets = _line_offsets(datas, table.column("file_no").to_numpy(), table.column("line_no").to_numpy())
    table = table.drop_columns(["file_no"]).set_column(
        rejects_schema().get_field_index("byte_offset"), "byte_offset", pa.array(offsets, pa.int64()))
    at_line = _line_offsets(datas, np.array([f["file_no"] for f in extra], np.int64),
                            np.array([f["line_no"] if f.get("row") else 0 for f in extra], np.int64))
    first = pa.Table.from_pylist([
        reject_row(pipeline=PIPELINE, bucket=lake.store.bucket("landing"), key=sources[f["file_no"]]["key"],
                   etag=sources[f["file_no"]]["etag"], chunk=0, line_no=f["line_no"], record_type=PIPELINE,
                   reason_code=f["reason"], message=f["message"], raw=f.get("raw"), rejected_at=at,
                   byte_offset=int(at_line[i]) if f.get("row") else None)
        for i, f in enumerate(extra)], schema=rejects_schema())
    rejects = pa.concat_tables([first, table.cast(rejects_schema())])
    if rejects.num_rows == 0:
        return
    path = work / "rejects.parquet"
    pq.write_table(rejects, path, compression="zstd")
    key = _rejects_key(report.table, report.run_id)
    lake.store.put_file("error", key, path, move=True)
    report.rejects_key = key


def _line_offsets(datas: list[tuple[bytes, int]], file_no: npt.NDArray[np.int64],
                  line: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """The byte offset in its object of each (file, 1-based line); 0 for line 0."""
    offsets = np.zeros(len(line), dtype=np.int64)
    for n, (data, bom) in enumerate(datas):
        sel = (file_no == n) & (line > 0)
        if sel.any():
            starts = np.concatenate(([0], np.flatnonzero(np.frombuffer(data, np.uint8) == 10) + 1))
            offsets[sel] = starts[line[sel] - 1] + bom
    return offsets


def _write_attempts(lake: Lake, con: duckdb.DuckDBPyConnection, report: RunReport, work: Path) -> None:
    """This run's rejected (TransactionID, reason) pairs, read by later runs' ``prior``."""
    table = con.sql(
        "SELECT DISTINCT txn_id AS \"TransactionID\", first_reason AS reason_code FROM classified "
        "WHERE first_reason IS NOT NULL AND NOT bad AND txn_id IS NOT NULL").to_arrow_table()
    if table.num_rows == 0:
        return
    path = work / "attempts.parquet"
    pq.write_table(table, path, compression="zstd")
    lake.store.put_file("error", f"attempts/{report.table}/run_id={report.run_id}/attempts.parquet",
                        path, move=True)


def _metrics(report: RunReport, run_key: str | None) -> dict[str, Any]:
    """The run-level metrics every ``_SUCCESS`` of the run holds."""
    return {
        "run_id": report.run_id, "run_key": run_key, "table": report.table,
        "schema_version": report.schema_version, "input_rows": report.input_rows,
        "valid_rows": report.valid_rows, "quarantined_rows": report.quarantined_rows,
        "condemned_rows": report.condemned_rows, "quarantine_by_reason": report.quarantine_by_reason,
        "rejected_files": [{k: f[k] for k in ("key", "line_no", "reason", "message")}
                           for f in report.rejected_files],
        "started_at": report.started_at, "finished_at": report.finished_at,
        "partitions": [p["partition"] for p in report.partitions], "sources": report.sources,
        "rejects_key": report.rejects_key,
    }
