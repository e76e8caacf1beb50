"""Options every command takes wherever they are written: ``--home``, ``--profile``, ``--json``.

Click binds an option to the command it follows, so ``lakeline sql "…" --home X`` would be
refused if only the root group had ``--home``. Every command gets the three options as well;
given there, ``--home`` and ``--profile`` are stored on the root context (where
:mod:`lakeline.cli.context` reads them), and a command's own ``--json`` defaults to the root's.
"""

from __future__ import annotations

from typing import Any

import click

#: The root group's parameter name of ``--json``.
ROOT_JSON = "json_output"
_MARK = "_lakeline_global_options"


def _to_root(name: str) -> Any:
    def store(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        if value not in (None, False):
            ctx.find_root().params[name] = value
        return value
    return store


def _root_json() -> bool:
    ctx = click.get_current_context(silent=True)
    return bool(ctx is not None and ctx.find_root().params.get(ROOT_JSON))


def with_global_options(command: click.Command) -> click.Command:
    """Give ``command`` (and, for a group, every command under it) the global options;
    idempotent."""
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            with_global_options(sub)
    if getattr(command, _MARK, False):
        return command
    setattr(command, _MARK, True)
    names = {p.name for p in command.params}
    flags = {o for p in command.params for o in getattr(p, "opts", ())}
    if "home" not in names and "--home" not in flags:
        command.params.append(click.Option(
            ["--home"], type=click.Path(file_okay=False), expose_value=False, callback=_to_root("home"),
            help="Lake home directory (as `lakeline --home`; default $LAKELINE_HOME)."))
    if "profile" not in names and "--profile" not in flags:
        command.params.append(click.Option(
            ["--profile"], type=click.Choice(["local", "aws"]), expose_value=False,
            callback=_to_root("profile"), help="Backend: local or aws (as `lakeline --profile`)."))
    for p in command.params:
        if p.name == "as_json" and isinstance(p, click.Option):
            p.default = _root_json  # `lakeline --json CMD` as `lakeline CMD --json`
    if "as_json" not in names and "--json" not in flags and not isinstance(command, click.Group):
        command.params.append(click.Option(
            ["--json"], is_flag=True, expose_value=False, callback=_to_root(ROOT_JSON),
            help='Failures as JSON on stdout: {"status": "error", "code", "reason"}.'))
    return command


def json_requested(args: list[str]) -> bool:
    """Whether the command line asks for JSON (``--json`` anywhere before a ``--``)."""
    end = args.index("--") if "--" in args else len(args)
    return "--json" in args[:end]
