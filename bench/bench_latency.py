"""Latency benchmark (`make bench`): how soon a file `put` into a served lake can be queried.

One run, in a fresh lake in a temporary directory:

1. ``lakeline init HOME``, then ``lakeline --home HOME serve`` started as a subprocess (its
   log goes to ``HOME/serve.log``);
2. one warm-up file (not counted: serve's first file also pays its DuckDB start-up), then
   ``--files`` times (default 20): write a ``--records``-record (default 1,000) shipments JSON
   lines file with ``lakeline.pipelines.shipments.gen.write`` (its own seed; not timed),
   ``lakeline.put(lake, FILE, pipeline="shipments")`` in this process -- the clock starts when
   ``put`` returns -- then poll ``silver.shipments`` every ``--poll`` seconds with an in-process
   DuckDB ``count(*)`` over the table's Parquet files (the location ``lakeline sql`` reads,
   from ``lakeline.sql.discover``) until the table holds this file's records too. The latency
   is the time from ``put``'s return to the first poll that sees them;
3. at the end ``lakeline.query`` must count every record (otherwise exit 1);
4. idle CPU: after the last file, serve is left alone for ``--settle`` seconds, then the CPU
   time it (and any child) uses over ``--idle`` seconds (default 10) is read from /proc via
   psutil and printed as a percentage of one core.

Printed: p50, p95 and max latency against the target (p50 ≤ 0.5 s), PASS/MISS, the put time,
the idle CPU against its bound (< 5 % of a core), and the reference of this run: the same
poll's own cost (one DuckDB count), which bounds the measurement's resolution. Exit 0 whether
the target is met or not (a report), 1 when serve dies or a count is wrong, 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import psutil
from results import record

import lakeline
from lakeline.pipelines.registry import registry
from lakeline.pipelines.shipments import gen
from lakeline.sql import discover

TARGET_P50_S = 0.5
IDLE_CPU_MAX_PCT = 5.0
TABLE = "silver.shipments"


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values``, linear between the closest ranks."""
    s = sorted(values)
    if len(s) == 1:
        return s[0]
    pos = q * (len(s) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def lakeline_exe() -> str:
    exe = Path(sys.executable).with_name("lakeline")
    return str(exe) if exe.exists() else shutil.which("lakeline") or "lakeline"


def cpu_seconds(proc: psutil.Process) -> float:
    """User + system CPU seconds of ``proc`` and its live children."""
    total = 0.0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            t = p.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += t.user + t.system
    return total


class Table:
    """Counts the rows of ``silver.shipments`` the cheap way: one DuckDB count over its files."""

    def __init__(self, location: str) -> None:
        self.glob = location.rstrip("/") + "/**/*.parquet"
        self.con = duckdb.connect()

    def count(self) -> int:
        try:
            row = self.con.execute("SELECT count(*) FROM read_parquet(?)", [self.glob]).fetchone()
        except duckdb.Error:  # no file yet
            return 0
        return int(row[0]) if row else 0


def wait_for(table: Table, expected: int, serve: subprocess.Popen[bytes], *, poll: float,
             timeout: float) -> float:
    """Poll until ``table`` holds ``expected`` rows; the seconds from the call to that poll."""
    start = time.perf_counter()
    while True:
        n = table.count()
        now = time.perf_counter()
        if n >= expected:
            return now - start
        if serve.poll() is not None:
            raise RuntimeError(f"serve exited with status {serve.returncode}")
        if now - start > timeout:
            raise RuntimeError(f"{TABLE} holds {n} rows after {timeout} s, expected {expected}")
        time.sleep(poll)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=20, help="files measured (default 20)")
    ap.add_argument("--records", type=int, default=1000, help="records per file (default 1,000)")
    ap.add_argument("--poll", type=float, default=0.005, help="seconds between polls (default 0.005)")
    ap.add_argument("--idle", type=float, default=10.0, help="seconds of idle CPU measured (default 10)")
    ap.add_argument("--settle", type=float, default=3.0,
                    help="seconds left to serve after the last file before the idle measurement")
    ap.add_argument("--timeout", type=float, default=60.0, help="give up on one file after this long")
    ap.add_argument("--keep", action="store_true", help="keep the temporary lake")
    args = ap.parse_args()
    if args.files < 1 or args.records < 1 or args.poll <= 0 or args.idle < 0 or args.settle < 0:
        ap.error("--files and --records must be >= 1, --poll > 0, --idle and --settle >= 0")

    work = Path(tempfile.mkdtemp(prefix="lakeline-latency-"))
    home = work / "home"
    exe = lakeline_exe()
    subprocess.run([exe, "init", str(home)], check=True, stdout=subprocess.DEVNULL)
    log = (home / "serve.log").open("wb")
    serve = subprocess.Popen([exe, "--home", str(home), "serve"], stdout=log, stderr=subprocess.STDOUT)
    status = 0
    try:
        lake = lakeline.open_lake(home)
        specs = [t for _, t in registry(lake.settings).tables()]

        def put(i: int) -> tuple[float, float]:
            """Write file ``i`` (not timed) and put it; (put seconds, perf_counter at its return)."""
            path = work / f"shipments-{i:03d}.jsonl"
            gen.write("shipments", args.records, path, seed=1000 + i)
            t = time.perf_counter()
            lakeline.put(lake, path, pipeline="shipments")
            done = time.perf_counter()
            return done - t, done

        # warm-up: serve's first file pays its imports and DuckDB start-up; it is not counted
        put(0)
        deadline = time.monotonic() + args.timeout
        while not [t for t in discover(lake, specs) if t.name == TABLE]:
            if serve.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{TABLE} did not appear (serve status {serve.poll()})")
            time.sleep(0.05)
        location = next(t.location for t in discover(lake, specs) if t.name == TABLE)
        table = Table(location)
        wait_for(table, args.records, serve, poll=args.poll, timeout=args.timeout)

        # the reference: what one poll costs (the resolution of every latency below)
        costs = []
        for _ in range(20):
            t = time.perf_counter()
            table.count()
            costs.append(time.perf_counter() - t)
        poll_cost = statistics.median(costs)

        latencies: list[float] = []
        puts: list[float] = []
        for i in range(1, args.files + 1):
            put_s, _ = put(i)
            latency = wait_for(table, args.records * (i + 1), serve, poll=args.poll, timeout=args.timeout)
            puts.append(put_s)
            latencies.append(latency)
            print(f"  file {i:2d}: put {put_s:.3f} s, queryable {latency:.3f} s after put returned",
                  flush=True)

        expected = args.records * (args.files + 1)
        counted = lakeline.query(lake, f"SELECT count(*) AS n FROM {TABLE}").column("n")[0].as_py()
        if counted != expected:
            print(f"FAIL: lakeline.query counts {counted} rows in {TABLE}, expected {expected}")
            status = 1

        time.sleep(args.settle)
        proc = psutil.Process(serve.pid)
        c0, t0 = cpu_seconds(proc), time.perf_counter()
        time.sleep(args.idle)
        c1, t1 = cpu_seconds(proc), time.perf_counter()
        idle_pct = 100.0 * (c1 - c0) / (t1 - t0) if args.idle > 0 else float("nan")
    except Exception as exc:
        print(f"FAIL: {exc}; serve's log: {home / 'serve.log'}")
        serve.terminate()
        serve.wait(30)
        print((home / "serve.log").read_text()[-3000:])
        return 1
    finally:
        if serve.poll() is None:
            serve.terminate()
            try:
                serve.wait(30)
            except subprocess.TimeoutExpired:
                serve.kill()
        log.close()
        if not args.keep and status == 0:
            shutil.rmtree(work, ignore_errors=True)

    p50 = statistics.median(latencies)
    p95 = percentile(latencies, 0.95)
    worst = max(latencies)
    passed = p50 <= TARGET_P50_S
    idle_ok = idle_pct < IDLE_CPU_MAX_PCT
    print(f"\nlatency: {args.files} files of {args.records:,} shipments records, put -> queryable in "
          f"{TABLE} under `lakeline serve`, {os.cpu_count()} CPUs")
    print(f"  p50 {p50:.3f} s   p95 {p95:.3f} s   max {worst:.3f} s   min {min(latencies):.3f} s   "
          f"target p50 <= {TARGET_P50_S} s: {'PASS' if passed else 'MISS'}")
    print(f"  put (in process, lakeline.put): p50 {statistics.median(puts):.3f} s")
    print(f"  reference: one poll (DuckDB count over the table's files) {poll_cost * 1000:.1f} ms, "
          f"polled every {args.poll * 1000:.0f} ms")
    print(f"  serve idle CPU: {idle_pct:.2f} % of one core over {args.idle:.0f} s "
          f"(bound < {IDLE_CPU_MAX_PCT:.0f} %): {'PASS' if idle_ok else 'MISS'}")
    if args.keep:
        print(f"  kept {work}")

    note = f"{args.files} files x {args.records:,} records"
    record("latency", "put -> queryable p50", p50, "s", None, None, f"≤ {TARGET_P50_S} s", passed, note)
    record("latency", "put -> queryable p95", p95, "s", None, None, "—", None, note)
    record("latency", "serve idle CPU", idle_pct, "% of a core", None, None,
           f"< {IDLE_CPU_MAX_PCT:.0f} %", idle_ok, f"over {args.idle:.0f} s")
    return status


if __name__ == "__main__":
    sys.exit(main())
