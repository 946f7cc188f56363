"""One exchange with a server at a time: whatever callers ask while one is under way waits and
goes together in the next, so N concurrent callers cost a round trip per handful, not N.

Each caller awaits its own answer. The exchange gets the asks in the order they came and returns
one answer per ask, in that order; an error it raises reaches every caller of that batch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

Ask = TypeVar("Ask")
Answer = TypeVar("Answer")

Exchange = Callable[[Sequence[Ask]], Awaitable[Sequence[Answer]]]


class Coalescer(Generic[Ask, Answer]):
    def __init__(self, exchange: Exchange[Ask, Answer], *, name: str) -> None:
        self._exchange = exchange
        self._name = name
        self._waiting: list[tuple[Ask, asyncio.Future[Answer]]] = []
        self._task: asyncio.Task[None] | None = None

    async def ask(self, request: Ask) -> Answer:
        """`request`'s answer, from the next exchange (the current one is already on its way)."""
        future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self._waiting.append((request, future))
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=self._name)
        return await future

    async def _run(self) -> None:
        try:
            while self._waiting:
                batch, self._waiting = self._waiting, []
                await self._answer(batch)
        finally:
            self._task = None
            # Only when cancelled (the loop is closing): nobody will answer these.
            for _, future in self._waiting:
                future.cancel()
            self._waiting = []

    async def _answer(self, batch: list[tuple[Ask, asyncio.Future[Answer]]]) -> None:
        try:
            answers = await self._exchange([request for request, _ in batch])
            for (_, future), answer in zip(batch, answers, strict=True):
                if not future.done():  # else its caller stopped waiting
                    future.set_result(answer)
        except Exception as exc:  # a bug: raised where each caller waits
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
        except BaseException:  # cancelled: nobody will answer them
            for _, future in batch:
                future.cancel()
            raise
