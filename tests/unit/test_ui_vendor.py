"""The vendored JavaScript of ``lakeline ui`` is exactly what scripts/vendor_ui.sh took from the
npm registry (sha256 in VENDORED.txt), each with its licence, and ships in the package."""

from __future__ import annotations

import hashlib
import tomllib
from pathlib import Path

from lakeline.ui.render import STATIC

VENDOR = STATIC / "vendor"
ROOT = Path(__file__).resolve().parents[2]


def test_every_vendored_file_matches_its_recorded_sha256_and_has_its_licence():
    lines = [ln.split() for ln in (VENDOR / "VENDORED.txt").read_text().splitlines() if not ln.startswith("#")]
    assert [spec for spec, _, _ in lines] == ["cytoscape@3.35.0", "cytoscape-dagre@4.0.1", "chart.js@4.6.2"]
    for spec, name, digest in lines:
        assert hashlib.sha256((VENDOR / name).read_bytes()).hexdigest() == digest, spec
        licence = (VENDOR / f"{name.split('.')[0]}.LICENSE.txt").read_text()
        assert "MIT License" in licence or "Permission is hereby granted" in licence, spec
    shipped = {p.name for p in VENDOR.iterdir()}
    assert shipped == {"VENDORED.txt", *(n for _, n, _ in lines), *(f"{n.split('.')[0]}.LICENSE.txt" for _, n, _ in lines)}


def test_templates_and_static_files_are_package_data():
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["lakeline"]
    assert {"ui/templates/*.html", "ui/static/*", "ui/static/vendor/*"} <= set(data)
