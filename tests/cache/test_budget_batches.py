"""The Redis budget store coalesces against the real Redis: concurrent gets and puts share round
trips (counted on the link's own connections, as they go out on the socket), each caller gets
its own key's answer, a get sees this process's earlier puts, and while Redis is cut the
in-process fallback answers the whole batch."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest.mock import ANY

import pytest
import redis.asyncio as redis

from postpilot.cache.link import RedisLink
from postpilot.cache.shared import RedisBudgetStore
from postpilot.publishers.budgets import Budget
from tests.cache.conftest import RedisProxy

pytestmark = pytest.mark.redis

# What a connection says on its own when it opens (not the store's).
HANDSHAKE = frozenset({"CLIENT", "SELECT", "HELLO", "AUTH", "PING"})


class Sent:
    """Every round trip a link's client makes: the commands it wrote in one go."""

    def __init__(self, link: RedisLink) -> None:
        self.trips: list[list[tuple[str, ...]]] = []
        self._another = asyncio.Event()
        sent = self

        class Counting(redis.Connection):
            packing: list[tuple[str, ...]] = []

            def pack_command(self, *args: Any) -> list[bytes]:
                self.packing = [*self.packing, tuple(_text(arg) for arg in args)]
                return super().pack_command(*args)

            async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
                commands, self.packing = self.packing, []
                if not {name.split()[0].upper() for name, *_ in commands} <= HANDSHAKE:
                    sent.trips.append(commands)
                    sent._another.set()
                await super().send_packed_command(command, check_health)

        link.client.connection_pool.connection_class = Counting

    async def until(self, condition: Callable[[], bool]) -> None:
        """Wait for the round trip after which `condition` holds."""
        while not condition():
            self._another.clear()
            await self._another.wait()

    @property
    def commands(self) -> list[tuple[str, ...]]:
        return [command for trip in self.trips for command in trip]

    def names(self) -> list[str]:
        return [name.upper() for name, *_ in self.commands]


def _text(arg: Any) -> str:
    return arg.decode() if isinstance(arg, bytes) else str(arg)


@pytest.fixture
async def link(redis_url: str) -> AsyncIterator[RedisLink]:
    link = RedisLink(redis_url)
    yield link
    await link.close()


def reset_in(minutes: int) -> datetime:
    return datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=minutes)


async def test_concurrent_gets_share_one_mget_and_each_gets_its_keys_answer(
    link: RedisLink, redis_url: str
) -> None:
    writer_link = RedisLink(redis_url)
    reset = reset_in(5)
    try:
        writer = RedisBudgetStore(writer_link)
        for n in range(5):
            await writer.put(f"x:account:{n}", Budget(n, reset, f"r{n}"))
    finally:
        await writer_link.close()
    sent = Sent(link)
    store = RedisBudgetStore(link)
    keys = [f"x:account:{n % 10}" for n in range(50)]  # each key five times, half unknown
    answers = await asyncio.gather(*(store.get(key) for key in keys))
    assert answers == [
        Budget(n % 10, reset, f"r{n % 10}") if n % 10 < 5 else None for n in range(50)
    ]
    assert set(sent.names()) == {"MGET"}
    assert len(sent.trips) == 1, f"50 gets, {len(sent.trips)} round trips"
    assert all(len(set(mget)) == len(mget) for mget in sent.commands), "each key once a trip"
    assert (store.stats.hits, store.stats.misses) == (25, 25)


async def test_gets_arriving_during_a_round_trip_go_together_in_the_next(
    link: RedisLink,
) -> None:
    sent = Sent(link)
    store = RedisBudgetStore(link)
    first = asyncio.create_task(store.get("x:account:first"))
    await sent.until(lambda: len(sent.trips) == 1)  # the first get's round trip is on the wire
    rest = await asyncio.gather(*(store.get(f"x:account:{n}") for n in range(20)))
    assert await first is None and rest == [None] * 20
    assert [len(mget) - 1 for mget in sent.commands] == [1, 20]


async def test_a_get_sees_the_puts_this_process_made_before_it(
    link: RedisLink, redis_client: redis.Redis
) -> None:
    sent = Sent(link)
    store = RedisBudgetStore(link)
    reset = reset_in(5)
    # Put and get in the same batch: the SET goes before the MGET in the one pipeline.
    _, got = await asyncio.gather(
        store.put("x:account:a", Budget(3, reset)), store.get("x:account:a")
    )
    assert got == Budget(3, reset)
    assert sent.trips[-1][0][0].upper() == "SET" and sent.trips[-1][-1][0].upper() == "MGET"
    # A put on the wire when the get comes: the get goes in the next round trip.
    putting = asyncio.create_task(store.put("x:account:a", Budget(0, reset, "spent")))
    await sent.until(lambda: len(sent.trips) == 2)
    assert sent.trips[1] == [("SET", "postpilot:budget:x:account:a", ANY, "PX", ANY)]
    assert await store.get("x:account:a") == Budget(0, reset, "spent")
    await putting
    ttl = await redis_client.pttl("postpilot:budget:x:account:a")
    assert 290_000 < ttl <= 300_000, "a batched SET keeps its expiry"
    assert set(sent.names()) == {"SET", "MGET"}


async def test_the_fallback_answers_a_whole_batch_while_redis_is_cut(
    redis_proxy: RedisProxy,
) -> None:
    link = RedisLink(redis_proxy.url, retry_seconds=30)
    store = RedisBudgetStore(link)
    reset = reset_in(5)
    try:
        await store.put("x:account:shared", Budget(1, reset))
        await redis_proxy.cut()
        puts = (store.put(f"x:account:{n}", Budget(n, reset)) for n in range(10))
        gets = (store.get(f"x:account:{n}") for n in (*range(10), "shared"))
        answers = await asyncio.gather(*puts, *gets)
    finally:
        await link.close()
    assert answers[10:] == [*(Budget(n, reset) for n in range(10)), None]
    assert link.down and link.failures == 1, "one failed round trip for the whole batch"
    assert await store.fallback.get("x:account:3") == Budget(3, reset)
    assert (store.stats.hits, store.stats.misses) == (10, 1)
