"""The page at `/`, driven in headless Chromium (Debian's chromium through Playwright)."""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect, sync_playwright

from gankit.serve import ServeOptions, create_app

from .serve_helpers import LiveServer, tabular_dirs


def _chromium() -> str | None:
    """Debian's chromium on the PATH, as the report test finds it (tests/metrics)."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


pytestmark = pytest.mark.skipif(
    _chromium() is None, reason="needs Debian's chromium (apt-get install chromium)"
)
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def natural_size(page: Any, selector: str, timeout: float = 10.0) -> list[int]:
    """Wait until the image has loaded (the page's CSP forbids wait_for_function's eval)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        size = page.eval_on_selector(selector, "img => [img.naturalWidth, img.naturalHeight]")
        if size[0] > 0:
            return size
        time.sleep(0.05)
    raise AssertionError(f"{selector} shows no image after {timeout} s")


def test_page_generates_a_grid_walks_and_imputes(model_dirs, keys, tmp_path: Path):
    app = create_app([model_dirs["digits"], *tabular_dirs()], options=ServeOptions(keys=keys[0]))
    with LiveServer(app) as server, sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=_chromium(), headless=True, args=FLAGS
        )
        try:
            page = context.new_page()
            messages: list[str] = []
            page.on("console", lambda m: messages.append(m.text))
            page.goto(f"http://127.0.0.1:{server.port}/")
            page.fill("#key", keys[1]["admin"])
            page.click("#refresh")
            expect(page.locator("#status")).to_have_text("3 model(s)")
            page.select_option("#model", "digits")
            page.fill("#n", "16")
            page.click("#generate")
            grid = page.locator("#grid")
            expect(grid).to_have_attribute("src", re.compile(r"^blob:"))
            natural_size(page, "#grid")
            # 16 samples -> 4x4 tiles of 8 px with 1 px padding = 37 px
            assert page.eval_on_selector(
                "#grid", "img => [img.naturalWidth, img.naturalHeight]"
            ) == [37, 37]

            page.click("#walk")
            assert natural_size(page, "#walk-one") == [10, 10]  # one tile with padding
            assert (
                page.eval_on_selector("#walk-grid", "img => img.naturalWidth") == 28
            )  # 8 tiles: 3x3 grid

            page.select_option("#model", "imp")
            page.fill("#csv", "age,income,city\n30,,b\n,200,\n")
            page.click("#impute")
            # the real imputer: observed cells kept, holes filled (integer ages, known cities)
            filled = re.compile(r"^age,income,city\n30,[0-9.]+,b\n[0-9]+,200,[ab]$")
            expect(page.locator("#imputed")).to_have_text(filled)
            assert page.locator("#status").text_content() == ""
            # the page obeys its own CSP: no violation was reported on the console
            assert not [m for m in messages if "Content Security Policy" in m]
        finally:
            context.close()
