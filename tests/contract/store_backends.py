"""Backend fixtures shared by the contract suites.

Each fixture is parametrised by backend name; a new backend (e.g. ``"aws"`` on moto) is added
by extending ``params`` and building its adapter in the fixture. Every contract test then runs
against it unchanged. Tests that need a local filesystem skip when ``local_path`` is None.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from lakeline.adapters.local.notifier import OutboxNotifier
from lakeline.adapters.local.objectstore import FsObjectStore
from lakeline.adapters.local.params import SCHEMA as PARAMS_SCHEMA
from lakeline.adapters.local.params import SqliteParameterStore
from lakeline.adapters.local.sqlite import Database
from lakeline.adapters.local.state import SCHEMA as STATE_SCHEMA
from lakeline.adapters.local.state import SqliteStateStore
from lakeline.ports import Notifier, ObjectStore, ParameterStore, StateStore

BACKENDS = ["local"]
START = 1_700_000_000.0


class FakeClock:
    """A settable clock (epoch seconds) injected into stores that decide expiry."""

    def __init__(self, start: float = START) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=BACKENDS)
def object_store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    if request.param == "local":
        return FsObjectStore(tmp_path / "zones", bucket_names={"raw": "acme-raw"})
    raise NotImplementedError(request.param)


@pytest.fixture(params=BACKENDS)
def state_store(
    request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock
) -> Iterator[StateStore]:
    if request.param == "local":
        store = SqliteStateStore(Database(tmp_path / "state.db", STATE_SCHEMA), clock=clock)
        yield store
        store.close()
        return
    raise NotImplementedError(request.param)


@pytest.fixture(params=BACKENDS)
def param_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ParameterStore]:
    if request.param == "local":
        db = Database(tmp_path / "state.db", PARAMS_SCHEMA)
        yield SqliteParameterStore(db)
        db.close()
        return
    raise NotImplementedError(request.param)


@pytest.fixture(params=BACKENDS)
def notifier(request: pytest.FixtureRequest, tmp_path: Path) -> Notifier:
    if request.param == "local":
        return OutboxNotifier(tmp_path / "outbox")
    raise NotImplementedError(request.param)
