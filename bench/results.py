"""One line per measured figure, for the summary table that ends ``make bench``.

Every benchmark script calls :func:`record` at its end, once per figure it reports, and
``bench/summary.py`` reads the lines back and prints (and writes) one markdown table. ``make
bench`` empties the file first, so the table shows exactly that run.

Standard library only: ``bench_dq.py`` and the other scripts may run in a different venv.

Usage, from a script in ``bench/`` (its directory is on ``sys.path`` when run as a script)::

    from results import record

    record("shipments 1M", "put+run records/s", 812_000, "records/s", reference=1_600_000,
           ratio=0.51, target="≥ 0.5", passed=True)

The file is ``bench/out/results.jsonl``, or ``$LAKELINE_BENCH_RESULTS`` when that is set.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

ENV = "LAKELINE_BENCH_RESULTS"
DEFAULT_PATH = Path(__file__).resolve().parent / "out" / "results.jsonl"


def results_path() -> Path:
    """Where the records go: ``$LAKELINE_BENCH_RESULTS`` or ``bench/out/results.jsonl``."""
    env = os.environ.get(ENV)
    return Path(env) if env else DEFAULT_PATH


def record(
    bench: str,
    metric: str,
    figure: float,
    unit: str,
    reference: float | None,
    ratio: float | None,
    target: str,
    passed: bool | None,
    note: str = "",
) -> None:
    """Append one figure to the results file.

    ``bench`` names the benchmark (a row group in the table), ``metric`` what ``figure`` is, in
    ``unit``. ``reference`` is the reference figure measured in the same run (same unit) or
    None; ``ratio`` the ratio the target is about (None when there is none); ``target`` is text
    such as ``"≥ 0.5"`` or ``"≤ 1536 MB"``, or ``"—"`` when the figure has no target, and
    ``passed`` then None. ``note`` is free text (sizes, options).
    """
    line = {
        "bench": bench,
        "metric": metric,
        "figure": figure,
        "unit": unit,
        "reference": reference,
        "ratio": ratio,
        "target": target,
        "passed": passed,
        "note": note,
    }
    path = results_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as f:
        f.write(json.dumps(line, ensure_ascii=False) + "\n")
