"""Backend fixtures shared by the contract suites.

Each fixture is parametrised by backend name and builds that backend's adapter; every
contract test then runs against each backend unchanged. Tests that need a local filesystem
skip when ``local_path`` is None; a test whose subject only exists on one backend calls
:func:`skip_backend` with the reason.

``"aws"`` runs on the in-process moto server (``moto_endpoint``, started on first use) with
fresh resources per test: unique buckets (or unique key prefixes in the fixed-name buckets
``acme-raw`` and ``landing`` that ``test_bucket_names`` expects), a DynamoDB table, an SSM
path prefix and an SNS topic. The S3 zones deliberately mix every mapping the adapter
supports: a shared bucket with a per-test prefix (raw, landing), two zones in one bucket under
zone prefixes (silver, gold) and a bucket of their own (error, tmp). The DynamoDB store takes
the fake clock, so TTL tests run without sleeping.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lakeline.adapters.local.notifier import OutboxNotifier
from lakeline.adapters.local.objectstore import FsObjectStore
from lakeline.adapters.local.params import SCHEMA as PARAMS_SCHEMA
from lakeline.adapters.local.params import SqliteParameterStore
from lakeline.adapters.local.sqlite import Database
from lakeline.adapters.local.state import SCHEMA as STATE_SCHEMA
from lakeline.adapters.local.state import SqliteStateStore
from lakeline.ports import Notifier, ObjectStore, ParameterStore, StateStore
from tests.aws_server import REGION, boto_client, moto_endpoint, unique  # noqa: F401

BACKENDS = ["local", "aws"]
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


def skip_backend(adapter: object, backend: str, reason: str) -> None:
    """Skip the running test when ``adapter`` belongs to ``backend`` (``"aws"``, ``"local"``)."""
    if type(adapter).__module__.startswith(f"lakeline.adapters.{backend}."):
        pytest.skip(f"{backend} backend: {reason}")


_CLIENTS: dict[str, Any] = {}


def aws_clients(endpoint: str) -> Any:
    """The adapters' clients (:func:`lakeline.adapters.aws.session.clients`) for the moto
    server, with explicit test credentials; shared per endpoint (boto3 clients are
    thread-safe)."""
    if endpoint not in _CLIENTS:
        import boto3

        from lakeline.adapters.aws.session import clients
        from lakeline.config import AwsSettings

        session = boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
        )
        _CLIENTS[endpoint] = clients(
            AwsSettings(region=REGION, endpoint_url=endpoint, max_attempts=3), session
        )
    return _CLIENTS[endpoint]


def ensure_bucket(s3: Any, name: str) -> None:
    """Create ``name`` unless it exists already (fixed-name buckets shared by tests)."""
    try:
        s3.create_bucket(Bucket=name)
    except s3.exceptions.ClientError as exc:
        if exc.response["Error"]["Code"] not in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}:
            raise


def aws_zones(endpoint: str) -> dict[str, tuple[str, str]]:
    """Fresh S3 locations for every zone, mixing the three mappings (see module doc)."""
    s3 = boto_client("s3", endpoint)
    test_prefix = unique("t") + "/"
    for shared in ("acme-raw", "landing"):
        ensure_bucket(s3, shared)
    lake = unique("lake")
    for suffix in ("sg", "error", "tmp"):
        s3.create_bucket(Bucket=f"{lake}-{suffix}")
    return {
        "raw": ("acme-raw", test_prefix),
        "landing": ("landing", test_prefix),
        "silver": (f"{lake}-sg", "silver/"),
        "gold": (f"{lake}-sg", "gold/"),
        "error": (f"{lake}-error", ""),
        "tmp": (f"{lake}-tmp", ""),
    }


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=BACKENDS)
def object_store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    if request.param == "local":
        return FsObjectStore(tmp_path / "zones", bucket_names={"raw": "acme-raw"})
    if request.param == "aws":
        from lakeline.adapters.aws.objectstore import S3ObjectStore

        endpoint = request.getfixturevalue("moto_endpoint")
        return S3ObjectStore(aws_clients(endpoint).s3, aws_zones(endpoint))
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
    if request.param == "aws":
        from lakeline.adapters.aws.state import TABLE_SCHEMA, DynamoStateStore

        endpoint = request.getfixturevalue("moto_endpoint")
        table = unique("state")
        boto_client("dynamodb", endpoint).create_table(TableName=table, **TABLE_SCHEMA)
        yield DynamoStateStore(aws_clients(endpoint).dynamodb, table, clock=clock)
        return
    raise NotImplementedError(request.param)


@pytest.fixture(params=BACKENDS)
def param_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ParameterStore]:
    if request.param == "local":
        db = Database(tmp_path / "state.db", PARAMS_SCHEMA)
        yield SqliteParameterStore(db)
        db.close()
        return
    if request.param == "aws":
        from lakeline.adapters.aws.params import SsmParameterStore

        endpoint = request.getfixturevalue("moto_endpoint")
        yield SsmParameterStore(aws_clients(endpoint).ssm, prefix="/" + unique("t"))
        return
    raise NotImplementedError(request.param)


@pytest.fixture(params=BACKENDS)
def notifier(request: pytest.FixtureRequest, tmp_path: Path) -> Notifier:
    if request.param == "local":
        return OutboxNotifier(tmp_path / "outbox")
    if request.param == "aws":
        from lakeline.adapters.aws.notifier import SnsNotifier

        endpoint = request.getfixturevalue("moto_endpoint")
        arn = boto_client("sns", endpoint).create_topic(Name=unique("notify"))["TopicArn"]
        return SnsNotifier(aws_clients(endpoint).sns, arn)
    raise NotImplementedError(request.param)
