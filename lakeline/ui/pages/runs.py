"""The runs pages (a stub: replaced by the real pages)."""

from __future__ import annotations

from typing import Any

from lakeline.ui.render import Rendered, View, page


@page("runs", "/runs", title="Runs")
def index(view: View, **params: Any) -> Rendered:
    """A stub."""
    return "stub.html", {"title": "Runs"}


@page("run", "/runs/detail", title="Run")
def detail(view: View, **params: Any) -> Rendered:
    """A stub."""
    return "stub.html", {"title": "Run"}
