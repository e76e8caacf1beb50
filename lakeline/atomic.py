"""Replace a small file atomically: write a temporary file beside it, then rename it over."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def replace_file(path: Path, data: bytes, *, tmp_dir: Path | None = None, prefix: str = ".tmp-") -> None:
    """Write ``data`` to ``path`` so readers see the old or the new content, never a part.

    The temporary file is made in ``tmp_dir`` (default: ``path``'s directory; it must be on the
    same filesystem for the rename to be atomic) and removed if anything fails. Raises OSError.
    """
    fd, tmp = tempfile.mkstemp(dir=tmp_dir or path.parent, prefix=prefix)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
