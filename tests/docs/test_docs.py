"""The documentation site is tested like code: it builds strictly (a broken link or reference
fails), its tutorial runs, and the generated references hold every command, configuration key,
reject reason and error of the code."""

from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest

from lakeline import errors, reasons
from lakeline.cli.main import cli

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
sys.path.insert(0, str(ROOT / "docs"))
import hooks  # noqa: E402  (docs/hooks.py: the generators of the references)

pytestmark = pytest.mark.xdist_group("docs")
STEP = re.compile(r"^<!-- step -->\n```bash\n(.*?)^```", re.M | re.S)


def build(config: Path, out: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1", PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}")
    return subprocess.run([str(BIN / "mkdocs"), "build", "--strict", "-f", str(config), "-d", str(out)],
                          cwd=config.parent, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    done = build(ROOT / "mkdocs.yml", out)
    assert done.returncode == 0, done.stderr
    assert "WARNING" not in done.stderr, done.stderr
    return out


def text(page: Path) -> str:
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page.read_text())))


def command_paths(group: click.Group, ctx: click.Context, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = []
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None
        out.append((*prefix, name))
        if isinstance(command, click.Group):
            out += command_paths(command, click.Context(command, parent=ctx, info_name=name), (*prefix, name))
    return out


def test_the_cli_reference_has_every_command(site):
    page = (site / "reference" / "cli" / "index.html").read_text()
    ids = set(re.findall(r'id="(lakeline[a-z0-9-]*)"', page))
    paths = command_paths(cli, click.Context(cli, info_name="lakeline"))
    assert len(paths) >= 50
    missing = [" ".join(p) for p in paths if "lakeline-" + "-".join(p) not in ids]
    assert not missing, missing
    assert "Print as JSON." in page and "--no-browser" in page  # options, as --help prints them


def test_the_configuration_reference_has_every_key_with_its_meaning_and_variable(site):
    import dataclasses

    from lakeline.config import _SECTIONS

    keys = hooks.config_keys()
    # the generator covers every field of every section (nothing filtered out by accident)
    assert {(r["section"], r["key"]) for r in keys if "." not in r["section"]} == {
        (s, f.name) for s, cls in _SECTIONS.items() for f in dataclasses.fields(cls)}
    assert {"pipelines.carbon", "pipelines.totesys", "pipelines.retail", "pipelines.<name>"} <= {
        r["section"] for r in keys}
    page = text(site / "reference" / "configuration" / "index.html")
    squeezed = re.sub(r"\s+", "", page.replace("'", ""))
    for r in keys:
        assert r["meaning"], f"{r['section']}.{r['key']} has no #: comment in its settings class"
        row = f"{r['key']}{r['type']}{r['default']}".replace("'", "").replace(" ", "")
        assert row in squeezed, row
        assert re.sub(r"\s+", "", r["meaning"].replace("`", "").replace("'", ""))[:40] in squeezed, r
        assert r["env"] in page, r["env"]
    assert "LAKELINE__PIPELINES__CARBON__BATCH_SIZE" in page and "LAKELINE__QUEUE__MAX_RECEIVE_COUNT" in page


def test_reject_reasons_and_the_error_tree_are_generated_from_the_code(site):
    page = text(site / "reference" / "reject-reasons" / "index.html")
    for code in reasons.ALL:
        assert code in page, code
    assert "TYPE_ERROR a value cannot be cast to its silver type" in page
    tree = text(site / "reference" / "errors" / "index.html")
    names = [c.__name__ for c in vars(errors).values()
             if isinstance(c, type) and issubclass(c, errors.LakelineError)]
    assert len(names) >= 10
    for name in names:
        assert name in tree, name


def test_the_python_api_reference_is_built_from_the_docstrings(site):
    page = text(site / "reference" / "python-api" / "index.html")
    for name in ("open_lake", "put", "run", "query"):
        assert name in page, name
    from lakeline import api

    first = (api.open_lake.__doc__ or "").strip().splitlines()[0].replace("``", "")
    assert re.sub(r"\s+", "", first)[:40] in re.sub(r"\s+", "", page)


def test_the_tutorial_runs_step_by_step(tmp_path):
    """Every ``<!-- step -->`` block of the first-pipeline tutorial, in order, in one shell."""
    page = (ROOT / "docs" / "get-started" / "first-pipeline.md").read_text()
    steps = STEP.findall(page)
    assert len(steps) >= 5, "the tutorial has lost its steps"
    script = "set -euo pipefail\n" + "\n".join(steps)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAKELINE")}
    env["PATH"] = f"{BIN}{os.pathsep}{env['PATH']}"
    done = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"


def test_a_broken_link_fails_the_build(tmp_path):
    copy = tmp_path / "project"
    shutil.copytree(ROOT / "docs", copy / "docs")
    shutil.copy(ROOT / "mkdocs.yml", copy / "mkdocs.yml")
    page = copy / "docs" / "concepts" / "index.md"
    page.write_text(page.read_text() + "\nSee [nowhere](no-such-page.md).\n")
    done = build(copy / "mkdocs.yml", tmp_path / "out")
    assert done.returncode != 0
    assert "no-such-page.md" in done.stderr and "concepts/index.md" in done.stderr


def test_the_readme_fits_on_two_screens_and_links_into_the_site():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 150
    assert readme.splitlines()[0] == "# lakeline"
    assert "make demo" in readme and "make test" in readme
    targets = re.findall(r"\]\((docs/[^)#]+)", readme)
    assert len(targets) >= 8
    for target in targets:
        assert (ROOT / target).exists(), target
