"""Benchmark: a declared CSV pipeline (``HOME/pipelines/orders.toml``) against a DuckDB reference.

Run by ``make bench``; see bench/README.md. In one run, on the same generated CSV, it measures:

(a) the reference -- DuckDB converting the CSV straight to Parquet partitioned by ``dt`` with the
    same typed schema, in a fresh Python subprocess (interpreter start included);
(b) lakeline through its CLI, in subprocesses: ``lakeline init HOME`` and writing
    ``HOME/pipelines/orders.toml`` (not timed), then ``lakeline --home HOME put FILE --pipeline
    orders`` + ``lakeline --home HOME run`` (timed), then count checks with ``lakeline --home HOME
    sql ... --json`` (not timed): ``silver.orders`` holds every row, ``quarantine.rejects`` none.
    Every chunk of this clean file can take the fast path (DuckDB ``read_csv`` to Parquet);
(c) lakeline again, in a fresh lake, on the same file with 1% of its rows made invalid (a
    non-numeric ``qty``), so every chunk takes the exact path: its time, and the reject count,
    which must equal the number of bad rows. No reference for (c): DuckDB's typed ``read_csv``
    stops at the first bad row.

The input is generated with numpy and ``pyarrow.csv.write_csv`` (seeded, vectorised); generating
it is not timed. Time and peak RSS are measured exactly as in ``bench_shipments.py``, whose
helpers this script imports: each measurement runs from a fresh helper process that reports the
``RUSAGE_CHILDREN`` peak of exactly its own commands (see that module's docstring).

Exit code: 0 when the run completes, whether the ratio target is met (PASS) or not (MISS) -- this
is a report; 1 when a lakeline command fails or a row or reject count is wrong; 2 for bad arguments.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR.parent))  # run from a checkout without installing
sys.path.insert(0, str(BENCH_DIR))

from bench_shipments import (  # noqa: E402
    BenchFailure,
    Measurement,
    _first_int,
    _run_plain,
    bench_args,
    fresh_dir,
    lakeline_exe,
    machine,
    measure,
    print_row,
    side,
)
from results import record  # noqa: E402

RATIO_TARGET = 0.5  # lakeline records/s must be at least half the reference's (as for shipments)
BAD_RATE = 0.01  # (c): share of rows given a non-numeric qty
BAD_QTY = b"n/a"
START = np.datetime64("2026-01-05T00:00:00", "s")  # ordered_at spreads over DAYS days from here
DAYS = 7
PIPELINE = "orders"

# HOME/pipelines/orders.toml: the declared pipeline loading the file into silver.orders.
PIPELINE_TOML = """\
format = "csv"
time_field = "ordered_at"          # its UTC day is the dt partition
[csv]
delimiter = ","
header = true
[tables.orders]                    # the table silver.orders
fields = [
  { name = "order_id", type = "int64", required = true },
  { name = "ordered_at", type = "timestamp" },
  { name = "customer" },
  { name = "amount", type = "decimal(10,2)" },
  { name = "qty", type = "int64" },
  { name = "paid", type = "bool" },
]
"""

# The reference conversion, run as ``python -c _REFERENCE SRC DST``.
_REFERENCE = r"""
import sys, duckdb
def lit(s): return "'" + s.replace("'", "''") + "'"
src, dst = sys.argv[1], sys.argv[2]
con = duckdb.connect()
con.execute("SET TimeZone='UTC'")
con.execute(f'''
COPY (
  SELECT order_id, ordered_at, customer, amount, qty, paid, CAST(ordered_at AS DATE) AS dt
  FROM read_csv({lit(src)}, header = true, delim = ',', quote = '"', escape = '"', auto_detect = false,
    columns = {{'order_id': 'BIGINT', 'ordered_at': 'TIMESTAMPTZ', 'customer': 'VARCHAR',
               'amount': 'DECIMAL(10,2)', 'qty': 'BIGINT', 'paid': 'BOOLEAN'}})
) TO {lit(dst)} (FORMAT parquet, PARTITION_BY (dt), COMPRESSION zstd)
''')
"""


def _customers() -> pa.Array:
    """A pool of 1,000 customer names: plain, with a comma, with a quote, non-ASCII."""
    first = ["Ann", "Bob", "Chloé", "Dev", "Eve", "Farid", "Grace", "Hiro", "Ines", "José"]
    last = ["Smith", "O'Brien", "Müller", "Nguyen", "Okafor", "Rossi", "Sato", "Silva", "Tan", "Weiß"]
    names = []
    for i in range(1000):  # the pool, not the rows
        f, s, n = first[i % 10], last[i // 10 % 10], i // 100
        style = i % 4
        if style == 0:
            names.append(f"{f} {s}")
        elif style == 1:
            names.append(f"{s}, {f} ({n})")  # a comma: must be quoted
        elif style == 2:
            names.append(f'{f} "{s}" {n}')  # a quote: quoted, and doubled inside
        else:
            names.append(f"{s} & {f} Ltd. {n}")
    return pa.array(names, pa.string())


def write_inputs(n: int, clean: Path, dirty: Path, seed: int = 0) -> int:
    """Write ``n`` orders to ``clean`` (every row valid) and the same rows to ``dirty`` with
    :data:`BAD_RATE` of them given a non-numeric qty; returns the number of bad rows."""
    rng = np.random.default_rng(seed)
    seconds = START.astype(np.int64) + rng.integers(0, DAYS * 86400, n)
    ordered_at = pc.strftime(pa.array(seconds, pa.timestamp("s", tz="UTC")), format="%Y-%m-%dT%H:%M:%SZ")
    cents = rng.integers(1, 10_000_000, n)  # 0.01 .. 99,999.99
    qty = rng.integers(1, 21, n)
    columns: dict[str, Any] = {
        "order_id": pa.array(rng.permutation(n).astype(np.int64) + 1_000_001),
        "ordered_at": ordered_at,
        "customer": pc.take(_customers(), pa.array(rng.integers(0, 1000, n))),
        "amount": pa.array(cents / 100).cast(pa.decimal128(10, 2)),  # exact: rounds to the cent
        "qty": pa.array(qty),
        "paid": pa.array(rng.random(n) < 0.8),
    }
    pacsv.write_csv(pa.table(columns), clean)

    # the dirty file: the same rows; bad rows get qty -1 (written by pyarrow unquoted, as the
    # other ints), then ",-1," becomes ",n/a," -- only qty can hold it (order_id comes first,
    # amounts are positive, customers are quoted, paid is a bool)
    bad = max(1, round(n * BAD_RATE))
    dirty_qty = qty.copy()
    dirty_qty[rng.choice(n, bad, replace=False)] = -1
    columns["qty"] = pa.array(dirty_qty)
    buf = io.BytesIO()
    pacsv.write_csv(pa.table(columns), buf)
    data = buf.getvalue()
    if data.count(b",-1,") != bad:
        raise RuntimeError("the bad-row marker also occurs outside qty")
    dirty.write_bytes(data.replace(b",-1,", b"," + BAD_QTY + b","))
    return bad


def run_reference(src: Path, run_dir: Path) -> Measurement:
    dst = run_dir / "reference-parquet"
    m = measure(
        [("duckdb reference", [sys.executable, "-c", _REFERENCE, str(src), str(dst)])], run_dir / "logs-a"
    )
    # sanity check (not timed): the reference wrote every row
    import duckdb

    glob = str(dst / "**" / "*.parquet").replace("'", "''")
    con = duckdb.connect()
    row = con.execute(f"SELECT count(*) FROM read_parquet('{glob}', hive_partitioning = true)").fetchone()
    con.close()
    m.extra["rows"] = row[0] if row else None
    m.extra["partitions"] = sorted(p.name for p in dst.iterdir() if p.is_dir())
    return m


def _sql(exe: str, home: Path, sql: str) -> Any:
    proc = _run_plain("lakeline sql", [exe, "--home", str(home), "sql", sql, "--json"])
    try:
        return json.loads(proc.stdout)
    except json.JSONDecodeError:
        return proc.stdout.strip()


def _rejects(exe: str, home: Path) -> tuple[int, dict[str, int]]:
    """Rows in quarantine.rejects, and their count per reason code. A lake that never rejected
    anything has no rejects file, and then no quarantine.rejects table: that is 0 rows."""
    sql = "SELECT reason_code, count(*) AS n FROM quarantine.rejects GROUP BY ALL ORDER BY ALL"
    try:
        rows = _sql(exe, home, sql)
    except BenchFailure as exc:
        if "rejects does not exist" in str(exc):
            return 0, {}
        raise
    by_reason = {str(r["reason_code"]): int(r["n"]) for r in rows} if isinstance(rows, list) else {}
    return sum(by_reason.values()), by_reason


def run_lakeline(src: Path, run_dir: Path, case: str) -> Measurement:
    """``put`` + ``run`` of ``src`` in a fresh lake ``run_dir/home-<case>`` (timed), then the counts."""
    exe = str(lakeline_exe())
    home = run_dir / f"home-{case}"
    _run_plain("lakeline init", [exe, "init", str(home)])
    (home / "pipelines").mkdir(exist_ok=True)
    (home / "pipelines" / f"{PIPELINE}.toml").write_text(PIPELINE_TOML)
    m = measure(
        [
            ("lakeline put", [exe, "--home", str(home), "put", str(src), "--pipeline", PIPELINE]),
            ("lakeline run", [exe, "--home", str(home), "run", "--json"]),
        ],
        run_dir / f"logs-{case}",
    )
    try:
        summary = json.loads((m.logs / "1.out").read_text())
    except (OSError, json.JSONDecodeError):
        summary = {}
    m.extra["summary"] = {k: summary.get(k) for k in ("chunks", "loaded", "rejected", "failures", "errors")}
    count = _sql(exe, home, f"SELECT count(*) FROM silver.{PIPELINE}")
    m.extra["count_output"] = json.dumps(count)
    m.extra["rows"] = _first_int(count)
    m.extra["rejects"], m.extra["reject_reasons"] = _rejects(exe, home)
    return m


def main(argv: list[str] | None = None) -> int:
    args = bench_args(__doc__, argv, "keep the inputs, outputs and lake homes")
    n: int = args.records
    workdir: Path = args.workdir
    run_dir = fresh_dir(workdir / f"run-declared-{n}")
    src = run_dir / "orders.csv"
    dirty = run_dir / "orders-dirty.csv"

    print(f"generating {n:,} orders as CSV -> {src} (and {dirty.name})", flush=True)
    t0 = time.perf_counter()
    bad = write_inputs(n, src, dirty, seed=0)
    gen_seconds = time.perf_counter() - t0
    size = src.stat().st_size
    print(f"  {gen_seconds:.2f} s, {size / 1e6:,.1f} MB, {bad:,} bad rows in {dirty.name} (not counted)",
          flush=True)

    reference: Measurement | None = None
    if not args.no_reference:
        print("(a) DuckDB reference: CSV -> Parquet partitioned by dt ...", flush=True)
        reference = run_reference(src, run_dir)
        print(f"  {reference.total_seconds:.2f} s, {reference.extra['rows']:,} rows", flush=True)
        if reference.extra["rows"] != n:
            print(f"  WARNING: the reference wrote {reference.extra['rows']} rows, expected {n}", flush=True)

    failures: list[str] = []
    print("(b) lakeline: put + run, clean file ...", flush=True)
    ours: Measurement | None = None
    try:
        ours = run_lakeline(src, run_dir, "b")
        print(f"  {ours.total_seconds:.2f} s, {ours.extra['rows']} rows", flush=True)
    except BenchFailure as exc:
        failures.append(f"(b) {exc}")

    print(f"(c) lakeline: put + run, {BAD_RATE:.0%} bad rows (no reference: DuckDB refuses the file) ...",
          flush=True)
    dirty_m: Measurement | None = None
    try:
        dirty_m = run_lakeline(dirty, run_dir, "c")
        print(f"  {dirty_m.total_seconds:.2f} s, {dirty_m.extra['rows']} rows, "
              f"{dirty_m.extra['rejects']} rejects", flush=True)
    except BenchFailure as exc:
        failures.append(f"(c) {exc}")

    ratio = (
        reference.total_seconds / ours.total_seconds
        if reference is not None and ours is not None and ours.total_seconds > 0
        else None
    )
    # (label, value, expected) of the correctness checks; any mismatch exits 1
    counts: list[tuple[str, Any, int]] = []
    if ours is not None:
        counts += [("(b) silver.orders rows", ours.extra["rows"], n),
                   ("(b) quarantine.rejects rows", ours.extra["rejects"], 0)]
    if dirty_m is not None:
        counts += [("(c) quarantine.rejects rows", dirty_m.extra["rejects"], bad),
                   ("(c) silver.orders rows", dirty_m.extra["rows"], n - bad)]
    counts_ok = all(value == expected for _, value, expected in counts)

    results: dict[str, Any] = {
        "pipeline": PIPELINE,
        "records": n,
        "bad_records": bad,
        "input_bytes": size,
        "dirty_input_bytes": dirty.stat().st_size,
        "generate_seconds": gen_seconds,
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "reference": side(reference, n),
        "lakeline": side(ours, n),
        "lakeline_dirty": side(dirty_m, n),
        "errors": failures,
        "ratio": ratio,
        "targets": {"ratio_min": RATIO_TARGET},
        "pass": {
            "ratio": None if ratio is None else ratio >= RATIO_TARGET,
            "counts": {label: value == expected for label, value, expected in counts},
        },
    }

    print()
    print(f"declared CSV pipeline benchmark ({PIPELINE}), {n:,} records ({size / 1e6:,.1f} MB CSV), "
          f"{os.cpu_count()} CPUs")
    print(f"{'':34}{'seconds':>10}{'records/s':>14}{'peak RSS MB':>13}{'tree RSS MB':>13}")
    if reference is not None:
        print_row("(a) DuckDB reference", reference, n)
    else:
        print(f"{'(a) DuckDB reference':34}{'skipped':>10}")
    if ours is not None:
        print_row("(b) lakeline put + run", ours, n)
    else:
        print(f"{'(b) lakeline put + run':34}{'FAILED':>10}")
    label_c = f"(c) lakeline, {BAD_RATE:.0%} bad rows"
    if dirty_m is not None:
        print_row(label_c, dirty_m, n)
        reasons = ", ".join(f"{k} {v:,}" for k, v in dirty_m.extra["reject_reasons"].items()) or "none"
        slower = f", {dirty_m.total_seconds / ours.total_seconds:.2f} x the time of (b)" if ours else ""
        print(f"      rejects by reason: {reasons}{slower}")
    else:
        print(f"{label_c:34}{'FAILED':>10}")
    print("  (c) has no reference: DuckDB's typed read_csv stops at the first bad row")
    print()
    ratio_text = "-" if ratio is None else f"{ratio:.2f}"
    outcome = "SKIP" if ratio is None else ("PASS" if ratio >= RATIO_TARGET else "MISS")
    target = f">= {RATIO_TARGET}"
    print(f"  {'ratio (b)/(a) records/s':30}{ratio_text:>10}   target {target:<12}{outcome}")
    for label, value, expected in counts:
        verdict = "PASS" if value == expected else "FAIL"
        print(f"  {label:30}{value!s:>10}   target {'== ' + str(expected):<12}{verdict}")
    print(
        "  (peak RSS: largest single process, from getrusage; tree RSS: sampled sum over processes)"
    )

    out_json = workdir / f"results-declared-{n}.json"
    out_json.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nresults written to {out_json}")
    if ours is not None:  # the make bench summary (bench/summary.py)
        record(f"declared CSV {n:,}", "put+run records/s", n / ours.total_seconds, "records/s",
               n / reference.total_seconds if reference else None, ratio,
               f"≥ {RATIO_TARGET}" if ratio is not None else "—", results["pass"]["ratio"],
               "vs DuckDB read_csv → partitioned Parquet")
    if dirty_m is not None:
        record(f"declared CSV {n:,}", f"put+run records/s, {BAD_RATE:.0%} bad rows",
               n / dirty_m.total_seconds, "records/s", None, None, "—", None,
               "no reference: DuckDB stops at the first bad row")

    broken = bool(failures) or not counts_ok
    if args.keep or broken:
        print(f"kept {run_dir}" + (" (for debugging the failure)" if broken and not args.keep else ""))
    else:
        shutil.rmtree(run_dir, ignore_errors=True)

    for failure in failures:
        print(f"\nERROR: a lakeline part failed -- {failure}", file=sys.stderr)
    for label, value, expected in counts:
        if value != expected:
            print(f"\nERROR: {label}: {value}, expected {expected}", file=sys.stderr)
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
