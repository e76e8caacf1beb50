"""Shared fixtures: every test gets its own lake home and never reads the user's config."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from lakeline import envvars


@pytest.fixture(autouse=True)
def _isolate_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in list(os.environ):
        if name.startswith(envvars.SETTING_PREFIX) or name in {envvars.HOME, envvars.CRASH_AT}:
            monkeypatch.delenv(name, raising=False)
    yield


@pytest.fixture
def home(tmp_path: Path) -> Path:
    from lakeline.lake import init_home

    h = tmp_path / "lake"
    init_home(h)
    return h
