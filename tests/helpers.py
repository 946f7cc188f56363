"""Test helpers: settings isolated from the developer's .env files, an ASGI app (the API, a
receiver) on a real loopback socket."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn

from postpilot.api.app import create_app
from postpilot.runtime import ServiceRuntime, build_runtime
from postpilot.sandbox.client import SandboxClient
from postpilot.settings import Settings, load_settings
from postpilot.store import workspaces
from postpilot.store.database import Database
from tests.waiting import wait_until

TEST_SECRET_KEY = "test-secret-key-0123456789abcdef"
TEST_CRON_SECRET = "test-cron-secret"


def make_settings(db: Database, sandbox: SandboxClient | None = None, **extra: Any) -> Settings:
    values: dict[str, Any] = {
        "_env_file": None,  # never read the developer's .env / .env.local in tests
        "DATABASE_URL": db.url,
        "SECRET_KEY": TEST_SECRET_KEY,
        "CRON_SECRET": TEST_CRON_SECRET,
        "SCHEDULER_RETRY_BASE_SECONDS": 0,
        "LOG_FORMAT": "text",
    }
    if sandbox is not None:
        port = sandbox.url.rsplit(":", 1)[1]
        values["SANDBOX_URL"] = sandbox.url
        values["MEDIA_ALLOWED_HOSTS"] = f"127.0.0.1:{port}"
    values.update(extra)
    return load_settings(**values)


@dataclass
class ApiServer:
    url: str
    runtime: ServiceRuntime
    client: httpx.AsyncClient  # authorized with the workspace's API key
    workspace_id: str
    api_key: str
    closing: contextlib.AsyncExitStack = field(default_factory=contextlib.AsyncExitStack)

    def cron(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {TEST_CRON_SECRET}"}

    def client_for(self, key: str | None) -> httpx.AsyncClient:
        """Another client of this server, sending `key` (or no key); closed with the server."""
        headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
        client = httpx.AsyncClient(base_url=self.url, headers=headers, timeout=30)
        self.closing.push_async_callback(client.aclose)
        return client


async def new_workspace(db: Database, name: str = "test") -> tuple[str, str]:
    async with db.transaction() as session:
        created = await workspaces.create_workspace(session, name=name)
    return created.workspace.id, created.api_key


@contextlib.asynccontextmanager
async def api_server(
    db: Database, sandbox: SandboxClient | None = None, **settings: Any
) -> AsyncIterator[ApiServer]:
    """The real app under uvicorn on a loopback port, sharing `db` with the test."""
    runtime = build_runtime(make_settings(db, sandbox, **settings), db=db)
    try:
        async with serving(create_app(runtime.settings, runtime=runtime)) as url:
            workspace_id, key = await new_workspace(db)
            async with httpx.AsyncClient(
                base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30
            ) as client:
                api = ApiServer(url, runtime, client, workspace_id, key)
                async with api.closing:
                    yield api
    finally:
        await runtime.close()


@contextlib.asynccontextmanager
async def serving(app: Any) -> AsyncIterator[str]:
    """Serve an ASGI app (its lifespan too) under uvicorn on a loopback port; yields its URL."""
    # Bind first and hand the socket over: no window for another process to take the port.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        # As under `postpilot serve`: X-Forwarded-For is the app's to read (TRUSTED_PROXIES).
        # The server shares the test's event loop: on a loaded machine a test's client can sit
        # idle past uvicorn's 5 s keep-alive, and a POST sent as the server closes that
        # connection fails with ReadError (httpx does not resend a POST). Tests are not about
        # idle connections, so keep them open.
        config = uvicorn.Config(
            app,
            log_level="warning",
            log_config=None,
            proxy_headers=False,
            timeout_keep_alive=300,
        )
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve(sockets=[sock]))

        def started() -> bool:
            if task.done():
                task.result()  # raises what stopped it
                raise AssertionError("the server stopped before it started")
            return server.started

        try:
            await wait_until(started, timeout=30, every=0.01, what="the server to start")
            yield f"http://127.0.0.1:{sock.getsockname()[1]}"
        finally:
            server.should_exit = True
            await task


async def mastodon_account(
    api: ApiServer,
    sandbox: SandboxClient | None = None,
    handle: str = "@me",
    *,
    base_url: str = "https://mastodon.example",
) -> str:
    """A Mastodon account made through the API: on the sandbox when given, else at `base_url`."""
    response = await api.client.post(
        "/api/accounts",
        json={
            "platform": "mastodon",
            "handle": handle,
            "base_url": sandbox.platform_url("mastodon") if sandbox else base_url,
            "credentials": {"access_token": f"token-{handle}"},
            "verify": False,  # a made-up token: tests of the live check are in tests/connect
        },
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])
