"""Cold start: importing the Lambda handler module is fast and never imports pandas."""

from __future__ import annotations

import json
import subprocess
import sys

SCRIPT = """
import json, sys, time
t = time.perf_counter()
import lakeline.aws.handlers
elapsed = time.perf_counter() - t
print(json.dumps({"seconds": elapsed, "pandas": "pandas" in sys.modules, "duckdb": "duckdb" in sys.modules,
                  "pyarrow": "pyarrow" in sys.modules}))
"""


def test_handler_import_is_fast_and_light():
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True)
    data = json.loads(out.stdout)
    assert data["seconds"] < 1.5, data
    assert data["pandas"] is False
    assert data["duckdb"] is False  # loaded by the first transform, not by the ingest cold start
