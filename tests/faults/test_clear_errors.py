"""Clear errors, never a traceback (issue 16, part 8).

Every user-facing fault prints ONE line on stderr, ``error: <cause>``, and exits with the
documented code (1 failure, 2 usage or configuration): a full disk or a read-only zone under
``put``, a read-only ``queue.db``, a bogus log level, config values of the wrong type or out of
range, a non-JSON workflow definition, an unsupported or malformed source URL, a bad
``[[rules]]`` entry. Keys with control characters are refused on every backend, and ``put``
of a file whose size is not known in advance (``/proc``, a named pipe) stores all of it.

The faults of files and databases, a bad log level and ``serve`` run the installed console
script as a subprocess; the errors a command finds before it touches the lake run the same
command line in this process (:func:`here`).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lakeline.adapters.local.objectstore import ZONE_TMP, FsObjectStore
from lakeline.errors import InvalidKeyError
from lakeline.ports import ObjectStore
from tests.aws_server import moto_endpoint  # noqa: F401 - used by object_store's aws backend
from tests.contract.store_backends import object_store  # noqa: F401 - the both-backends fixture
from tests.e2e.helpers import FAST, Cli, InProcess
from tests.faults.conftest import Case

DATA = b'{"record_type":"shipments","shipment_id":"s-1"}\n'


@pytest.fixture
def lake(tmp_path: Path) -> Cli:
    """A lake made by ``lakeline init`` in this process; the commands under test run as
    subprocesses (their stderr and exit status are the point)."""
    cli = Cli(tmp_path / "lake", tmp_path)
    InProcess(cli.home, tmp_path).ok("init", cli.home)
    return cli


def one_error_line(p: subprocess.CompletedProcess[str], code: int) -> str:
    """The single ``error: …`` line of a failed command (asserting the exit code, no
    traceback and nothing else on stderr)."""
    assert p.returncode == code, f"exit {p.returncode}\n{p.stdout}\n{p.stderr}"
    assert "Traceback" not in p.stderr, p.stderr
    lines = p.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), p.stderr
    return lines[0]


@contextlib.contextmanager
def immutable(path: Path) -> Iterator[None]:
    """``chattr +i`` on ``path`` (root cannot write through it either), undone afterwards."""
    subprocess.run(["chattr", "+i", str(path)], check=True)
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


@contextlib.contextmanager
def tmpfs(path: Path, size: str) -> Iterator[None]:
    """A small tmpfs mounted on ``path`` (a full disk on demand)."""
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield
    finally:
        subprocess.run(["umount", str(path)], check=True)


def here(cli: Cli) -> InProcess:
    """``cli``'s lake with the command line run in this process: for the errors a command finds
    before it touches the lake (settings, arguments, a definition, a source URL, a key), where a
    process of its own adds nothing but its start. The faults of files and databases keep their
    subprocess, and so does ``serve``."""
    return InProcess(cli.home, cli.cwd)


class _WithoutFastEnv(InProcess):
    def env(self, extra: dict[str, str] | None = None, *, home: bool = True) -> dict[str, str]:
        return {k: v for k, v in super().env(extra, home=home).items() if k not in FAST}


def without_fast_env(cli: Cli, *args: str) -> subprocess.CompletedProcess[str]:
    """``lakeline ARGS`` (in this process) without the test suite's fast-polling environment
    overrides (they would override the very file settings under test)."""
    return _WithoutFastEnv(cli.home, cli.cwd)(*args)


def _files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


# ---- put: full disk, read-only zone, read-only queue database ---------------------------------
def test_put_onto_a_full_disk_is_one_clear_error(lake: Cli, tmp_path: Path, fault: Case) -> None:
    fault("put onto a full disk (1 MiB tmpfs as zones/landing)",
          expected="exit 1, one line naming 'no space left', nothing partial left")
    big = tmp_path / "big.jsonl"
    big.write_bytes(DATA * (2 * 1024 * 1024 // len(DATA)))  # 2 MiB: does not fit
    small = tmp_path / "small.jsonl"
    small.write_bytes(DATA)
    landing = lake.home / "zones" / "landing"
    with tmpfs(landing, "1m"):
        p = lake("put", big, "--pipeline", "shipments")
        fits = lake("put", small, "--pipeline", "shipments", "--key", "small.jsonl")  # what fits lands
        left = _files(landing)
    line = one_error_line(p, 1)
    fault.saw(f"exit {p.returncode}: {line}; then a small put exit {fits.returncode}; landing {left}")
    assert "no space left on device" in line.lower() and "landing" in line
    assert fits.returncode == 0, fits.stderr
    assert left == ["shipments/small.jsonl"]
    assert not any(p.name.startswith("obj-") for p in (lake.home / "zones").rglob("*"))


def test_put_into_a_read_only_zone_is_one_clear_error(lake: Cli, tmp_path: Path, fault: Case) -> None:
    fault("put into a read-only zone (chattr +i zones/landing)", expected="exit 1, one line naming the zone")
    src = tmp_path / "a.jsonl"
    src.write_bytes(DATA)
    with immutable(lake.home / "zones" / "landing"):
        p = lake("put", src, "--pipeline", "shipments")
    line = one_error_line(p, 1)
    fault.saw(f"exit {p.returncode}: {line}")
    assert "landing" in line and "not permitted" in line.lower()
    assert _files(lake.home / "zones" / "landing") == []


@pytest.mark.parametrize("target", ["state/queue.db", "state"])
def test_a_read_only_queue_database_is_one_clear_error(lake: Cli, tmp_path: Path, fault: Case,
                                                        target: str) -> None:
    what = target if target.endswith(".db") else "state/ directory"
    fault(f"put with a read-only {what} (chattr +i)", expected="exit 1, one line naming the database")
    src = tmp_path / "a.jsonl"
    src.write_bytes(DATA)
    lake.ok("status")  # the databases exist (and are in WAL mode) before they are frozen
    with immutable(lake.home / target):
        p = lake("put", src, "--pipeline", "shipments")
    line = one_error_line(p, 1)
    fault.saw(f"exit {p.returncode}: {line}")
    assert ".db" in line and str(lake.home / "state") in line
    assert "read-only" in line or "cannot open" in line


# ---- settings --------------------------------------------------------------------------------
def test_a_bogus_log_level_is_a_usage_error(lake: Cli, fault: Case) -> None:
    fault("LAKELINE_LOG_LEVEL=BOGUS", expected="exit 2, one line naming the variable and the levels")
    p = lake("status", env={"LAKELINE_LOG_LEVEL": "BOGUS"})
    line = one_error_line(p, 2)
    fault.saw(f"exit {p.returncode}: {line}")
    assert "LAKELINE_LOG_LEVEL" in line and "'BOGUS'" in line and "DEBUG" in line


FILE_CASES = [
    ("[runner]\npoll_interval = -1\n", "runner.poll_interval", ">= 0"),
    ("[runner]\nsettle_seconds = nan\n", "runner.settle_seconds", "finite"),
    ("[runner]\nwatch_interval = inf\n", "runner.watch_interval", "finite"),
    ('[queue]\nbatch_size = "10"\n', "queue.batch_size", "must be int"),
    ("[lake]\nname = 42\n", "lake.name", "must be str"),
    ("[queue]\nretry_delay = -5\n", "queue.retry_delay", ">= 0"),
    ("[queue]\nretry_delay = nan\n", "queue.retry_delay", "finite"),
    ("[runner]\nworkers = true\n", "runner.workers", "must be int"),
    ('[transform]\nfast_path = "yes"\n', "transform.fast_path", "must be bool"),
    ("[sql]\nmax_bytes = 1.5\n", "sql.max_bytes", "must be int"),
    ('[pipelines.carbon]\nbatch_size = "10"\n', "pipelines.carbon.batch_size", "must be int"),
    ("[pipelines.totesys]\nretry_delay = -5\n", "pipelines.totesys.retry_delay", ">= 0"),
    ("[pipelines.totesys]\nretry_delay = nan\n", "pipelines.totesys.retry_delay", "finite"),
]


@pytest.mark.parametrize(("text", "key", "reason"), FILE_CASES, ids=[c[1] + "=" + c[0].split("= ")[1].strip()
                                                                      for c in FILE_CASES])
def test_config_values_are_typed_strictly(lake: Cli, fault: Case, text: str, key: str, reason: str) -> None:
    fault(f"lakeline.toml {key} = {text.split('= ')[1].strip()}",
          expected="exit 2, one line naming the file, the key and the reason")
    config = lake.home / "lakeline.toml"
    config.write_text(text)
    p = without_fast_env(lake, "status")
    line = one_error_line(p, 2)
    fault.saw(f"exit {p.returncode}: {line}")
    assert str(config) in line and key in line and reason in line


ENV_CASES = [
    ("LAKELINE__RUNNER__POLL_INTERVAL", "-1", "runner.poll_interval", ">= 0"),
    ("LAKELINE__RUNNER__SETTLE_SECONDS", "nan", "runner.settle_seconds", "finite"),
    ("LAKELINE__QUEUE__RETRY_DELAY", "-5", "queue.retry_delay", ">= 0"),
    ("LAKELINE__QUEUE__BATCH_SIZE", "ten", "queue.batch_size", "must be int"),
    ("LAKELINE__PIPELINES__CARBON__BATCH_SIZE", "1e3", "pipelines.carbon.batch_size", "must be int"),
]


@pytest.mark.parametrize(("name", "value", "key", "reason"), ENV_CASES, ids=[c[0] for c in ENV_CASES])
def test_environment_values_are_checked_like_the_file(lake: Cli, fault: Case, name: str, value: str,
                                                      key: str, reason: str) -> None:
    fault(f"{name}={value}", expected="exit 2, one line naming the variable, the key and the reason")
    p = here(lake)("status", env={name: value})
    line = one_error_line(p, 2)
    fault.saw(f"exit {p.returncode}: {line}")
    assert name in line and key in line and reason in line


def test_environment_strings_still_parse(lake: Cli, fault: Case) -> None:
    fault("LAKELINE__QUEUE__BATCH_SIZE=7, …SETTLE_SECONDS=0.25, …FAST_PATH=false",
          expected="accepted: environment values are text")
    env = {"LAKELINE__QUEUE__BATCH_SIZE": "7", "LAKELINE__RUNNER__SETTLE_SECONDS": "0.25",
           "LAKELINE__TRANSFORM__FAST_PATH": "false"}
    p = here(lake)("status", env=env)
    fault.saw(f"exit {p.returncode}")
    assert p.returncode == 0, p.stderr


# ---- [[rules]] ---------------------------------------------------------------------------------
RULES = [
    ('event = { zone = "nope" }\nworkflow = "quality_gate"', "event zone 'nope'"),
    ('schedule = "rate(1 minute)"\nworkflow = "no_such_workflow"', "no_such_workflow"),
    ('schedule = "rate(1 minute)"\ndefinition = "missing.asl.json"', "missing.asl.json"),
    ('schedule = "rate(1 minute)"\nworkflow = "quality_gate"\ninput = "[1]"', "input must be a JSON object"),
    ('schedule = 42\nworkflow = "quality_gate"', "schedule must be a string"),
    ('shedule = "rate(1 minute)"\nschedule = "rate(1 minute)"\nworkflow = "quality_gate"', "shedule"),
]


@pytest.mark.parametrize("command", ["run", "serve"])
@pytest.mark.parametrize(("rule", "named"), RULES, ids=["zone", "workflow", "definition", "input",
                                                        "schedule-type", "unknown-key"])
def test_a_bad_rule_is_a_config_error_at_start(lake: Cli, fault: Case, command: str, rule: str,
                                               named: str) -> None:
    fault(f"[[rules]] {rule.splitlines()[0]}… under `{command}`",
          expected="exit 2 at start, one line naming the rule and the problem")
    config = lake.home / "lakeline.toml"
    config.write_text(config.read_text() + f'\n[[rules]]\nname = "r1"\n{rule}\n')
    p = here(lake)(command) if command == "run" else lake(command)  # a serve that started would not return
    assert p.returncode == 2, p.stderr
    errors = [x for x in p.stderr.splitlines() if not x.startswith("serving ")]
    fault.saw(f"exit {p.returncode}: {errors}")
    assert "Traceback" not in p.stderr
    assert len(errors) == 1 and errors[0].startswith("error: rule r1: ") and named in errors[0], p.stderr


# ---- workflow definitions and source URLs --------------------------------------------------------
@pytest.mark.parametrize("content", [b"hello, not JSON\n", b"\xff\xfe{", b"[1, 2]"], ids=["text", "binary", "array"])
def test_a_definition_that_is_not_a_json_object_is_a_usage_error(lake: Cli, tmp_path: Path, fault: Case,
                                                                  content: bytes) -> None:
    fault(f"workflow run --definition FILE holding {content[:8]!r}", expected="exit 2, one line naming the file")
    path = tmp_path / "flow.asl.json"
    path.write_bytes(content)
    p = here(lake)("workflow", "run", "--definition", path)
    line = one_error_line(p, 2)
    fault.saw(f"exit {p.returncode}: {line}")
    assert str(path) in line and "JSON" in line


@pytest.mark.parametrize(("url", "named"), [
    ("mysql://user:pw@db.example/totesys", "unsupported totesys source"),
    ("postgresql://user:pw@db.example:notaport/totesys", "invalid database URL"),
    ("postgresql://user:pw@db.example:99999/totesys", "invalid database URL"),
    ("://nowhere", "invalid database URL"),
], ids=["mysql", "port-not-a-number", "port-out-of-range", "no-scheme"])
def test_an_unusable_source_url_is_a_config_error(lake: Cli, fault: Case, url: str, named: str) -> None:
    fault(f"extract --source {url}", expected="exit 2, one line naming the problem, password masked")
    p = here(lake)("extract", "--pipeline", "totesys", "--source", url)
    line = one_error_line(p, 2)
    fault.saw(f"exit {p.returncode}: {line}")
    assert named in line and "pw" not in line


# ---- keys with control characters ----------------------------------------------------------------
CONTROL = {"LF": "\n", "CR": "\r", "TAB": "\t", "DEL": "\x7f", "U+0085": "\x85", "U+202A": "\u202a",
           "U+202E": "\u202e", "U+2066": "\u2066", "U+2069": "\u2069"}


@pytest.mark.parametrize("name", list(CONTROL))
def test_keys_with_control_characters_are_refused_on_every_backend(
        object_store: ObjectStore, fault: Case, name: str) -> None:  # noqa: F811
    backend = type(object_store).__name__
    fault(f"key with {name} ({backend})", expected="InvalidKeyError naming the character; nothing stored")
    key = f"shipments/a{CONTROL[name]}b.jsonl"
    with pytest.raises(InvalidKeyError) as caught:
        object_store.put("landing", key, DATA)
    fault.saw(f"InvalidKeyError: {caught.value}")
    assert f"U+{ord(CONTROL[name]):04X}" in str(caught.value)
    assert [i.key for i in object_store.list("landing")] == []


def test_put_with_a_control_character_key_is_one_clear_error(lake: Cli, tmp_path: Path, fault: Case) -> None:
    fault("put --key 'a<U+202E>lsx.jsonl'", expected="exit 1, one line naming U+202E; nothing landed")
    src = tmp_path / "a.jsonl"
    src.write_bytes(DATA)
    p = here(lake)("put", src, "--pipeline", "shipments", "--key", "a\u202elsx.jsonl")
    line = one_error_line(p, 1)
    fault.saw(f"exit {p.returncode}: {line}")
    assert "U+202E" in line
    assert _files(lake.home / "zones" / "landing") == []


# ---- put of files whose size is not known in advance ----------------------------------------------
def test_put_of_a_proc_file_stores_its_whole_content(lake: Cli, fault: Case) -> None:
    fault("put /proc/self/status (st_size 0)", expected="the whole content is stored")
    landed = here(lake).json("put", "/proc/self/status", "--pipeline", "shipments", "--key", "status.txt")
    stored = (lake.home / "zones" / "landing" / "shipments" / "status.txt").read_bytes()
    fault.saw(f"stored {len(stored)} bytes, reported size {landed['landed'][0]['size']}")
    assert len(stored) > 100 and stored.startswith(b"Name:\t") and b"\nPid:\t" in stored
    assert landed["landed"][0]["size"] == len(stored)
    assert landed["landed"][0]["etag"] == hashlib.md5(stored, usedforsecurity=False).hexdigest()


def test_put_of_a_named_pipe_stores_its_whole_content(lake: Cli, tmp_path: Path, fault: Case) -> None:
    fault("put a named pipe fed 3 MiB", expected="all 3 MiB stored, etag of the bytes written")
    fifo = tmp_path / "feed.jsonl"
    os.mkfifo(fifo)
    payload = DATA * (3 * 1024 * 1024 // len(DATA))

    def feed() -> None:
        with open(fifo, "wb") as out:
            out.write(payload)

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    landed: Any = here(lake).json("put", fifo, "--pipeline", "shipments", "--key", "piped.jsonl")
    writer.join(10)
    stored = (lake.home / "zones" / "landing" / "shipments" / "piped.jsonl").read_bytes()
    fault.saw(f"stored {len(stored)} of {len(payload)} bytes")
    assert stored == payload
    assert landed["landed"][0]["size"] == len(payload)
    assert landed["landed"][0]["etag"] == hashlib.md5(payload, usedforsecurity=False).hexdigest()


def test_a_zone_on_its_own_filesystem_stages_writes_inside_it(tmp_path: Path, fault: Case) -> None:
    fault("zones/landing mounted on a disk of its own (tmpfs)",
          expected="puts land (no EXDEV), staged temp files are never listed and are swept")
    store = FsObjectStore(tmp_path / "zones")
    landing = tmp_path / "zones" / "landing"
    with tmpfs(landing, "4m"):
        info = store.put("landing", "shipments/a.jsonl", DATA)
        copied = store.copy("landing", "shipments/a.jsonl", "landing", "shipments/b.jsonl")
        staged = landing / ZONE_TMP / "obj-left-by-a-crash"
        staged.write_bytes(b"partial")
        os.utime(staged, (0, 0))
        listed = [i.key for i in store.list("landing")]
        swept = store.sweep_tmp(older_than_seconds=60)
        left = staged.exists()
    fault.saw(f"listed {listed}, swept {swept}, staged file left: {left}")
    assert (info.size, copied.etag) == (len(DATA), hashlib.md5(DATA, usedforsecurity=False).hexdigest())
    assert listed == ["shipments/a.jsonl", "shipments/b.jsonl"]
    assert (swept, left) == (1, False)
