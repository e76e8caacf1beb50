"""The workflows pages (a stub: replaced by the real pages)."""

from __future__ import annotations

from typing import Any

from lakeline.ui.render import Rendered, View, page


@page("workflows", "/workflows", title="Workflows")
def index(view: View, **params: Any) -> Rendered:
    """A stub."""
    return "stub.html", {"title": "Workflows"}


@page("workflow", "/workflows/execution", title="Workflow execution")
def detail(view: View, **params: Any) -> Rendered:
    """A stub."""
    return "stub.html", {"title": "Workflow execution"}
