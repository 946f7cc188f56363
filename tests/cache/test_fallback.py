"""Redis unreachable: warn once, serve from memory, keep publishing; Redis back: use it again."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest

from postpilot.cache.link import RedisLink
from postpilot.cache.service import CacheService
from postpilot.cache.shared import RedisBudgetStore, RedisUploadStore
from postpilot.publishers.budgets import Budget
from postpilot.sandbox.client import SandboxClient
from postpilot.sandbox.process import free_port
from postpilot.store.database import Database
from tests.cache.conftest import RedisProxy, bluesky_account
from tests.factories import due_posts
from tests.helpers import api_server, make_settings

pytestmark = pytest.mark.redis
LINK_LOGGER = "postpilot.cache.link"


class Monotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == LINK_LOGGER and r.levelno == logging.WARNING]


async def test_closed_port_warns_once_and_serves_from_memory(
    caplog: pytest.LogCaptureFixture,
) -> None:
    link = RedisLink(f"redis://127.0.0.1:{free_port()}/0", retry_seconds=30)
    budgets, uploads = RedisBudgetStore(link), RedisUploadStore(link)
    reset = datetime.now(UTC) + timedelta(minutes=1)
    try:
        await budgets.put("x:account:a", Budget(0, reset, "spent"))
        assert await budgets.get("x:account:a") == Budget(0, reset, "spent")
        await uploads.put("x", "a", "https://e.com/1.png", "media-1", 60)
        assert await uploads.get("x", "a", "https://e.com/1.png") == "media-1"
        for _ in range(5):
            await budgets.get("x:account:b")
    finally:
        await link.close()
    assert link.down and link.failures == 1, "one failed call, then no more tries for 30 s"
    (warning,) = warnings(caplog)
    assert warning.getMessage().startswith("redis unreachable: caching in-process")
    assert warning.__dict__["redis"].startswith("redis://127.0.0.1:")
    assert budgets.stats.hits == 1 and uploads.stats.hits == 1


async def test_outage_and_recovery_through_a_real_connection(
    redis_proxy: RedisProxy, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LINK_LOGGER)
    clock = Monotonic()
    link = RedisLink(redis_proxy.url, retry_seconds=30, clock=clock)
    store = RedisBudgetStore(link)
    reset = datetime.now(UTC) + timedelta(minutes=5)
    try:
        await store.put("shared", Budget(1, reset))
        await redis_proxy.cut()
        assert await store.get("shared") is None, "Redis is gone: memory does not have it"
        await store.put("local", Budget(2, reset))
        assert await store.get("local") == Budget(2, reset)
        assert link.down and not link.available
        await redis_proxy.restore()
        clock.now += 29
        assert await store.get("shared") is None, "not retried before REDIS_RETRY_SECONDS"
        clock.now += 2
        assert await store.get("shared") == Budget(1, reset), "back on Redis"
        assert not link.down
        assert await store.get("local") is None, "what went to memory stays there"
    finally:
        await link.close()
    assert len(warnings(caplog)) == 1
    back = [r for r in caplog.records if r.name == LINK_LOGGER and r.levelno == logging.INFO]
    assert [r.getMessage() for r in back] == ["redis reachable again: shared caches back on"]


async def test_cache_service_reports_its_backend(redis_url: str, sqlite_db: Database) -> None:
    memory = CacheService.open(make_settings(sqlite_db))
    assert memory.backend == "memory" and memory.link is None
    shared = CacheService.open(make_settings(sqlite_db, REDIS_URL=redis_url))
    dead = CacheService.open(make_settings(sqlite_db, REDIS_URL=f"redis://127.0.0.1:{free_port()}"))
    try:
        assert shared.backend == "redis"
        assert dead.link is not None and not await dead.link.ping()
        assert dead.backend == "memory (redis unreachable)"
    finally:
        for service in (memory, shared, dead):
            await service.close()


async def test_publishing_goes_on_when_redis_is_down(
    sqlite_db: Database, sandbox: SandboxClient, caplog: pytest.LogCaptureFixture
) -> None:
    closed = f"redis://127.0.0.1:{free_port()}/0"
    async with api_server(sqlite_db, sandbox, REDIS_URL=closed) as api:
        workspace, account = await bluesky_account(sqlite_db, sandbox)
        await due_posts(
            sqlite_db,
            workspace,
            [account],
            count=3,
            at=api.runtime.now() - timedelta(seconds=1),
            media_urls=[sandbox.media_url("same.png")],
        )
        summary = (
            await api.client.post("/api/cron/scheduler-optimized", headers=api.cron())
        ).json()
        assert summary["published"] == 3, summary
        ready = (await api.client.get("/api/health/ready")).json()
        assert ready["info"]["cache"] == "memory (redis unreachable)"
    assert len(sandbox.records("bluesky")) == 3
    assert len(warnings(caplog)) == 1
