"""PostgreSQL databases for the totesys tests: real server on 127.0.0.1:5432 (user postgres).

``pg_database`` (session scope) is a factory: each call creates a uniquely named database and
returns its URL; every database it made is dropped when the session ends. Tests skip, with the
reason, only when the server is not reachable. Import the fixtures into a test module with
``from tests.totesys_pg import pg_database, pg_server  # noqa: F401``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator

import pytest

HOST = os.environ.get("LAKELINE_TEST_PG_HOST", "127.0.0.1")
PORT = int(os.environ.get("LAKELINE_TEST_PG_PORT", "5432"))
USER = os.environ.get("LAKELINE_TEST_PG_USER", "postgres")


def admin_dsn(dbname: str = "postgres") -> str:
    """A libpq connection string for the test server."""
    return f"host={HOST} port={PORT} user={USER} dbname={dbname} connect_timeout=3"


def url(dbname: str) -> str:
    """The SQLAlchemy/lakeline URL of a database on the test server."""
    return f"postgresql://{USER}@{HOST}:{PORT}/{dbname}"


@pytest.fixture(scope="session")
def pg_server() -> str:
    """Skip unless the PostgreSQL test server answers; returns its host:port."""
    psycopg = pytest.importorskip("psycopg")
    try:
        with psycopg.connect(admin_dsn(), autocommit=True) as conn:
            conn.execute("SELECT 1")
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL not reachable on {HOST}:{PORT} as {USER}: {str(exc).splitlines()[0]}")
    return f"{HOST}:{PORT}"


@pytest.fixture(scope="session")
def pg_database(pg_server: str) -> Iterator[Callable[[str], str]]:
    """Factory ``make(purpose) -> URL`` of fresh databases, all dropped at the end of the session."""
    import psycopg

    made: list[str] = []

    def make(purpose: str = "db") -> str:
        name = f"lakeline_test_{purpose}_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(admin_dsn(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        made.append(name)
        return url(name)

    yield make
    with psycopg.connect(admin_dsn(), autocommit=True) as conn:
        for name in made:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
