#!/usr/bin/env bash
# Vendor the UI's JavaScript (exact versions from the npm registry) into lakeline/ui/static/vendor
# with their licences and a manifest of sha256 sums. Run by a maintainer when a version changes;
# the files are committed, so users never need node (tests/unit/test_ui_vendor.py checks the sums).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=lakeline/ui/static/vendor
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
# package@version  file in the package  name in the vendor directory  licence file
PACKAGES=(
  "cytoscape@3.35.0 dist/cytoscape.min.js cytoscape.min.js LICENSE"
  "cytoscape-dagre@4.0.1 dist/cytoscape-dagre.min.js cytoscape-dagre.min.js LICENSE"
  "chart.js@4.6.2 dist/chart.umd.min.js chart.umd.min.js LICENSE.md"
)
rm -rf "$OUT" && mkdir -p "$OUT"
{
  echo "# vendored by scripts/vendor_ui.sh from the npm registry: package@version file sha256"
  for entry in "${PACKAGES[@]}"; do
    read -r spec src name licence <<<"$entry"
    (cd "$TMP" && npm pack "$spec" --silent >/dev/null)
    tgz=$(ls "$TMP"/*.tgz)
    mkdir -p "$TMP/x" && tar xzf "$tgz" -C "$TMP/x"
    cp "$TMP/x/package/$src" "$OUT/$name"
    cp "$TMP/x/package/$licence" "$OUT/${name%%.*}.LICENSE.txt"
    echo "$spec $name $(sha256sum "$OUT/$name" | cut -d' ' -f1)"
    rm -rf "$TMP/x" "$tgz"
  done
} > "$OUT/VENDORED.txt"
cat "$OUT/VENDORED.txt"
