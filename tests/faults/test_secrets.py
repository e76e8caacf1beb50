"""No secret in any output (issue 16, part 6).

A distinctive password goes into every form a source or target accepts — the URL's userinfo,
a ``?password=`` query parameter, a libpq keyword string (plain and quoted), the environment
(``LAKELINE__PIPELINES__TOTESYS__SOURCE_URL``) — through the CLI as a user runs it: ``gen``,
``extract`` (also failing: wrong database name), ``run``, ``status``, ``runs``, ``load`` (also
failing). Then every byte under the lake home and the working directory (SQLite databases,
Parquet, JSON lines, the outbox) and every captured stdout / stderr is searched for it.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from lakeline import secrets
from lakeline.errors import ConfigError
from lakeline.pipelines.totesys.source import mask, parse_url
from tests.e2e.helpers import Cli
from tests.totesys_pg import HOST, PORT, USER, pg_database, pg_server  # noqa: F401

SECRET = "Zq9-s3cret-XYZ"
#: a failing source retries once, quickly, and alerts the administrators at the first failure
FAST_FAIL = {"LAKELINE__PIPELINES__TOTESYS__RETRIES": "1", "LAKELINE__PIPELINES__TOTESYS__RETRY_DELAY": "0.01",
             "LAKELINE__PIPELINES__TOTESYS__ALERT_AFTER_FAILURES": "1"}


def _forms(dbname: str) -> dict[str, str]:
    """Every accepted spelling of one PostgreSQL database, each carrying SECRET."""
    return {
        "userinfo": f"postgresql://{USER}:{SECRET}@{HOST}:{PORT}/{dbname}",
        "postgres-scheme": f"postgres://{USER}:{SECRET}@{HOST}:{PORT}/{dbname}",
        "query": f"postgresql://{USER}@{HOST}:{PORT}/{dbname}?password={SECRET}&connect_timeout=3",
        "keywords": f"host={HOST} port={PORT} user={USER} password={SECRET} dbname={dbname}",
        "keywords-quoted": f"host='{HOST}' port={PORT} user={USER} password = '{SECRET}' dbname={dbname}",
    }


class Recorder(Cli):
    """A CLI that keeps every output it produced, for the final search."""

    def __init__(self, home: Path, cwd: Path) -> None:
        super().__init__(home, cwd)
        self.outputs: list[tuple[tuple[str, ...], str]] = []

    def __call__(self, *args: str | Path, env: dict[str, str] | None = None, home: bool = True,
                 cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        p = super().__call__(*args, env=env, home=home, cwd=cwd)
        self.outputs.append((tuple(map(str, args)), p.stdout + p.stderr))
        return p


def _files_holding(root: Path, needle: bytes) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and needle in p.read_bytes())


@pytest.fixture
def lake(tmp_path: Path) -> Recorder:
    cli = Recorder(tmp_path / "lake", tmp_path)
    cli.ok("init", cli.home)
    return cli


@pytest.fixture(scope="module")
def one_lake(tmp_path_factory: pytest.TempPathFactory) -> Recorder:
    """One lake for the cases that must leave it untouched (each checks it still is)."""
    cwd = tmp_path_factory.mktemp("secrets")
    cli = Recorder(cwd / "lake", cwd)
    cli.ok("init", cli.home)
    return cli


#: the fast case runs these forms; the soak case every form, the environment, the text outputs
FAST_FORMS = ("userinfo", "query", "keywords-quoted")


def _every_output_and_file(fault: Callable[..., Any], lake: Recorder,
                           pg_database: Callable[[str], str],  # noqa: F811
                           names: tuple[str, ...], full: bool) -> None:
    case = fault(f"a source / target password as {', '.join(names)}",
                 expected="masked in stdout, stderr, logs, run log, packets, outbox, errors; 0 files hold it")
    src = pg_database("secret_src").rsplit("/", 1)[1]
    wh = pg_database("secret_wh").rsplit("/", 1)[1]
    forms, wrong, targets = _forms(src), _forms("no_such_db_" + src[-10:]), _forms(wh)
    masked = f"postgresql+psycopg://{USER}:***@{HOST}:{PORT}/"

    # the source is created through a keyword string (gen parses it, never as a SQLite path)
    lake.ok("gen", "totesys", "--db", forms["keywords"], "--scale", "20")
    extracted = {}
    for name in names:
        p = lake("extract", "--pipeline", "totesys", "--source", forms[name], "--json", env=FAST_FAIL)
        assert p.returncode == 0, (name, p.stdout, p.stderr)
        extracted[name] = (json.loads(p.stdout)["status"], json.loads(p.stdout)["source"])
    # a wrong database name: the driver's error, the run log, the alert (outbox) all see the URL
    failed = {name: lake("extract", "--pipeline", "totesys", "--source", wrong[name], "--json", env=FAST_FAIL)
              for name in names[-2:]}
    lake.ok("run")
    lake.ok("runs", "--json")
    loaded = lake("load", "--target", targets[names[-1]], "--json")
    bad_load = lake("load", "--target", _forms("no_such_wh")[names[0]], "--json")
    if full:
        lake.ok("gen", "totesys", "--db", "src.db", "--scale", "20")
        sqlite_run = lake.json("extract", "--pipeline", "totesys", "--source", "src.db")
        assert sqlite_run["source"] == f"sqlite:///{lake.cwd / 'src.db'}"
        mutated = lake.ok("gen", "totesys", "--db", forms["query"], "--mutate").stderr
        changed = sum(int(n) for n in re.findall(r"\b[a-z_]+ (\d+)", mutated.split(": ", 1)[1]))
        from_env = lake.json("extract", "--pipeline", "totesys",
                             env={**FAST_FAIL, "LAKELINE__PIPELINES__TOTESYS__SOURCE_URL": forms["query"]})
        assert (from_env["status"], from_env["rows"]) == ("SUCCEEDED", changed)  # the mutation's rows
        text = lake("extract", "--pipeline", "totesys", "--source", wrong["keywords"], env=FAST_FAIL)
        assert text.returncode == 1 and "error: OperationalError" in text.stderr
        lake.ok("run")
        lake.ok("status")
        lake.ok("runs")
        bad_text = lake("load", "--target", _forms("no_such_wh")["keywords"])
        assert bad_text.returncode == 1 and "Traceback" not in bad_text.stderr

    leaks = [args for args, out in lake.outputs if SECRET in out]
    files = _files_holding(lake.cwd, SECRET.encode())
    case.saw(f"{len(lake.outputs)} commands: {len(leaks)} outputs and {len(files)} files hold the password; "
             f"extract {sorted({s for s, _ in extracted.values()})}, failing extract exit "
             f"{sorted({p.returncode for p in failed.values()})}, failing load exit {bad_load.returncode}")
    assert leaks == []
    assert files == []
    expected = {"userinfo": masked + src, "postgres-scheme": masked + src, "keywords": masked + src,
                "query": f"{masked}{src}?connect_timeout=3", "keywords-quoted": masked + src}
    assert extracted == {name: ("SUCCEEDED", expected[name]) for name in names}
    for name, p in failed.items():
        assert p.returncode == 1, (name, p.stdout, p.stderr)
        out = json.loads(p.stdout)
        assert out["status"] == "FAILED" and "does not exist" in out["error"], (name, out["error"])
        assert out["alerted"] is True and out["source"] == expected[name].replace(src, "no_such_db_" + src[-10:])
    assert loaded.returncode == 0, (loaded.stdout, loaded.stderr)
    assert json.loads(loaded.stdout)["target"].startswith(masked + wh)
    assert json.loads(loaded.stdout)["tables"]["fact_sales_order"]["files_loaded"] >= 1
    assert bad_load.returncode == 1 and json.loads(bad_load.stdout)["status"] == "error"
    assert "no_such_wh" in bad_load.stderr and "does not exist" in bad_load.stderr
    assert "Traceback" not in bad_load.stderr
    # a keyword string is never a SQLite path: nothing beside the lake (and the SQLite source)
    assert sorted(p.name for p in lake.cwd.iterdir()) == (["lake", "src.db"] if full else ["lake"])


def test_no_password_in_any_output_or_file(fault: Callable[..., Any], lake: Recorder,
                                           pg_database: Callable[[str], str]) -> None:  # noqa: F811
    _every_output_and_file(fault, lake, pg_database, FAST_FORMS, full=False)


@pytest.mark.soak
def test_no_password_in_any_form_or_output(fault: Callable[..., Any], lake: Recorder,
                                           pg_database: Callable[[str], str]) -> None:  # noqa: F811
    _every_output_and_file(fault, lake, pg_database, tuple(_forms("x")), full=True)


@pytest.mark.parametrize(("given", "message"), [
    (f"host={HOST} user={USER} password={SECRET} dbname", "dbname: no '=' after the keyword"),
    (f"host={HOST} user={USER} password='{SECRET} dbname=x", "password: unterminated quoted value"),
    (f"host={HOST} user={USER} password={SECRET} sslmodes=require dbname=x", "unknown keyword 'sslmodes'"),
    (f"postgresql://{USER}:{SECRET}@{HOST}:notaport/x", "invalid database URL"),
    (f"postgresql://{USER}:{SECRET}@extra@{HOST}/x", "percent-encode"),
    (f"mysql://{USER}:{SECRET}@{HOST}/x", "unsupported totesys source"),
    (f"mysql://{USER}@{HOST}/x?password={SECRET}", "unsupported totesys source"),
], ids=["no-equals", "unterminated-quote", "unknown-keyword", "bad-port", "two-at", "mysql", "mysql-query"])
def test_malformed_source_is_refused_without_the_password(fault: Callable[..., Any], one_lake: Recorder,
                                                          given: str, message: str) -> None:
    case = fault(f"malformed source {given.split(SECRET)[0]}…",
                 expected="exit 2, one line naming the fault, no password, no file created")
    lake = one_lake
    p = lake("extract", "--pipeline", "totesys", "--source", given, "--json")
    case.saw(f"exit {p.returncode}: {p.stderr.strip()[:120]}")
    assert p.returncode == 2, (p.stdout, p.stderr)
    assert SECRET not in p.stdout + p.stderr
    assert message in p.stderr and "Traceback" not in p.stderr
    assert json.loads(p.stdout)["status"] == "error"
    assert _files_holding(lake.cwd, SECRET.encode()) == []
    assert sorted(p.name for p in lake.cwd.iterdir()) == ["lake"]


def test_every_form_is_masked_in_text(fault: Callable[..., Any]) -> None:
    case = fault("masking of free text: URL userinfo, ?password=, keyword string, JSON, registered value",
                 expected="each password replaced by ***, the rest of the text intact")
    pw = "p@ss/w:rd'x"  # '@', '/', ':' and a quote: every delimiter a password may hold
    texts = {
        "postgresql://u:s3cret@h:5432/db?sslmode=require": "postgresql://u:***@h:5432/db?sslmode=require",
        "postgresql://u:p@ss@h/db?x=a@b": "postgresql://u:***@h/db?x=a@b",
        "postgresql://u@h/db?connect_timeout=3&password=s3cret&application_name=a":
            "postgresql://u@h/db?connect_timeout=3&password=***&application_name=a",
        "host=h user=u password=s3cret dbname=d": "host=h user=u password=*** dbname=d",
        r"host=h password = 'a b\' c' dbname=d": "host=h password = *** dbname=d",
        "host=h sslpassword=k3y PGPASSWORD=x": "host=h sslpassword=*** PGPASSWORD=***",
        '{"username": "u", "password": "s3\\"cret", "dbname": "d"}':
            '{"username": "u", "password": "***", "dbname": "d"}',
        "cannot read secret 'x' (totesys.source_secret_id=abc)": "cannot read secret 'x' (totesys.source_secret_id=abc)",
        "sqlite:////tmp/a.db and /tmp/b@c:d.db file:///a:b/c@d.csv":
            "sqlite:////tmp/a.db and /tmp/b@c:d.db file:///a:b/c@d.csv",
    }
    seen = {text: secrets.mask(text) for text in texts}
    secrets.register(pw, "Lq7word")
    echoed = secrets.mask(f"FATAL: password authentication failed ({pw}, {quote(pw, safe='')})")
    case.saw(f"{sum(seen[t] == m for t, m in texts.items())} of {len(texts)} texts masked as expected; "
             f"registered value: {echoed}")
    assert seen == texts
    assert echoed == "FATAL: password authentication failed (***, ***)"
    # a registered value is masked as a whole word, not inside a longer one
    assert secrets.mask("xLq7wordy Lq7word/Lq7word") == "xLq7wordy ***/***"
    assert secrets.mask_error(ValueError(f"bad password={pw}\nsecond line")) == "ValueError: bad password=***"


def test_keyword_strings_and_urls_are_parsed_not_taken_as_paths(fault: Callable[..., Any]) -> None:
    case = fault("libpq keyword string / ?password= given as the source",
                 expected="parsed into a psycopg URL (password in the URL, hidden), never a SQLite path")
    quoted = parse_url(r"host=db.example port=6543 user=app password='it\'s \'q\' \\ x' dbname=sales "
                       "sslmode=require")
    sockets = parse_url("host=/var/run/postgresql,h2 port=5432,5433 user=app dbname=sales")
    query = parse_url("postgresql://app@h/sales?password=Q-pw&connect_timeout=3")
    case.saw(f"{mask(quoted)} | {mask(sockets)} | {mask(query)}")
    assert (quoted.drivername, quoted.host, quoted.port, quoted.username, quoted.database) == \
        ("postgresql+psycopg", "db.example", 6543, "app", "sales")
    assert quoted.password == "it's 'q' \\ x" and dict(quoted.query) == {"sslmode": "require"}
    assert mask(quoted) == "postgresql+psycopg://app:***@db.example:6543/sales?sslmode=require"
    assert sockets.host is None and dict(sockets.query) == {"host": "/var/run/postgresql,h2", "port": "5432,5433"}
    assert (query.password, dict(query.query)) == ("Q-pw", {"connect_timeout": "3"})
    assert mask(query) == "postgresql+psycopg://app:***@h/sales?connect_timeout=3"
    assert parse_url("./x=1.db").drivername == "sqlite"  # a SQLite file named 'word=…' spelled ./
    with pytest.raises(ConfigError, match="gives the password twice"):
        parse_url("postgresql://app:A-pw-1@h/sales?password=B-pw-2")
    with pytest.raises(ConfigError, match=r"unknown keyword 'x' \(expected keyword=value pairs"):
        parse_url("x=1.db")
