"""The totesys source connector: SQLAlchemy engines, credentials, chunked incremental reads.

- :func:`engine_for` opens PostgreSQL through psycopg 3 (``postgresql://`` is rewritten to
  ``postgresql+psycopg://``; a libpq keyword string ``host=… user=… password=… dbname=…`` is
  parsed as one, :func:`parse_keywords`) or SQLite (any other plain path is a SQLite file).
  Connections are not pooled (``NullPool``): every table read opens its own connection, so a
  dropped connection costs one table's retry, never a stale pooled socket.
- :func:`resolve_source_url` finds the URL: the explicit argument, else ``totesys.source_url``
  (``lakeline.toml`` or ``LAKELINE__TOTESYS__SOURCE_URL``), else the parameter named by
  ``totesys.source_url_parameter`` (SSM on AWS), else the secret ``totesys.source_secret_id``
  (Secrets Manager). Credentials never appear in code or logs: print URLs with :func:`mask`
  (:mod:`lakeline.secrets`), errors with :func:`lakeline.secrets.mask_error`.
- :meth:`Source.read_changes` yields a table's rows with ``last_updated`` after a point in time
  as Arrow tables of at most ``chunk_rows`` rows, ordered by ``(last_updated, pk)``, from a
  server-side cursor (``yield_per``): a table is never loaded into memory whole.
- :func:`retrying` retries connection errors with exponential backoff.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import orjson
import pyarrow as pa
from sqlalchemy import Engine, create_engine, select
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, InterfaceError, OperationalError
from sqlalchemy.pool import NullPool

from lakeline import log, secrets
from lakeline.errors import ConfigError, UsageError
from lakeline.pipelines.totesys import schema
from lakeline.pipelines.totesys.settings import totesys_settings

__all__ = [
    "LIBPQ_KEYWORDS", "Source", "engine_for", "is_transient", "mask", "parse_keywords", "parse_url",
    "resolve_source_url", "retrying",
]

_log = log.get("totesys.source")
T = TypeVar("T")


def parse_url(url: str) -> URL:
    """A SQLAlchemy URL from a URL, a libpq keyword string (``host=… dbname=…``) or a SQLite file
    path; PostgreSQL gets the psycopg driver. A ``?password=`` query parameter becomes the URL's
    password (SQLAlchemy hides that one whenever it prints a URL). Every password parsed is
    registered with :mod:`lakeline.secrets`; errors never echo one."""
    if not url:
        raise ConfigError("no totesys source: pass --source URL or set pipelines.totesys.source_url")
    if "://" not in url:
        if _KEYWORD_START.match(url):
            return _from_keywords(url)
        return URL.create("sqlite", database=str(Path(url).expanduser().resolve()))
    if url.startswith("postgres://"):  # the libpq / Heroku spelling
        url = "postgresql://" + url[len("postgres://"):]
    authority = url.split("://", 1)[1].split("?", 1)[0]
    if authority.count("@") > 1:
        secrets.register(authority[authority.find(":") + 1: authority.rfind("@")])
        raise ConfigError(f"invalid database URL {mask(url)}: more than one '@' before the host; "
                          "percent-encode an '@' in the user name or password as %40")
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        raise ConfigError(f"invalid database URL {mask(url)}: expected "
                          "postgresql://user:password@host:port/dbname or a SQLite file path") from None
    if parsed.port is not None and not 0 < parsed.port < 65536:
        raise ConfigError(f"invalid database URL {mask(url)}: port {parsed.port} is not 1..65535")
    secrets.register(parsed.password if isinstance(parsed.password, str) else None,
                     *(str(v) for k, v in parsed.query.items() if secrets.is_secret_key(k)))
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in {"postgresql", "sqlite"}:
        raise ConfigError(f"unsupported totesys source {mask(url)}: use postgresql:// or a SQLite file")
    if "password" in parsed.query:
        if parsed.password is not None:
            raise ConfigError(f"database URL {mask(url)} gives the password twice "
                              "(user:password@ and ?password=)")
        password = parsed.query["password"]
        parsed = parsed.set(password=password if isinstance(password, str) else password[-1],
                            query={k: v for k, v in parsed.query.items() if k != "password"})
    return parsed


#: a libpq keyword string starts with ``keyword=`` (a SQLite file named so: write ``./name``)
_KEYWORD_START = re.compile(r"\s*[A-Za-z_][A-Za-z0-9_]*\s*=")
#: the keywords libpq knows (PostgreSQL 17); any other is a typo, refused by name
LIBPQ_KEYWORDS = frozenset({
    "host", "hostaddr", "port", "dbname", "user", "password", "passfile", "require_auth", "channel_binding",
    "connect_timeout", "client_encoding", "options", "application_name", "fallback_application_name",
    "keepalives", "keepalives_idle", "keepalives_interval", "keepalives_count", "tcp_user_timeout",
    "replication", "gssencmode", "sslmode", "sslnegotiation", "requiressl", "sslcompression", "sslcert",
    "sslkey", "sslkeylogfile", "sslpassword", "sslcertmode", "sslrootcert", "sslcrl", "sslcrldir", "sslsni",
    "requirepeer", "ssl_min_protocol_version", "ssl_max_protocol_version", "min_protocol_version",
    "max_protocol_version", "krbsrvname", "gsslib", "gssdelegation", "service", "target_session_attrs",
    "load_balance_hosts", "scram_client_key", "scram_server_key", "oauth_issuer", "oauth_client_id",
    "oauth_client_secret", "oauth_scope",
})


def parse_keywords(text: str) -> dict[str, str]:
    """The ``keyword = value`` pairs of a libpq connection string (values bare or in single
    quotes, ``\\'`` and ``\\\\`` escaped). ConfigError naming the keyword, never a value, when it
    is malformed or a keyword is unknown."""
    pairs: dict[str, str] = {}
    i, n = 0, len(text)
    while True:
        while i < n and text[i].isspace():
            i += 1
        if i == n:
            return pairs
        start = i
        while i < n and not text[i].isspace() and text[i] != "=":
            i += 1
        key = text[start:i]
        while i < n and text[i].isspace():
            i += 1
        if i == n or text[i] != "=":
            raise ConfigError(_keyword_error(f"{_shown(key)}: no '=' after the keyword"))
        i += 1
        while i < n and text[i].isspace():
            i += 1
        value: list[str] = []
        if i < n and text[i] == "'":
            i += 1
            while i < n and text[i] != "'":
                if text[i] == "\\" and i + 1 < n:
                    i += 1
                value.append(text[i])
                i += 1
            if i == n:
                secrets.register("".join(value))
                raise ConfigError(_keyword_error(f"{_shown(key)}: unterminated quoted value"))
            i += 1
        else:
            while i < n and not text[i].isspace():
                if text[i] == "\\" and i + 1 < n:
                    i += 1
                value.append(text[i])
                i += 1
        pairs[key] = "".join(value)
        if secrets.is_secret_key(key):
            secrets.register(pairs[key])
        if key not in LIBPQ_KEYWORDS:
            raise ConfigError(_keyword_error(f"unknown keyword {_shown(key)!r}"))


def _shown(key: str) -> str:
    """A keyword for an error message: a key that is no identifier may be a stray password."""
    return key if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key) else "<a word that is not a keyword>"


def _keyword_error(reason: str) -> str:
    return (f"invalid libpq connection string: {reason} (expected keyword=value pairs such as "
            "host=H port=5432 user=U password=P dbname=D; a SQLite file whose name starts with "
            "'word=' is written ./word=…)")


def _from_keywords(text: str) -> URL:
    """A psycopg URL from a libpq keyword string: a single host and port, user, password and
    dbname go into the URL, every other keyword into its query (psycopg passes them on)."""
    pairs = parse_keywords(text)
    host, port = pairs.pop("host", None), pairs.pop("port", None)
    simple = host is not None and "," not in host and not host.startswith("/") and \
        (port is None or port.isdigit())
    if not simple:  # several hosts, a socket directory or an odd port: libpq reads them as given
        pairs.update({k: v for k, v in (("host", host), ("port", port)) if v is not None})
        host = port = None
    return URL.create("postgresql+psycopg", username=pairs.pop("user", None),
                      password=pairs.pop("password", None), host=host,
                      port=None if port is None else int(port), database=pairs.pop("dbname", None),
                      query=pairs)


def mask(url: str | URL) -> str:
    """The source or target with its password replaced by ``***`` (safe to print and log): a
    URL object as SQLAlchemy renders it, a text (URL, keyword string, path) as given."""
    if isinstance(url, URL):
        return secrets.mask(url.render_as_string(hide_password=True))
    return secrets.mask_url(url)


def engine_for(url: str | URL) -> Engine:
    """An engine without a connection pool (one fresh connection per table read)."""
    parsed = url if isinstance(url, URL) else parse_url(url)
    return create_engine(parsed, poolclass=NullPool)


def resolve_source_url(lake: Any, explicit: str | None = None) -> str:
    """The source URL: ``explicit``, config, the SSM parameter, or the Secrets Manager secret."""
    if explicit:
        return explicit
    cfg = totesys_settings(lake.settings)
    if cfg.source_url:
        return str(cfg.source_url)
    if cfg.source_url_parameter:
        value = lake.params.get(cfg.source_url_parameter)
        if not value:
            raise ConfigError(f"parameter {cfg.source_url_parameter} "
                              "(pipelines.totesys.source_url_parameter) does not exist or is empty")
        return str(value)
    if cfg.source_secret_id:
        return _url_from_secret(lake.settings, cfg.source_secret_id)
    raise ConfigError(
        "no totesys source: pass --source URL, or set totesys.source_url, "
        "totesys.source_url_parameter (SSM) or totesys.source_secret_id (Secrets Manager)"
    )


def _url_from_secret(settings: Any, secret_id: str) -> str:
    """A URL from a Secrets Manager secret: a URL string, or the RDS JSON shape
    ``{engine, host, port, username, password, dbname}``."""
    try:
        import boto3
    except ImportError:
        raise ConfigError("totesys.source_secret_id needs the 'aws' extra: pip install 'lakeline[aws]'") \
            from None
    aws = settings.aws
    client = boto3.client("secretsmanager", region_name=aws.region, endpoint_url=aws.endpoint_url or None)
    try:
        value = str(client.get_secret_value(SecretId=secret_id)["SecretString"])
    except Exception as exc:  # botocore errors carry no secret material
        raise ConfigError(f"cannot read secret {secret_id!r} (totesys.source_secret_id): "
                          f"{type(exc).__name__}") from None
    if not value.lstrip().startswith("{"):
        return value
    data = orjson.loads(value)
    engine = str(data.get("engine", "postgres"))
    if engine not in {"postgres", "postgresql"}:
        raise ConfigError(f"secret {secret_id!r}: engine {engine!r} is not PostgreSQL")
    return URL.create(
        "postgresql+psycopg", username=data.get("username"), password=data.get("password"),
        host=data.get("host"), port=int(data.get("port", 5432)), database=data.get("dbname"),
    ).render_as_string(hide_password=False)


def is_transient(exc: BaseException) -> bool:
    """True for errors a new connection may cure (refused, dropped, timed out)."""
    if isinstance(exc, OperationalError | InterfaceError):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


def retrying(fn: Callable[[], T], *, attempts: int, delay: float, what: str,
             sleep: Callable[[float], None] = time.sleep) -> tuple[T, int]:
    """Call ``fn`` until it succeeds or ``attempts`` transient failures happened; returns the
    result and the number of attempts. Waits ``delay * 2**(n-1)`` after failure ``n``."""
    for attempt in range(1, attempts + 1):
        try:
            return fn(), attempt
        except Exception as exc:
            if not is_transient(exc) or attempt == attempts:
                raise
            wait = delay * 2 ** (attempt - 1)
            _log.warning("totesys source connection failed; retrying", extra={"data": {
                "what": what, "attempt": attempt, "retry_in_s": wait,
                "error": secrets.mask_error(exc)}})
            sleep(wait)
    raise AssertionError("unreachable")


class Source:
    """Incremental, chunked reads of the totesys tables."""

    def __init__(self, url: str | URL | None = None, *, engine: Engine | None = None,
                 chunk_rows: int = 50_000) -> None:
        if engine is None:
            if url is None:
                raise UsageError("Source needs a URL or an engine")
            engine = engine_for(url)
        if chunk_rows < 1:
            raise UsageError("chunk_rows must be >= 1")
        self.engine = engine
        self.chunk_rows = chunk_rows

    @property
    def display_url(self) -> str:
        """The engine's URL with the password masked."""
        return mask(self.engine.url)

    def read_changes(self, table: str, since: datetime | None, *,
                     inclusive: bool = False) -> Iterator[pa.Table]:
        """Rows of ``table`` with ``last_updated > since`` (``>=`` when ``inclusive``; all rows
        when ``since`` is None), ordered by ``(last_updated, pk)``, in Arrow tables of at most
        ``chunk_rows`` rows."""
        t = schema.table(table)
        arrow_schema = schema.ARROW_TYPES[table]
        stmt = select(t).order_by(t.c.last_updated, t.c[schema.PRIMARY_KEYS[table]])
        if since is not None:
            stmt = stmt.where(t.c.last_updated >= since if inclusive else t.c.last_updated > since)
        with self.engine.connect() as conn:
            # yield_per: a server-side cursor on PostgreSQL, fetchmany batches on SQLite
            result = conn.execution_options(yield_per=self.chunk_rows).execute(stmt)
            for part in result.partitions():
                columns = list(zip(*part, strict=True)) if part else []
                arrays = [pa.array(col, type=f.type) for col, f in zip(columns, arrow_schema, strict=True)]
                yield pa.table(arrays, schema=arrow_schema)

    def close(self) -> None:
        """Dispose of the engine."""
        self.engine.dispose()
