"""boto3 clients for the AWS adapters, S3 URI parsing and error translation.

:func:`clients` builds the clients of one lake lazily (a Lambda cold start pays only for the
services it touches) with botocore's *standard* retry mode: throttling errors, 5xx responses
and connection failures are retried with exponential backoff, up to ``aws.max_attempts``
attempts in total (first request included). What still fails after that surfaces as
:class:`TransientError` through :func:`translate_errors`, so callers retry later instead of
treating it as bad data.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from lakeline.config import AwsSettings
from lakeline.errors import ConfigError, TransientError

#: Error codes that mean "try again later" (what botocore retries, once its attempts ran out).
TRANSIENT_CODES = frozenset({
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "RequestThrottled",
    "SlowDown",
    "EC2ThrottledException",
    "InternalError",
    "InternalFailure",
    "InternalServerError",
    "ServiceUnavailable",
    "RequestTimeout",
    "RequestTimeoutException",
    "PriorRequestNotComplete",
    "KMSThrottlingException",
})

def parse_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix/`` → ``("bucket", "some/prefix/")``.

    A non-empty prefix always ends with ``/`` (``s3://b/p`` gives ``"p/"``), so zones never
    overlap by accident: ``raw`` and ``raw2`` are different prefixes.
    """
    if not isinstance(uri, str) or not uri.startswith("s3://"):
        raise ConfigError(f"not an s3:// URI: {uri!r}")
    bucket, _, prefix = uri[len("s3://"):].partition("/")
    if not bucket or any(c in bucket for c in " \\?#"):
        raise ConfigError(f"S3 URI {uri!r} has no valid bucket name")
    prefix = prefix.strip("/")
    if "//" in prefix:
        raise ConfigError(f"S3 URI {uri!r} has an empty path segment")
    return bucket, (prefix + "/" if prefix else "")


def error_code(exc: BaseException) -> str:
    """The AWS error code of a botocore ``ClientError`` (``""`` for anything else)."""
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return ""
    return str(response.get("Error", {}).get("Code", ""))


def is_transient(exc: BaseException) -> bool:
    """True for throttling, server-side and connection failures (worth retrying later)."""
    from botocore.exceptions import (
        ConnectionClosedError,
        ConnectTimeoutError,
        EndpointConnectionError,
        ReadTimeoutError,
    )

    if isinstance(
        exc, EndpointConnectionError | ConnectionClosedError | ConnectTimeoutError | ReadTimeoutError
    ):
        return True
    code = error_code(exc)
    if code in TRANSIENT_CODES:
        return True
    status = getattr(exc, "response", {}).get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    return status in (500, 502, 503, 504)


@contextmanager
def translate_errors(what: str) -> Iterator[None]:
    """Re-raise transient AWS failures as :class:`TransientError`; let others through.

    Adapters catch the specific codes they give meaning to (``NoSuchKey``,
    ``ConditionalCheckFailedException``, ...) around this block.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except (ClientError, BotoCoreError) as exc:
        if is_transient(exc):
            code = error_code(exc) or type(exc).__name__
            raise TransientError(f"{what}: {code} (retries exhausted): {exc}") from exc
        raise


@dataclass
class AwsClients:
    """The boto3 clients of one lake, created on first use (thread-safe).

    boto3 sessions are not thread-safe, so client creation is serialised by a lock; the
    clients themselves are thread-safe and shared.
    """

    session: Any
    config: Any
    endpoint_url: str | None = None
    _made: dict[str, Any] = field(default_factory=dict, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def client(self, service: str) -> Any:
        """The (cached) client of ``service``."""
        made = self._made.get(service)
        if made is not None:
            return made
        with self._lock:
            if service not in self._made:
                kwargs: dict[str, Any] = {"config": self.config}
                if self.endpoint_url:
                    kwargs["endpoint_url"] = self.endpoint_url
                self._made[service] = self.session.client(service, **kwargs)
            return self._made[service]

    @property
    def s3(self) -> Any:
        return self.client("s3")

    @property
    def sqs(self) -> Any:
        return self.client("sqs")

    @property
    def dynamodb(self) -> Any:
        return self.client("dynamodb")

    @property
    def ssm(self) -> Any:
        return self.client("ssm")

    @property
    def sns(self) -> Any:
        return self.client("sns")


def client_config(aws: AwsSettings) -> Any:
    """The botocore ``Config`` every client uses: standard retries, the lake's region and,
    for a custom endpoint (moto, LocalStack, MinIO), path-style S3 addressing."""
    from botocore.config import Config

    if aws.max_attempts < 1:
        raise ConfigError(f"aws.max_attempts must be >= 1, got {aws.max_attempts}")
    options: dict[str, Any] = {
        "region_name": aws.region,
        # total_max_attempts counts the first request too (botocore's "max_attempts" in a
        # Config would count only the retries): aws.max_attempts = attempts in total.
        "retries": {"mode": "standard", "total_max_attempts": aws.max_attempts},
    }
    if aws.endpoint_url:
        options["s3"] = {"addressing_style": "path"}
    return Config(**options)


def clients(aws: AwsSettings, session: Any | None = None) -> AwsClients:
    """Clients for every AWS port of a lake; ``session`` defaults to a new boto3 session
    (credentials from the usual chain: environment, profile, instance/Lambda role)."""
    if session is None:
        import boto3

        session = boto3.session.Session(region_name=aws.region)
    return AwsClients(session=session, config=client_config(aws),
                      endpoint_url=aws.endpoint_url or None)


__all__ = [
    "TRANSIENT_CODES",
    "AwsClients",
    "client_config",
    "clients",
    "error_code",
    "is_transient",
    "parse_s3_uri",
    "translate_errors",
]
