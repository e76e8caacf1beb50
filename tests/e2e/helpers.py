"""Helpers shared by the end-to-end tests: the ``lakeline`` console script as a subprocess.

The fixtures built on them (``cli``, ``lake``) live in ``tests/e2e/conftest.py``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

LAKELINE = Path(sys.executable).with_name("lakeline")
FAST = {"LAKELINE__QUEUE__RETRY_DELAY": "0", "LAKELINE__RUNNER__POLL_INTERVAL": "0.05"}
RUN_LINE = re.compile(
    r"ingested (\d+) objects \((\d+) duplicates skipped\), (\d+) chunks: "
    r"(\d+) rows loaded, (\d+) rejected in \d+(\.\d+)? s"
)


class Cli:
    """Runs ``lakeline`` in ``cwd`` with the lake home in ``LAKELINE_HOME``."""

    def __init__(self, home: Path, cwd: Path) -> None:
        self.home = home
        self.cwd = cwd

    def env(self, extra: dict[str, str] | None = None, *, home: bool = True) -> dict[str, str]:
        env = dict(os.environ)  # tests/conftest.py already removed any LAKELINE__* / LAKELINE_HOME
        env.update(FAST)
        if home:
            env["LAKELINE_HOME"] = str(self.home)
        env.update(extra or {})
        return env

    def __call__(
        self, *args: str | Path, env: dict[str, str] | None = None, home: bool = True,
        cwd: Path | None = None,
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(LAKELINE), *map(str, args)], cwd=cwd or self.cwd, env=self.env(env, home=home),
            capture_output=True, text=True, timeout=120,
        )

    def ok(self, *args: str | Path, **kw: Any) -> subprocess.CompletedProcess[str]:
        """Run and require exit code 0."""
        p = self(*args, **kw)
        assert p.returncode == 0, f"lakeline {args} -> {p.returncode}\n{p.stdout}\n{p.stderr}"
        return p

    def json(self, *args: str | Path, **kw: Any) -> Any:
        """Run with ``--json``, require exit code 0, parse stdout."""
        return json.loads(self.ok(*args, "--json", **kw).stdout)

    def fails(self, code: int, *args: str | Path, **kw: Any) -> str:
        """Run, require exit code ``code`` and an empty stdout; return stderr."""
        p = self(*args, **kw)
        assert p.returncode == code, f"lakeline {args} -> {p.returncode}\n{p.stdout}\n{p.stderr}"
        assert p.stdout == ""
        return p.stderr

    def count(self, table: str = "silver.shipments") -> int:
        rows = self.json("sql", f"SELECT count(*) AS n FROM {table}")
        return int(rows[0]["n"])


def runs_of(cli: Cli, *args: str) -> list[dict[str, Any]]:
    """``lakeline runs --json`` entries, newest first, each with its ``detail`` fields merged in
    (``etag``, ``chunks``, ``format`` of an object run; ``table`` of a batch run)."""
    return [{**r["detail"], **{k: v for k, v in r.items() if k != "detail"}}
            for r in cli.json("runs", *args)["runs"]]
