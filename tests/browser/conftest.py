"""Fixtures of the browser tests: the whole stack for real (the session's test broker, a
`tengine core` process, the console as its own process) and Debian's Chromium driven by
Playwright, headless and offline.

The broker is tests/conftest.py's ``session_broker``, the runtime and the console process are
tests/support's. Needs root, rabbitmq-server and chromium (`apt-get install chromium`); without
them the tests fail saying so (`TENGINE_SKIP_INTEGRATION=1` skips them). Playwright is never asked
to download a browser.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.integration import SKIP_VARIABLE, require_integration_environment

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
SCREENS = REPO / "reports" / "screens"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(autouse=True)
def _integration_environment() -> None:
    require_integration_environment()


@pytest.fixture(autouse=True)
def _chromium_present() -> None:
    if not CHROMIUM.exists() and os.environ.get(SKIP_VARIABLE) != "1":
        pytest.fail(f"the browser tests need Debian's chromium at {CHROMIUM} "
                    f"(apt-get install chromium)", pytrace=False)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM),
                                              args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 1400, "height": 900}, locale="ja-JP")
    tab = context.new_page()
    tab.set_default_timeout(30_000)
    try:
        yield tab
    finally:
        context.close()


@pytest.fixture(scope="session")
def screens_dir() -> Path:
    SCREENS.mkdir(parents=True, exist_ok=True)
    return SCREENS
