"""``lakeline ui --export DIR`` (a stub: replaced by the real export)."""

from __future__ import annotations

from pathlib import Path

from lakeline.lake import Lake


def export_site(lake: Lake, out: Path) -> list[Path]:
    """A stub."""
    raise NotImplementedError
