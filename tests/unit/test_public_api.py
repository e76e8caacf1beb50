"""The public surface of ``lakeline``: exactly these names, each importable, and cheap to import."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import lakeline

EXPECTED = [
    "ConditionFailed", "ConfigError", "CsvOptions", "DataError", "Field", "GenOptions", "Generator",
    "InvalidKeyError", "Lake", "LakelineError", "LockedError", "MessageError", "NotFoundError", "Pipeline",
    "Report", "Schedule", "StreamPipeline", "StreamSpec", "StreamTable", "TableSpec", "TaskSpec",
    "TerminalError", "TransientError", "UsageError", "__version__", "open_lake", "put", "query",
    "register_pipeline", "run", "unregister_pipeline",
]


def test_all_is_pinned() -> None:
    assert lakeline.__all__ == EXPECTED
    assert dir(lakeline) == EXPECTED


def test_every_public_name_resolves_to_lakeline_code() -> None:
    for name in EXPECTED:
        value = getattr(lakeline, name)
        if name == "__version__":
            assert value == "0.1.0"
            continue
        assert value.__module__.startswith("lakeline."), name
        assert value.__doc__, f"{name} has no docstring"


def test_no_public_name_is_also_a_submodule() -> None:
    """``import lakeline.X`` sets the attribute X of the package: a function named like a
    submodule would be replaced by the module."""
    for name in EXPECTED:
        assert importlib.util.find_spec(f"lakeline.{name}") is None, name


def test_unknown_names_raise_attribute_error() -> None:
    try:
        lakeline.nope  # type: ignore[attr-defined]  # noqa: B018
    except AttributeError as exc:
        assert str(exc) == "module 'lakeline' has no attribute 'nope'"
    else:
        raise AssertionError("lakeline.nope resolved")


def test_error_tree_is_one_tree() -> None:
    for name in ("ConfigError", "UsageError", "NotFoundError", "InvalidKeyError", "ConditionFailed",
                 "TransientError", "TerminalError"):
        assert issubclass(getattr(lakeline, name), lakeline.LakelineError)
    assert issubclass(lakeline.LockedError, lakeline.TransientError)
    assert issubclass(lakeline.DataError, lakeline.TerminalError)
    assert issubclass(lakeline.MessageError, lakeline.TerminalError)


def test_import_lakeline_loads_nothing_heavy() -> None:
    code = ("import sys, lakeline; "
            "print(sorted(m for m in ('duckdb', 'pyarrow', 'pyiceberg', 'numpy', 'sqlalchemy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
