"""How pages render: the page and action registries, links, and the Jinja2 environment.

A page function gets a :class:`View` (the lake, its pipelines, how to link) and its params, and
returns ``(template name, context)``. :class:`Links` makes every URL, so the same template links
``/runs/detail?run=…`` when served and ``runs/detail-….html`` (relative) in the static export.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import jinja2

from lakeline.lake import Lake

if TYPE_CHECKING:
    from lakeline.pipelines.registry import Registry

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"

Rendered = tuple[str, dict[str, Any]]
PageFn = Callable[..., Rendered]
#: the param sets of a page the static export writes (e.g. one per latest lineage root)
Instances = Callable[["View"], Iterable[dict[str, Any]]]


@dataclass(frozen=True)
class Page:
    """A registered page: its name, URL path, function, and whether the static export has it."""

    name: str
    path: str
    fn: PageFn
    exported: bool
    title: str
    #: what the static export writes of this page: one file per param set (default: ``[{}]``)
    instances: Instances | None = None


@dataclass(frozen=True)
class Action:
    """A registered POST action: ``fn(view, form) -> (message, url to go back to)``."""

    name: str
    path: str
    fn: Callable[[View, dict[str, str]], tuple[str, str]]


PAGES: dict[str, Page] = {}
ACTIONS: dict[str, Action] = {}
#: the navigation bar: (page name, label)
NAV = [("overview", "Overview"), ("runs", "Runs"), ("tables", "Tables"), ("sql", "SQL"),
       ("lineage", "Lineage"), ("quality", "Quality"), ("workflows", "Workflows")]


def page(name: str, path: str, *, title: str, exported: bool = True,
         instances: Instances | None = None) -> Callable[[PageFn], PageFn]:
    """Register a page function under ``name`` at ``path``. ``exported``: the static export
    has it, once per param set ``instances(view)`` yields (default: once, without params)."""
    def register(fn: PageFn) -> PageFn:
        PAGES[name] = Page(name, path, fn, exported, title, instances)
        return fn
    return register


def action(name: str, path: str) -> Callable[[Any], Any]:
    """Register a POST action under ``name`` at ``path`` (the server checks its CSRF token)."""
    def register(fn: Any) -> Any:
        ACTIONS[name] = Action(name, path, fn)
        return fn
    return register


def _slug(params: dict[str, Any]) -> str:
    """A file-name-safe, unique suffix for a page's params (readable start + short hash)."""
    text = "-".join(f"{v}" for _, v in sorted(params.items()) if v not in (None, ""))
    if not text:
        return ""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", text)[:60]
    digest = hashlib.sha1(repr(sorted((k, str(v)) for k, v in params.items())).encode()).hexdigest()[:8]  # noqa: S324 - a name, not security
    return f"-{safe}-{digest}"


def clean_params(params: dict[str, Any]) -> dict[str, Any]:
    """Params as a link keeps them (None and "" dropped): an export's file names are made of these."""
    return {k: v for k, v in params.items() if v is not None and v != ""}


@dataclass(frozen=True)
class Links:
    """URLs of pages: server paths with a query string, or relative ``.html`` files in an export."""

    exporting: bool = False
    #: the current page's file in the export (links are relative to its directory)
    here: str = "index.html"
    #: an export's files, once it knows them: a link to a param set of a page it does not write
    #: (a filter of the runs list, say) goes to that page without params when it writes that
    files: frozenset[str] | None = None

    def url(self, name: str, /, **params: Any) -> str:
        """The URL of page (or action) ``name`` with ``params``."""
        clean = clean_params(params)
        if name in ACTIONS:
            return ACTIONS[name].path
        path = PAGES[name].path
        if not self.exporting:
            return path + (f"?{urlencode(clean)}" if clean else "")
        if (self.files is not None and clean and self.file(name, **clean) not in self.files
                and self.file(name) in self.files):
            clean = {}
        depth = self.here.count("/")
        return "../" * depth + self.file(name, **clean)

    def linkable(self, name: str, /, **params: Any) -> bool:
        """Whether page ``name`` with ``params`` can be linked: always when served; in an export,
        when it writes exactly that page (when its files are not known yet: when the page is
        exported at all)."""
        if name not in PAGES:
            return False
        if not self.exporting:
            return True
        if self.files is None:
            return PAGES[name].exported
        return self.file(name, **clean_params(params)) in self.files

    def exported(self, name: str) -> bool:
        """Whether page ``name`` can be linked (always when served; in an export, if exported)."""
        return not self.exporting or (name in PAGES and PAGES[name].exported)

    @staticmethod
    def file(name: str, /, **params: Any) -> str:
        """The export file of page ``name`` with ``params`` (``/`` → ``index.html``)."""
        path = PAGES[name].path.strip("/") or "index"
        return f"{path}{_slug(params)}.html"

    def static(self, name: str) -> str:
        """The URL of a static file (``app.css``, ``vendor/chart.umd.min.js``)."""
        if not self.exporting:
            return f"/static/{name}"
        return "../" * self.here.count("/") + f"static/{name}"


@dataclass
class View:
    """What a page function sees: the lake, its pipelines, links, and whether it is exported."""

    lake: Lake
    links: Links = field(default_factory=Links)

    @property
    def exporting(self) -> bool:
        return self.links.exporting

    @cached_property
    def registry(self) -> Registry:
        """The lake's checked pipeline registry (loaded on first use)."""
        from lakeline.pipelines.registry import registry  # heavy: loads every pipeline

        return registry(self.lake.settings)


def environment() -> jinja2.Environment:
    """The Jinja2 environment of the templates (autoescaped; ``tojson`` is safe in <script>)."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES),
                             autoescape=jinja2.select_autoescape(["html"]), undefined=jinja2.StrictUndefined)
    env.globals["nav"] = NAV
    env.filters["num"] = _num
    return env


def _num(value: Any) -> str:
    """A number with thousands separators (other values as they are, None as '')."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1e6 else f"{value:,.0f}"
    return str(value)


def render_page(env: jinja2.Environment, view: View, name: str, params: dict[str, Any], *,
                csrf: str = "", flash: str = "") -> str:
    """The HTML of page ``name`` with ``params`` (what the server sends and the export writes)."""
    return render_status(env, view, name, params, csrf=csrf, flash=flash)[1]


def render_status(env: jinja2.Environment, view: View, name: str, params: dict[str, Any], *,
                  csrf: str = "", flash: str = "") -> tuple[int, str]:
    """The HTTP status and HTML of page ``name``: 200, or the ``http_status`` its context sets (the SQL
    console answers a failed query with 400 and the page showing the error beside the query)."""
    template, context = PAGES[name].fn(view, **params)
    status = int(context.pop("http_status", 200))
    return status, render_template(env, view, template, csrf=csrf, flash=flash, current=name, **context)


def render_template(env: jinja2.Environment, view: View, template: str, *, csrf: str = "", flash: str = "",
                    current: str = "", **context: Any) -> str:
    """``template`` with what every page's template reads (links, the CSRF token, the flash
    message, the current page, whether it is exported) and ``context``."""
    return env.get_template(template).render(
        view=view, links=view.links, url=view.links.url, static=view.links.static, csrf=csrf,
        flash=flash, current=current, exporting=view.exporting, **context)
