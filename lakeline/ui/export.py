"""``lakeline ui --export DIR``: the read-only pages as static HTML, for sharing (as ``dbt docs
generate`` does).

Every page registered ``exported=True`` is rendered by the same page function and template as
when served, once per param set its ``instances(view)`` gives, into the file
:meth:`lakeline.ui.render.Links.file` names (``index.html`` for the overview); links between
pages are relative ``.html`` files, so the site opens from ``file://``. ``static/`` (with the
vendored scripts) is copied beside them.

The site is written into a staging directory beside ``DIR`` and renamed into place when it is
complete: an export that fails leaves ``DIR`` as it was. ``DIR`` must be new, empty, or an
earlier export (it holds :data:`MARKER`), which is replaced; anything else is refused.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lakeline.errors import LakelineError, NotFoundError, UsageError
from lakeline.lake import Lake
from lakeline.ui.app import load_pages
from lakeline.ui.render import (
    PAGES,
    STATIC,
    Links,
    Page,
    View,
    clean_params,
    environment,
    render_page,
    render_template,
)
from lakeline.version import __version__

#: the file that marks a directory as a lakeline export (one this command may replace)
MARKER = ".lakeline-export"

Progress = Callable[[str], None]


def export_site(lake: Lake, out: Path, *, progress: Progress | None = None) -> list[Path]:
    """Write the exported pages of ``lake`` and the static files into ``out``; returns the
    pages written (``out/index.html`` first). ``progress`` gets a line per page kind (default:
    stderr). :class:`UsageError` when ``out`` is a file, or a non-empty directory that is not an
    earlier export."""
    say = progress or _stderr
    out = _target(out)
    staging = out.parent / f".{out.name}.export-{uuid.uuid4().hex[:8]}"
    try:
        staging.mkdir()
    except OSError as exc:
        raise UsageError(f"--export {out}: cannot write beside it in {out.parent}: {exc.strerror}") from None
    try:
        written = _write(lake, staging, say)
        shutil.copytree(STATIC, staging / "static", ignore=shutil.ignore_patterns("__pycache__", "*.py"))
        (staging / MARKER).write_text(json.dumps({
            "lakeline_export": 1, "version": __version__, "home": str(lake.settings.home),
            "written_at": datetime.now(UTC).isoformat(timespec="seconds"), "pages": len(written)}) + "\n")
        _swap(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return [out / rel for rel in written]


def _target(out: Path) -> Path:
    """``out`` as an absolute path, checked: new, an empty directory or an earlier export."""
    out = Path(os.path.abspath(out))
    if out.is_symlink():
        out = out.resolve()
    if out.exists() and not out.is_dir():
        raise UsageError(f"--export {out}: it is a file; give a directory (a new one, an empty one, "
                         "or an earlier export to replace)")
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).is_file():
        raise UsageError(f"--export {out}: the directory is not empty and is not an earlier lakeline export "
                         f"(no {MARKER} in it); give a new or empty directory — nothing was written")
    if not out.parent.is_dir():
        raise UsageError(f"--export {out}: its parent directory {out.parent} does not exist")
    return out


def _swap(staging: Path, out: Path) -> None:
    """Put the finished site in place: a rename, the earlier export moved aside first."""
    if not out.exists() or not any(out.iterdir()):
        os.replace(staging, out)  # a missing or empty directory is replaced at once
        return
    old = out.parent / f".{out.name}.old-{uuid.uuid4().hex[:8]}"
    os.replace(out, old)
    try:
        os.replace(staging, out)
    except OSError:
        os.replace(old, out)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _write(lake: Lake, root: Path, say: Progress) -> list[str]:
    """Render every exported page into ``root``; returns their paths relative to it."""
    load_pages()
    env = environment()
    view = View(lake, Links(exporting=True))
    pages = sorted((p for p in PAGES.values() if p.exported), key=lambda p: p.name != "overview")
    planned: list[tuple[Page, list[dict[str, Any]]]] = []
    for p in pages:  # every file first, so that links know which exist
        found = [clean_params(dict(params)) for params in (p.instances(view) if p.instances else [{}])]
        planned.append((p, list({Links.file(p.name, **c): c for c in found}.values())))
    files = frozenset(Links.file(p.name, **c) for p, found in planned for c in found)
    written: list[str] = []
    for p, instances in planned:
        started = time.monotonic()
        failed = 0
        for clean in instances:
            rel = Links.file(p.name, **clean)  # as Links.url names it in the other pages' links
            view.links = Links(exporting=True, here=rel, files=files)
            try:
                html = render_page(env, view, p.name, {k: str(v) for k, v in clean.items()})
            except LakelineError as exc:  # an instance gone since it was listed: say so on its page
                failed += 1
                say(f"lakeline ui --export: {p.path} {clean}: {exc}")
                html = _error_page(env, view, p, exc)
            except Exception as exc:
                exc.add_note(f"while exporting page {p.name!r} with {clean}")
                raise
            target = root / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(html, "utf-8")
            written.append(rel)
        took = time.monotonic() - started
        note = f" ({failed} with an error)" if failed else ""
        say(f"lakeline ui --export: {p.name}: {len(instances)} page(s) in {took:.1f} s{note}")
    return written


def _error_page(env: Any, view: View, p: Page, exc: LakelineError) -> str:
    status = 404 if isinstance(exc, NotFoundError) else 400
    return render_template(env, view, "error.html", current=p.name, status=status, message=str(exc))


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
