"""The real Redis on 127.0.0.1:6379, test-only database 13, emptied around each test; a TCP
proxy in front of it that a test can cut and restore; accounts the Redis tests publish with."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import pytest
import redis.asyncio as redis

from postpilot.sandbox.client import SandboxClient
from postpilot.sandbox.process import free_port
from postpilot.store import workspaces
from postpilot.store.database import Database
from postpilot.store.tables import Account
from tests.conftest import REDIS_TEST_URL
from tests.factories import cipher

BLUESKY_DID = "did:plc:cachetest"


@pytest.fixture
async def redis_url() -> AsyncIterator[str]:
    client = redis.Redis.from_url(REDIS_TEST_URL)
    await client.flushdb()
    try:
        yield REDIS_TEST_URL
    finally:
        await client.flushdb()
        await client.aclose()


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    await client.aclose()


class RedisProxy:
    """Forwards a loopback port to the test Redis; `cut()` drops every connection and stops
    listening, `restore()` listens again on the same port."""

    def __init__(self, target: str) -> None:
        parts = urlsplit(target)
        self.target = (parts.hostname or "127.0.0.1", parts.port or 6379)
        self.db = parts.path.lstrip("/") or "0"
        self.port = free_port()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/{self.db}"

    async def restore(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def cut(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._writers):
            writer.close()
        self._writers.clear()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        self._writers.update({writer, up_writer})

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.CancelledError):
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            sink.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


@pytest.fixture
async def redis_proxy(redis_url: str) -> AsyncIterator[RedisProxy]:
    proxy = RedisProxy(redis_url)
    await proxy.restore()
    yield proxy
    await proxy.cut()


async def bluesky_account(db: Database, sandbox: SandboxClient) -> tuple[str, Account]:
    """A workspace with one Bluesky account holding a session the sandbox knows."""
    tokens = sandbox.issue_token("bluesky", BLUESKY_DID)
    async with db.transaction() as session:
        created = await workspaces.create_workspace(session, name="cache")
        account = Account(
            workspace_id=created.workspace.id,
            platform="bluesky",
            handle="cache.test",
            base_url=sandbox.platform_url("bluesky"),
            options={},
            credentials=cipher.encrypt(
                {
                    "did": BLUESKY_DID,
                    "access_jwt": tokens["access_token"],
                    "refresh_jwt": tokens["refresh_token"],
                }
            ),
        )
        session.add(account)
    return created.workspace.id, account
