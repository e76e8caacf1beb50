"""totesys benchmark (`make bench`): extract + process + load of a database with 1,000,000 sales
orders (1.75 M source rows with purchase orders, transactions and payments).

The source and the warehouse are fresh PostgreSQL databases on 127.0.0.1:5432 (dropped at the
end); ``--sqlite`` uses a SQLite source file instead. Generating the source is timed apart. For
each step it prints seconds and source records per second, then the total and the peak RSS of
this process (psutil, sampled every 20 ms; the database servers are not counted).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from results import record

from lakeline.config import load_settings
from lakeline.lake import Lake, init_home
from lakeline.pipelines.totesys import gen as gen
from lakeline.pipelines.totesys.extract import extract
from lakeline.pipelines.totesys.star import process_pending
from lakeline.pipelines.totesys.warehouse import load

PG = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"


class PeakRss:
    """Samples this process's RSS in a background thread."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._proc = psutil.Process()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._proc.memory_info().rss)
            time.sleep(0.02)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()


def _pg_database(purpose: str) -> str:
    import psycopg

    name = f"lakeline_bench_{purpose}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name


def _drop(names: list[str]) -> None:
    import psycopg

    with psycopg.connect(PG, autocommit=True) as conn:
        for name in names:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sales-orders", type=int, default=1_000_000)
    ap.add_argument("--sqlite", action="store_true", help="SQLite source file instead of PostgreSQL")
    ap.add_argument("--chunk-rows", type=int, default=50_000)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="lakeline-bench-totesys-"))
    made: list[str] = []
    try:
        if args.sqlite:
            src = str(work / "totesys.db")
        else:
            made.append(_pg_database("src"))
            src = f"postgresql://postgres@127.0.0.1:5432/{made[-1]}"
        made.append(_pg_database("wh"))
        wh = f"postgresql://postgres@127.0.0.1:5432/{made[-1]}"
        init_home(work / "lake")
        lake = Lake.open(load_settings(work / "lake", {"pipelines.totesys.chunk_rows": args.chunk_rows}))

        t = time.perf_counter()
        counts = gen.create(src, scale=args.sales_orders)
        records = sum(counts.values())
        print(f"source: {'SQLite' if args.sqlite else 'PostgreSQL'}, {args.sales_orders:,} sales orders, "
              f"{records:,} rows in 11 tables (generated in {time.perf_counter() - t:.1f} s)")
        steps: list[tuple[str, float]] = []
        with PeakRss() as rss:
            t = time.perf_counter()
            report = extract(lake, src)
            steps.append(("extract", time.perf_counter() - t))
            assert report.status == "SUCCEEDED", report.error
            assert report.rows == records, (report.rows, records)
            t = time.perf_counter()
            star = process_pending(lake)
            steps.append(("process", time.perf_counter() - t))
            assert star is not None and star["facts"]["fact_sales_order"] == args.sales_orders
            t = time.perf_counter()
            loaded = load(lake, wh)
            steps.append(("load", time.perf_counter() - t))
            assert loaded["tables"]["fact_sales_order"]["rows"] == args.sales_orders
            t = time.perf_counter()
            again = load(lake, wh)
            reload_s = time.perf_counter() - t
            assert all(v["written"] == 0 for v in again["tables"].values())
        for name, secs in steps:
            print(f"{name:8s} {secs:7.2f} s  {records / secs:12,.0f} records/s")
        total = sum(s for _, s in steps)
        print(f"{'total':8s} {total:7.2f} s  {records / total:12,.0f} records/s "
              f"(extract + process + load of {records:,} source rows)")
        print(f"re-load (nothing new) {reload_s:.2f} s; peak RSS {rss.peak / 2**20:,.0f} MiB")
        bench = f"totesys {args.sales_orders:,}"  # the make bench summary (bench/summary.py)
        note = f"{'SQLite' if args.sqlite else 'PostgreSQL'}, {records:,} source rows"
        for name, secs in steps:
            record(bench, f"{name} records/s", records / secs, "records/s", None, None, "—", None, note)
        record(bench, "extract + process + load records/s", records / total, "records/s", None, None,
               "—", None, note)
        record(bench, "peak RSS", rss.peak / 2**20, "MiB", None, None, "—", None)
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if made:
            _drop(made)


if __name__ == "__main__":
    sys.exit(main())
