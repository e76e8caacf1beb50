"""Lineage ledger benchmark (`make bench`): bulk record nodes vs one node at a time.

Each phase runs in its own child process so its peak RSS (``ru_maxrss`` of that child) is its
own:
  bulk    one carbon-shaped root on the local SQLite ledger: RAW_DATA_INPUT, 1,000 batch nodes
          (GLUE_BATCH_SPLIT) and 1,000,000 record nodes (CALCULATION_COMPLETE, 1,000 per batch)
          written by ONE ``record_many`` call (one transaction, ``executemany`` over Arrow
          batches); then the queries `lakeline lineage show` and `trace` make on that root;
  single  10,000 record nodes written with ``record`` (one statement and commit each: the path
          a pipeline must never take for records);
  files   record-level lineage as data (what pipelines use for records since issue 18): 10 roots
          of 1,000,000 records (10M in all, ids in random order) written as Parquet files of
          20,000 records per batch through ``RecordLedger.write_records``, each root sealed into
          one sorted file; then a trace of one record without its root (DuckDB over the files,
          then the ledger), with its root, and `lineage show`'s queries on one root.
Prints the cost per record of each path (bulk SQLite rows before, record files after), the
trace times, peak RSS and the sizes on disk.
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


def files(n: int, work: Path, roots: int = 10, per_batch: int = 20_000) -> dict[str, float]:
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    from lakeline.adapters.local.lineage import SqliteLedger
    from lakeline.adapters.local.objectstore import FsObjectStore
    from lakeline.adapters.record_lineage import RecordLedger
    from lakeline.cli.lineage import build_tree

    led = RecordLedger(SqliteLedger(work / "files.db"), FsObjectStore(work / "zones"), work / "tmp")
    per_root = n // roots
    rng = np.random.default_rng(7)
    write_s = seal_s = 0.0
    for r in range(roots):
        root = f"{r:032x}"
        led.record(root, root, "RAW_DATA_INPUT", "s3://landing/carbon/activity.csv", node_id=f"raw-{r}")
        order = rng.permutation(per_root)  # ids in random order: every batch spans the id range
        for b, start in enumerate(range(0, per_root, per_batch)):
            ids = order[start:start + per_batch]
            m = len(ids)
            led.record(root, f"raw-{r}", "GLUE_BATCH_SPLIT", f"s3://tmp/transformed/part_{b}",
                       node_id=f"b-{r}-{b}")
            t = time.perf_counter()
            led.write_records(root, f"part_{b}", pa.table({
                "node_id": pc.binary_join_element_wise(f"rec-{r}-", pa.array(ids).cast(pa.string()), ""),
                "parent_id": pa.repeat(pa.scalar(f"b-{r}-{b}"), m),
                "action_taken": pa.repeat(pa.scalar("CALCULATION_COMPLETE"), m),
                "storage_location": pa.repeat(pa.scalar("s3://gold/emissions/"), m),
                "source_key": pa.repeat(pa.scalar("carbon/activity.csv"), m),
                "line_no": pa.array(ids + 2, pa.int64()),
            }))
            write_s += time.perf_counter() - t
        t = time.perf_counter()
        led.seal_records(root)
        seal_s += time.perf_counter() - t
    target = f"rec-{roots // 2}-{per_root // 3}"
    t = time.perf_counter()
    path = led.trace(target)
    trace_s = time.perf_counter() - t
    assert [x.action_taken for x in path] == ["CALCULATION_COMPLETE", "GLUE_BATCH_SPLIT", "RAW_DATA_INPUT"]
    t = time.perf_counter()
    led.trace(target, f"{roots // 2:032x}")
    trace_root_s = time.perf_counter() - t
    t = time.perf_counter()
    shown = build_tree(led, f"{roots // 2:032x}")
    show_s = time.perf_counter() - t
    assert shown["counts"]["CALCULATION_COMPLETE"] == per_root, shown["counts"]
    size = sum(f.stat().st_size for f in (work / "zones").rglob("*.parquet"))
    return {"nodes": per_root * roots, "seconds": write_s, "seal_seconds": seal_s, "trace_seconds": trace_s,
            "trace_root_seconds": trace_root_s, "show_seconds": show_s, "rss_mb": _rss_mb(),
            "files_mb": size / 2**20}


def child(phase: str, n: int, work: Path) -> dict[str, float]:
    out = subprocess.run([sys.executable, __file__, "--phase", phase, "--nodes", str(n), "--work", str(work)],
                         capture_output=True, text=True, check=True)
    result: dict[str, float] = json.loads(out.stdout.splitlines()[-1])
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nodes", type=int, default=1_000_000, help="record nodes written in bulk")
    ap.add_argument("--single", type=int, default=10_000, help="record nodes written one by one")
    ap.add_argument("--records", type=int, default=10_000_000, help="record nodes written as files")
    ap.add_argument("--phase", choices=["bulk", "single", "files"], help=argparse.SUPPRESS)
    ap.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.phase:
        if args.phase == "files":
            print(json.dumps(files(args.nodes, args.work)))
            return 0
        fn = bulk if args.phase == "bulk" else single
        print(json.dumps(fn(args.nodes, args.work / f"{args.phase}.db")))
        return 0
    with tempfile.TemporaryDirectory(prefix="lakeline-bench-lineage-") as tmp:
        b = child("bulk", args.nodes, Path(tmp))
        s = child("single", args.single, Path(tmp))
        f = child("files", args.records, Path(tmp))
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
    per_row_before = b["seconds"] / b["nodes"] * 1e6
    per_row_after = f["seconds"] / f["nodes"] * 1e6
    print(f"lineage files  : {f['nodes']:,.0f} record nodes as Parquet (10 roots, batches of 20,000) in "
          f"{f['seconds']:.2f} s + seal {f['seal_seconds']:.2f} s, {f['files_mb']:.0f} MB of files, "
          f"peak RSS {f['rss_mb']:.0f} MB")
    print(f"lineage cost   : {per_row_before:.2f} us per record as ledger rows (record_many) -> "
          f"{per_row_after:.2f} us as record files ({per_row_before / per_row_after:.1f}x less; "
          f"{(f['seconds'] + f['seal_seconds']) / f['nodes'] * 1e6:.2f} us with the seal)")
    print(f"lineage trace  : one record among {f['nodes']:,.0f}: {f['trace_seconds'] * 1000:.0f} ms without "
          f"its root, {f['trace_root_seconds'] * 1000:.0f} ms with it; "
          f"show {f['show_seconds'] * 1000:.0f} ms (target: under 1 s)")
    bench = f"lineage {b['nodes']:,.0f}"  # the make bench summary (bench/summary.py)
    record(bench, "record_many nodes/s", bulk_rate, "nodes/s", single_rate, bulk_rate / single_rate,
           "—", None, "reference: one record() per node")
    record(bench, "trace one record", b["trace_seconds"], "s", None, None, "—", None)
    files_bench = f"lineage files {f['nodes']:,.0f}"
    record(files_bench, "us per record (files)", per_row_after, "us", per_row_before,
           per_row_before / per_row_after, "—", None, "reference: us per record as ledger rows")
    record(files_bench, "trace one record", f["trace_seconds"], "s", None, None, "<= 1 s",
           f["trace_seconds"] <= 1.0)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
