"""The real Redis on 127.0.0.1:6379, a test-only database (13, the next for each further xdist
worker: REDIS_TEST_URL), emptied around each test; a TCP proxy in front of it that a test can cut
and restore; accounts the Redis tests publish with."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import pytest
import redis.asyncio as redis

from postpilot.sandbox.client import SandboxClient
from postpilot.store import workspaces
from postpilot.store.database import Database
from postpilot.store.tables import Account
from tests.conftest import REDIS_TEST_URL
from tests.factories import cipher
from tests.proxy import TcpProxy

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


class RedisProxy(TcpProxy):
    """The proxy in front of the test Redis, with the URL that goes through it."""

    def __init__(self, target: str) -> None:
        parts = urlsplit(target)
        super().__init__(parts.hostname or "127.0.0.1", parts.port or 6379)
        self.db = parts.path.lstrip("/") or "0"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/{self.db}"


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
