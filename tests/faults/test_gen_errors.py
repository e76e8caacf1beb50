"""`lakeline gen totesys` against a database it cannot reach: one line naming the cause, exit 1,
no traceback and no password (issue 16, part 8)."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.helpers import Cli
from tests.faults.conftest import Case

SECRET = "Gen-s3cret-77"


def test_gen_against_a_missing_database_is_one_clear_line(tmp_path: Path, fault: Case) -> None:
    cli = Cli(tmp_path / "lake", tmp_path)
    cli.ok("init", cli.home)
    url = f"postgresql://postgres:{SECRET}@127.0.0.1:5432/lakeline_no_such_db"
    fault("gen totesys --db <a database that does not exist>",
          expected="exit 1, one line `error: … cannot reach …`, no traceback, no password")
    done = cli("gen", "totesys", "--db", url, "--scale", "10")
    fault.saw(f"exit {done.returncode}, stderr {done.stderr.strip()[:160]!r}")
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: postgresql://postgres:***@127.0.0.1:5432/lakeline_no_such_db")
    assert "cannot reach the database" in lines[0] and "lakeline_no_such_db" in lines[0]
    assert "Traceback" not in done.stderr and SECRET not in done.stderr + done.stdout
