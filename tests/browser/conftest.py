"""Browser-test fixtures: one headless Chromium for the session, the stub collector, and a real collector fed by
the SDK with drifting data.

Chromium comes from Debian (`chromium.py` installs it with apt-get when it is missing, and fails the test
with the reason when it cannot: these tests never skip). Screenshots go to tests/browser/screenshots/ (ignored
by git); PREDWATCH_UPDATE_SCREENSHOTS=1 also refreshes docs/dashboard.png, the one README shows.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser.cdp import Browser, Page
from tests.browser.chromium import chromium_binary
from tests.browser.live import live_collector
from tests.browser.server import serve
from tests.browser.stub import stub_app

SCREENSHOTS = Path(__file__).parent / "screenshots"
README_SHOT = Path(__file__).parents[2] / "docs" / "dashboard.png"
TOKEN = "browser-test-token"


@pytest.fixture(scope="session")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    with Browser.launch(chromium_binary(), tmp_path_factory.mktemp("chromium-profile")) as launched:
        yield launched


@pytest.fixture
def page(browser: Browser) -> Page:
    return browser.page


@pytest.fixture(scope="session")
def stub_url() -> Iterator[str]:
    with serve(stub_app(), lifespan="off") as url:
        yield url


@pytest.fixture(scope="session")
def token_stub_url() -> Iterator[str]:
    with serve(stub_app(token=TOKEN), lifespan="off") as url:
        yield url


@pytest.fixture(scope="session")
def live_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with live_collector(tmp_path_factory.mktemp("live")) as url:
        yield url


def screenshot(page: Page, name: str, readme: bool = False) -> Path:
    path = page.screenshot(SCREENSHOTS / f"{name}.png")
    if readme and os.environ.get("PREDWATCH_UPDATE_SCREENSHOTS") == "1":
        README_SHOT.parent.mkdir(exist_ok=True)
        shutil.copyfile(page.screenshot(SCREENSHOTS / f"{name}-viewport.png", full=False), README_SHOT)
    return path
