"""A lake's own definitions shipped with deployed code: declared pipelines and SQL models.

``lakeline deploy package`` copies ``HOME/pipelines/*.toml`` and ``HOME/models/*.sql`` into the
package under :data:`LAKE_FILES_DIR`; a function copies them into its lake home at cold start
(:func:`install_lake_files`), so a pipeline a user declared runs on AWS exactly as it does
locally, without a line of code.
"""

from __future__ import annotations

import shutil
from pathlib import Path

#: the folder of the deployed package holding the lake's pipelines/ and models/
LAKE_FILES_DIR = "lakeline_home"
FOLDERS = (("pipelines", "*.toml"), ("models", "*.sql"))


def packaged_dir() -> Path:
    """Where a deployed package keeps the lake files (beside the ``lakeline`` package)."""
    return Path(__file__).resolve().parent.parent / LAKE_FILES_DIR


def install_lake_files(source: Path, home: Path) -> list[str]:
    """Copy the packaged lake files from ``source`` into ``home`` (nothing when there are none);
    returns the names copied."""
    copied: list[str] = []
    for folder, pattern in FOLDERS:
        found = sorted((source / folder).glob(pattern)) if (source / folder).is_dir() else []
        for path in found:
            target = home / folder / path.name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
            copied.append(f"{folder}/{path.name}")
    return copied


__all__ = ["FOLDERS", "LAKE_FILES_DIR", "install_lake_files", "packaged_dir"]
