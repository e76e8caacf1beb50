"""The one table that ends ``make bench``: every figure the benchmarks recorded, on this machine.

Reads ``bench/out/results.jsonl`` (``$LAKELINE_BENCH_RESULTS`` when set; each benchmark appends
to it with ``results.record``, and ``make bench`` empties it first), prints a markdown table --
benchmark, metric, figure, reference, ratio, target, result -- under a line naming the machine
(cores, CPU model, RAM, date), and writes the same text to ``bench/out/summary.md`` (or
``--out``). The result is PASS or MISS against the target, or "—" when the figure has none.

Standard library only. Exit 0 (a report, whatever the results), 1 when there is no result.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from results import results_path

DASH = "—"
COLUMNS = ("benchmark", "metric", "figure", "reference", "ratio", "target", "result", "note")


def load(path: Path) -> list[dict[str, Any]]:
    """The recorded figures, in the order they were recorded (blank lines skipped)."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def machine() -> dict[str, str]:
    """This machine: cores, CPU model, RAM and the date (UTC), as text."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.partition(":")[2].strip()
                break
    except OSError:
        pass
    ram = DASH
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    except (OSError, ValueError, IndexError):
        pass
    return {"cores": str(os.cpu_count() or DASH), "cpu": model or DASH, "ram": ram,
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")}


def number(x: float | None) -> str:
    """A figure for the table: thousands separated from 1,000 up, three significant digits below."""
    if x is None:
        return DASH
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    if abs(x) >= 100:
        return f"{x:.0f}"
    return f"{x:.3g}"


def with_unit(x: float | None, unit: str) -> str:
    return DASH if x is None else f"{number(x)} {unit}".rstrip()


def result(passed: bool | None) -> str:
    return DASH if passed is None else ("PASS" if passed else "MISS")


def cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render(records: list[dict[str, Any]], host: dict[str, str]) -> str:
    """The markdown summary of ``records`` measured on ``host`` (see :func:`machine`)."""
    lines = [
        "# Benchmark summary",
        "",
        f"{host['date']} · {host['cores']} cores · {host['cpu']} · {host['ram']} RAM",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "|".join("---" for _ in COLUMNS) + "|",
    ]
    for r in records:
        unit = r.get("unit", "")
        ratio = r.get("ratio")
        row = (r["bench"], r["metric"], with_unit(r.get("figure"), unit), with_unit(r.get("reference"), unit),
               DASH if ratio is None else f"{ratio:.2f}", r.get("target") or DASH, result(r.get("passed")),
               r.get("note") or "")
        lines.append("| " + " | ".join(cell(str(c)) for c in row) + " |")
    passed = sum(1 for r in records if r.get("passed") is True)
    missed = sum(1 for r in records if r.get("passed") is False)
    lines += ["", f"{len(records)} figures: {passed} PASS, {missed} MISS, "
                  f"{len(records) - passed - missed} without a target."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results", type=Path, default=None,
                    help="the JSON lines (default: bench/out/results.jsonl)")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "out" / "summary.md",
                    help="where the markdown goes (default: bench/out/summary.md)")
    args = ap.parse_args(argv)
    path = args.results or results_path()
    records = load(path) if path.exists() else []
    if not records:
        print(f"no benchmark results in {path}: run `make bench` (or a bench/bench_*.py script)")
        return 1
    text = render(records, machine())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print()
    print(text, end="")
    print(f"\nwritten to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
