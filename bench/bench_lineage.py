"""Lineage ledger benchmark (`make bench`): bulk record nodes vs one node at a time.

Each phase runs in its own child process so its peak RSS (``ru_maxrss`` of that child) is its
own:
  bulk    one carbon-shaped root on the local SQLite ledger: RAW_DATA_INPUT, 1,000 batch nodes
          (GLUE_BATCH_SPLIT) and 1,000,000 record nodes (CALCULATION_COMPLETE, 1,000 per batch)
          written by ONE ``record_many`` call (one transaction, ``executemany`` over Arrow
          batches); then the queries `lakeline lineage show` and `trace` make on that root;
  single  10,000 record nodes written with ``record`` (one statement and commit each: the path
          a pipeline must never take for records).
Prints nodes/s for both, the ratio, peak RSS and the database size.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from results import record

PER_BATCH = 1000


def _rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def bulk(n: int, db: Path) -> dict[str, float]:
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    from lakeline.adapters.local.lineage import SqliteLedger
    from lakeline.cli.lineage import build_tree

    led = SqliteLedger(db)
    root = "f" * 32
    led.record(root, root, "RAW_DATA_INPUT", "s3://landing/carbon/activity.csv", node_id="raw")
    batches = max(1, -(-n // PER_BATCH))
    def ids(prefix: str, numbers: np.ndarray) -> pa.Array:
        return pc.binary_join_element_wise(prefix, pa.array(numbers).cast(pa.string()), "")

    batch_ids = ids("batch-", np.arange(batches))
    led.record_many(root, "GLUE_BATCH_SPLIT", pa.table({
        "node_id": batch_ids, "parent_id": pa.array(["raw"] * batches),
        "storage_location": ids("s3://tmp/transformed/part_", np.arange(batches))}))
    t = time.perf_counter()
    idx = np.arange(n)
    nodes = pa.table({
        "node_id": ids("carbon-data-lake-", idx),
        "parent_id": batch_ids.take(pa.array(idx // PER_BATCH)),
        "storage_location": pa.repeat("s3://gold/emissions/", n),
    })
    build_s = time.perf_counter() - t
    t = time.perf_counter()
    written = led.record_many(root, "CALCULATION_COMPLETE", nodes)
    write_s = time.perf_counter() - t
    t = time.perf_counter()
    counts = led.counts(root)
    counts_s = time.perf_counter() - t
    assert written == n and counts["CALCULATION_COMPLETE"] == n, counts
    t = time.perf_counter()
    shown = build_tree(led, root)
    show_s = time.perf_counter() - t
    t = time.perf_counter()
    path = led.trace(f"carbon-data-lake-{n - 1}")
    trace_s = time.perf_counter() - t
    assert [x.action_taken for x in path] == ["CALCULATION_COMPLETE", "GLUE_BATCH_SPLIT", "RAW_DATA_INPUT"]
    assert shown["nodes"] == n + batches + 1
    return {"nodes": n, "seconds": write_s, "build_seconds": build_s, "counts_seconds": counts_s,
            "show_seconds": show_s, "trace_seconds": trace_s, "rss_mb": _rss_mb(),
            "db_mb": db.stat().st_size / 2**20}


def single(n: int, db: Path) -> dict[str, float]:
    from lakeline.adapters.local.lineage import SqliteLedger

    led = SqliteLedger(db)
    root = "e" * 32
    t = time.perf_counter()
    for i in range(n):
        led.record(root, "batch-0", "CALCULATION_COMPLETE", "s3://gold/emissions/",
                   node_id=f"carbon-data-lake-{i}")
    seconds = time.perf_counter() - t
    assert led.counts(root) == {"CALCULATION_COMPLETE": n}
    return {"nodes": n, "seconds": seconds, "rss_mb": _rss_mb()}


def child(phase: str, n: int, work: Path) -> dict[str, float]:
    out = subprocess.run([sys.executable, __file__, "--phase", phase, "--nodes", str(n), "--work", str(work)],
                         capture_output=True, text=True, check=True)
    result: dict[str, float] = json.loads(out.stdout.splitlines()[-1])
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nodes", type=int, default=1_000_000, help="record nodes written in bulk")
    ap.add_argument("--single", type=int, default=10_000, help="record nodes written one by one")
    ap.add_argument("--phase", choices=["bulk", "single"], help=argparse.SUPPRESS)
    ap.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.phase:
        fn = bulk if args.phase == "bulk" else single
        print(json.dumps(fn(args.nodes, args.work / f"{args.phase}.db")))
        return 0
    with tempfile.TemporaryDirectory(prefix="lakeline-bench-lineage-") as tmp:
        b = child("bulk", args.nodes, Path(tmp))
        s = child("single", args.single, Path(tmp))
    bulk_rate = b["nodes"] / b["seconds"]
    single_rate = s["nodes"] / s["seconds"]
    print(f"lineage bulk   : {b['nodes']:,.0f} record nodes via record_many in {b['seconds']:.2f} s "
          f"= {bulk_rate:,.0f} nodes/s (Arrow table built in {b['build_seconds']:.2f} s), "
          f"peak RSS {b['rss_mb']:.0f} MB, lineage.db {b['db_mb']:.0f} MB (WAL not counted)")
    print(f"lineage queries: counts {b['counts_seconds'] * 1000:.0f} ms, show (fan-out summary) "
          f"{b['show_seconds'] * 1000:.0f} ms, trace {b['trace_seconds'] * 1000:.1f} ms on that root")
    print(f"lineage single : {s['nodes']:,.0f} record nodes via record in {s['seconds']:.2f} s "
          f"= {single_rate:,.0f} nodes/s, peak RSS {s['rss_mb']:.0f} MB")
    print(f"lineage ratio  : bulk is {bulk_rate / single_rate:,.1f}x faster per node")
    bench = f"lineage {b['nodes']:,.0f}"  # the make bench summary (bench/summary.py)
    record(bench, "record_many nodes/s", bulk_rate, "nodes/s", single_rate, bulk_rate / single_rate,
           "—", None, "reference: one record() per node")
    record(bench, "trace one record", b["trace_seconds"], "s", None, None, "—", None)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
