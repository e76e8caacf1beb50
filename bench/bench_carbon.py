"""Carbon benchmark (`make bench`): N activity rows through the whole carbon workflow.

Measured in one run on the same generated CSV (default 1,000,000 rows):
  (a) reference: DuckDB alone reads the CSV, joins the factor table and writes the CO2e
      columns to one Parquet file (no quality gate, lineage, batches or state);
  (b) lakeline: `put` the file and `run` the carbon workflow to its end — profile + rules,
      gate, split into batches of 1,000, the Map of calculations, one lineage node per
      record, results in the state store, publish to gold.emissions.
lakeline runs as the CLI in child processes (`lakeline put`, `lakeline run`), so its peak RSS
is its own. Prints seconds, records/s, peak RSS, and the ratio reference / lakeline.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

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


def _cli(*args: str) -> tuple[float, str, int]:
    """Run the lakeline CLI in a child process; (seconds, stdout, peak RSS in bytes).

    The peak is sampled with psutil every 50 ms (``RUSAGE_CHILDREN`` would count this
    process's own pages, which a freshly forked child shares until it execs)."""
    import psutil

    exe = str(Path(sys.executable).parent / "lakeline")
    t = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen([exe, *args], stdout=out, stderr=err)
        watched = psutil.Process(proc.pid)
        peak = 0
        while proc.poll() is None:
            with contextlib.suppress(psutil.Error):
                peak = max(peak, watched.memory_info().rss)
            time.sleep(0.05)
        seconds = time.perf_counter() - t
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    if proc.returncode:
        raise SystemExit(f"lakeline {' '.join(args)} failed ({proc.returncode}):\n{stderr[-3000:]}")
    return seconds, stdout, peak


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
        (home / "lakeline.toml").write_text(
            f"[carbon]\nbatch_size = {args.batch_size}\nmax_concurrency = {args.concurrency}\n"
            "[runner]\nsettle_seconds = 0.0\n")
        put_s, _, put_rss = _cli("--home", str(home), "put", str(csv), "--pipeline", "carbon")
        run_s, out, run_rss = _cli("--home", str(home), "run", "--json")
        rss_mb = max(put_rss, run_rss) / 2**20
        lake_s = put_s + run_s
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
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
