"""Every state machine we write is valid ASL according to asl-validator (npm, pinned in package.json).

Covers the differential corpus (``tests/workflow/machines/*.json``, their ``definition`` member) and
the definitions lakeline ships (``lakeline/workflow/definitions/*.asl.json`` and each pipeline's ``lakeline/pipelines/*/*.asl.json``). ``make test``
installs the validator with ``npm install``; without node/npm these tests skip.

One validator process checks every file (``--json-path`` once per file; node start-up dominates
otherwise). Not ``--json-definition`` repeated: asl-validator 4.0.0's CLI keeps only the *last*
``--json-definition``'s exit code, so an invalid definition followed by a valid one exits 0.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from tests.workflow.conftest import MACHINE_FILES, load_machine

ROOT = Path(__file__).resolve().parents[2]
VALIDATOR = ROOT / "node_modules" / ".bin" / "asl-validator"
SHIPPED = sorted([*(ROOT / "lakeline" / "workflow" / "definitions").glob("*.asl.json"),
                  *(ROOT / "lakeline" / "pipelines").glob("*/*.asl.json"),
                  *(ROOT / "docs" / "examples").glob("*.asl.json")])

pytestmark = pytest.mark.skipif(
    not VALIDATOR.exists(),
    reason=f"{VALIDATOR.relative_to(ROOT)} missing: run `npm install` (make test does) to enable ASL validation",
)


def _validate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(VALIDATOR), *args], capture_output=True, text=True, timeout=120, cwd=ROOT)


@pytest.fixture(scope="module")
def verdicts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """file id -> the validator's line for it (✓ … is valid / ✕ … is invalid: reasons)."""
    tmp = tmp_path_factory.mktemp("asl")
    files: dict[str, Path] = {}
    for path in MACHINE_FILES:
        files[path.stem] = tmp / f"{path.stem}.asl.json"
        files[path.stem].write_text(json.dumps(load_machine(path)["definition"]))
    for path in SHIPPED:
        files[path.name] = path
    args = [a for p in files.values() for a in ("--json-path", str(p))]
    result = _validate(*args)
    text = result.stdout + result.stderr
    chunks = re.split(r"(?=[\u2713\u2715] State machine definition )", text)
    out: dict[str, str] = {}
    for key, path in files.items():
        mine = [c.strip() for c in chunks if c.split("\n", 1)[0].count(f'"{path}"')]
        out[key] = mine[0] if mine else f"no verdict (exit {result.returncode}): {text[-2000:]}"
    return out


def _assert_valid(verdict: str) -> None:
    assert verdict.startswith("\u2713") and verdict.endswith("is valid"), verdict


def test_validator_rejects_an_invalid_definition(tmp_path: Path) -> None:
    """Guards against a validator that accepts everything (wrong flag, broken install)."""
    bad = tmp_path / "bad.asl.json"
    bad.write_text(json.dumps({"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "Missing"}}}))
    result = _validate("--json-path", str(bad))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "MISSING_TRANSITION_TARGET" in result.stdout + result.stderr


@pytest.mark.parametrize("path", MACHINE_FILES, ids=[p.stem for p in MACHINE_FILES])
def test_corpus_machine_is_valid_asl(path: Path, verdicts: dict[str, str]) -> None:
    _assert_valid(verdicts[path.stem])


@pytest.mark.skipif(not SHIPPED, reason="no shipped definitions under lakeline/workflow/definitions/")
@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_shipped_definition_is_valid_asl(path: Path, verdicts: dict[str, str]) -> None:
    _assert_valid(verdicts[path.name])
