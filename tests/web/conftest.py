"""Browser fixtures: Debian's chromium driven by Playwright (never `playwright install`: its
own browser build cannot be downloaded here), and the API server on a loopback port."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from postpilot.store.database import Database
from tests.helpers import TEST_SECRET_KEY, new_workspace
from tests.waiting import wait_until

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


@dataclass
class Served:
    """`postpilot serve` as its own process, on the test's database."""

    url: str
    workspace_id: str
    client: httpx.AsyncClient  # with the workspace's API key


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
async def server(sqlite_db: Database, tmp_path: Path) -> AsyncIterator[Served]:
    """The real entry point (settings from the environment, uvicorn, the lifespan), no worker;
    the test adds people to the same SQLite file."""
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": sqlite_db.url,
        "SECRET_KEY": TEST_SECRET_KEY,
        "LOGIN_RATE_LIMIT": "3",
        "LOG_LEVEL": "WARNING",
        "LOG_FORMAT": "text",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "postpilot.cli.main", "serve", "--no-worker", "--port", str(port)],
        env=env,
        cwd=tmp_path,  # no developer's .env
    )
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=url, timeout=30) as probe:

            async def live() -> bool:
                if process.poll() is not None:
                    raise AssertionError(f"postpilot serve exited with {process.returncode}")
                try:
                    return (await probe.get("/api/health/live")).status_code == 200
                except httpx.TransportError:
                    return False

            await wait_until(live, timeout=60, every=0.1, what="postpilot serve to answer")
        workspace_id, key = await new_workspace(sqlite_db)
        headers = {"Authorization": f"Bearer {key}"}
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as client:
            yield Served(url=url, workspace_id=workspace_id, client=client)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def screenshot_path(name: str) -> str:
    SCREENSHOTS.mkdir(exist_ok=True)
    return str(SCREENSHOTS / f"{name}.png")
