"""Quality rules on one partition (``dt``) of a streaming table, on the DQ engine (:mod:`lakeline.dq`).

The rules come from the pipeline (the specs §3 expectations are the ``shipments`` pipeline
file's ``rules``); ``[pipelines.<p>.dq.<table>] rules`` in the config replaces them.

The result ``{success, record_type, dt, source, run_id, generated_at, results}`` (plus the
engine's ``ruleset`` and ``statistics``) is written to
``gold/_quality/results/<record_type>/dt=<dt>/run_<run_id>.json`` with the HTML report beside it
(``run_<run_id>.html``); a failure writes the quarantine marker
``silver/_quarantine/<record_type>/dt=<dt>/<run_id>.json``.
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson

from lakeline.dq.engine import evaluate, evaluate_groups
from lakeline.dq.report import render_html
from lakeline.dq.rules import Ruleset
from lakeline.errors import NotFoundError, UsageError
from lakeline.lake import Lake
from lakeline.sql import connect
from lakeline.sqltext import quote
from lakeline.tables.schema import Field, sql_type

if TYPE_CHECKING:
    from lakeline.dq.engine import DqResult

RESULT_PREFIX = "_quality/results"
QUARANTINE_PREFIX = "_quarantine"
_DT = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def partition_relation(lake: Lake, table: str, dt: str, fields: tuple[Field, ...] = ()) -> str:
    """The SQL relation of ``silver/<table>/dt=<dt>/`` (empty but typed by ``fields`` if no files)."""
    if not _DT.match(dt):
        raise UsageError(f"dt must be YYYY-MM-DD, got {dt!r}")
    listed = lake.store.list("silver", f"{table}/dt={dt}/")
    files = [i.key for i in listed if i.key.endswith(".parquet")]
    if files:  # dt is checked above, so it is safe inline (a relation is SQL text)
        return f"(SELECT * FROM silver.{quote(table)} WHERE CAST(dt AS VARCHAR) = '{dt}')"
    cols = ", ".join(f"CAST(NULL AS {sql_type(f.type)}) AS {quote(f.name)}" for f in fields) or "NULL AS none"
    return f"(SELECT {cols} WHERE false)"


def run_expectations(lake: Lake, table: str, dt: str, run_id: str, ruleset: Ruleset, *,
                     fields: tuple[Field, ...] = (), profile: bool = False,
                     con: Any = None, result_prefix: str = RESULT_PREFIX) -> dict[str, Any]:
    """Evaluate ``ruleset`` on ``silver/<table>/dt=<dt>/`` and store the result and report
    (under ``result_prefix`` in gold, checked by the caller).
    ``con``: a connection from :func:`lakeline.sql.connect` to reuse (kept open)."""

    own = con is None
    con = connect(lake) if own else con
    try:
        relation = partition_relation(lake, table, dt, fields)
        source = lake.store.scan_uri("silver", f"{table}/dt={dt}/")
        dq = evaluate(con, relation, ruleset, source=source, run_id=run_id, profile=profile)
    finally:
        if own:
            con.close()
    return _store(lake, table, dt, run_id, dq, result_prefix)


#: rows one grouped pass may cover: the uniqueness rule holds the distinct values of the
#: whole pass in memory (about 70 bytes per shipment_id), so bigger runs take several passes.
GROUP_PASS_ROWS = 2_000_000


def run_expectations_many(lake: Lake, record_type: str, dts: list[str], run_id: str, ruleset: Ruleset, *,
                          con: Any) -> dict[str, dict[str, Any]]:
    """:func:`run_expectations` on several partitions of ``record_type`` that hold files, in
    as few passes as :data:`GROUP_PASS_ROWS` allows (``con`` from :func:`lakeline.sql.connect`);
    results by ``dt``.

    On a local store the partitions' file footers give what they hold (rows, nulls, bounds:
    the writer's own statistics) and the data pass computes only the rest
    (:func:`~lakeline.dq.engine.evaluate_groups` with ``files``); the results and reports are
    written in parallel (each write is synced: the disk waits overlap)."""

    for dt in dts:
        if not _DT.match(dt):
            raise UsageError(f"dt must be YYYY-MM-DD, got {dt!r}")
    table = f'silver."{record_type}"'
    files = _local_files(lake, record_type, dts)
    if files is not None:
        sizes = _footer_rows(con, files)
    else:
        marks = ", ".join("?" * len(dts))
        sizes = dict(con.execute(  # count(*) on Parquet reads only the footers
            f"SELECT CAST(dt AS VARCHAR), count(*) FROM {table} WHERE CAST(dt AS VARCHAR) IN ({marks}) "
            "GROUP BY 1", dts).fetchall()) if dts else {}
    out: dict[str, dict[str, Any]] = {}
    with ThreadPoolExecutor(4, thread_name_prefix="lakeline-dq") as pool:
        for batch in _batches(dts, sizes, GROUP_PASS_ROWS):
            sources = {dt: lake.store.scan_uri("silver", f"{record_type}/dt={dt}/") for dt in batch}
            results = evaluate_groups(con, table, ruleset, column="dt", groups=batch, sources=sources,
                                      run_id=run_id, files=files)
            stored = {dt: pool.submit(_store, lake, record_type, dt, run_id, dq)
                      for dt, dq in results.items()}
            out.update((dt, f.result()) for dt, f in stored.items())
    return out


def _local_files(lake: Lake, record_type: str, dts: list[str]) -> dict[str, list[str]] | None:
    """The Parquet files of each partition as local paths, None when the store is not local."""
    out: dict[str, list[str]] = {}
    for dt in dts:
        for info in lake.store.list("silver", f"{record_type}/dt={dt}/"):
            if not info.key.endswith(".parquet"):
                continue
            path = lake.store.local_path("silver", info.key)
            if path is None:
                return None
            out.setdefault(dt, []).append(str(path))
    return out


def _footer_rows(con: Any, files: dict[str, list[str]]) -> dict[str, int]:
    """Rows of each partition, from its files' footers."""
    listed = [(dt, f) for dt, fs in files.items() for f in fs]
    if not listed:
        return {}
    paths = ", ".join("'" + f.replace("'", "''") + "'" for _, f in listed)
    rows = dict(con.execute(f"SELECT file_name, sum(row_group_num_rows) FROM parquet_metadata([{paths}]) "
                            "WHERE column_id = 0 GROUP BY 1").fetchall())
    out: dict[str, int] = {}
    for dt, f in listed:
        out[dt] = out.get(dt, 0) + int(rows.get(f, 0))
    return out


