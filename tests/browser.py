"""One browser helper for tests that look at a page (the report): headless Chromium through Playwright,
the driver netsim keeps for its Chromium peers, instead of a hand-written DevTools client."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

VIEWPORT = {"width": 1400, "height": 1000}
MAX_SHOT_HEIGHT = 4000


class Browser:
    """A headless Chromium on loopback only; `visit` opens a page, runs a script, and reports the page's
    console errors and warnings and its uncaught exceptions. Its temporary files stay in `workdir`."""

    def __init__(self, binary: str, workdir: Path) -> None:
        from playwright.sync_api import sync_playwright

        self._pw = sync_playwright().start()
        tmp = workdir / "tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        self.browser = self._pw.chromium.launch(
            executable_path=binary,
            headless=True,
            args=["--disable-gpu", "--disable-quic", "--disable-extensions", "--disable-component-update"],
            env={**os.environ, "TMPDIR": str(tmp)},
        )

    def visit(self, url: str, script: str, screenshot: Path | None = None) -> dict[str, Any]:
        """{"value": the script's result, "problems": [{"kind", "text"}]} for the page at url."""
        page = self.browser.new_page(viewport=VIEWPORT)  # type: ignore[arg-type]
        problems: list[dict[str, str]] = []
        page.on(
            "console",
            lambda m: (
                problems.append({"kind": f"console.{m.type}", "text": m.text})
                if m.type in ("error", "warning", "assert")
                else None
            ),
        )
        page.on("pageerror", lambda e: problems.append({"kind": "pageerror", "text": str(e)}))
        try:
            page.goto(url, wait_until="load")
            value = page.evaluate(script)
            page.wait_for_timeout(300)  # late console messages
            if screenshot is not None:
                # A tall viewport rather than a full-page shot, which misplaces sticky table headers.
                height = int(page.evaluate("document.documentElement.scrollHeight"))
                page.set_viewport_size({"width": VIEWPORT["width"], "height": min(height, MAX_SHOT_HEIGHT)})
                page.evaluate("window.scrollTo(0, 0)")
                page.screenshot(path=str(screenshot))
        finally:
            page.close()
        return {"value": value, "problems": problems}

    def close(self) -> None:
        self.browser.close()
        self._pw.stop()
