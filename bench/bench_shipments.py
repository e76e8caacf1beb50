"""Benchmark: lakeline end to end on the shipments pipeline against a DuckDB reference.

Run by ``make bench``; see bench/README.md. In one run it measures:

(a) the reference -- DuckDB converting the JSON-lines file straight to Parquet partitioned by
    ``dt`` with the same typed schema, in a fresh Python subprocess (interpreter start included);
(b) lakeline through its CLI, in subprocesses: ``lakeline init HOME`` (not timed), then
    ``lakeline --home HOME put FILE --pipeline shipments`` + ``lakeline --home HOME run``
    (default: one worker with DuckDB on every core; measured faster than two workers on 2 cores)
    (timed), then a ``lakeline --home HOME sql ... --json`` count check (not timed);
(c) the same as one command, ``lakeline --home HOME2 load FILE --pipeline shipments`` (put + run
    in one process, durable at each step), in a fresh home, with the same count check.

Both ratios are against the same reference (a), measured in the same run.

The input is made by :func:`lakeline.pipelines.shipments.gen.write`; generating it is not timed.

Peak RSS. ``getrusage(RUSAGE_CHILDREN).ru_maxrss`` is the largest RSS of any *single* descendant
that has been waited for, and it is cumulative over the life of the calling process: once the
bench itself has waited for one child, the value can never go below that child's peak. Measuring
(a) and (b) from this process would therefore mix them up (and include the generator, had it
run in a child). So every timed measurement runs in a fresh, small helper process (``_HELPER``
below) which runs the commands as its own children, waits for them, and reports its own
``RUSAGE_CHILDREN`` maximum -- the peak of exactly those commands and their descendants
(grandchildren such as worker processes count too, as long as each parent waits for its
children, which ``multiprocessing`` and ``subprocess`` do). The helper's own memory is not
included (RUSAGE_CHILDREN excludes the caller). Because that figure is the peak of the largest
single process, the bench also samples the *sum* of RSS over the whole process tree every 50 ms
with psutil and reports it as extra information (it is a sample, so it may miss short spikes).
The targets are judged on the getrusage figure.

Exit code: 0 when the run completes, whether the targets are met (PASS) or not (MISS) -- this is a
report; 1 when a lakeline command fails or the row count in silver.shipments is wrong; 2 for bad
arguments.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
from results import record

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR.parent))  # run from a checkout without installing

from lakeline.pipelines.shipments import gen as gen  # noqa: E402

RATIO_TARGET = 0.5  # lakeline records/s must be at least half the reference's
RSS_TARGET_MB_SMALL = 1536  # up to 1,000,000 records
RSS_TARGET_MB_LARGE = 2048  # above that (the 5,000,000-record run)

# Runs the commands given as JSON in argv[1] one after another (stopping at the first failure),
# with stdout/stderr of command i going to <argv[2]>/<i>.out and <i>.err, and prints a JSON report:
# wall seconds per command and RUSAGE_CHILDREN's max RSS (KiB on Linux, bytes on macOS).
_HELPER = r"""
import json, resource, subprocess, sys, time
commands, logs = json.loads(sys.argv[1]), sys.argv[2]
steps = []
for i, cmd in enumerate(commands):
    with open(f"{logs}/{i}.out", "wb") as out, open(f"{logs}/{i}.err", "wb") as err:
        t0 = time.perf_counter()
        rc = subprocess.run(cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL).returncode
        steps.append({"seconds": time.perf_counter() - t0, "returncode": rc})
    if rc != 0:
        break
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"steps": steps, "max_rss": usage.ru_maxrss}))
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
  SELECT record_type,
         CAST(event_time AS TIMESTAMPTZ) AS event_time,
         shipment_id, origin, destination, carrier,
         CAST(weight_kg AS DOUBLE) AS weight_kg,
         strftime(CAST(event_time AS TIMESTAMPTZ), '%Y-%m-%d') AS dt
  FROM read_json({lit(src)}, format='newline_delimited', columns={{
    'record_type': 'VARCHAR', 'event_time': 'VARCHAR', 'shipment_id': 'VARCHAR',
    'origin': 'VARCHAR', 'destination': 'VARCHAR', 'carrier': 'VARCHAR', 'weight_kg': 'DOUBLE'}})
) TO {lit(dst)} (FORMAT parquet, PARTITION_BY (dt), COMPRESSION zstd)
''')
"""


class BenchFailure(Exception):
    """A measured command failed; the message says which and shows its output."""


@dataclass
class Measurement:
    names: list[str]
    seconds: list[float]
    max_rss_mb: float
    tree_peak_rss_mb: float
    logs: Path
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def total_seconds(self) -> float:
        return sum(self.seconds)


def _rss_mb(ru_maxrss: int) -> float:
    # ru_maxrss is in KiB on Linux and in bytes on macOS
    return ru_maxrss / (1024 * 1024) if sys.platform == "darwin" else ru_maxrss / 1024


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    for name in ("LAKELINE_HOME", "LAKELINE_CRASH_AT"):
        env.pop(name, None)
    return env


def _tail(path: Path, lines: int = 15) -> str:
    if not path.exists():
        return ""
    text = path.read_text(errors="replace").rstrip()
    return "\n".join(text.splitlines()[-lines:])


def measure(named_commands: list[tuple[str, list[str]]], logs: Path) -> Measurement:
    """Run the commands sequentially from a fresh helper process; time them and take peak RSS."""
    logs.mkdir(parents=True, exist_ok=True)
    commands = [cmd for _, cmd in named_commands]
    helper = subprocess.Popen(
        [sys.executable, "-c", _HELPER, json.dumps(commands), str(logs)],
        stdout=subprocess.PIPE,
        env=_child_env(),
    )
    peak_tree = 0
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak_tree
        try:
            root = psutil.Process(helper.pid)
        except psutil.Error:
            return
        while not stop.is_set():
            total = 0
            try:
                children = root.children(recursive=True)
            except psutil.Error:
                break
            for child in children:
                with contextlib.suppress(psutil.Error):
                    total += child.memory_info().rss
            peak_tree = max(peak_tree, total)
            stop.wait(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, _ = helper.communicate()
    stop.set()
    sampler.join()
    if helper.returncode != 0:
        raise BenchFailure(f"the measuring helper failed (exit {helper.returncode})")
    report = json.loads(out)
    steps = report["steps"]
    for i, (step, (name, cmd)) in enumerate(zip(steps, named_commands, strict=False)):
        if step["returncode"] != 0:
            raise BenchFailure(
                f"{name} failed (exit {step['returncode']}): {' '.join(cmd)}\n"
                f"--- stderr (last lines) ---\n{_tail(logs / f'{i}.err')}\n"
                f"--- stdout (last lines) ---\n{_tail(logs / f'{i}.out')}"
            )
    return Measurement(
        names=[name for name, _ in named_commands],
        seconds=[step["seconds"] for step in steps],
        max_rss_mb=_rss_mb(report["max_rss"]),
        tree_peak_rss_mb=peak_tree / (1024 * 1024),
        logs=logs,
    )


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


def lakeline_exe() -> Path:
    exe = Path(sys.executable).parent / ("lakeline.exe" if os.name == "nt" else "lakeline")
    if not exe.exists():
        raise BenchFailure(
            f"the lakeline console script was not found at {exe}; install the package "
            "(make bench does: pip install -e '.[dev,aws]')"
        )
    return exe


def _run_plain(name: str, cmd: list[str]) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, capture_output=True, text=True, env=_child_env(), stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        raise BenchFailure(
            f"{name} failed (exit {proc.returncode}): {' '.join(cmd)}\n"
            f"--- stderr ---\n{proc.stderr.strip()[-3000:]}\n--- stdout ---\n{proc.stdout.strip()[-3000:]}"
        )
    return proc


def _first_int(value: Any) -> int | None:
    """The first integer found in a decoded JSON document, depth first."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list):
        for item in value:
            found = _first_int(item)
            if found is not None:
                return found
    return None


def run_lakeline(src: Path, run_dir: Path, *, one_command: bool = False) -> Measurement:
    """(b) ``put`` + ``run``, or (c) with ``one_command``: ``load``."""
    exe = str(lakeline_exe())
    home = run_dir / ("home-load" if one_command else "home")
    _run_plain("lakeline init", [exe, "init", str(home)])
    steps = [("lakeline load", [exe, "--home", str(home), "load", str(src), "--pipeline", "shipments"])] \
        if one_command else [
            ("lakeline put", [exe, "--home", str(home), "put", str(src), "--pipeline", "shipments"]),
            ("lakeline run", [exe, "--home", str(home), "run"]),
        ]
    m = measure(steps, run_dir / ("logs-c" if one_command else "logs-b"))
    sql = "SELECT count(*) FROM silver.shipments"
    proc = _run_plain("lakeline sql", [exe, "--home", str(home), "sql", sql, "--json"])
    try:
        count = _first_int(json.loads(proc.stdout))
    except json.JSONDecodeError:
        count = None
    m.extra["count_output"] = proc.stdout.strip()
    m.extra["rows"] = count
    return m


def _fmt_rate(records: int, seconds: float | None) -> str:
    return "-" if not seconds else f"{records / seconds:,.0f}"


def bench_args(doc: str | None, argv: list[str] | None, keep_help: str) -> argparse.Namespace:
    """The options every CLI benchmark takes: --records, --no-reference, --workdir, --keep."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0] if doc else None)
    parser.add_argument(
        "--records", type=int, default=1_000_000, help="records to generate (default 1,000,000)"
    )
    parser.add_argument("--no-reference", action="store_true", help="skip the DuckDB reference (a)")
    parser.add_argument(
        "--workdir", type=Path, default=BENCH_DIR / "out", help="working directory (default bench/out)"
    )
    parser.add_argument("--keep", action="store_true", help=keep_help)
    args = parser.parse_args(argv)
    if args.records < 1:
        parser.error("--records must be at least 1")
    args.workdir = args.workdir.resolve()
    return args


def fresh_dir(path: Path) -> Path:
    """``path`` created empty (what an earlier run left there is removed)."""
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def machine() -> dict[str, Any]:
    """What the results file records of the machine."""
    return {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "memory_mb": psutil.virtual_memory().total // (1024 * 1024),
    }


def side(m: Measurement | None, records: int) -> dict[str, Any] | None:
    """One measurement as the results file records it."""
    if m is None:
        return None
    return {
        "seconds": m.total_seconds,
        "steps": dict(zip(m.names, m.seconds, strict=True)),
        "records_per_s": records / m.total_seconds,
        "max_rss_mb": m.max_rss_mb,
        "tree_peak_rss_mb": m.tree_peak_rss_mb,
        **{k: v for k, v in m.extra.items() if k != "count_output"},
    }


def print_row(label: str, m: Measurement, records: int) -> None:
    """One measurement as a row of the report table, then its steps."""
    print(f"{label:34}{m.total_seconds:>10.2f}{_fmt_rate(records, m.total_seconds):>14}"
          f"{m.max_rss_mb:>13.0f}{m.tree_peak_rss_mb:>13.0f}")
    if len(m.names) > 1:
        for name, seconds in zip(m.names, m.seconds, strict=True):
            print(f"{'      ' + name:34}{seconds:>10.2f}")


def main(argv: list[str] | None = None) -> int:
    args = bench_args(__doc__, argv, "keep the input, outputs and lake home")
    n: int = args.records
    workdir: Path = args.workdir
    run_dir = fresh_dir(workdir / f"run-{n}")
    src = run_dir / "shipments.jsonl"

    print(f"generating {n:,} shipments records -> {src}", flush=True)
    t0 = time.perf_counter()
    gen.write("shipments", n, src, seed=0)
    gen_seconds = time.perf_counter() - t0
    size = src.stat().st_size
    print(f"  {gen_seconds:.2f} s, {size / 1e6:,.1f} MB (not counted)", flush=True)

    reference: Measurement | None = None
    if not args.no_reference:
        print("(a) DuckDB reference: JSON lines -> Parquet partitioned by dt ...", flush=True)
        reference = run_reference(src, run_dir)
        print(f"  {reference.total_seconds:.2f} s, {reference.extra['rows']:,} rows", flush=True)
        if reference.extra["rows"] != n:
            print(f"  WARNING: the reference wrote {reference.extra['rows']} rows, expected {n}", flush=True)

    print("(b) lakeline: put + run ...", flush=True)
    failure: str | None = None
    ours: Measurement | None = None
    loaded: Measurement | None = None
    try:
        ours = run_lakeline(src, run_dir)
        print("(c) lakeline: load (put + run in one command) ...", flush=True)
        loaded = run_lakeline(src, run_dir, one_command=True)
    except BenchFailure as exc:
        failure = str(exc)

    rss_target = RSS_TARGET_MB_SMALL if n <= 1_000_000 else RSS_TARGET_MB_LARGE

    def ratio_of(m: Measurement | None) -> float | None:
        if reference is None or m is None or m.total_seconds <= 0:
            return None
        return reference.total_seconds / m.total_seconds

    ratio, ratio_load = ratio_of(ours), ratio_of(loaded)
    count_ok = ours is not None and ours.extra["rows"] == n and (loaded is None or loaded.extra["rows"] == n)
    results: dict[str, Any] = {
        "records": n,
        "input_bytes": size,
        "generate_seconds": gen_seconds,
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "reference": side(reference, n),
        "lakeline": side(ours, n),
        "lakeline_load": side(loaded, n),
        "error": failure,
        "ratio": ratio,
        "ratio_load": ratio_load,
        "targets": {"ratio_min": RATIO_TARGET, "max_rss_mb": rss_target},
        "pass": {
            "ratio": None if ratio is None else ratio >= RATIO_TARGET,
            "ratio_load": None if ratio_load is None else ratio_load >= RATIO_TARGET,
            "rss": None if ours is None else max(m.max_rss_mb for m in (ours, loaded) if m) <= rss_target,
            "count": count_ok,
        },
    }

    def verdict(ok: bool | None) -> str:
        return "SKIP" if ok is None else ("PASS" if ok else "MISS")

    print()
    print(f"shipments benchmark, {n:,} records ({size / 1e6:,.1f} MB JSON lines), {os.cpu_count()} CPUs")
    print(f"{'':34}{'seconds':>10}{'records/s':>14}{'peak RSS MB':>13}{'tree RSS MB':>13}")
    if reference is not None:
        print_row("(a) DuckDB reference", reference, n)
    if ours is not None:
        print_row("(b) lakeline put + run", ours, n)
    else:
        print(f"{'(b) lakeline put + run':34}{'FAILED':>10}")
    if loaded is not None:
        print_row("(c) lakeline load", loaded, n)
    print()
    ratio_text = "-" if ratio is None else f"{ratio:.2f}"
    ratio_load_text = "-" if ratio_load is None else f"{ratio_load:.2f}"
    rss_text = "-" if ours is None else f"{max(m.max_rss_mb for m in (ours, loaded) if m):.0f} MB"
    checks = [
        ("ratio (b)/(a) records/s", ratio_text, f">= {RATIO_TARGET}", verdict(results["pass"]["ratio"])),
        ("ratio (c)/(a) records/s", ratio_load_text, f">= {RATIO_TARGET}",
         verdict(results["pass"]["ratio_load"])),
        ("lakeline peak RSS", rss_text, f"<= {rss_target} MB", verdict(results["pass"]["rss"])),
    ]
    if ours is not None:
        rows = "/".join(str(m.extra["rows"]) for m in (ours, loaded) if m)
        checks.append(("silver.shipments rows", rows, f"== {n}", "PASS" if count_ok else "FAIL"))
    for label, value, target, outcome in checks:
        print(f"  {label:26}{value:>12}   target {target:<14}{outcome}")
    print(
        "  (peak RSS: largest single lakeline process, from getrusage; tree RSS: sampled sum over processes)"
    )

    out_json = workdir / f"results-{n}.json"
    out_json.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nresults written to {out_json}")
    for key, ratio_key, metric in (("lakeline", "ratio", "put+run records/s"),
                                   ("lakeline_load", "ratio_load", "load records/s")):
        if results.get(key):  # the make bench summary (bench/summary.py)
            r, ref = results.get(ratio_key), results["reference"]
            record(f"shipments {n:,}", metric, results[key]["records_per_s"], "records/s",
                   ref["records_per_s"] if ref else None, r, f"≥ {RATIO_TARGET}" if r is not None else "—",
                   results["pass"].get(ratio_key), "vs DuckDB JSONL → partitioned Parquet")
    if ours is not None:
        record(f"shipments {n:,}", "lakeline peak RSS", max(m.max_rss_mb for m in (ours, loaded) if m), "MB",
               None, None, f"≤ {rss_target} MB", results["pass"]["rss"])

    broken = failure is not None or not count_ok
    if args.keep or broken:
        print(f"kept {run_dir}" + (" (for debugging the failure)" if broken and not args.keep else ""))
    else:
        shutil.rmtree(run_dir, ignore_errors=True)

    if failure is not None:
        print(f"\nERROR: the lakeline part failed -- {failure}", file=sys.stderr)
        if "No such command" in failure or "not found" in failure or "No module named" in failure:
            print("(is the lakeline CLI implemented and installed? see bench/README.md)", file=sys.stderr)
        return 1
    if not count_ok:
        rows_seen = "/".join(str(m.extra["rows"]) for m in (ours, loaded) if m)
        print(
            f"\nERROR: silver.shipments has {rows_seen} rows, expected {n}\n"
            f"lakeline sql output: {' / '.join(str(m.extra['count_output']) for m in (ours, loaded) if m)}",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
