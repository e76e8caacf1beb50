"""Fixtures of the end-to-end tests: a ``lakeline`` CLI bound to a lake home under ``tmp_path``
(see :class:`tests.e2e.helpers.Cli`), and the PostgreSQL databases of the totesys test."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.helpers import Cli
from tests.totesys_pg import pg_database, pg_server  # noqa: F401  (fixtures, for test_totesys_cli.py)


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    """A CLI bound to ``tmp_path/lake`` (not yet initialised)."""
    return Cli(tmp_path / "lake", tmp_path)


@pytest.fixture
def lake(cli: Cli) -> Cli:
    """A CLI bound to an initialised lake."""
    cli.ok("init", cli.home)
    return cli
