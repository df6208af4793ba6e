"""The page at `/`, driven in headless Chromium (Debian's chromium through Playwright)."""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect, sync_playwright

from gankit.modeldir import read_spec, write_model_dir, write_spec
from gankit.nets import build_generator
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


def conditional_generator(directory: Path) -> Path:
    """A 10-class conditional DCGAN (random weights) for 8x8 digits, written as training would."""
    arch = {
        "family": "cdcgan",
        "conditioning": "projection",
        "class_weight": 1.0,
        "d_batch_norm": False,
        "d_width": 8,
        "g_width": 8,
        "data_shape": [1, 8, 8],
        "init": "default",
        "latent_dim": 8,
        "num_classes": 10,
        "spectral_norm": False,
    }
    spec = {
        "kind": "image-generator",
        "architecture": arch,
        "latent_dim": 8,
        "num_classes": 10,
        "data": {"name": "digits", "shape": [1, 8, 8], "range": [-1, 1]},
        "step": 0,
    }
    return write_model_dir(directory, build_generator(arch).state_dict(), spec)


def private_copy(synth: Path, directory: Path) -> Path:
    """The tiny synthesizer with a differential-privacy record in model.json (resealed)."""
    shutil.copytree(synth, directory)
    write_spec(directory, {**read_spec(directory), "dp": {"epsilon": 3.0, "delta": 1e-5}})
    return directory


def test_page_lists_models_generates_walks_imputes_and_synthesizes(
    model_dirs, keys, tmp_path: Path
):
    imp, synth = tabular_dirs()
    dirs = [model_dirs["digits"], conditional_generator(tmp_path / "cgan"), imp]
    dirs.append(private_copy(synth, tmp_path / "private"))
    app = create_app(dirs, options=ServeOptions(keys=keys[0]))
    with LiveServer(app) as server, sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=_chromium(), headless=True, args=FLAGS
        )
        try:
            page = context.new_page()
            messages: list[str] = []
            page.on("console", lambda m: messages.append(m.text))
            page.goto(f"http://127.0.0.1:{server.port}/")
            page.fill("#key", keys[1]["admin"])  # no button: the list loads from the key
            expect(page.locator("#status")).to_have_text("4 model(s)")
            rows = page.locator("#models-body tr")
            expect(rows).to_have_count(4)
            private = page.locator('#models-body tr[data-model="private"] td')
            expect(private.nth(1)).to_have_text("tabular-synth")
            expect(private.nth(3)).to_have_text("ε = 3.00, δ = 0.00001")
            expect(private.nth(4)).to_have_text("warming up (0 values)")
            digits = page.locator('#models-body tr[data-model="digits"] td')
            expect(digits.nth(3)).to_have_text("none (not private)")
            expect(digits.nth(4)).to_have_text("not monitored")

            page.select_option("#model", "digits")
            page.fill("#n", "16")
            page.click("#generate")
            expect(page.locator("#grid")).to_have_attribute("src", re.compile(r"^blob:"))
            natural_size(page, "#grid")
            # 16 samples -> 4x4 tiles of 8 px with 1 px padding = 37 px
            assert page.eval_on_selector(
                "#grid", "img => [img.naturalWidth, img.naturalHeight]"
            ) == [37, 37]
            page.click("#walk")
            assert natural_size(page, "#walk-one") == [10, 10]  # one tile with padding
            assert page.eval_on_selector("#walk-grid", "img => img.naturalWidth") == 28

            # the class picker of a conditional generator sends the class it shows
            page.select_option("#model", "cgan")
            expect(page.locator("#label-box")).to_be_visible()
            page.fill("#label", "7")
            page.fill("#n", "4")
            with page.expect_request("**/v1/generate") as sent:
                page.click("#generate")
            assert sent.value.post_data_json["labels"] == 7
            page.wait_for_timeout(300)
            assert natural_size(page, "#grid") == [19, 19]  # 2x2 tiles

            page.select_option("#model", "imp")
            expect(page.locator("#synth-section")).to_be_hidden()
            page.fill("#csv", "age,income,city\n30,,b\n,200,\n")
            page.click("#impute")
            filled = re.compile(r"^age,income,city\n30,[0-9.]+,b\n[0-9]+,200,[ab]$")
            expect(page.locator("#imputed")).to_have_text(filled)
            imp_drift = page.locator('#models-body tr[data-model="imp"] td').nth(4)
            expect(imp_drift).to_have_text("warming up (1 values)")  # one observed cell each

            page.select_option("#model", "private")
            expect(page.locator("#impute-section")).to_be_hidden()
            page.select_option("#cond-column", "city")
            page.select_option("#cond-value", "b")
            page.fill("#synth-n", "5")
            page.click("#synthesize")
            out = page.locator("#synthesized")
            expect(out).to_have_text(re.compile(r"^age,income,city(\n[0-9.]+,[-0-9.e]+,b){5}$"))
            expect(private.nth(4)).to_have_text("warming up (5 values)")
            assert page.locator("#status").text_content() == ""
            if os.environ.get("GANKIT_PAGE_SCREENSHOT"):  # docs/images/serving-page.png
                page.set_viewport_size({"width": 1100, "height": 900})
                page.screenshot(path=os.environ["GANKIT_PAGE_SCREENSHOT"], full_page=True)
            # the page obeys its own CSP: no violation was reported on the console
            assert not [m for m in messages if "Content Security Policy" in m]
        finally:
            context.close()
