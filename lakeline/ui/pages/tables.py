"""The tables pages (a stub: replaced by the real pages)."""

from __future__ import annotations

from typing import Any

from lakeline.ui.render import Rendered, View, page


@page("tables", "/tables", title="Tables")
def index(view: View, **params: Any) -> Rendered:
    """A stub."""
    return "stub.html", {"title": "Tables"}


@page("table", "/tables/detail", title="Table")
def detail(view: View, **params: Any) -> Rendered:
    """A stub."""
    return "stub.html", {"title": "Table"}


@page("sql", "/sql", title="SQL", exported=False)
def sql(view: View, **params: Any) -> Rendered:
    """A stub."""
    return "stub.html", {"title": "SQL"}
