"""The Redis-backed budget and upload stores against the real Redis: what one worker writes,
another reads; entries expire when they stop being true; hits and misses are counted."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import redis.asyncio as redis

from postpilot.cache.link import RedisLink
from postpilot.cache.shared import RedisBudgetStore, RedisUploadStore
from postpilot.publishers.budgets import Budget, RateBudgets, account_key

pytestmark = pytest.mark.redis


@pytest.fixture
async def links(redis_url: str) -> AsyncIterator[tuple[RedisLink, RedisLink]]:
    """Two links: what two worker processes would hold."""
    first, second = RedisLink(redis_url), RedisLink(redis_url)
    yield first, second
    await first.close()
    await second.close()


async def test_a_budget_spent_by_one_worker_blocks_the_other(
    links: tuple[RedisLink, RedisLink], redis_client: redis.Redis
) -> None:
    first, second = (RateBudgets(RedisBudgetStore(link)) for link in links)
    now = datetime.now(UTC)
    key = account_key("x", "acct-1")
    until = now + timedelta(seconds=90)
    await first.spend(key, until=until, reason="x: too many requests")
    blocked = await second.blocked_until([key, account_key("x", "acct-2")], now)
    assert blocked == Budget(0, until, "x: too many requests")
    ttl = await redis_client.pttl(f"postpilot:budget:{key}")
    assert 85_000 < ttl <= 90_000, "forgotten when the budget resets"
    assert await second.blocked_until([key], until + timedelta(seconds=1)) is None


async def test_budget_store_counts_hits_and_misses_and_clears_only_its_keys(
    links: tuple[RedisLink, RedisLink], redis_client: redis.Redis
) -> None:
    store = RedisBudgetStore(links[0])
    reset = datetime.now(UTC) + timedelta(minutes=5)
    assert await store.get("bluesky:account:a") is None
    await store.put("bluesky:account:a", Budget(3, reset, "bluesky"))
    assert await store.get("bluesky:account:a") == Budget(3, reset, "bluesky")
    assert (store.stats.hits, store.stats.misses) == (1, 1)
    await store.put("bluesky:account:past", Budget(3, datetime.now(UTC) - timedelta(seconds=1)))
    assert await redis_client.exists("postpilot:budget:bluesky:account:past") == 0
    await redis_client.set("postpilot:upload:other", "kept")
    await redis_client.set("postpilot:budget:garbage", "not json")
    assert await store.get("garbage") is None, "unreadable entries read as unknown"
    await store.clear()
    assert await redis_client.keys("postpilot:budget:*") == []
    assert await redis_client.get("postpilot:upload:other") == b"kept"


async def test_uploaded_media_ids_are_shared_per_account_and_url(
    links: tuple[RedisLink, RedisLink], redis_client: redis.Redis
) -> None:
    first, second = (RedisUploadStore(link) for link in links)
    url = "https://cdn.example.com/a.png?sig=secret-ish"
    blob = {"$type": "blob", "ref": {"$link": "bafy"}, "mimeType": "image/png", "size": 5}
    await first.put("bluesky", "acct-1", url, blob, 60)
    assert await second.get("bluesky", "acct-1", url) == blob
    assert await second.get("bluesky", "acct-2", url) is None, "ids belong to their account"
    assert await second.get("x", "acct-1", url) is None
    (key,) = await redis_client.keys("postpilot:upload:*")
    assert key.startswith(b"postpilot:upload:bluesky:acct-1:") and b"example.com" not in key
    assert json.loads(await redis_client.get(key)) == blob
    assert 55_000 < await redis_client.pttl(key) <= 60_000
    await second.forget("bluesky", "acct-1", url)
    assert await first.get("bluesky", "acct-1", url) is None
    assert (second.stats.hits, second.stats.misses) == (1, 2)
    assert (first.stats.hits, first.stats.misses) == (0, 1)


async def test_a_value_redis_cannot_hold_stays_in_process(
    links: tuple[RedisLink, RedisLink],
) -> None:
    store = RedisUploadStore(links[0])
    odd = {b"bytes"}  # not JSON
    await store.put("x", "acct-1", "https://e.com/a.png", odd, 60)
    assert await store.get("x", "acct-1", "https://e.com/a.png") is None  # Redis has nothing
    assert await store.fallback.get("x", "acct-1", "https://e.com/a.png") == odd


async def test_prefix_separates_deployments(redis_url: str, redis_client: redis.Redis) -> None:
    one, two = RedisLink(redis_url, prefix="one:"), RedisLink(redis_url, prefix="two:")
    try:
        reset = datetime.now(UTC) + timedelta(minutes=1)
        await RedisBudgetStore(one).put("k", Budget(0, reset))
        assert await RedisBudgetStore(two).get("k") is None
        assert await redis_client.keys("one:*") == [b"one:budget:k"]
    finally:
        await one.close()
        await two.close()
