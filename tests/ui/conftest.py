"""Fixtures of the UI tests: one demo lake and one ``lakeline ui`` server per session, and a
real browser (Debian's chromium, driven by Playwright) whose pages fail their test on any
JavaScript error and leave a screenshot in ``tests/artifacts/``.

Every UI test is in the ``ui`` xdist group: one worker builds the lake once and runs them all.
Tests that change the lake (an action) use :func:`fresh_server` on a copy.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Response, sync_playwright

from lakeline.config import load_settings
from lakeline.lake import Lake
from lakeline.ui.server import UiServer
from tests.e2e.helpers import Cli
from tests.ui import demo_lake

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
CHROMIUMS = ("/usr/lib/chromium/chromium-headless-shell", "/usr/lib/chromium/chromium")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/ui/" in item.nodeid.replace(os.sep, "/"):
            item.add_marker(pytest.mark.xdist_group("ui"))


@pytest.fixture(scope="session")
def demo_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo lake (built once; tests must not change it — copy it with :func:`fresh_server`)."""
    return demo_lake.build(tmp_path_factory.mktemp("ui-demo"))


@pytest.fixture(scope="session")
def demo_export(demo_home: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    """The demo lake exported once by ``lakeline ui --export`` (the site, the command's stdout
    and stderr); tests must not change it."""
    root = tmp_path_factory.mktemp("export")
    out = root / "site"
    p = Cli(demo_home, root).ok("ui", "--export", out)
    return out, p.stdout, p.stderr


@pytest.fixture(scope="session")
def server(demo_home: Path) -> Iterator[UiServer]:
    """A ``lakeline ui`` server on the demo lake (any free port)."""
    s = UiServer(Lake.open(load_settings(demo_home))).start()
    yield s
    s.stop()


@pytest.fixture
def fresh_server(demo_home: Path, tmp_path: Path) -> Iterator[UiServer]:
    """A server on a copy of the demo lake, for tests that change it (actions)."""
    home = tmp_path / "lake"
    shutil.copytree(demo_home, home)
    s = UiServer(Lake.open(load_settings(home))).start()
    yield s
    s.stop()


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Debian's headless chromium (never a downloaded browser)."""
    executable = next((c for c in CHROMIUMS if os.access(c, os.X_OK)), None)
    assert executable, "chromium is missing: `make browser` (apt-get install chromium-headless-shell)"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=executable, headless=True,
                              args=["--no-sandbox", "--disable-dev-shm-usage"])
        yield b
        b.close()


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A fresh browser page; any console error or uncaught exception fails the test, and a
    screenshot of where it ended is saved as ``tests/artifacts/<test>.png``."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    pg = context.new_page()
    errors: list[str] = []
    refused: list[tuple[str, str]] = []  # (text, url) of "Failed to load resource" messages
    pages_4xx: set[str] = set()  # pages the test opened that answered 4xx (a 404/400 page on purpose)

    def on_console(msg: ConsoleMessage) -> None:
        if msg.type == "error":
            url = msg.location.get("url") or ""
            if msg.text.startswith("Failed to load resource"):
                refused.append((msg.text, url))
            else:
                errors.append(f"console: {msg.text} ({url})")

    def on_response(response: Response) -> None:
        if response.request.is_navigation_request() and response.status >= 400:
            pages_4xx.add(response.url)

    pg.on("console", on_console)
    pg.on("response", on_response)
    pg.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
    pg.on("dialog", lambda dialog: dialog.accept())  # actions ask for confirmation: say yes
    pg.set_default_timeout(15_000)
    yield pg
    ARTIFACTS.mkdir(exist_ok=True)
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
    pg.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    context.close()
    # chromium logs a page answered with 4xx as a console error: only the failed loads of other
    # resources (a script, a stylesheet) are errors
    errors += [f"console: {text} ({url})" for text, url in refused if url not in pages_4xx]
    assert not errors, errors


@pytest.fixture
def visit(page: Page, server: UiServer) -> Callable[..., Page]:
    """``visit(path)``: open ``path`` of the demo server (the first visit carries the token)."""
    return opener(page, server)


def opener(page: Page, server: UiServer) -> Callable[..., Page]:
    """A ``visit(path)`` for ``server``: the token on the first request, the cookie after."""
    base = server.url.split("?")[0].rstrip("/")
    state = {"authorised": False}

    def visit(path: str = "/") -> Page:
        if not state["authorised"]:
            page.goto(server.url)  # sets the cookie, redirects to /
            state["authorised"] = True
        page.goto(base + path)
        return page

    return visit
