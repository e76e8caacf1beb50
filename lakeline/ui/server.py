"""Running the ``lakeline ui`` app: bind the socket ourselves (a port in use is a clear error,
port 0 picks a free one), then uvicorn on it — in the foreground for the CLI (Ctrl-C stops it
cleanly) or on a thread (:meth:`UiServer.start`, what the tests and ``--no-browser`` scripts use)."""

from __future__ import annotations

import errno
import socket
import threading
import time

import uvicorn

from lakeline.errors import UsageError
from lakeline.lake import Lake
from lakeline.ui.app import create_app
from lakeline.ui.auth import Access


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port``; :class:`UsageError` naming the port when it is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise UsageError(f"port {port} on {host} is in use (another lakeline ui?); "
                             "pick another with --port N, or --port 0 for any free one") from None
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(128)
    sock.setblocking(False)
    return sock


class UiServer:
    """One ``lakeline ui`` server: the lake, its access token and a bound socket."""

    def __init__(self, lake: Lake, host: str = "127.0.0.1", port: int = 0) -> None:
        self.sock = bind(host, port)
        self.access = Access(port=self.sock.getsockname()[1], host=host)
        config = uvicorn.Config(create_app(lake, self.access), log_level="warning", access_log=False,
                                lifespan="off", timeout_graceful_shutdown=3)
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The URL with the access token (what the CLI prints first)."""
        return self.access.url()

    def run(self) -> None:
        """Serve in the foreground until SIGINT/SIGTERM (uvicorn stops cleanly on them)."""
        self._server.run(sockets=[self.sock])

    def start(self) -> UiServer:
        """Serve on a daemon thread; returns once it accepts connections."""
        self._thread = threading.Thread(target=self.run, name="lakeline-ui", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the ui server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Stop a server started with :meth:`start` and wait for it."""
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(10)
        self.sock.close()
