"""The lineage pages (a stub: replaced by the real pages)."""

from __future__ import annotations

from typing import Any

from lakeline.ui.render import Rendered, View, page


@page("lineage", "/lineage", title="Lineage")
def index(view: View, **params: Any) -> Rendered:
    """A stub."""
    return "stub.html", {"title": "Lineage"}


@page("lineage-root", "/lineage/root", title="Lineage root")
def detail(view: View, **params: Any) -> Rendered:
    """A stub."""
    return "stub.html", {"title": "Lineage root"}
