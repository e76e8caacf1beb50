"""The CLI from scripts: global options anywhere, failures that exit 1 and say what failed, and
every ``--json`` failure as ``{"status": "error", "code", "reason"}`` on stdout."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import orjson
import pytest

from lakeline.cli.main import cli as root
from lakeline.cli.main import main
from lakeline.config import load_settings
from lakeline.lake import Lake
from tests.e2e.helpers import LAKELINE, Cli

SAMPLE = b"".join(orjson.dumps({
    "record_type": "shipments", "event_time": f"2026-01-0{d}T10:00:00Z", "shipment_id": f"shp_{i:012d}",
    "origin": "SZX", "destination": "SEA", "carrier": "UPS", "weight_kg": 2.5}) + b"\n"
    for i, d in enumerate([5, 5, 6]))
BAD = b'{"record_type": "shipments", "event_time": "2026-01-05T10:00:00Z", "weight_kg": "heavy"}\n'


def leaves(command: click.Command, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    """Every leaf command under ``command`` with its path."""
    if isinstance(command, click.Group):
        ctx = click.Context(command)
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            assert sub is not None
            yield from leaves(sub, (*path, name))
    else:
        yield path, command


def required_args(command: click.Command, tmp: Path) -> list[str]:
    """Values for a command's required parameters (enough to get past parsing)."""
    values = {"table": "silver.shipments", "out_dir": str(tmp / "out"), "pipeline": "shipments",
              "target": "shipments", "older_than": "2026-01-01T00:00:00Z", "query": "SELECT 1 AS one",
              "sample": str(tmp / "sample.jsonl"), "files": str(tmp / "sample.jsonl"),
              "start": "2026-01-01", "end": "2026-01-02"}
    out: list[str] = []
    for p in command.params:
        if p.required:
            value = values.get(str(p.name), "x")
            out += [value] if isinstance(p, click.Argument) else [p.opts[0], value]
    return out


