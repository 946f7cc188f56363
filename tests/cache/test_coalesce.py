"""The coalescer on its own (no server): one exchange at a time, whatever comes meanwhile goes
together in the next, each caller gets its own answer or the exchange's error."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from postpilot.cache.coalesce import Coalescer


class HeldExchange:
    """Doubles each ask; holds every exchange until the test lets it go."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.started = asyncio.Event()
        self.go = asyncio.Event()

    async def __call__(self, asks: Sequence[int]) -> list[int]:
        self.batches.append(list(asks))
        self.started.set()
        await self.go.wait()
        return [ask * 2 for ask in asks]


async def test_asks_made_while_an_exchange_is_under_way_go_together_in_the_next() -> None:
    exchange = HeldExchange()
    coalescer: Coalescer[int, int] = Coalescer(exchange, name="test")
    first = asyncio.create_task(coalescer.ask(1))
    await exchange.started.wait()
    rest = [asyncio.create_task(coalescer.ask(n)) for n in range(2, 12)]
    exchange.go.set()
    assert await first == 2
    assert await asyncio.gather(*rest) == [n * 2 for n in range(2, 12)]
    assert exchange.batches == [[1], list(range(2, 12))]


async def test_an_exchanges_error_reaches_each_caller_of_its_batch_only() -> None:
    calls = 0

    async def failing_once(asks: Sequence[str]) -> list[str]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("bug")
        return [ask.upper() for ask in asks]

    coalescer: Coalescer[str, str] = Coalescer(failing_once, name="test")
    answers = await asyncio.gather(coalescer.ask("a"), coalescer.ask("b"), return_exceptions=True)
    assert [str(answer) for answer in answers] == ["bug", "bug"]
    assert await coalescer.ask("c") == "C", "the next batch is exchanged as usual"


async def test_a_caller_that_stops_waiting_leaves_the_others_answered() -> None:
    exchange = HeldExchange()
    coalescer: Coalescer[int, int] = Coalescer(exchange, name="test")
    leaving = asyncio.create_task(coalescer.ask(1))
    staying = asyncio.create_task(coalescer.ask(2))
    await exchange.started.wait()
    leaving.cancel()
    exchange.go.set()
    assert await staying == 4
    with pytest.raises(asyncio.CancelledError):
        await leaving
