"""Cold-start benchmark (`make bench`): how long a fresh interpreter takes to import lakeline.

Every measurement is a fresh subprocess of this interpreter (nothing cached in memory but the OS
page cache, warmed by one untimed round first), run N times round-robin so that drift in machine
load hits every target alike; the median of the N runs is reported:
  python -c pass              the reference: interpreter start-up alone;
  import boto3                a second reference: a well-known heavy import on Lambda;
  import lakeline.aws.handlers  the Lambda handlers (the ingest / transform cold start);
  import lakeline.cli.main      the `lakeline` command.
For each: the wall time of the whole process (start-up included), the time of the import
statement itself (perf_counter inside the child), and whether pyarrow / duckdb / pandas got
imported. Ratios are against the references measured in the same run. Nothing is asserted:
tests/unit/test_handler_cold_start.py checks what the handlers import, not how long it takes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from results import record

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("pyarrow", "duckdb", "pandas")
BARE = "python -c pass"
BOTO3 = "boto3"
TARGETS = (BARE, BOTO3, "lakeline.aws.handlers", "lakeline.cli.main")
CHILD = (
    "import time; t = time.perf_counter(); import {module}; s = time.perf_counter() - t; import sys; "
    "print(s, len(sys.modules), *(m in sys.modules for m in {heavy!r}))"
)


@dataclass(frozen=True)
class Sample:
    """One fresh interpreter; ``imp`` and ``modules`` are None for ``python -c pass``."""

    wall: float
    imp: float | None = None
    modules: int | None = None
    heavy: tuple[str, ...] = ()


def once(target: str) -> Sample:
    """Run ``target`` in a fresh interpreter: wall seconds, and for a module its import seconds."""
    code = "pass" if target == BARE else CHILD.format(module=target, heavy=HEAVY)
    t = time.perf_counter()
    p = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if p.returncode != 0:
        raise RuntimeError(f"{target}: exit {p.returncode}\n{p.stderr.strip()}")
    if target == BARE:
        return Sample(wall)
    seconds, modules, *loaded = p.stdout.split()
    return Sample(wall, float(seconds), int(modules), tuple(m for m, f in zip(HEAVY, loaded) if f == "True"))


def measure(targets: list[str], runs: int) -> dict[str, list[Sample]]:
    for target in targets:  # untimed: warms the page cache and writes any missing .pyc files
        once(target)
    results: dict[str, list[Sample]] = {t: [] for t in targets}
    for _ in range(runs):  # round-robin: drift in machine load hits every target alike
        for target in targets:
            results[target].append(once(target))
    return results


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=7, help="fresh subprocesses per target (median reported)")
    ap.add_argument("--json", action="store_true", help="also print the medians as JSON")
    args = ap.parse_args()
    if args.runs < 1:
        ap.error("--runs must be at least 1")

    targets = list(TARGETS)
    try:
        once(BOTO3)
    except RuntimeError:
        targets.remove(BOTO3)  # boto3 is in the `aws` extra: without it there is no second reference
        print("boto3 is not installed: the boto3 reference is skipped")
    results = measure(targets, args.runs)

    bare = statistics.median(s.wall for s in results[BARE])
    boto3 = statistics.median(s.imp or 0.0 for s in results[BOTO3]) if BOTO3 in results else None
    print(f"\ncold start, median of {args.runs} fresh subprocesses per target, "
          f"Python {platform.python_version()}, {os.cpu_count()} CPUs")
    print(f"  {'target':<29} {'wall s':>7} {'min':>7} {'max':>7} {'import s':>9} {'modules':>8} "
          f"{'wall/bare':>10} {'import/boto3':>13}  heavy modules loaded")
    summary: dict[str, dict[str, object]] = {}
    for target in targets:
        samples = results[target]
        walls = [s.wall for s in samples]
        wall = statistics.median(walls)
        row: dict[str, object] = {"wall_s": wall, "wall_min_s": min(walls), "wall_max_s": max(walls),
                                  "wall_over_bare": wall / bare}
        cells = f"{wall:7.3f} {min(walls):7.3f} {max(walls):7.3f}"
        if target == BARE:
            print(f"  {target:<29} {cells} {'':>9} {'':>8} {wall / bare:10.2f}")
        else:
            imp = statistics.median(s.imp or 0.0 for s in samples)
            modules = max(s.modules or 0 for s in samples)
            heavy = sorted({m for s in samples for m in s.heavy})
            over_boto3 = imp / boto3 if boto3 else None
            ratio = f"{over_boto3:13.2f}" if over_boto3 is not None else f"{'-':>13}"
            print(f"  {'import ' + target:<29} {cells} {imp:9.3f} {modules:8d} {wall / bare:10.2f} {ratio}  "
                  f"{', '.join(heavy) or 'none'}")
            row.update({"import_s": imp, "modules": modules, "heavy": heavy, "import_over_boto3": over_boto3})
        summary[target] = row
    for target in targets:
        if target.startswith("lakeline"):
            added = statistics.median(s.wall for s in results[target]) - bare
            print(f"  {target}: {added:.3f} s on top of interpreter start-up")
            wall = added + bare
            record("cold start", f"import {target}", wall, "s", bare, wall / bare, "—", None,
                   f"fresh process, median of {args.runs}; reference: python -c pass")
    if args.json:
        out = {"runs": args.runs, "python": platform.python_version(), "targets": summary}
        print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
