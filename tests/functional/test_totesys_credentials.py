"""Where the totesys source URL comes from: --source, config / environment, a parameter (SSM on
AWS), a Secrets Manager secret (moto server) — and the errors when none is set."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from lakeline.config import load_settings
from lakeline.errors import ConfigError
from lakeline.lake import Lake
from lakeline.pipelines.totesys import gen as gen
from lakeline.pipelines.totesys.extract import extract
from lakeline.pipelines.totesys.source import mask, parse_url, resolve_source_url
from tests.aws_server import boto_client, moto_endpoint, unique  # noqa: F401
from tests.totesys_pg import pg_database, pg_server  # noqa: F401


def test_url_precedence_and_errors(home: Path, tmp_path: Path) -> None:
    db = tmp_path / "src.db"
    gen.create(str(db), scale=20)
    lake = Lake.open(load_settings(home))
    with pytest.raises(ConfigError, match="no totesys source"):
        resolve_source_url(lake)
    assert resolve_source_url(lake, "explicit.db") == "explicit.db"

    env = Lake.open(load_settings(home, environ={"LAKELINE__PIPELINES__TOTESYS__SOURCE_URL": str(db)}))
    assert resolve_source_url(env) == str(db)
    assert extract(env).rows == sum(gen.sizes(20).values())

    by_param = Lake.open(load_settings(home, {"pipelines.totesys.source_url_parameter": "/app/totesys/url"}))
    with pytest.raises(ConfigError, match="/app/totesys/url"):
        resolve_source_url(by_param)
    by_param.params.put("/app/totesys/url", str(db))
    assert resolve_source_url(by_param) == str(db)

    with pytest.raises(ConfigError, match="unsupported totesys source"):
        parse_url("mysql://u:pw@h/db")
    assert mask("postgresql://u:pw@h:5432/db") == "postgresql://u:***@h:5432/db"
    assert parse_url("postgres://u@h/db").drivername == "postgresql+psycopg"


def test_url_from_a_secrets_manager_secret(home: Path, moto_endpoint: str,  # noqa: F811
                                           pg_database: Callable[[str], str]) -> None:  # noqa: F811
    src = pg_database("src")
    gen.create(src, scale=20)
    dbname = src.rsplit("/", 1)[1]
    sm = boto_client("secretsmanager", moto_endpoint)
    rds = unique("totesys-rds")
    sm.create_secret(Name=rds, SecretString=json.dumps({
        "engine": "postgres", "host": "127.0.0.1", "port": 5432, "username": "postgres",
        "password": "trust-ignores-it", "dbname": dbname}))
    plain = unique("totesys-url")
    sm.create_secret(Name=plain, SecretString=src)
    settings = {"aws.endpoint_url": moto_endpoint}
    lake = Lake.open(load_settings(home, {**settings, "pipelines.totesys.source_secret_id": rds}))
    url = resolve_source_url(lake)
    assert url == f"postgresql+psycopg://postgres:trust-ignores-it@127.0.0.1:5432/{dbname}"
    report = extract(lake)
    assert report.status == "SUCCEEDED" and report.rows == sum(gen.sizes(20).values())
    assert "trust-ignores-it" not in json.dumps(report.to_dict())
    assert report.source.startswith("postgresql+psycopg://postgres:***@")

    other = Lake.open(load_settings(home, {**settings, "pipelines.totesys.source_secret_id": plain}))
    assert resolve_source_url(other) == src
    missing = Lake.open(load_settings(home, {**settings, "pipelines.totesys.source_secret_id": "no-such-secret"}))
    with pytest.raises(ConfigError, match="cannot read secret 'no-such-secret'"):
        resolve_source_url(missing)