def invoke(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """``lakeline ARGS`` in this process: exit code, stdout, stderr."""
    with pytest.raises(SystemExit) as done:
        main(args)
    out, err = capsys.readouterr()
    return int(done.value.code or 0), out, err


def shape(out: str) -> Any:
    """What must not depend on where the global options were written: an error's status and
    code, else the JSON document's keys (values hold times and ids)."""
    try:
        doc = json.loads(out)
    except ValueError:
        return ("text", len(out.splitlines()) > 0)
    if isinstance(doc, dict) and doc.get("status") == "error":
        return ("error", doc["code"])
    return ("json", sorted(doc) if isinstance(doc, dict) else type(doc).__name__)


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A lake with a few loaded rows, made once by the CLI (each test works on a copy)."""
    root = tmp_path_factory.mktemp("loaded")
    lake = Cli(root / "lake", root)
    lake.ok("init", lake.home)
    (root / "sample.jsonl").write_bytes(SAMPLE)
    lake.ok("put", root / "sample.jsonl", "--pipeline", "shipments")
    lake.ok("run")
    return lake.home


@pytest.fixture
def home(loaded: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the loaded lake; the working directory is *not* a lake and LAKELINE_HOME
    is unset, so a command that ignored --home would fail with CONFIG_ERROR."""
    shutil.copytree(loaded, tmp_path / "lake")
    (tmp_path / "sample.jsonl").write_bytes(SAMPLE)
    work = tmp_path / "elsewhere"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.delenv("LAKELINE_HOME", raising=False)
    return tmp_path / "lake"


def test_every_command_takes_the_global_options_before_or_after_it(home, tmp_path, capsys):
    """For every command: `--home H --json CMD ARGS` and `CMD ARGS --home H --json` do the same
    (same exit code, same kind of output), and neither is the error of a missing home."""
    seen = []
    for path, command in leaves(root):
        if path in (("serve",), ("ui",)):
            continue  # runs until stopped: test_serve_takes_home_after_the_command, tests/ui/test_ui_cli.py
        args = [*path, *required_args(command, tmp_path)]
        if path == ("init",):
            args = ["init"]  # init creates the lake at --home
        if path == ("deploy", "package"):
            # a real build zips ~250 MB (~15 s a form): both forms stop at the --python-version
            # check, after the lake is resolved from --home; the build itself, through the
            # command line with --json, is tests/integration/test_deploy_package.py's fixture
            args += ["--python-version", "3"]
        # each form on its own copy of the lake: a command may change it (pipeline new, init)
        first, second = tmp_path / "copies" / "-".join(path) / "a", tmp_path / "copies" / "-".join(path) / "b"
        shutil.copytree(home, first)
        shutil.copytree(home, second)
        before = invoke(["--home", str(first), "--json", *args], capsys)
        after = invoke([*args, "--home", str(second), "--json"], capsys)
        assert (before[0], shape(before[1])) == (after[0], shape(after[1])), (path, before, after)
        assert "is not a lakeline home" not in before[1] + before[2], (path, before)
        help_text = invoke([*path, "--help"], capsys)[1]
        assert all(opt in help_text for opt in ("--home", "--profile", "--json")), path
        seen.append(" ".join(path))
    assert {"sql", "run", "status", "runs", "tables", "promote", "dlq list", "workflow list",
            "lineage list", "models list", "pipeline list", "put", "gen"} <= set(seen)


def test_global_options_after_the_command_reach_it(home, capsys):
    rc, out, _ = invoke(["sql", "SELECT count(*) AS n FROM silver.shipments", "--home", str(home), "--json"], capsys)
    assert (rc, json.loads(out)) == (0, [{"n": 3}])
    rc, out, _ = invoke(["--json", "sql", "SELECT count(*) AS n FROM silver.shipments", "--home", str(home)], capsys)
    assert (rc, json.loads(out)) == (0, [{"n": 3}])
    rc, out, _ = invoke(["dlq", "list", "--home", str(home), "--json", "--profile", "local"], capsys)
    assert (rc, json.loads(out)) == (0, [])
    rc, out, _ = invoke(["runs", "--json", "--home", str(home)], capsys)
    assert rc == 0 and [(r["pipeline"], r["kind"], r["status"], r["loaded"]) for r in json.loads(out)["runs"]] == [
        ("shipments", "object", "COMPLETE", 3)]


def test_a_missing_home_is_a_json_error_on_stdout(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LAKELINE_HOME", raising=False)
    rc, out, err = invoke(["status", "--home", str(tmp_path / "nowhere"), "--json"], capsys)
    assert rc == 2
    assert json.loads(out) == {"status": "error", "code": "CONFIG_ERROR", "reason": (
        f"{tmp_path / 'nowhere'} is not a lakeline home; run `lakeline init {tmp_path / 'nowhere'}` "
        "or pass --home / set LAKELINE_HOME")}
    assert err.startswith("error: ")
    # without --json: the message on stderr only
    rc, out, err = invoke(["status", "--home", str(tmp_path / "nowhere")], capsys)
    assert (rc, out) == (2, "")
    assert "is not a lakeline home" in err


def test_a_usage_error_is_json_too(home, capsys):
    rc, out, _ = invoke(["sql", "SELECT 1", "--no-such-flag", "--json"], capsys)
    assert (rc, json.loads(out)) == (2, {"status": "error", "code": "USAGE_ERROR",
                                         "reason": "No such option '--no-such-flag'."})
    rc, out, _ = invoke(["--json", "runs", "--pipeline", "nope", "--home", str(home)], capsys)
    doc = json.loads(out)
    assert (rc, doc["code"]) == (2, "USAGE_ERROR")
    assert doc["reason"].startswith("unknown pipeline 'nope'; pipelines: carbon, retail, shipments")


def test_run_exits_1_and_names_what_failed(home, tmp_path, capsys):
    """A model that fails is a failure the run saw: exit 1, the summary names it and the
    command that shows more; --json carries status/code/reason with the counters."""
    (home / "models").mkdir()
    (home / "models" / "broken.sql").write_text("SELECT CAST(origin AS INTEGER) AS o FROM silver.shipments\n")
    rc, out, err = invoke(["run", "--home", str(home)], capsys)
    assert rc == 1
    assert "model broken FAILED: Conversion Error" in out
    assert "FAILED model broken: model broken FAILED: Conversion Error" in err
    assert "(see `lakeline models list`)" in err
    rc, out, _ = invoke(["run", "--home", str(home), "--json"], capsys)
    doc = json.loads(out)
    assert (rc, doc["status"], doc["code"]) == (1, "error", "RUN_FAILED")
    assert doc["failed"] == [{"what": "model broken", "error": doc["failed"][0]["error"],
                              "command": "lakeline models list"}]
    assert doc["failed"][0]["error"].startswith("model broken FAILED: Conversion Error")
    assert doc["loaded"] == 0 and "elapsed_s" in doc


def test_fail_on_rejects(home, tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(SAMPLE.replace(b"shp_0000000000", b"shp_0000000001") + BAD)
    assert invoke(["put", str(bad), "--pipeline", "shipments", "--home", str(home)], capsys)[0] == 0
    rc, out, _ = invoke(["run", "--home", str(home), "--fail-on-rejects", "0.5", "--json"], capsys)
    doc = json.loads(out)
    assert (rc, doc["status"], doc["loaded"], doc["rejected"]) == (0, "success", 3, 1), doc.get("failed")
    bad2 = tmp_path / "bad2.jsonl"
    bad2.write_bytes(BAD + BAD.replace(b"heavy", b"light"))
    invoke(["put", str(bad2), "--pipeline", "shipments", "--home", str(home)], capsys)
    rc, out, _ = invoke(["run", "--home", str(home), "--fail-on-rejects", "0.5", "--json"], capsys)
    doc = json.loads(out)
    assert (rc, doc["status"], doc["code"], doc["rejected"]) == (1, "error", "REJECT_RATE_EXCEEDED", 2)
    assert doc["reason"] == "reject rate: 100.00% of 2 records rejected, above 50.00% (--fail-on-rejects)"


def test_a_quarantined_partition_fails_the_run_and_names_its_report(home, tmp_path, capsys):
    again = tmp_path / "again.jsonl"
    again.write_bytes(SAMPLE.replace(b"2.5", b"3.5"))  # the same shipment ids: the uniqueness rule fails
    invoke(["put", str(again), "--pipeline", "shipments", "--home", str(home)], capsys)
    rc, out, _ = invoke(["run", "--home", str(home), "--json"], capsys)
    doc = json.loads(out)
    assert (rc, doc["code"], [f["what"] for f in doc["failed"]]) == (1, "RUN_FAILED", ["shipments"])
    command = doc["failed"][0]["command"]
    assert command.startswith("lakeline dq report gold/_quality/results/shipments/dt=2026-01-05/")
    rc, out, _ = invoke([*command.split()[1:], "--home", str(home)], capsys)
    assert rc == 0 and out.strip().endswith(".html")


def test_run_exits_1_when_a_message_reaches_the_dlq(home, capsys):
    """A chunk message nobody can decode is dead-lettered at once (a terminal error)."""
    lake = Lake.open(load_settings(home))
    lake.transform_queue.send('{"v": 1, "not": "a chunk"}')
    rc, out, err = invoke(["run", "--home", str(home)], capsys)
    assert rc == 1
    assert "FAILED 1 message(s) dead-lettered: moved to a DLQ (see `lakeline dlq list`)" in err
    rc, out, _ = invoke(["status", "--home", str(home), "--json"], capsys)
    assert json.loads(out)["failures"] == [{"pipeline": None, "what": "1 message(s) in transform-dlq",
                                            "error": "dead-lettered", "command": "lakeline dlq list"}]
    # the next run saw no new failure
    assert invoke(["run", "--home", str(home)], capsys)[0] == 0


def test_tables_are_not_cut_to_80_columns_in_a_pipe(home):
    done = subprocess.run([str(LAKELINE), "sql", "SELECT repeat('x', 120) AS wide, 1 AS n", "--home", str(home)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "x" * 120 in done.stdout


def test_serve_takes_home_after_the_command(home, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "LAKELINE_HOME"}
    env["LAKELINE__RUNNER__WATCH_INTERVAL"] = "0.2"
    more = tmp_path / "more.jsonl"
    more.write_bytes(SAMPLE.replace(b"shp_0000", b"shp_9999"))
    subprocess.run([str(LAKELINE), "put", str(more), "--pipeline", "shipments", "--home", str(home)],
                   env=env, check=True, capture_output=True, timeout=60)
    proc = subprocess.Popen([str(LAKELINE), "serve", "--home", str(home)], env=env, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            q = subprocess.run([str(LAKELINE), "sql", "SELECT count(*) AS n FROM silver.shipments", "--json",
                                "--home", str(home)], env=env, capture_output=True, text=True, timeout=60)
            if q.returncode == 0 and json.loads(q.stdout) == [{"n": 6}]:
                break
            time.sleep(0.3)
        else:
            pytest.fail("serve did not load the file")
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert f"serving {home}" in err
