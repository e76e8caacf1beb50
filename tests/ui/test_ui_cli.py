"""``lakeline ui`` as a user runs it: a subprocess that prints its URL with the token first,
refuses requests without it, names a port in use, and stops cleanly on Ctrl-C."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.e2e.helpers import LAKELINE, Cli


class UiProcess:
    """``lakeline ui --port 0 --no-browser`` in its own session (like a terminal job)."""

    def __init__(self, cli: Cli, *args: str) -> None:
        self.proc = subprocess.Popen([str(LAKELINE), "ui", "--no-browser", *args], cwd=cli.cwd, env=cli.env(),
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     start_new_session=True)
        assert self.proc.stdout is not None
        self.url = self.proc.stdout.readline().strip()  # the first line, before anything else
        parts = urlsplit(self.url)
        self.host, self.port = parts.hostname or "", parts.port or 0
        self.token = parts.query.removeprefix("token=")

    def request(self, method: str, path: str, headers: dict[str, str] | None = None,
                body: str | None = None) -> http.client.HTTPResponse:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        response.read()
        return response

    def stop(self) -> tuple[int, str]:
        os.killpg(self.proc.pid, signal.SIGINT)  # what a terminal does on Ctrl-C
        _, err = self.proc.communicate(timeout=30)
        return self.proc.returncode, err


@pytest.fixture
def ui(tmp_path: Path) -> Iterator[UiProcess]:
    cli = Cli(tmp_path / "lake", tmp_path)
    cli.ok("init", cli.home)
    proc = UiProcess(cli, "--port", "0")
    yield proc
    if proc.proc.poll() is None:
        proc.proc.kill()
        proc.proc.wait(10)


def test_prints_the_url_with_a_token_and_refuses_requests_without_it(ui):
    assert ui.url.startswith("http://127.0.0.1:") and len(ui.token) >= 40
    for path in ("/", "/runs", "/static/app.css", "/static/vendor/chart.umd.min.js", "/?token=wrong"):
        response = ui.request("GET", path)
        assert response.status == 401, path
    entry = ui.request("GET", f"/runs?pipeline=carbon&token={ui.token}")
    assert (entry.status, entry.getheader("location")) == (303, "/runs?pipeline=carbon")
    cookie = entry.getheader("set-cookie") or ""
    assert cookie.startswith(f"lakeline_ui_{ui.port}={ui.token};")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
    page = ui.request("GET", "/", {"Cookie": f"lakeline_ui_{ui.port}={ui.token}"})
    assert page.status == 200
    assert ui.request("GET", "/", {"Cookie": f"lakeline_ui_{ui.port}=nope"}).status == 401


def test_a_foreign_host_header_or_a_post_without_the_csrf_token_is_refused(ui):
    cookie = {"Cookie": f"lakeline_ui_{ui.port}={ui.token}"}
    rebinding = ui.request("GET", "/", {**cookie, "Host": f"attacker.example:{ui.port}"})
    assert rebinding.status == 403
    form = {**cookie, "Content-Type": "application/x-www-form-urlencoded"}
    assert ui.request("POST", "/actions/dlq-redrive", form, "queue=all").status == 403
    assert ui.request("POST", "/actions/dlq-redrive", form, "queue=all&csrf=guess").status == 403
    cross = ui.request("POST", "/actions/dlq-redrive", {**form, "Sec-Fetch-Site": "cross-site"}, "queue=all")
    assert cross.status == 403
    assert ui.request("POST", "/actions/dlq-redrive", {"Content-Type": form["Content-Type"]}).status == 401


def test_ctrl_c_stops_the_server_cleanly(ui):
    assert ui.request("GET", "/").status == 401  # it serves
    rc, err = ui.stop()
    assert rc == 0, err
    assert "Traceback" not in err
    assert err.strip().endswith("lakeline ui: stopped")


def test_a_port_in_use_is_a_clear_error_naming_it(tmp_path):
    cli = Cli(tmp_path / "lake", tmp_path)
    cli.ok("init", cli.home)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        err = cli.fails(2, "ui", "--no-browser", "--port", str(port))
    assert f"port {port} on 127.0.0.1 is in use" in err
    assert "--port" in err and "Traceback" not in err


def test_ui_needs_a_lake(tmp_path):
    cli = Cli(tmp_path / "nowhere", tmp_path)
    err = cli.fails(2, "ui", "--no-browser", "--port", "0")
    assert "is not a lakeline home" in err
