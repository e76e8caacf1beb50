"""Helpers shared by the end-to-end tests: the ``lakeline`` console script as a subprocess
(:class:`Cli`), or the same command line run in this process (:class:`InProcess`).

The fixtures built on them (``cli``, ``lake``) live in ``tests/e2e/conftest.py``.
"""

from __future__ import annotations

import contextlib
import io
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


class InProcess(Cli):
    """:class:`Cli` running ``lakeline`` in this process, through ``lakeline.cli.main.main``
    (same environment, cwd and streams; exit codes, stdout and stderr as a subprocess sees
    them) without paying an interpreter start per command. A command given a crash point
    (``LAKELINE_CRASH_AT``, which ends its process with ``os._exit(137)``) runs as a subprocess."""

    def __call__(self, *args: str | Path, env: dict[str, str] | None = None, home: bool = True,
                 cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        from lakeline.cli.main import main

        wanted = self.env(env, home=home)  # from this process's environment, before it is cleared
        if wanted.get("LAKELINE_CRASH_AT"):
            return super().__call__(*args, env=env, home=home, cwd=cwd)
        argv = [str(a) for a in args]
        # text streams over bytes: `sql` writes DuckDB's output to sys.stdout.buffer
        out, err = (io.TextIOWrapper(io.BytesIO(), encoding="utf-8") for _ in range(2))
        before, here = dict(os.environ), Path.cwd()
        os.environ.clear()
        os.environ.update(wanted)
        os.chdir(cwd or self.cwd)
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                try:
                    main(argv)
                    code = 0
                except SystemExit as done:
                    code = int(done.code or 0)
        finally:
            os.chdir(here)
            os.environ.clear()
            os.environ.update(before)
        text = []
        for stream in (out, err):
            stream.flush()
            text.append(stream.buffer.getvalue().decode("utf-8"))  # type: ignore[attr-defined]
        return subprocess.CompletedProcess(["lakeline", *argv], code, *text)


def runs_of(cli: Cli, *args: str) -> list[dict[str, Any]]:
    """``lakeline runs --json`` entries, newest first, each with its ``detail`` fields merged in
    (``etag``, ``chunks``, ``format`` of an object run; ``table`` of a batch run)."""
    return [{**r["detail"], **{k: v for k, v in r.items() if k != "detail"}}
            for r in cli.json("runs", *args)["runs"]]
