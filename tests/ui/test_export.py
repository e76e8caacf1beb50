"""``lakeline ui --export DIR`` through the CLI: the exported pages and static files are written,
every link of every page resolves to a file of the export, the site opens from file:// in the
real browser without a JavaScript error and draws the workflow graph from the data it inlines;
a DIR that is a file or a foreign directory is refused."""

from __future__ import annotations

import re
import shutil
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from playwright.sync_api import Page, expect

from lakeline.config import load_settings
from lakeline.lake import Lake
from lakeline.ui.app import load_pages
from lakeline.ui.export import MARKER
from lakeline.ui.render import PAGES, Links
from lakeline.workflow.engine import list_executions
from tests.e2e.helpers import Cli

WROTE = re.compile(r"^wrote (\d+) pages to (.+) \(open (.+)\)$")


class _Refs(HTMLParser):
    """The URLs a page refers to: links, scripts, stylesheets, frames, images."""

    def __init__(self) -> None:
        super().__init__()
        self.refs: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value is not None and (tag, name) in (("a", "href"), ("link", "href"), ("script", "src"),
                                                     ("iframe", "src"), ("img", "src")):
                self.refs.append((tag, value))


def _broken(site: Path) -> tuple[int, list[str]]:
    """How many links the site's pages hold, and those that do not resolve to a file of the site."""
    n, broken = 0, []
    for page in sorted(site.rglob("*.html")):
        parser = _Refs()
        parser.feed(page.read_text("utf-8"))
        for tag, ref in parser.refs:
            parts = urlsplit(ref)
            if parts.scheme in ("http", "https", "mailto", "data", "javascript") or ref.startswith("#"):
                assert parts.scheme not in ("http", "https") or tag == "a", f"{page}: {tag} loads {ref}"
                continue
            n += 1
            target = (page.parent / unquote(parts.path)).resolve()
            if not target.is_file() or site.resolve() not in target.parents:
                broken.append(f"{page.relative_to(site)}: <{tag}> {ref}")
    return n, broken


@pytest.fixture
def site(demo_export: tuple[Path, str, str]) -> tuple[Path, str, str]:
    """The demo lake exported once by ``lakeline ui --export`` (its stdout and stderr; see
    tests/ui/conftest.py)."""
    return demo_export


def test_the_export_writes_every_exported_page_and_the_static_files(site, demo_home):
    out, stdout, stderr = site
    load_pages()
    state = Lake.open(load_settings(demo_home)).state
    pages = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.html") if "static" not in p.parts)
    m = WROTE.match(stdout.strip())
    assert m, stdout
    assert (int(m.group(1)), m.group(2), m.group(3)) == (len(pages), str(out), str(out / "index.html"))
    assert "index.html" in pages and "workflows.html" in pages
    for arn in (e.execution_arn for e in list_executions(state, 20)):
        assert Links.file("workflow", execution=arn) in pages
    assert not [p for p in pages if any(p == Links.file(n) for n, pg in PAGES.items() if not pg.exported)]
    assert "sql.html" not in pages  # the console is not exported
    for name in ("static/app.css", "static/ui.js", "static/workflow.js", "static/vendor/cytoscape.min.js",
                 "static/vendor/cytoscape-dagre.min.js", "static/vendor/chart.umd.min.js", MARKER):
        assert (out / name).is_file(), name
    assert "lakeline ui --export: workflow: 1 page(s)" in stderr
    assert not list(out.parent.glob(f".{out.name}.*"))  # no staging directory left beside it


def test_every_link_of_every_exported_page_resolves_to_a_file(site):
    out, _, _ = site
    n, broken = _broken(out)
    assert not broken, broken
    assert n > 100


def test_the_export_opens_from_file_and_draws_the_workflow_graph_from_inlined_data(site, demo_home, page: Page):
    out, _, _ = site
    load_pages()
    [carbon] = list_executions(Lake.open(load_settings(demo_home)).state)
    page.goto((out / "index.html").as_uri())
    expect(page.locator("h1")).to_have_text("Overview")
    expect(page.locator(".exported")).to_contain_text("A static export")
    page.locator("#executions a").first.click()
    assert page.url == (out / Links.file("workflow", execution=carbon.execution_arn)).as_uri()
    page.wait_for_function("window.workflowGraph !== undefined")
    assert page.evaluate("window.workflowGraph.nodes(\"[kind = 'state']\").length") == 8
    assert page.evaluate("window.workflowGraph.nodes().length") == 10  # and Start, End
    expect(page.locator('[data-map="CalculateBatches"] .map-summary')).to_have_text("6 iterations: 6 succeeded")
    page.locator(".crumbs a").click()
    expect(page.locator("h1")).to_have_text("Workflows")
    expect(page.locator("#executions tbody tr")).to_have_count(1)


def test_exporting_again_replaces_an_earlier_export(site, demo_home, tmp_path):
    out = tmp_path / "site"
    shutil.copytree(site[0], out)  # an earlier export (the module's), exported again here
    cli = Cli(demo_home, tmp_path)
    (out / "stale.html").write_text("left from an older export")
    first = (out / MARKER).read_text()
    cli.ok("ui", "--export", out)
    assert not (out / "stale.html").exists()
    assert (out / "index.html").is_file() and (out / MARKER).read_text() != "" and first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["site"]  # nothing left beside it


def test_a_file_or_a_foreign_directory_is_refused(demo_home, tmp_path):
    cli = Cli(demo_home, tmp_path)
    a_file = tmp_path / "notes.txt"
    a_file.write_text("mine")
    err = cli.fails(2, "ui", "--export", a_file)
    assert str(a_file) in err and "is a file" in err
    assert a_file.read_text() == "mine"
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("keep")
    err = cli.fails(2, "ui", "--export", foreign)
    assert f"--export {foreign}: the directory is not empty and is not an earlier lakeline export" in err
    assert [p.name for p in foreign.iterdir()] == ["keep.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine", "notes.txt"]
