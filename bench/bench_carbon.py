"""Carbon benchmark (`make bench`): N activity rows through the whole carbon workflow.

Measured in one run on the same generated CSV (default 1,000,000 rows):
  (a) reference: DuckDB alone reads the CSV, joins the factor table and writes the CO2e
      columns to one Parquet file (no quality gate, lineage, batches or state);
  (b) lakeline: `put` the file and `run` the carbon workflow to its end — profile + rules,
      gate, split into batches of 1,000, the Map of calculations, one lineage node per
      record, results in the state store, publish to gold.emissions.
Prints seconds, records/s, peak RSS, and the ratio reference / lakeline.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lakeline import landing, runner
from lakeline.carbon.factors import load_factors
from lakeline.config import load_settings
from lakeline.gen.carbon import write
from lakeline.lake import Lake, init_home
from lakeline.stages.transform import duckdb_connection


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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--batch-size", type=int, default=1000)
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
        settings = load_settings(home, {"carbon.batch_size": args.batch_size,
                                        "carbon.max_concurrency": args.concurrency,
                                        "runner.settle_seconds": 0.0})
        lake = Lake.open(settings)
        t = time.perf_counter()
        lake.store.put_file("landing", "carbon/bench/activities.csv", csv)
        landing.announce(lake, "carbon/bench/activities.csv")
        summary = runner.run(settings)
        lake_s = time.perf_counter() - t
        [report] = [b for b in summary["batch_runs"] if b.get("pipeline") == "carbon"]
        if report["status"] != "SUCCEEDED":
            print(f"lakeline FAILED: {report}")
            return 1
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        nodes = sum(lake.lineage.counts(report["root_id"]).values())
        print(f"reference (DuckDB CSV -> CO2e Parquet): {ref_s:.2f} s ({args.rows / ref_s:,.0f} records/s)")
        print(f"lakeline carbon workflow: {lake_s:.2f} s ({args.rows / lake_s:,.0f} records/s), "
              f"{report['batches']} batches, {report['calculated']:,} calculated, "
              f"{report['failed']:,} rejected, "
              f"{nodes:,} lineage nodes, peak RSS {rss_mb:.0f} MB")
        print(f"ratio reference / lakeline: {ref_s / lake_s:.2f}")
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
