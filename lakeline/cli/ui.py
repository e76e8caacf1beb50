"""``lakeline ui``: serve the lake's pages in a browser, or write them as a static site."""

from __future__ import annotations

import contextlib
import sys
import webbrowser
from pathlib import Path

import click

from lakeline.cli.context import open_lake
from lakeline.errors import UsageError


@click.command("ui")
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True,
              help="Port to listen on (0: any free port).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. Anything but a loopback address exposes the lake to the network "
                   "(the token still guards it).")
@click.option("--no-browser", is_flag=True, help="Do not open a browser; just print the URL.")
@click.option("--export", "export_dir", type=click.Path(file_okay=False),
              help="Write the read-only pages as static HTML into this directory and exit (no server).")
def ui(port: int, host: str, no_browser: bool, export_dir: str | None) -> None:
    """See the lake in a browser: overview, runs and their rejects, tables and a SQL console,
    lineage graphs with record tracing, quality history, workflow executions.

    \b
    lakeline ui                      serve on http://127.0.0.1:8765 and open a browser
    lakeline ui --port 0 --no-browser   any free port; the URL is the first line of stdout
    lakeline ui --export site/       static pages to share (read-only, works offline)

    The first line of stdout is the URL with a random access token (as Jupyter prints it);
    requests without it get 401. Actions (DLQ redrive, …) ask for confirmation. Ctrl-C stops
    the server. Needs the ui extra: pip install 'lakeline[ui]'.
    """
    try:
        from lakeline.ui import export, server  # heavy: Starlette, Jinja2, uvicorn (the ui extra)
    except ImportError as exc:
        raise UsageError(f"lakeline ui needs the ui extra ({exc.name} is missing): "
                         "pip install 'lakeline[ui]'") from None
    lake = open_lake()
    if export_dir is not None:
        written = export.export_site(lake, Path(export_dir))
        click.echo(f"wrote {len(written)} pages to {export_dir} (open {Path(export_dir) / 'index.html'})")
        return
    ui_server = server.UiServer(lake, host=host, port=port)
    click.echo(ui_server.url)  # the first line of stdout, as the help says
    sys.stdout.flush()
    click.echo(f"lakeline ui: serving {lake.settings.home} on {ui_server.url.split('?')[0]} "
               "(Ctrl-C stops it)", err=True)
    if not no_browser:
        webbrowser.open(ui_server.url)
    with contextlib.suppress(KeyboardInterrupt):  # a second Ctrl-C while uvicorn shuts down
        ui_server.run()
    click.echo("lakeline ui: stopped", err=True)
