"""Browser fixtures: Debian's chromium driven by Playwright (never `playwright install`: its
own browser build cannot be downloaded here), and the API server on a loopback port."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from postpilot.store.database import Database
from tests.helpers import ApiServer, api_server

if TYPE_CHECKING:
    from playwright.async_api import Browser

SCREENSHOTS = Path(__file__).parent / "screenshots"


def chromium_path() -> str | None:
    for name in ("chromium", "chromium-browser"):
        if found := shutil.which(name):
            return found
    return None


@pytest.fixture
async def chromium() -> AsyncIterator[Browser]:
    path = chromium_path()
    if path is None:
        pytest.skip("Debian's chromium is not installed: scripts/services installs it as root")
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        pytest.skip("the playwright package is not installed: run `scripts/setup dev`")
    async with async_playwright() as playwright:
        # --no-sandbox: CI runs as root, where chromium's own sandbox refuses to start.
        browser = await playwright.chromium.launch(
            executable_path=path, headless=True, args=["--no-sandbox"]
        )
        try:
            yield browser
        finally:
            await browser.close()


@pytest.fixture
async def server(sqlite_db: Database) -> AsyncIterator[ApiServer]:
    async with api_server(sqlite_db, LOGIN_RATE_LIMIT=3) as api:
        yield api


def screenshot_path(name: str) -> str:
    SCREENSHOTS.mkdir(exist_ok=True)
    return str(SCREENSHOTS / f"{name}.png")
