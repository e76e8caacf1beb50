"""`lakeline deploy package`: a Lambda zip that imports in a clean interpreter of the target Python.

The build downloads manylinux wheels (pyarrow, duckdb, numpy, …) from the configured index;
it is marked slow. The import check runs CPython 3.12 (the Lambda runtime) when this machine
has one, else the test interpreter's own version (cp312 wheels do not import on 3.11).
"""

from __future__ import annotations

import glob
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner

import lakeline
from lakeline.cli.main import cli
from lakeline.deploy.package import (
    UNZIPPED_LIMIT,
    _excluded,
    build_package,
    platform_tags,
    runtime_requirements,
)
from lakeline.errors import LakelineError, UsageError
from lakeline.lake import init_home

REPO = Path(lakeline.__file__).resolve().parent.parent


def _interpreter() -> tuple[str, str]:
    """(executable, "3.x"): a working python3.12 if there is one, else this interpreter."""
    candidates = [shutil.which("python3.12"), "/usr/bin/python3.12", "/usr/local/bin/python3.12",
                  *sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.12*/bin/python3.12")))]
    for exe in candidates:
        if not exe or not os.path.exists(exe):
            continue
        try:  # a pyenv shim exists even when 3.12 is not selected: ask it
            out = subprocess.run([exe, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                                 capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if out.returncode == 0 and out.stdout.strip() == "3.12":
            return exe, "3.12"
    return sys.executable, f"{sys.version_info.major}.{sys.version_info.minor}"


# ------------------------------------------------------------------ fast checks


def test_requirements_leave_out_boto3_and_the_cli() -> None:
    for pin in (True, False):
        reqs = runtime_requirements(pin_installed=pin)
        names = [re.split(r"[<>=!~ ]", r, maxsplit=1)[0].lower() for r in reqs]
        assert {"pyarrow", "duckdb", "numpy", "orjson", "aws-lambda-powertools", "tomli-w"} <= set(names)
        assert not {"boto3", "botocore", "click", "rich", "psutil"} & set(names)
    pinned = dict(r.split("==") for r in runtime_requirements(pin_installed=True) if "==" in r)
    assert pinned["pyarrow"] == importlib.metadata.version("pyarrow")


def test_platform_tags_follow_the_runtime_glibc() -> None:
    tags = platform_tags("manylinux2014_aarch64", "3.12")
    assert tags[0] == "manylinux2014_aarch64" and "manylinux_2_28_aarch64" in tags
    assert tags[-1] == "manylinux_2_34_aarch64"
    assert platform_tags("manylinux2014_x86_64", "3.11")[-1] == "manylinux_2_26_x86_64"
    with pytest.raises(UsageError):
        platform_tags("win_amd64", "3.12")


def test_excluded_paths() -> None:
    for rel in ("pyarrow/tests/test_x.py", "numpy/__init__.pyi", "pkg/__pycache__/m.cpython-312.pyc",
                "pyarrow/include/arrow/api.h", "pyarrow/libarrow_flight.so.2600", "pyarrow/lib.pyx"):
        assert _excluded(rel), rel
    for rel in ("pyarrow/libarrow.so.2600", "pyarrow/parquet/core.py", "lakeline/config.py",
                "duckdb/__init__.py"):
        assert not _excluded(rel), rel


def test_pip_failure_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(LakelineError, match="pip could not install"):
        build_package(tmp_path, requirements=["pyarrow===="])  # rejected by pip before any download


def test_refuses_to_overwrite_a_foreign_code_dir(tmp_path: Path) -> None:
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "mine.txt").write_text("not ours")
    with pytest.raises(UsageError, match="not made by"):
        build_package(tmp_path, requirements=[])


# ------------------------------------------------------------------ the real build

ITEMS = """
format = "csv"
[tables.items]
fields = [{ name = "id", type = "int64", required = true }]
"""


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    exe, version = _interpreter()
    out = tmp_path_factory.mktemp("package")
    home = tmp_path_factory.mktemp("lake") / "lake"  # a lake with a declared pipeline and a model of its own
    init_home(home)
    (home / "pipelines").mkdir()
    (home / "pipelines" / "items.toml").write_text(ITEMS)
    (home / "models").mkdir()
    (home / "models" / "item_count.sql").write_text("SELECT count(*) AS n FROM silver.items")
    started = time.monotonic()
    # through the command line, the suite's one real build (a build zips ~250 MB: ~15 s):
    # tests/e2e/test_cli_scripting.py stops `deploy package` at its argument check
    done = CliRunner().invoke(cli, ["--home", str(home), "deploy", "package", "--out", str(out),
                                    "--platform", "manylinux2014_x86_64", "--python-version", version, "--json"])
    assert done.exit_code == 0, done.output
    result = orjson.loads(done.stdout)
    assert result == orjson.loads((out / "lakeline-lambda.json").read_bytes())  # printed = the manifest
    seconds = time.monotonic() - started
    print(f"\npackage for CPython {version}: {result['zip_bytes'] / 1e6:.1f} MB zip, "
          f"{result['unpacked_bytes'] / 1e6:.1f} MB unpacked, {result['files']} files, {seconds:.1f} s")
    unpacked = tmp_path_factory.mktemp("unpacked")
    with zipfile.ZipFile(result["zip_path"]) as zf:
        zf.extractall(unpacked)
        names = zf.namelist()
    return {"exe": exe, "version": version, "result": result, "dir": unpacked, "names": names, "out": out}


@pytest.mark.slow
@pytest.mark.xdist_group("deploy_package")  # one worker builds the package once
def test_zip_content(built: dict[str, object]) -> None:
    result: dict[str, Any] = built["result"]  # type: ignore[assignment]
    names: list[str] = built["names"]  # type: ignore[assignment]
    assert result["unpacked_bytes"] <= UNZIPPED_LIMIT
    assert "lakeline/config.py" in names and "lakeline/__init__.py" in names
    assert any(n.startswith("pyarrow/") for n in names) and any(n.startswith("duckdb/") for n in names)
    tops = {n.split("/")[0] for n in names}
    assert not {"boto3", "botocore", "s3transfer", "click", "rich", "bin"} & tops
    for n in names:
        parts = n.split("/")
        assert "__pycache__" not in parts and "tests" not in parts[:-1], n
        assert not n.endswith((".pyi", ".pyc")), n
    manifest = orjson.loads((built["out"] / "lakeline-lambda.json").read_bytes())  # type: ignore[operator]
    assert manifest["architecture"] == "x86_64" and manifest["python_version"] == built["version"]


@pytest.mark.slow
@pytest.mark.xdist_group("deploy_package")
def test_the_lakes_own_pipelines_and_models_ship_and_a_function_knows_them(built: dict[str, object],
                                                                         tmp_path: Path) -> None:
    names: list[str] = built["names"]  # type: ignore[assignment]
    assert {"lakeline_home/pipelines/items.toml", "lakeline_home/models/item_count.sql"} <= set(names)
    home = tmp_path / "lambda-home"
    data = _run(built, f"""
import json, os
os.environ["LAKELINE_HOME"] = {str(home)!r}
from lakeline.lakefiles import install_lake_files, packaged_dir
from lakeline.config import load_settings
from lakeline.pipelines.registry import registry
copied = install_lake_files(packaged_dir(), __import__("pathlib").Path({str(home)!r}))
reg = registry(load_settings({str(home)!r}))
print(json.dumps({{"copied": copied, "pipelines": reg.names(), "packaged": str(packaged_dir())}}))
""")
    assert data["copied"] == ["pipelines/items.toml", "models/item_count.sql"]
    assert "items" in data["pipelines"]  # type: ignore[operator]
    assert data["packaged"] == str(Path(str(built["dir"])) / "lakeline_home")


def _run(built: dict[str, object], code: str) -> dict[str, object]:
    script = f"import sys; sys.path.insert(0, {str(built['dir'])!r})\n" + code
    # -I: ignore PYTHON* env and the user site; -S: no site-packages, only stdlib + the package
    proc = subprocess.run([str(built["exe"]), "-I", "-S", "-c", script], capture_output=True, text=True,
                          timeout=120, cwd=str(built["dir"]))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return orjson.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


@pytest.mark.slow
@pytest.mark.xdist_group("deploy_package")  # one worker builds the package once
def test_lakeline_and_dependencies_import_from_the_package(built: dict[str, object]) -> None:
    data = _run(built, """
import json, os, sys, tempfile
import lakeline, lakeline.config, pyarrow as pa, pyarrow.parquet as pq, duckdb, numpy, orjson, tomli_w
import aws_lambda_powertools
scratch = tempfile.mkdtemp()
settings = lakeline.config.load_settings(scratch, environ={"LAKELINE__LAKE__PROFILE": "aws"})
path = os.path.join(scratch, "t.parquet")
pq.write_table(pa.table({"x": [1, 2, 3]}), path)
total = duckdb.connect().execute(f"SELECT sum(x) FROM '{path}'").fetchall()[0][0]
mods = {m: sys.modules[m].__file__ for m in ("lakeline", "lakeline.config", "pyarrow", "duckdb", "numpy",
        "orjson", "aws_lambda_powertools")}
print(json.dumps({"files": mods, "sum": int(total), "profile": settings.lake.profile,
                  "version": "%d.%d" % sys.version_info[:2], "boto3": "boto3" in sys.modules}))
""")
    assert data["version"] == built["version"]
    root = str(built["dir"])
    for mod, path in data["files"].items():  # type: ignore[attr-defined]
        assert path.startswith(root), f"{mod} imported from {path}, not from the package"
    assert data["sum"] == 6 and data["profile"] == "aws"


@pytest.mark.slow
@pytest.mark.xdist_group("deploy_package")  # one worker builds the package once
def test_handlers_import_from_the_package(built: dict[str, object]) -> None:
    assert (REPO / "lakeline" / "aws" / "handlers.py").is_file()
    data = _run(built, """
import json, sys
import lakeline.aws.handlers as h
print(json.dumps({"file": h.__file__, "ingest": callable(h.ingest_handler),
                  "transform": callable(h.transform_handler)}))
""")
    assert str(data["file"]).startswith(str(built["dir"]))
    assert data["ingest"] and data["transform"]
