"""The zip Lambda package leaves out pyiceberg, SQLAlchemy, click and rich (Lambda's 262 MB
limit): every function opens the lake's pipeline registry, so no built-in pipeline may import
them when it is loaded — only when its work runs (a totesys module importing SQLAlchemy at
the top broke every deployed function)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BLOCK = ("sqlalchemy", "pyiceberg", "click", "rich", "psycopg")


def test_the_registry_and_the_handlers_load_without_the_packages_lambda_lacks(tmp_path: Path) -> None:
    script = (
        "import sys\n"
        f"for name in {BLOCK!r}:\n"
        "    sys.modules[name] = None  # import of it fails, as in the package\n"
        "from lakeline.config import load_settings\n"
        "from lakeline.pipelines.registry import registry\n"
        f"reg = registry(load_settings({str(tmp_path)!r}))\n"
        "import lakeline.aws.handlers\n"
        "print(','.join(reg.names()))\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "carbon,retail,shipments,totesys,transactions"
