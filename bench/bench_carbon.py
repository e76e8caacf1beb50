"""Carbon benchmark (`make bench`): N activity rows through the whole carbon workflow.

Measured in one run on the same generated CSV (default 1,000,000 rows):
  (a) reference: DuckDB alone reads the CSV, joins the factor table and writes the CO2e
      columns to one Parquet file (no quality gate, lineage, batches or state);
  (b) lakeline: `put` the file and `run` the carbon workflow to its end — profile + rules,
      gate, split into batches of 1,000, the Map of calculations, one lineage node per
      record, results in the state store, publish to gold.emissions.
lakeline runs as the CLI in child processes (`lakeline put`, `lakeline run`) of a fresh helper
process (``bench_shipments.measure``), so its peak RSS is its own. Prints seconds, records/s,
peak RSS, and the ratio reference / lakeline.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lakeline.config import load_settings
from lakeline.duck import duckdb_connection
from lakeline.lake import Lake, init_home
from lakeline.pipelines.carbon.factors import load_factors
from lakeline.pipelines.carbon.gen import write

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_shipments import lakeline_exe, measure
from results import record


def reference(csv: Path, out: Path) -> float:
    t = time.perf_counter()
    con = duckdb_connection()
    con.register("f", load_factors().table)
    con.execute(f"""
        COPY (SELECT s.*, TRY_CAST(raw_data AS DOUBLE) * f.co2_kg / 1000 AS co2,
                     TRY_CAST(raw_data AS DOUBLE) * (f.co2_kg + 25 * f.ch4_kg + 298 * f.n2o_kg) / 1000 AS ar4,
                     TRY_CAST(raw_data AS DOUBLE) * (f.co2_kg + 28 * f.ch4_kg + 265 * f.n2o_kg) / 1000 AS ar5
              FROM read_csv('{csv}', header = true, all_varchar = true) s
              JOIN f ON lower(f.category) = lower(s.category) AND lower(f.activity) = lower(s.activity))
        TO '{out}' (FORMAT parquet, COMPRESSION zstd)""")
    con.close()
    return time.perf_counter() - t


def engine_iteration_ms(home: Path, items: int = 1000) -> tuple[float, float]:
    """The workflow engine's own cost per Map iteration (a task that does nothing), in ms of
    wall time: with the lake's durable state store (history and kept outputs in SQLite, as
    `lakeline run` drives carbon) and with no store."""
    from lakeline.workflow.engine import TaskRegistry, run_definition

    machine = {"StartAt": "M", "States": {"M": {
        "Type": "Map", "ItemsPath": "$.items", "MaxConcurrency": 4, "End": True,
        "ItemProcessor": {"ProcessorConfig": {"Mode": "INLINE"}, "StartAt": "T",
                          "States": {"T": {"Type": "Task", "Resource": "noop", "End": True}}}}}}
    tasks = TaskRegistry({"noop": lambda payload: {"ok": True}})
    batch = {"items": [{"storage_location": f"k{i}", "data_lineage": {"root_id": "r", "parent_id": str(i)}}
                       for i in range(items)]}
    out = []
    for store in (Lake.open(load_settings(home)).state, None):
        t = time.perf_counter()
        run_definition(machine, batch, tasks=tasks, store=store, max_workers=4)
        out.append((time.perf_counter() - t) / items * 1000)
    return out[0], out[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--batch-size", type=int, default=20_000)
    ap.add_argument("--concurrency", type=int, default=4)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="lakeline-bench-carbon-"))
    try:
        csv = work / "activities.csv"
        t = time.perf_counter()
        write(args.rows, csv, seed=7, dirty_rate=0.001)
        mb = csv.stat().st_size / 1e6
        print(f"generated {args.rows:,} rows ({mb:.0f} MB) in {time.perf_counter() - t:.1f} s")
        ref_s = reference(csv, work / "reference.parquet")
        home = work / "lake"
        init_home(home)
        (home / "lakeline.toml").write_text(
            f"[pipelines.carbon]\nbatch_size = {args.batch_size}\nmax_concurrency = {args.concurrency}\n"
            "[runner]\nsettle_seconds = 0.0\n")
        exe = str(lakeline_exe())
        m = measure([("put", [exe, "--home", str(home), "put", str(csv), "--pipeline", "carbon"]),
                     ("run", [exe, "--home", str(home), "run", "--json"])], work / "logs")
        rss_mb, lake_s = m.max_rss_mb, m.total_seconds
        out = (work / "logs" / "1.out").read_text()
        [report] = [b for b in json.loads(out)["batch_runs"] if b.get("pipeline") == "carbon"]
        if report["status"] != "SUCCEEDED":
            print(f"lakeline FAILED: {report}")
            return 1
        lake = Lake.open(load_settings(home))
        nodes = sum(lake.lineage.counts(report["root_id"]).values())
        print(f"reference (DuckDB CSV -> CO2e Parquet): {ref_s:.2f} s ({args.rows / ref_s:,.0f} records/s)")
        print(f"lakeline put + run (carbon workflow): {lake_s:.2f} s ({args.rows / lake_s:,.0f} records/s), "
              f"{report['batches']} batches of {args.batch_size}, {report['calculated']:,} calculated, "
              f"{report['failed']:,} rejected, {nodes:,} lineage nodes, peak RSS {rss_mb:.0f} MB")
        print(f"ratio reference / lakeline: {ref_s / lake_s:.2f}")
        durable_ms, memory_ms = engine_iteration_ms(home)
        print(f"workflow engine per Map iteration (a task doing nothing, 1,000 iterations): "
              f"{durable_ms:.2f} ms with the durable state store, {memory_ms:.2f} ms in memory")
        bench = f"carbon {args.rows:,}"  # the make bench summary (bench/summary.py)
        record(bench, "put+run records/s", args.rows / lake_s, "records/s", args.rows / ref_s, ref_s / lake_s,
               "≥ 0.25", ref_s / lake_s >= 0.25, f"batches of {args.batch_size}; vs DuckDB alone")
        record(bench, "lakeline peak RSS", rss_mb, "MB", None, None, "≤ 1024 MB", rss_mb <= 1024)
        record(bench, "engine ms per Map iteration", durable_ms, "ms", memory_ms, None, "—", None,
               "reference: the engine with no state store")
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
