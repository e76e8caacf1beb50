"""`lakeline compact` on a Parquet partition: an output prefix beside the table, the reason for
every file left alone, and a clear error for a partition that does not exist."""

from __future__ import annotations

import io
import json
import os
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner, Result

from lakeline.cli.main import cli, main
from lakeline.config import load_settings
from lakeline.errors import NotFoundError, UsageError
from lakeline.lake import Lake
from lakeline.tables.parquet_compact import compact_partition

PREFIX = "shipments/dt=2026-01-05/"


def _parquet(first: int, n: int) -> bytes:
    buf = io.BytesIO()
    pq.write_table(pa.table({"id": list(range(first, first + n))}), buf)
    return buf.getvalue()


def _ids(lake: Lake, prefix: str) -> list[int]:
    out: list[int] = []
    for info in lake.store.list("silver", prefix):
        out += pq.read_table(io.BytesIO(lake.store.get("silver", info.key))).column("id").to_pylist()
    return sorted(out)


def _age(lake: Lake, key: str, seconds: float) -> None:
    path = lake.store.local_path("silver", key)
    assert path is not None
    past = time.time() - seconds
    os.utime(path, (past, past))


@pytest.fixture
def lake(home: Path) -> Lake:
    lk = Lake.open(load_settings(home))
    for c in range(3):
        lk.store.put("silver", f"{PREFIX}part-o1-c{c:05d}.parquet", _parquet(c * 10, 10))
    return lk


def compact(home: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["compact", "--table", "silver.shipments", *args],
                              env={"LAKELINE_HOME": str(home)})


def test_output_prefix_writes_beside_the_table_and_deletes_nothing(lake: Lake, home: Path) -> None:
    before = sorted(i.key for i in lake.store.list("silver", PREFIX))
    result = compact(home, "--dt", "2026-01-05", "--output-prefix", "silver_compacted", "--min-age-seconds", "0",
                     "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert (out["merged"], out["rows"], out["reason"], out["output_prefix"]) == (
        3, 30, None, "silver_compacted/shipments/dt=2026-01-05/")
    assert out["file"].startswith("silver_compacted/shipments/dt=2026-01-05/part-compact-")
    assert sorted(i.key for i in lake.store.list("silver", PREFIX)) == before  # the table is untouched
    assert _ids(lake, PREFIX) == list(range(30))
    assert _ids(lake, "silver_compacted/") == list(range(30))
    # a rerun writes the same file name again (one output, not two)
    again = compact_partition(lake, "shipments", "2026-01-05", min_age_seconds=0, output_prefix="silver_compacted")
    assert again["file"] == out["file"]
    assert len(list(lake.store.list("silver", "silver_compacted/"))) == 1


def test_skipped_files_say_why(lake: Lake, home: Path) -> None:
    for c in range(3):
        _age(lake, f"{PREFIX}part-o1-c{c:05d}.parquet", 12 if c else 400)
    result = compact(home, "--dt", "2026-01-05", "--min-age-seconds", "300")
    assert result.exit_code == 0, result.output
    assert "skipped part-o1-c00001.parquet: too young: modified 12 s ago, min age 300 s" in result.stdout
    assert "skipped part-o1-c00002.parquet: too young: modified 12 s ago, min age 300 s" in result.stdout
    out = compact_partition(lake, "shipments", "2026-01-05", min_age_seconds=300)
    assert (out["merged"], out["skipped_young"]) == (0, 2)
    assert out["reason"] == ("nothing merged: 1 file(s) old enough to merge, 2 needed; 2 too young "
                             "(min age 300 s; see skipped)")
    # merged: no reason; a lone compacted file is "already compacted"
    done = compact_partition(lake, "shipments", "2026-01-05", min_age_seconds=0)
    assert (done["merged"], done["reason"], done["skipped"]) == (3, None, [])
    lone = compact_partition(lake, "shipments", "2026-01-05", min_age_seconds=0)
    assert lone["merged"] == 0
    assert lone["skipped"] == [{"file": done["file"].rsplit("/", 1)[1], "reason": "already compacted"}]


def test_missing_partition_is_a_clear_error(lake: Lake, home: Path) -> None:
    with pytest.raises(NotFoundError, match=r"^silver/shipments/dt=2030-01-01/ holds no Parquet files; "
                                            r"partitions of shipments: dt=2026-01-05$"):
        compact_partition(lake, "shipments", "2030-01-01", min_age_seconds=0)
    with pytest.raises(NotFoundError, match="partitions of nope: none"):
        compact_partition(lake, "nope", "2026-01-05")


def test_missing_partition_and_bad_output_prefix_exit_codes(lake: Lake, home: Path, monkeypatch,
                                                            capsys) -> None:
    monkeypatch.setenv("LAKELINE_HOME", str(home))
    with pytest.raises(SystemExit) as exited:
        main(["compact", "--table", "silver.shipments", "--dt", "2030-01-01", "--json"])
    assert exited.value.code == 1
    assert json.loads(capsys.readouterr().out) == {
        "status": "error", "code": "NOT_FOUND_ERROR",
        "reason": "silver/shipments/dt=2030-01-01/ holds no Parquet files; partitions of shipments: dt=2026-01-05"}
    for prefix, reason in [
        ("../outside", "output prefix '../outside' escapes the silver zone"),
        ("shipments/copy", "output prefix 'shipments/copy' is inside table shipments"),
    ]:
        with pytest.raises(SystemExit) as exited:
            main(["compact", "--table", "silver.shipments", "--dt", "2026-01-05", "--output-prefix", prefix])
        assert exited.value.code == 2
        assert reason in capsys.readouterr().err
    assert len(list(lake.store.list("silver"))) == 3  # nothing written, nothing deleted
    with pytest.raises(UsageError, match="escapes the silver zone"):
        compact_partition(lake, "shipments", "2026-01-05", output_prefix="/abs")
