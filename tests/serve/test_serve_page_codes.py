"""The page's code picker (issue 12): an InfoGAN model shows it, a plain generator hides it, and
the category it shows is what `/v1/generate` receives. Headless Debian chromium, as
test_serve_page.py."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import expect, sync_playwright

from gankit.serve import ServeOptions, create_app

from .serve_helpers import LiveServer
from .test_serve_codes import infogan_dir  # noqa: F401  (the module fixture: a tiny InfoGAN)
from .test_serve_page import FLAGS, _chromium, natural_size, pytestmark  # noqa: F401


def test_code_picker_sends_the_category(infogan_dir, model_dirs, keys, tmp_path: Path):  # noqa: F811
    app = create_app([infogan_dir, model_dirs["digits"]], options=ServeOptions(keys=keys[0]))
    with LiveServer(app) as server, sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=_chromium(), headless=True, args=FLAGS
        )
        try:
            page = context.new_page()
            page.goto(f"http://127.0.0.1:{server.port}/")
            page.fill("#key", keys[1]["generate"])
            expect(page.locator("#status")).to_have_text("2 model(s)")
            page.select_option("#model", "digits")
            expect(page.locator("#code-box")).to_be_hidden()
            page.select_option("#model", "infogan")
            expect(page.locator("#code-box")).to_be_visible()
            assert page.get_attribute("#code", "max") == "9"
            page.fill("#n", "4")
            with page.expect_request("**/v1/generate") as sent:
                page.click("#generate")  # empty picker: the category is drawn
            assert "codes" not in sent.value.post_data_json
            page.fill("#code", "3")
            with page.expect_request("**/v1/generate") as sent:
                page.click("#generate")
            assert sent.value.post_data_json["codes"] == {"categorical": 3}
            page.wait_for_timeout(300)
            assert natural_size(page, "#grid") == [19, 19]  # 2x2 tiles of 8 px
        finally:
            context.close()
