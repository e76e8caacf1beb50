"""SQL start-up benchmark (`make bench`): how soon `lakeline sql` answers (issue 18, part 4).

Builds two lakes in a temporary folder with the `lakeline` command: an empty one, and one with
a shipments table of --records records (`lakeline gen | put | run`) and an Iceberg table
(retail_silver.orders_silver, three snapshots). Then, in one run, round-robin so that drift in
the machine's load hits every command alike (one untimed warm-up round first, then the median
of --rounds rounds), each a fresh process timed from start to exit:

  lakeline sql "SELECT 1"            on the empty lake and on the lake with the Iceberg table
  python -c 'import duckdb; …'       the reference: DuckDB's own SELECT 1 in a fresh interpreter
  lakeline sql "<small query>"       count and sum over silver.shipments (table output)
  lakeline sql "<small query>" --json
  python -c 'import duckdb; …'       the reference: the same query by DuckDB over the same files
  lakeline sql "<Iceberg query>"     for information: a query that opens the Iceberg catalog

Each process's CPU time (user + system) is printed beside its wall time: on a busy machine it
moves less than wall time does.

Targets: `SELECT 1` ≤ 0.5 s on any lake; the small query ≤ 2x DuckDB's own time. Nothing is
asserted; the figures are printed and recorded for the `make bench` summary (bench/results.py).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from results import record

LAKELINE = str(Path(sys.executable).with_name("lakeline"))
SELECT_1_TARGET_S = 0.5
RATIO_TARGET = 2.0
SMALL_QUERY = "SELECT count(*) AS n, sum(weight_kg) AS kg FROM silver.shipments"
ICEBERG_TABLE = "retail_silver.orders_silver"
ICEBERG_QUERY = f"SELECT count(*) AS n, sum(sales_amount) AS s FROM {ICEBERG_TABLE}"
DUCKDB_SELECT_1 = "import duckdb; print(duckdb.sql('SELECT 1').fetchall())"
DUCKDB_QUERY = (
    "import duckdb; print(duckdb.sql(\"SELECT count(*) AS n, sum(weight_kg) AS kg FROM read_parquet("
    "'{glob}', hive_partitioning = true, union_by_name = true)\").fetchall())"
)


def sh(*args: str, env: dict[str, str] | None = None) -> str:
    """Run a command, fail loudly, return its stdout."""
    p = subprocess.run(list(args), capture_output=True, text=True, env=env)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: exit {p.returncode}\n{p.stdout}\n{p.stderr}")
    return p.stdout


def build(root: Path, records: int) -> tuple[Path, Path]:
    """The empty lake and the lake with shipments and an Iceberg table."""
    empty, full = root / "empty", root / "lake"
    sh(LAKELINE, "init", str(empty))
    sh(LAKELINE, "init", str(full))
    data = root / "shipments.jsonl"
    sh(LAKELINE, "gen", "shipments", "--count", str(records), "--out", str(data))
    sh(LAKELINE, "--home", str(full), "put", str(data), "--pipeline", "shipments")
    sh(LAKELINE, "--home", str(full), "run")
    _iceberg(full)
    return empty, full


def _iceberg(home: Path) -> None:
    import pyarrow as pa

    from lakeline.config import load_settings
    from lakeline.lake import Lake
    from lakeline.tables.iceberg import append_batch, ensure_table

    schema = pa.schema([pa.field("order_id", pa.int64()), pa.field("order_date", pa.date32()),
                        pa.field("sales_amount", pa.float64())])
    lake = Lake.open(load_settings(home))
    ensure_table(lake, ICEBERG_TABLE, schema, [("order_date", "day")])
    for d in range(1, 4):
        data = pa.table({"order_id": [d * 10, d * 10 + 1], "order_date": [dt.date(2024, 1, d)] * 2,
                         "sales_amount": [1.5, 2.5]}, schema=schema)
        append_batch(lake, ICEBERG_TABLE, data, f"b{d}")


def timed(args: list[str], env: dict[str, str]) -> Callable[[], tuple[float, float]]:
    """A measurement: run ``args`` as a fresh process, return its wall seconds and its CPU
    seconds (user + system: less sensitive than wall time to what else the machine runs)."""
    def once() -> tuple[float, float]:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        p = subprocess.run(args, capture_output=True, text=True, env=env)
        wall = time.perf_counter() - t
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if p.returncode != 0:
            raise RuntimeError(f"{' '.join(args)}: exit {p.returncode}\n{p.stderr}")
        return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return once


def main() -> None:
    """Build the lakes, measure, print the table, record the figures."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=10_000, help="shipments records in the small table")
    ap.add_argument("--rounds", type=int, default=5, help="timed rounds (the median is reported)")
    args = ap.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAKELINE")}
    with tempfile.TemporaryDirectory(prefix="bench-sql-") as tmp:
        empty, full = build(Path(tmp), args.records)
        glob = str(full / "zones" / "silver" / "shipments" / "**" / "*.parquet")
        checks = [sh(LAKELINE, "--home", str(full), "sql", SMALL_QUERY, "--json", env=env),
                  sh(sys.executable, "-c", DUCKDB_QUERY.format(glob=glob), env=env)]
        cases = {
            "select 1, empty lake": timed([LAKELINE, "--home", str(empty), "sql", "SELECT 1"], env),
            "select 1, lake with Iceberg": timed([LAKELINE, "--home", str(full), "sql", "SELECT 1"], env),
            "select 1, DuckDB": timed([sys.executable, "-c", DUCKDB_SELECT_1], env),
            "small query, lakeline": timed([LAKELINE, "--home", str(full), "sql", SMALL_QUERY], env),
            "small query, lakeline --json": timed(
                [LAKELINE, "--home", str(full), "sql", SMALL_QUERY, "--json"], env),
            "small query, DuckDB": timed([sys.executable, "-c", DUCKDB_QUERY.format(glob=glob)], env),
            "Iceberg query, lakeline": timed([LAKELINE, "--home", str(full), "sql", ICEBERG_QUERY], env),
        }
        for measure in cases.values():  # warm-up: the OS page cache, .pyc files
            measure()
        samples: dict[str, list[float]] = {name: [] for name in cases}
        cpu: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(args.rounds):
            for name, measure in cases.items():
                wall, used = measure()
                samples[name].append(wall)
                cpu[name].append(used)
    med = {name: statistics.median(s) for name, s in samples.items()}
    med_cpu = {name: statistics.median(s) for name, s in cpu.items()}
    ratio = med["small query, lakeline"] / med["small query, DuckDB"]
    ratio_json = med["small query, lakeline --json"] / med["small query, DuckDB"]
    print(f"lakeline sql start-up ({args.records:,} shipments records; median of {args.rounds} rounds, "
          f"each a fresh process; python {sys.version.split()[0]})")
    print(f"  lakeline: {checks[0].strip()}  DuckDB: {checks[1].strip()}")
    print(f"  {'measurement':34} {'median s':>9} {'min s':>7} {'max s':>7} {'CPU s':>7}")
    for name, s in samples.items():
        print(f"  {name:34} {med[name]:9.3f} {min(s):7.3f} {max(s):7.3f} {med_cpu[name]:7.3f}")
    worst = max(med["select 1, empty lake"], med["select 1, lake with Iceberg"])
    print(f"  select 1 (worst lake) {worst:.3f} s, target ≤ {SELECT_1_TARGET_S} s: "
          f"{'PASS' if worst <= SELECT_1_TARGET_S else 'MISS'}")
    ratio_cpu = med_cpu["small query, lakeline"] / med_cpu["small query, DuckDB"]
    print(f"  small query: lakeline / DuckDB = {ratio:.2f}x (--json {ratio_json:.2f}x; CPU time "
          f"{ratio_cpu:.2f}x), target ≤ {RATIO_TARGET}x: {'PASS' if ratio <= RATIO_TARGET else 'MISS'}")
    note = f"{args.records:,} records, median of {args.rounds}"
    duck = round(med["small query, DuckDB"], 3)
    for name in ("select 1, empty lake", "select 1, lake with Iceberg"):
        record("sql start-up", name, round(med[name], 3), "s", round(med["select 1, DuckDB"], 3), None,
               f"≤ {SELECT_1_TARGET_S} s", med[name] <= SELECT_1_TARGET_S, note)
    table, as_json = round(med["small query, lakeline"], 3), round(med["small query, lakeline --json"], 3)
    record("sql start-up", "small query, lakeline / DuckDB", table, "s", duck, round(ratio, 2),
           f"≤ {RATIO_TARGET}x", ratio <= RATIO_TARGET, note)
    record("sql start-up", "small query --json, lakeline / DuckDB", as_json, "s", duck, round(ratio_json, 2),
           "—", None, note)
    cpu_ll, cpu_duck = round(med_cpu["small query, lakeline"], 3), round(med_cpu["small query, DuckDB"], 3)
    record("sql start-up", "small query CPU time, lakeline / DuckDB", cpu_ll, "s", cpu_duck,
           round(ratio_cpu, 2), "—", None, note)
    iceberg = round(med["Iceberg query, lakeline"], 3)
    record("sql start-up", "Iceberg query, lakeline", iceberg, "s", None, None, "—", None, note)

if __name__ == "__main__":
    main()
