"""Iceberg benchmark (`make bench`): appends vs plain Parquet, and pruning.

Measured in one run on the same 1,000,000 retail-shaped rows:
  (a) reference: pyarrow writes the rows as plain Parquet partitioned by day;
  (b) lakeline appends them to an Iceberg table partitioned by days(order_date) in 10 batches
      through `append_batch` (exactly-once bookkeeping included);
then the same aggregate query over the Iceberg table without a filter and with a one-day
filter (pushed into scan planning), reporting files planned and seconds.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.dataset as pads

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from results import record

from lakeline.config import load_settings
from lakeline.lake import Lake, init_home
from lakeline.sql import connect, plan_query
from lakeline.tables.iceberg import append_batch, ensure_table

SCHEMA = pa.schema([("order_id", pa.int64()), ("order_date", pa.date32()), ("customer_id", pa.int64()),
                    ("qty", pa.int32()), ("unit_price", pa.float64()), ("sales_amount", pa.float64())])


def rows(n: int, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    days = rng.integers(0, 90, n)
    qty = rng.integers(1, 10, n).astype(np.int32)
    price = np.round(rng.uniform(1, 200, n), 2)
    return pa.table({
        "order_id": np.arange(n, dtype=np.int64),
        "order_date": pa.array(np.datetime64("2025-07-01") + days.astype("timedelta64[D]")).cast(pa.date32()),
        "customer_id": rng.integers(1, 500, n), "qty": qty, "unit_price": price, "sales_amount": qty * price,
    }, schema=SCHEMA)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--batches", type=int, default=10)
    args = ap.parse_args()
    data = rows(args.rows)
    work = Path(tempfile.mkdtemp(prefix="lakeline-bench-iceberg-"))
    try:
        t = time.perf_counter()
        day = pa.compute.strftime(data["order_date"], format="%Y-%m-%d")
        pads.write_dataset(data.append_column("dt", day), work / "plain", format="parquet",
                           partitioning=["dt"], partitioning_flavor="hive",
                           file_options=pads.ParquetFileFormat().make_write_options(compression="zstd"))
        plain_s = time.perf_counter() - t

        home = work / "lake"
        init_home(home)
        lake = Lake.open(load_settings(home))
        ensure_table(lake, "bench.orders", SCHEMA, [("order_date", "day")])
        step = -(-args.rows // args.batches)
        t = time.perf_counter()
        for i in range(args.batches):
            append_batch(lake, "bench.orders", data.slice(i * step, step), f"batch-{i}")
        iceberg_s = time.perf_counter() - t

        con = connect(lake)
        timings = {}
        for label, where in (("no filter", ""), ("one day", " WHERE order_date = DATE '2025-08-15'")):
            q = f"SELECT count(*), sum(sales_amount) FROM bench.orders{where}"
            t = time.perf_counter()
            sql, plans = plan_query(lake, con, q)
            con.execute(sql).fetchall()
            timings[label] = (time.perf_counter() - t, plans[0]["planned_files"], plans[0]["total_files"])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    ratio = (args.rows / iceberg_s) / (args.rows / plain_s)
    print(f"\niceberg benchmark, {args.rows:,} rows in {args.batches} batches, 2 CPUs")
    print(f"  (a) plain Parquet by day (pyarrow)   {plain_s:7.2f} s  {args.rows / plain_s:12,.0f} rows/s")
    rate = args.rows / iceberg_s
    print(f"  (b) Iceberg append_batch x{args.batches:<3}        {iceberg_s:7.2f} s  {rate:12,.0f} rows/s")
    print(f"  ratio (b)/(a) rows/s                 {ratio:7.2f}")
    for label, (secs, planned, total) in timings.items():
        print(f"  query {label:<10} {secs:6.3f} s   files planned {planned} of {total}")
    bench = f"iceberg {args.rows:,}"  # the make bench summary (bench/summary.py)
    record(bench, f"append_batch x{args.batches} rows/s", rate, "rows/s", args.rows / plain_s, ratio,
           "—", None, "vs plain Parquet by day (pyarrow)")
    for label, (secs, planned, total) in timings.items():
        record(bench, f"query, {label}", secs, "s", None, None, "—", None,
               f"files planned {planned} of {total}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
