"""The quality pages (a stub: replaced by the real pages)."""

from __future__ import annotations

from typing import Any

from lakeline.ui.render import Rendered, View, page


@page("quality", "/quality", title="Quality")
def index(view: View, **params: Any) -> Rendered:
    """A stub."""
    return "stub.html", {"title": "Quality"}


@page("quality-result", "/quality/result", title="Quality result")
def detail(view: View, **params: Any) -> Rendered:
    """A stub."""
    return "stub.html", {"title": "Quality result"}
