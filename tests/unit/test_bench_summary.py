"""The `make bench` summary: bench/results.py records figures, bench/summary.py renders one table.

Both are scripts of bench/ (not a package): they are loaded from their files, with bench/ on
sys.path as when they run as scripts.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"

HOST = {"cores": "2", "cpu": "AMD EPYC", "ram": "23.5 GiB", "date": "2026-12-07 17:31 UTC"}


@pytest.fixture
def bench(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> tuple[ModuleType, ModuleType]:
    """(results, summary), writing to a results file in tmp_path."""
    monkeypatch.syspath_prepend(str(BENCH))
    monkeypatch.setenv("LAKELINE_BENCH_RESULTS", str(tmp_path / "results.jsonl"))
    modules = []
    for name in ("results", "summary"):
        spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        monkeypatch.setitem(sys.modules, name, module)
        spec.loader.exec_module(module)
        modules.append(module)
    return modules[0], modules[1]


def test_records_render_as_one_markdown_table(bench: tuple[ModuleType, ModuleType], tmp_path: Path) -> None:
    results, summary = bench
    results.record("shipments 1,000,000", "put+run records/s", 201_234.5, "records/s", 612_000.0, 0.3288,
                   "≥ 0.5", False)
    results.record("shipments 1,000,000", "peak RSS", 512.4, "MB", None, None, "≤ 1536 MB", True)
    results.record("latency", "put -> queryable p50", 0.2771, "s", None, None, "≤ 0.5 s", True,
                   "20 files x 1,000 records")
    results.record("latency", "put -> queryable p95", 0.50321, "s", None, None, "—", None, "a | b")
    results.record("cold start", "import lakeline.cli.main", 0.0412, "s", 0.0213, 1.934, "", None)

    records = summary.load(tmp_path / "results.jsonl")
    assert summary.render(records, HOST) == """\
# Benchmark summary

2026-12-07 17:31 UTC · 2 cores · AMD EPYC · 23.5 GiB RAM

| benchmark | metric | figure | reference | ratio | target | result | note |
|---|---|---|---|---|---|---|---|
| shipments 1,000,000 | put+run records/s | 201,234 records/s | 612,000 records/s | 0.33 | ≥ 0.5 | MISS |  |
| shipments 1,000,000 | peak RSS | 512 MB | — | — | ≤ 1536 MB | PASS |  |
| latency | put -> queryable p50 | 0.277 s | — | — | ≤ 0.5 s | PASS | 20 files x 1,000 records |
| latency | put -> queryable p95 | 0.503 s | — | — | — | — | a \\| b |
| cold start | import lakeline.cli.main | 0.0412 s | 0.0213 s | 1.93 | — | — |  |

5 figures: 2 PASS, 1 MISS, 2 without a target.
"""


def test_summary_writes_the_markdown_file(bench: tuple[ModuleType, ModuleType], tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    results, summary = bench
    results.record("lineage", "record_many nodes/s", 150_000.0, "nodes/s", 2_000.0, 75.0, "—", None)
    out = tmp_path / "summary.md"
    assert summary.main(["--out", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    assert "| lineage | record_many nodes/s | 150,000 nodes/s | 2,000 nodes/s | 75.00 | — | — |  |" in text
    assert text in capsys.readouterr().out
    host = summary.machine()
    assert set(host) == {"cores", "cpu", "ram", "date"}


def test_no_results_is_reported(bench: tuple[ModuleType, ModuleType], tmp_path: Path) -> None:
    _, summary = bench
    assert summary.main(["--out", str(tmp_path / "summary.md")]) == 1
    assert not (tmp_path / "summary.md").exists()
