"""What every command needs: the lake of the command line's home and profile, and its pipelines."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from lakeline.config import Settings, load_settings
from lakeline.errors import ConfigError
from lakeline.lake import Lake

if TYPE_CHECKING:
    from lakeline.pipelines.registry import Registry


def settings(ctx: click.Context | None = None, **overrides: Any) -> Settings:
    """The settings of the command line's ``--home`` and ``--profile`` (plus ``overrides``)."""
    ctx = ctx or click.get_current_context()
    root = ctx.find_root().params
    clean = {k: v for k, v in overrides.items() if v is not None}
    profile = ctx.params.get("profile") or root.get("profile")
    if profile:
        clean.setdefault("lake.profile", profile)
    return load_settings(root.get("home"), clean)


def open_lake(ctx: click.Context | None = None, **overrides: Any) -> Lake:
    """The lake of the command line (a local home must exist)."""
    s = settings(ctx, **overrides)
    missing = not (s.home / "lakeline.toml").exists() and not (s.home / "zones").exists()
    if s.lake.profile == "local" and missing:
        raise ConfigError(
            f"{s.home} is not a lakeline home; run `lakeline init {s.home}` "
            "or pass --home / set LAKELINE_HOME"
        )
    return Lake.open(s)


def pipelines(lake: Lake) -> Registry:
    """The checked pipeline registry of ``lake`` (loaded here, not when the CLI starts: a
    command that needs no pipeline, like ``lakeline sql "SELECT 1"``, does not load them)."""
    from lakeline.pipelines.registry import registry

    return registry(lake.settings)
