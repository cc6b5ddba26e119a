"""Screenshots of the console for the acceptance report: Debian's Chromium driven by Playwright.

`Screenshotter` is started at the first shot and kept for the session (the plugin's
``harness_screenshotter`` fixture); Playwright never downloads a browser.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
# As tests/browser: headless, offline, no sandbox (root), nothing phoning home.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]


class Screenshotter:
    """Takes PNG screenshots with Debian's Chromium driven by Playwright (started at the first
    shot, kept for the session; Playwright never downloads a browser)."""

    def __init__(self, executable: Path = CHROMIUM) -> None:
        self.executable = executable
        self._playwright: Any = None
        self._browser: Any = None

    def __call__(self, url: str) -> bytes:
        with self.new_page() as page:
            page.goto(url, wait_until="load", timeout=20_000)
            return page.screenshot(full_page=True)

    @contextmanager
    def new_page(self) -> Iterator[Any]:
        """A Playwright page of its own (fresh context) in the session's browser, for a
        scenario that clicks through the console as a person would."""
        if not self.executable.exists():
            raise RuntimeError(f"no Chromium at {self.executable} (apt-get install chromium)")
        if self._browser is None:
            from playwright.sync_api import sync_playwright

            self._playwright = sync_playwright().start()
            self._browser = self._playwright.chromium.launch(
                executable_path=str(self.executable), args=CHROMIUM_ARGS)
        context = self._browser.new_context(viewport={"width": 1400, "height": 900},
                                            locale="ja-JP")
        try:
            yield context.new_page()
        finally:
            context.close()

    def close(self) -> None:
        if self._browser is not None:
            self._browser.close()
            self._browser = None
        if self._playwright is not None:
            self._playwright.stop()
            self._playwright = None
