"""Fixtures of the end-to-end tests: a ``lakeline`` CLI bound to a lake home under ``tmp_path``
(see :class:`tests.e2e.helpers.Cli`), and the PostgreSQL databases of the totesys test.

A module that sets ``IN_PROCESS = True`` gets the command line run in the test's process
(:class:`tests.e2e.helpers.InProcess`): the same commands, exit codes and output without an
interpreter start per command. What only a process shows (the console script, signals, a
killed run, ``serve``) is tested through subprocesses (test_cli.py, test_serve.py, the crash
points)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.helpers import Cli, InProcess
from tests.totesys_pg import pg_database, pg_server  # noqa: F401  (fixtures, for test_totesys_cli.py)


@pytest.fixture
def cli(request: pytest.FixtureRequest, tmp_path: Path) -> Cli:
    """A CLI bound to ``tmp_path/lake`` (not yet initialised)."""
    kind = InProcess if getattr(request.module, "IN_PROCESS", False) else Cli
    return kind(tmp_path / "lake", tmp_path)


@pytest.fixture
def lake(cli: Cli) -> Cli:
    """A CLI bound to an initialised lake."""
    cli.ok("init", cli.home)
    return cli
