"""Who may use a ``lakeline ui`` server: the holder of its access token.

The server prints ``http://HOST:PORT/?token=…`` (as Jupyter does). The first visit with the token
is answered by a redirect that sets an HttpOnly, SameSite=Strict cookie, so later requests (and
the page's scripts and styles) carry it without the token in the URL. Anything else gets 401 and
nothing of the lake. Requests whose Host header names another host are refused (403) while the
server listens on a loopback address, so a web page cannot reach it by DNS rebinding. Actions are
POSTs that also carry the CSRF token of the page (:meth:`Access.csrf_ok`).
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode

from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")
UNAUTHORISED = ("401 Unauthorized: open the URL `lakeline ui` printed (it carries the access token), "
                "or run `lakeline ui` again for a new one.\n")


@dataclass(frozen=True)
class Access:
    """The access token of one server, its CSRF token and the hosts it answers to."""

    port: int
    host: str = "127.0.0.1"
    token: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))

    @property
    def cookie(self) -> str:
        """The cookie's name: one per port, so two servers on one host do not overwrite each other."""
        return f"lakeline_ui_{self.port}"

    def url(self, path: str = "/") -> str:
        """The URL to open: ``http://host:port/path?token=…``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}{path}?token={self.token}"

    def token_ok(self, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(given.encode(), self.token.encode())

    def csrf_ok(self, given: object) -> bool:
        """True when a form's ``csrf`` field is this server's CSRF token."""
        return isinstance(given, str) and hmac.compare_digest(given.encode(), self.csrf.encode())

    def host_ok(self, header: str | None) -> bool:
        """The Host header names this server (checked only when it listens on loopback)."""
        if self.host not in LOOPBACK:
            return True  # bound to a routable address on purpose: any name may reach it
        if not header:
            return False
        name, _, port = header.rpartition(":") if not header.endswith("]") else (header, "", "")
        return name in LOOPBACK and port == str(self.port)


class TokenMiddleware:
    """ASGI middleware: the token check in front of every route, static files included."""

    def __init__(self, app: ASGIApp, access: Access) -> None:
        self.app = app
        self.access = access

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        response = self._refusal(request)
        if response is None:
            await self.app(scope, receive, send)
        else:
            await response(scope, receive, send)

    def _refusal(self, request: Request) -> Response | None:
        """The response refusing ``request`` (or a redirect setting the cookie), or None to serve it."""
        if not self.access.host_ok(request.headers.get("host")):
            return PlainTextResponse("403 Forbidden: unknown Host header\n", status_code=403)
        given = request.query_params.get("token")
        if given is not None:
            if not self.access.token_ok(given):
                return PlainTextResponse(UNAUTHORISED, status_code=401)
            rest = [(k, v) for k, v in parse_qsl(request.url.query, keep_blank_values=True) if k != "token"]
            target = request.url.path + (f"?{urlencode(rest)}" if rest else "")
            response = RedirectResponse(target, status_code=303)
            response.set_cookie(self.access.cookie, self.access.token, httponly=True, samesite="strict",
                                path="/")
            return response
        if self.access.token_ok(request.cookies.get(self.access.cookie)):
            return None
        return PlainTextResponse(UNAUTHORISED, status_code=401)
