"""The ASGI app of ``lakeline ui``: every registered page as a GET route, every action as a
CSRF-checked POST, the static files, all behind the access token (:mod:`lakeline.ui.auth`)."""

from __future__ import annotations

import importlib
from typing import Any
from urllib.parse import urlencode

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from lakeline import log
from lakeline.errors import LakelineError, NotFoundError
from lakeline.lake import Lake
from lakeline.ui.auth import Access, TokenMiddleware
from lakeline.ui.pages import MODULES
from lakeline.ui.render import (
    ACTIONS,
    PAGES,
    STATIC,
    Action,
    Page,
    View,
    environment,
    render_status,
    render_template,
)

#: query parameters the server reads itself (not passed to page functions)
_RESERVED = {"flash"}


def load_pages() -> None:
    """Import the page modules (their import registers the pages and actions)."""
    for name in MODULES:
        importlib.import_module(f"lakeline.ui.pages.{name}")


def create_app(lake: Lake, access: Access) -> Starlette:
    """The app serving ``lake`` to the holder of ``access``'s token."""
    load_pages()
    env = environment()
    view = View(lake)

    def error(status: int, message: str) -> HTMLResponse:
        html = render_template(env, view, "error.html", csrf=access.csrf, status=status, message=message)
        return HTMLResponse(html, status_code=status)

    def get(p: Page) -> Any:
        async def endpoint(request: Request) -> Response:
            params = {k: v for k, v in request.query_params.items() if k not in _RESERVED}
            flash = request.query_params.get("flash", "")
            try:
                status, html = await run_in_threadpool(render_status, env, view, p.name, params,
                                                       csrf=access.csrf, flash=flash)
            except NotFoundError as exc:
                return error(404, str(exc))
            except LakelineError as exc:
                return error(400, str(exc))
            except TypeError as exc:  # a parameter the page does not take, or a missing one
                if "argument" not in str(exc):
                    raise
                return error(400, f"bad parameters for {p.path}: {', '.join(params) or 'none'}")
            return HTMLResponse(html, status_code=status)
        return endpoint

    def post(a: Action) -> Any:
        async def endpoint(request: Request) -> Response:
            if request.headers.get("sec-fetch-site") not in (None, "same-origin", "none"):
                return PlainTextResponse("403 Forbidden: cross-site request\n", status_code=403)
            form = await request.form()
            if not access.csrf_ok(form.get("csrf")):
                return PlainTextResponse("403 Forbidden: missing or wrong CSRF token (reload the page)\n",
                                         status_code=403)
            fields = {k: v for k, v in form.items() if isinstance(v, str) and k != "csrf"}
            try:
                message, back = await run_in_threadpool(a.fn, view, fields)
            except LakelineError as exc:
                return error(400, f"{a.name}: {exc}")
            log.get(__name__).info("ui action %s: %s", a.name, message)
            joiner = "&" if "?" in back else "?"
            return RedirectResponse(f"{back}{joiner}{urlencode({'flash': message})}", status_code=303)
        return endpoint

    routes: list[BaseRoute] = [Route(p.path, get(p), methods=["GET"], name=p.name) for p in PAGES.values()]
    routes += [Route(a.path, post(a), methods=["POST"], name=a.name) for a in ACTIONS.values()]
    routes.append(Mount("/static", app=StaticFiles(directory=STATIC), name="static"))
    app = Starlette(routes=routes)
    app.add_middleware(TokenMiddleware, access=access)
    return app
