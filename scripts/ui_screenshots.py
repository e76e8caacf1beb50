"""The README's screenshots of ``lakeline ui``: a small demo lake (the UI tests' own), the
server on it, Debian's headless chromium through Playwright, one PNG per page in docs/img.

    .venv/bin/python scripts/ui_screenshots.py            # builds the lake in a temp dir
    .venv/bin/python scripts/ui_screenshots.py --home H   # or uses an existing lake
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the demo lake of tests/ui

from lakeline.config import load_settings  # noqa: E402
from lakeline.lake import Lake  # noqa: E402
from lakeline.ui.server import UiServer  # noqa: E402
from tests.ui import demo_lake  # noqa: E402
from tests.ui.conftest import CHROMIUMS  # noqa: E402

OUT = ROOT / "docs" / "img"


def shoot(page: Page, name: str, *, full: bool = False) -> None:
    page.wait_for_timeout(400)  # graphs and charts finish their layout animation
    page.screenshot(path=str(OUT / f"ui-{name}.png"), full_page=full)
    print(f"docs/img/ui-{name}.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", type=Path, help="an existing lake (default: build the demo lake)")
    args = parser.parse_args()
    home = args.home or demo_lake.build(Path(tempfile.mkdtemp(prefix="lakeline-shots-")))
    OUT.mkdir(parents=True, exist_ok=True)
    server = UiServer(Lake.open(load_settings(home))).start()
    base = server.url.split("?")[0].rstrip("/")
    executable = next(c for c in CHROMIUMS if Path(c).exists())
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=["--no-sandbox", "--disable-dev-shm-usage"])
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(server.url)
        shoot(page, "overview")
        page.goto(base + "/runs")
        page.locator("#runs tbody tr", has_text="dirty.jsonl").locator("a").first.click()
        page.locator("#rejects").scroll_into_view_if_needed()
        shoot(page, "run-rejects")
        page.goto(base + f"/lineage?node={demo_lake.TRACED}")
        shoot(page, "trace")
        page.locator("#trace a.mono").first.click()  # its root
        page.wait_for_function("window.lineageGraph && window.lineageGraph.nodes().length > 0")
        shoot(page, "lineage-graph")
        page.goto(base + "/quality")
        page.wait_for_function("window.qualityChart !== undefined")
        shoot(page, "quality")
        page.goto(base + "/workflows")
        page.locator("main a", has_text="carbon-").first.click()
        page.wait_for_function("window.workflowGraph && window.workflowGraph.nodes().length > 0")
        shoot(page, "workflow")
        page.goto(base + "/sql?q=" + "SELECT carrier, count(*) AS shipments FROM silver.shipments GROUP BY 1 ORDER BY 1")
        page.wait_for_function("window.sqlChart !== undefined")
        shoot(page, "sql")
        browser.close()
    server.stop()


if __name__ == "__main__":
    main()
