"""Iceberg appends under concurrency and crashes: exactly one snapshot per batch id."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pyarrow as pa
import pytest

from lakeline.config import load_settings
from lakeline.lake import Lake
from lakeline.tables import iceberg

IDENT = "silver.counter"
SCHEMA = pa.schema([pa.field("writer", pa.int32(), nullable=False),
                    pa.field("seq", pa.int32(), nullable=False),
                    pa.field("n", pa.int64())])
WRITERS = 4
APPENDS = 25
ROWS = 3


def batch(writer: int, seq: int) -> pa.Table:
    return pa.table({"writer": pa.array([writer] * ROWS, pa.int32()),
                     "seq": pa.array([seq] * ROWS, pa.int32()),
                     "n": pa.array(range(ROWS), pa.int64())})


def _writer(home: str, writer: int) -> list[bool]:
    lake = Lake.open(load_settings(home))
    out = []
    for seq in range(APPENDS):
        res = iceberg.append_batch(lake, IDENT, batch(writer, seq), f"w{writer}-s{seq}")
        out.append(res.appended)
    # every batch again: all already there
    for seq in range(0, APPENDS, 5):
        res = iceberg.append_batch(lake, IDENT, batch(writer, seq), f"w{writer}-s{seq}")
        out.append(res.appended)
    return out


@pytest.fixture
def lake(home: Path) -> Lake:
    lk = Lake.open(load_settings(home))
    iceberg.ensure_table(lk, IDENT, SCHEMA, [("writer", "identity")])
    return lk


def _check(lake: Lake, expected_batches: set[tuple[int, int]]) -> None:
    table = iceberg.load_table(lake, IDENT)
    snaps = list(iceberg.ancestry(table))
    ids = [s.summary.additional_properties[iceberg.BATCH_ID_PROPERTY] for s in snaps]
    assert len(ids) == len(set(ids)) == len(expected_batches)
    data = table.scan().to_arrow()
    assert data.num_rows == ROWS * len(expected_batches)
    pairs = set(zip(data.column("writer").to_pylist(), data.column("seq").to_pylist(), strict=True))
    assert pairs == expected_batches


@pytest.mark.slow
def test_four_writer_processes_25_appends_each(lake: Lake, home: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(WRITERS) as pool:
        results = pool.starmap(_writer, [(str(home), w) for w in range(WRITERS)])
    for appended in results:
        assert appended == [True] * APPENDS + [False] * 5
    table = iceberg.load_table(lake, IDENT)
    assert len(list(iceberg.ancestry(table))) == WRITERS * APPENDS == 100
    assert table.scan().to_arrow().num_rows == 100 * ROWS
    _check(lake, {(w, s) for w in range(WRITERS) for s in range(APPENDS)})


def test_two_processes_racing_the_same_batches_append_each_once(lake: Lake, home: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(2) as pool:
        results = pool.starmap(_writer, [(str(home), 0), (str(home), 0)])
    first, second = (r[:APPENDS] for r in results)
    assert [a + b for a, b in zip(first, second, strict=True)] == [1] * APPENDS
    _check(lake, {(0, s) for s in range(APPENDS)})


SCRIPT = textwrap.dedent("""
    import sys
    import pyarrow as pa
    from lakeline.config import load_settings
    from lakeline.lake import Lake
    from lakeline.tables import iceberg
    from tests.functional.test_iceberg_concurrency import IDENT, batch
    lake = Lake.open(load_settings(sys.argv[1]))
    for seq in range(int(sys.argv[2])):
        r = iceberg.append_batch(lake, IDENT, batch(0, seq), f"b{seq}")
        print(seq, r.appended, flush=True)
""")


def _run(home: Path, n: int, crash_at: str | None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.pop("LAKELINE_CRASH_AT", None)
    if crash_at:
        env["LAKELINE_CRASH_AT"] = crash_at
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, "-c", SCRIPT, str(home), str(n)], env=env,
                          capture_output=True, text=True, timeout=120, cwd=root)


@pytest.mark.parametrize(("point", "landed"), [("iceberg.before_commit", False),
                                                ("iceberg.after_commit", True)])
def test_killed_around_the_commit_then_rerun(lake: Lake, home: Path, point: str, landed: bool) -> None:
    crashed = _run(home, 5, f"{point}:3")  # dies on batch b2
    assert crashed.returncode == 137, crashed.stderr
    assert crashed.stdout.split("\n")[:2] == ["0 True", "1 True"]
    table = iceberg.load_table(lake, IDENT)
    assert len(list(iceberg.ancestry(table))) == (3 if landed else 2)
    if not landed:  # data files were written, the commit never happened: invisible orphans
        data_files = list(Path(table.location().removeprefix("file://")).rglob("*.parquet"))
        assert len(data_files) == 3 and table.scan().to_arrow().num_rows == 2 * ROWS
    again = _run(home, 5, None)
    assert again.returncode == 0, again.stderr
    lines = again.stdout.split("\n")
    assert lines[:5] == ["0 False", "1 False", f"2 {not landed}", "3 True", "4 True"]
    _check(lake, {(0, s) for s in range(5)})
