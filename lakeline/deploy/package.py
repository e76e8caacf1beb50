"""Build the Lambda code package: lakeline plus its runtime dependencies as one zip.

Dependencies are installed with ``pip install --target --platform … --only-binary=:all:`` for
CPython 3.12 (the template's runtime), so the package builds on any OS without Docker. The
Lambda runtime already provides boto3, which is left out, and so is everything a running
function never imports (tests, headers, Cython sources, type stubs, bytecode caches, Arrow
Flight). Lambda refuses code over 250 MB unpacked; the build fails before that happens.

Layout of ``--out DIR``::

    DIR/lakeline-lambda.zip     the code package (``CodeUri`` of every function)
    DIR/lakeline-lambda.json    manifest: platform, architecture, Python version, sizes
    DIR/code/                   the unpacked tree that was zipped (rebuilt each time)
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import shutil
import stat
import subprocess
import sys
import time
import zipfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson

from lakeline import version
from lakeline.errors import LakelineError, UsageError
from lakeline.lakefiles import LAKE_FILES_DIR, install_lake_files

ZIP_NAME = "lakeline-lambda.zip"
MANIFEST_NAME = "lakeline-lambda.json"
CODE_DIR = "code"
MARKER = ".lakeline-package"
DEFAULT_PLATFORM = "manylinux2014_x86_64"
DEFAULT_PYTHON = "3.12"
PLATFORMS = {"manylinux2014_x86_64": "x86_64", "manylinux2014_aarch64": "arm64"}
#: Lambda's limit on a function's unpacked code (bytes).
UNZIPPED_LIMIT = 262_144_000

#: Provided by the Lambda Python runtime; never packaged.
RUNTIME_PROVIDED = frozenset({"boto3", "botocore", "s3transfer"})
#: Only the command line uses these; a function never imports them.
CLI_ONLY = frozenset({"click", "rich", "psutil"})
#: The Lambda functions (ingest, transform, promote, run-summary) never touch Iceberg; the
#: retail job runs from a workstation or a container. Leaving Iceberg out keeps the package
#: under Lambda's 262 MB unzipped limit.
NOT_IN_LAMBDA = frozenset({"pyiceberg", "sqlalchemy"})
#: Used when lakeline's own metadata is unavailable (a source tree that is not installed).
FALLBACK_REQUIREMENTS = (
    "pyarrow>=17,<27", "duckdb>=1.3,<3", "numpy>=1.26,<3", "orjson>=3.9,<4", "tomli-w>=1.0,<2",
    "aws-lambda-powertools>=3,<4",
)

_EXCLUDED_DIRS = frozenset({"__pycache__", "tests"})
_EXCLUDED_SUFFIXES = (".pyi", ".pyc", ".pyx", ".pxd", ".pxi", ".h", ".hpp", ".cc", ".c")
#: Build-time only: C headers and Cython sources of pyarrow and numpy.
_EXCLUDED_PATHS = ("pyarrow/include", "pyarrow/includes", "pyarrow/src", "numpy/_core/include")
#: Arrow Flight (RPC) is ~35 MB that lakeline never loads; pyarrow imports it only on demand.
_EXCLUDED_FILE = re.compile(
    r"^pyarrow/(libarrow_flight\.so.*|libarrow_python_flight\.so.*|_flight\..*\.so"
    r"|_pyarrow_cpp_tests\..*\.so)$"
)


@dataclass(frozen=True)
class PackageResult:
    """What ``build_package`` produced."""

    zip_path: str
    zip_bytes: int
    unpacked_bytes: int
    files: int
    platform: str
    architecture: str
    python_version: str
    requirements: list[str]
    installed: list[str]
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def runtime_requirements(pin_installed: bool = True) -> list[str]:
    """lakeline's dependencies a function needs: core and ``aws`` extra, minus boto3 and CLI-only.

    With ``pin_installed`` each one is pinned to the version installed here (when there is
    one), so the functions run the versions the workstation tested; otherwise pip picks the
    newest release the declared range allows.
    """
    try:
        declared = importlib.metadata.requires("lakeline") or []
    except importlib.metadata.PackageNotFoundError:
        declared = list(FALLBACK_REQUIREMENTS)
    out: list[str] = []
    for req in declared:
        spec, _, marker = req.partition(";")
        marker = marker.strip().replace("'", '"')
        if marker and marker != 'extra == "aws"':
            continue
        name = re.split(r"[<>=!~\[ ]", spec.strip(), maxsplit=1)[0].lower().replace("_", "-")
        if name in RUNTIME_PROVIDED or name in CLI_ONLY or name in NOT_IN_LAMBDA:
            continue
        version = _installed_version(name) if pin_installed else None
        out.append(f"{name}=={version}" if version else spec.strip())
    return out


def _installed_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def platform_tags(platform: str, python_version: str) -> list[str]:
    """pip ``--platform`` tags: the manylinux2014 baseline and every newer manylinux up to
    the glibc of the Lambda runtime (2.34 on Amazon Linux 2023 for Python 3.12+, 2.26 on
    Amazon Linux 2 before), so wheels built only for manylinux_2_28 (recent pyarrow) qualify."""
    if platform not in PLATFORMS:
        raise UsageError(f"--platform {platform!r}: use one of {', '.join(PLATFORMS)}")
    machine = platform.removeprefix("manylinux2014_")
    major, minor = (int(p) for p in python_version.split(".")[:2])
    glibc_max = 34 if (major, minor) >= (3, 12) else 26
    return [platform] + [f"manylinux_2_{n}_{machine}" for n in range(17, glibc_max + 1)]


def _pip_command(target: Path, platform: str, python_version: str, requirements: Sequence[str]) -> list[str]:
    cmd = [sys.executable, "-m", "pip", "install", "--target", str(target), "--only-binary=:all:",
           "--implementation", "cp", "--python-version", python_version, "--no-compile",
           "--disable-pip-version-check", "--no-input", "--progress-bar", "off"]
    for tag in platform_tags(platform, python_version):
        cmd += ["--platform", tag]
    return cmd + list(requirements)


def _prepare_dir(code: Path) -> None:
    if code.exists():
        if not (code / MARKER).exists() and any(code.iterdir()):
            raise UsageError(f"{code} exists and was not made by `lakeline deploy package`; "
                             "choose another --out or remove it")
        shutil.rmtree(code)
    code.mkdir(parents=True)
    (code / MARKER).write_text("built by lakeline deploy package\n", "utf-8")


def _excluded(rel: str) -> bool:
    parts = rel.split("/")
    if any(p in _EXCLUDED_DIRS for p in parts[:-1]):
        return True
    if any(rel == p or rel.startswith(p + "/") for p in _EXCLUDED_PATHS):
        return True
    return rel.endswith(_EXCLUDED_SUFFIXES) or bool(_EXCLUDED_FILE.match(rel))


def _prune(code: Path) -> None:
    """Drop runtime-provided distributions and files a function never loads."""
    for entry in list(code.iterdir()):
        dist = re.split(r"[-.]", entry.name, maxsplit=1)[0].lower().replace("_", "-")
        if dist in RUNTIME_PROVIDED or (entry.name == "bin" and entry.is_dir()):  # bin: console scripts
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    for path in sorted(code.rglob("*"), reverse=True):
        rel = path.relative_to(code).as_posix()
        if path.is_dir():
            if path.name in _EXCLUDED_DIRS or rel in _EXCLUDED_PATHS:
                shutil.rmtree(path)
        elif _excluded(rel):
            path.unlink()
    # Wheels cannot hold symlinks, so pyarrow ships libarrow_python.so three times. The loader
    # only asks for the SONAME (libarrow_python.so.<major>): the unversioned and full-version
    # copies are dead weight.
    for lib in code.glob("pyarrow/lib*.so*"):
        m = re.fullmatch(r"(lib\w+)\.so(\.\d+\.\d+(?:\.\d+)*)?", lib.name)
        if m and any(re.fullmatch(rf"{m.group(1)}\.so\.\d+", p.name)
                     for p in code.glob(f"pyarrow/{m.group(1)}.so.*")):
            lib.unlink()


def _copy_lakeline(code: Path) -> None:
    src = Path(version.__file__).resolve().parent  # the lakeline package folder

    def ignore(directory: str, names: list[str]) -> set[str]:
        return {n for n in names if n in _EXCLUDED_DIRS or n.endswith(_EXCLUDED_SUFFIXES)}

    shutil.copytree(src, code / "lakeline", ignore=ignore)


def _zip(code: Path, zip_path: Path) -> tuple[int, int]:
    """Zip ``code`` reproducibly (sorted, fixed timestamps); returns (files, unpacked bytes)."""
    files = 0
    total = 0
    tmp = zip_path.with_suffix(".zip.tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        for path in sorted(code.rglob("*")):
            if not path.is_file() or path.name == MARKER:
                continue
            rel = path.relative_to(code).as_posix()
            info = zipfile.ZipInfo(rel, date_time=(1980, 1, 1, 0, 0, 0))
            mode = stat.S_IMODE(path.stat().st_mode) | 0o444
            info.external_attr = (stat.S_IFREG | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            with path.open("rb") as fh, zf.open(info, "w") as out:
                shutil.copyfileobj(fh, out, 1024 * 1024)
            files += 1
            total += path.stat().st_size
    os.replace(tmp, zip_path)
    return files, total


def _installed(code: Path) -> list[str]:
    found = []
    for meta in sorted(code.glob("*.dist-info")):
        m = re.match(r"^(.+?)-([^-]+)\.dist-info$", meta.name)
        if m:
            found.append(f"{m.group(1)}=={m.group(2)}")
    return found


def copy_lake_files(home: Path, code: Path) -> list[str]:
    """Copy the lake's own definitions — declared pipelines (``HOME/pipelines/*.toml``) and SQL
    models (``HOME/models/*.sql``) — into ``code/`` :data:`~lakeline.lakefiles.LAKE_FILES_DIR`,
    where the functions find them at cold start. Returns their names."""
    return install_lake_files(home, code / LAKE_FILES_DIR)


def build_package(
    out: Path,
    platform: str = DEFAULT_PLATFORM,
    python_version: str = DEFAULT_PYTHON,
    requirements: Sequence[str] | None = None,
    pin_installed: bool = True,
    home: Path | None = None,
) -> PackageResult:
    """Build ``out/lakeline-lambda.zip`` for ``platform`` and CPython ``python_version``;
    ``home``: the lake whose declared pipelines and models the functions must know."""
    if not re.fullmatch(r"3\.\d{1,2}", python_version):
        raise UsageError(f"--python-version {python_version!r}: use MAJOR.MINOR, e.g. 3.12")
    started = time.monotonic()
    reqs = list(requirements) if requirements is not None else runtime_requirements(pin_installed)
    out.mkdir(parents=True, exist_ok=True)
    code = out / CODE_DIR
    _prepare_dir(code)
    cmd = _pip_command(code, platform, python_version, reqs)
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
        raise LakelineError(
            f"pip could not install the Lambda dependencies for {platform} / CPython "
            f"{python_version} (exit {proc.returncode}):\n{tail}\n"
            "Every dependency needs a binary wheel for that platform; check the index and "
            "network, or pin versions that publish manylinux wheels."
        )
    _prune(code)
    _copy_lakeline(code)
    if home is not None:
        copy_lake_files(home, code)
    zip_path = out / ZIP_NAME
    files, unpacked = _zip(code, zip_path)
    if unpacked > UNZIPPED_LIMIT:
        zip_path.unlink()
        raise LakelineError(
            f"the package is {unpacked / 1e6:.1f} MB unpacked; Lambda allows "
            f"{UNZIPPED_LIMIT / 1e6:.1f} MB. Trim dependencies or use a container image."
        )
    result = PackageResult(
        zip_path=str(zip_path), zip_bytes=zip_path.stat().st_size, unpacked_bytes=unpacked,
        files=files, platform=platform, architecture=PLATFORMS[platform],
        python_version=python_version, requirements=reqs, installed=_installed(code),
        seconds=round(time.monotonic() - started, 1),
    )
    (out / MANIFEST_NAME).write_bytes(orjson.dumps(result.to_dict(), option=orjson.OPT_INDENT_2))
    return result


def read_manifest(zip_path: Path) -> dict[str, Any] | None:
    """The manifest written beside a package zip, if there is one."""
    manifest = zip_path.with_name(MANIFEST_NAME)
    if not manifest.exists():
        return None
    data: dict[str, Any] = orjson.loads(manifest.read_bytes())
    return data