def _batches(dts: list[str], sizes: dict[str, int], limit: int) -> list[list[str]]:
    """``dts`` in order, packed into batches of at most ``limit`` rows (a bigger partition
    is a batch of its own)."""
    batches: list[list[str]] = []
    rows = 0
    for dt in dts:
        n = int(sizes.get(dt, 0))
        if batches and rows + n <= limit:
            batches[-1].append(dt)
            rows += n
        else:
            batches.append([dt])
            rows = n
    return batches


def _store(lake: Lake, record_type: str, dt: str, run_id: str, dq: DqResult,
           result_prefix: str = RESULT_PREFIX) -> dict[str, Any]:
    """Write a partition's result JSON and HTML report to gold; the result with their keys."""
    result: dict[str, Any] = {
        "success": dq.success, "record_type": record_type, "dt": dt, "source": dq.source, "run_id": run_id,
        "generated_at": dq.generated_at, "results": dq.results, "ruleset": dq.ruleset,
        "statistics": dq.statistics,
    }
    if dq.profile is not None:
        result["profile"] = dq.profile
    key = f"{result_prefix}/{record_type}/dt={dt}/run_{run_id}.json"
    report_key = key.removesuffix(".json") + ".html"
    lake.store.put("gold", key, orjson.dumps(result, option=orjson.OPT_INDENT_2))
    lake.store.put("gold", report_key, render_html(result).encode("utf-8"))
    result["result_key"] = key
    result["report_key"] = report_key
    return result


def quarantine(lake: Lake, record_type: str, dt: str, run_id: str, result: dict[str, Any]) -> str:
    """Write the quarantine marker for a failed partition; returns its silver key."""
    if not record_type or not dt:
        raise NotFoundError("quarantine needs record_type and dt")
    key = f"{QUARANTINE_PREFIX}/{record_type}/dt={dt}/{run_id}.json"
    failed = [r for r in result.get("results", []) if not r.get("success")]
    lake.store.put("silver", key, orjson.dumps({
        "record_type": record_type, "dt": dt, "run_id": run_id, "failed_expectations": failed,
        "quarantined_at": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
    }, option=orjson.OPT_INDENT_2))
    return key
