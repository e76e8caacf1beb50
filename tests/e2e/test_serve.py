"""End-to-end tests of ``lakeline serve``: a long-running subprocess in its own session that
watches the landing zone, holds the runner lock, and stops cleanly on Ctrl-C / SIGTERM."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.e2e.helpers import LAKELINE, RUN_LINE, Cli, InProcess, runs_of

SERVE_ENV = {"LAKELINE__RUNNER__WATCH_INTERVAL": "0.2"}
PICKUP_S = 15
STOP_S = 30


@pytest.fixture
def lake(tmp_path: Path) -> Cli:
    """The lake and its two files, made in this process; the tests' own commands run as
    subprocesses beside ``serve``."""
    here = InProcess(tmp_path / "lake", tmp_path)
    here.ok("init", here.home)
    here.ok("gen", "shipments", "--count", "1000", "--out", "a.jsonl", "--seed", "1")
    here.ok("gen", "shipments", "--count", "500", "--out", "b.jsonl", "--seed", "2")
    return Cli(here.home, here.cwd)


class Serve:
    """``lakeline serve`` as a subprocess leader of its own session (like a terminal job)."""

    def __init__(self, lake: Cli, *args: str, env: dict[str, str] | None = None) -> None:
        self.out = lake.cwd / "serve.out"
        self.err = lake.cwd / "serve.err"
        with open(self.out, "wb") as out, open(self.err, "wb") as err:
            self.proc = subprocess.Popen(
                [str(LAKELINE), "serve", *args], cwd=lake.cwd, env=lake.env({**SERVE_ENV, **(env or {})}),
                stdout=out, stderr=err, start_new_session=True,
            )

    def ctrl_c(self) -> None:
        """What a terminal does on Ctrl-C: SIGINT to the whole foreground process group."""
        os.killpg(self.proc.pid, signal.SIGINT)

    def wait(self, timeout: float = STOP_S) -> tuple[int, str, str]:
        rc = self.proc.wait(timeout=timeout)
        return rc, self.out.read_text(), self.err.read_text()

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)


@pytest.fixture
def serve(lake: Cli) -> Iterator[Callable[..., Serve]]:
    started: list[Serve] = []

    def start(*args: str, env: dict[str, str] | None = None) -> Serve:
        s = Serve(lake, *args, env=env)
        started.append(s)
        return s

    yield start
    for s in started:  # only the processes this test started
        s.kill()


def silver_count(lake: Cli) -> int:
    """``lakeline sql`` of the row count (run in this process: a poll needs no interpreter start)."""
    p = InProcess(lake.home, lake.cwd)("sql", "SELECT count(*) AS n FROM silver.shipments", "--json")
    if p.returncode != 0:  # no silver table yet
        return 0
    return int(json.loads(p.stdout)[0]["n"])


def wait_for_count(lake: Cli, server: Serve, n: int, timeout: float = PICKUP_S) -> float:
    """Poll with ``lakeline sql`` until silver holds ``n`` rows; returns the seconds it took."""
    t0 = time.monotonic()
    while (got := silver_count(lake)) != n:
        assert server.proc.poll() is None, f"serve exited early: {server.wait(1)}"
        assert got < n, f"silver holds {got} rows, expected {n}"
        assert time.monotonic() - t0 < timeout, f"silver holds {got} rows after {timeout} s, expected {n}"
        time.sleep(0.2)
    return time.monotonic() - t0


def drop_into_landing(lake: Cli, src: str, key: str) -> None:
    """Copy a file straight into the landing zone (no ``put``); the copy is renamed into place
    so the watcher never sees a half-written file (see the slow-copy test for that case)."""
    dest = lake.home / "zones" / "landing" / key
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = lake.cwd / f".{dest.name}.part"
    shutil.copyfile(lake.cwd / src, tmp)
    os.replace(tmp, dest)


def test_serve_picks_up_files_holds_the_lock_and_stops_on_ctrl_c(lake: Cli, serve: Callable[..., Serve]) -> None:
    server = serve()
    drop_into_landing(lake, "a.jsonl", "shipments/x.jsonl")
    wait_for_count(lake, server, 1000)

    # only one runner drives a lake: `run` is refused while serve is active
    home = lake.home.resolve()
    err = lake.fails(2, "run")
    assert err.strip() == (f"error: another `lakeline run` or `serve` is active on {home} "
                           f"(pid {server.proc.pid}); wait for it or stop it")

    # `put` while serving works: its event is consumed by the running server
    lake.ok("put", "b.jsonl", "--pipeline", "shipments")
    wait_for_count(lake, server, 1500)

    server.ctrl_c()
    rc, out, err = server.wait()
    assert rc == 0, (out, err)
    m = RUN_LINE.fullmatch(out.strip())
    assert m, out
    assert m.groups()[:5] == ("2", "0", "2", "1500", "0")
    assert f"serving {home} (Ctrl-C to stop)" in err
    assert "stopping: finishing in-flight work" in err

    # the lock is released: run works again and finds nothing left to do
    run = lake.json("run")
    assert (run["ingested_objects"], run["loaded"], run["failures"]) == (0, 0, 0)
    runs = runs_of(lake)
    assert sorted((r["key"], r["status"], r["loaded"]) for r in runs) == sorted([
        ("shipments/x.jsonl", "COMPLETE", 1000),
        (next(r["key"] for r in runs if r["key"].endswith("/b.jsonl")), "COMPLETE", 500)])


def test_serve_with_two_workers_stops_on_sigterm(lake: Cli, serve: Callable[..., Serve]) -> None:
    server = serve("--workers", "2")
    drop_into_landing(lake, "a.jsonl", "shipments/2026/a.jsonl")
    wait_for_count(lake, server, 1000)
    server.proc.send_signal(signal.SIGTERM)
    rc, out, err = server.wait()
    assert rc == 0, (out, err)
    m = RUN_LINE.fullmatch(out.strip())
    assert m, out
    assert m.groups()[:5] == ("1", "0", "1", "1000", "0")
    assert "stopping: finishing in-flight work" in err
    assert runs_of(lake)[0]["status"] == "COMPLETE"


def test_serve_does_not_load_a_file_while_it_is_still_being_copied(
    lake: Cli, serve: Callable[..., Serve],
) -> None:
    # the pause mid-copy (1 s = five watch intervals) stays well inside the settle time, so
    # the outcome does not hinge on a scan landing in the instant between the two writes
    server = serve(env={"LAKELINE__RUNNER__SETTLE_SECONDS": "2"})
    data = (lake.cwd / "a.jsonl").read_bytes()
    dest = lake.home / "zones" / "landing" / "shipments" / "slow.jsonl"
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(dest, "wb") as f:  # like `cp` of a big file: the first half lands, then the rest
        f.write(data[: len(data) // 2])
        f.flush()
        time.sleep(1.0)
        f.write(data[len(data) // 2 :])
    time.sleep(1.0)
    wait_for_count(lake, server, 1000)
    time.sleep(1.0)  # anything loaded twice would show up by now
    server.ctrl_c()
    rc, out, _ = server.wait()
    assert rc == 0
    assert silver_count(lake) == 1000
    assert re.search(r"1000 rows loaded, 0 rejected", out), out


def test_serve_drives_the_carbon_workflow_of_a_put_file(lake: Cli, serve: Callable[..., Serve]) -> None:
    lake.ok("gen", "carbon", "--count", "1500", "--seed", "3", "--out", "c.csv")
    server = serve()
    lake.ok("put", "c.csv", "--pipeline", "carbon")
    t0 = time.monotonic()
    while True:
        p = InProcess(lake.home, lake.cwd)("sql", "SELECT count(*) AS n FROM gold.emissions", "--json")
        if p.returncode == 0 and json.loads(p.stdout)[0]["n"] == 1500:
            break
        assert server.proc.poll() is None, f"serve exited early: {server.wait(1)}"
        assert time.monotonic() - t0 < 60, "the carbon workflow did not finish under serve"
        time.sleep(0.3)
    server.ctrl_c()
    rc, out, err = server.wait()
    assert rc == 0, (out, err)
    carbon = [(r["pipeline"], r["status"], r["loaded"]) for r in runs_of(lake) if r.get("pipeline") == "carbon"]
    # the landing itself is logged (LANDED) when ingest sees the file before the workflow gates it
    assert [c for c in carbon if c[1] != "LANDED"] == [("carbon", "SUCCEEDED", 1500)]
    assert not list((lake.home / "zones" / "landing" / "carbon").rglob("*.csv"))  # gated to raw
