"""Cold start: importing the Lambda handler module never imports pandas, nor duckdb.

How long the import takes is measured by ``bench/bench_cold_start.py``, not asserted here.
"""

from __future__ import annotations

import json
import subprocess
import sys

SCRIPT = """
import json, sys
import lakeline.aws.handlers
print(json.dumps({"pandas": "pandas" in sys.modules, "duckdb": "duckdb" in sys.modules,
                  "pyarrow": "pyarrow" in sys.modules}))
"""


def test_handler_import_is_light():
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True)
    data = json.loads(out.stdout)
    assert data["pandas"] is False, data
    assert data["duckdb"] is False, data  # loaded by the first transform, not by the ingest cold start
