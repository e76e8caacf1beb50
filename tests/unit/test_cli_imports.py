"""Issue 18, part 4 (in progress): `lakeline sql "select 1"` pays only for what it uses — the
command modules of deploy, workflow, lineage, models, … load when their command runs."""

from __future__ import annotations

import subprocess
import sys

from lakeline.cli.main import LAZY, cli, lazy_command


def test_starting_the_cli_imports_no_lazy_command_module() -> None:
    script = ("import sys, lakeline.cli.main\n"
              f"print(sorted(m for m in {sorted({v.split(':')[0] for v in LAZY.values()})!r} if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
    assert "lakeline.deploy.sam" not in done.stdout


def test_every_lazy_command_loads_under_its_name() -> None:
    for name in LAZY:
        assert lazy_command(name).name == name
    assert set(LAZY) <= set(cli.list_commands(cli.make_context("lakeline", [], resilient_parsing=True)))
