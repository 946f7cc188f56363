"""Waiting for something another task or process does: poll a condition until it holds, with a
deadline. Never sleep a fixed time to let something happen."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable

Condition = Callable[[], bool | Awaitable[bool]]


async def wait_until(
    condition: Condition,
    *,
    timeout: float,
    every: float = 0.05,
    what: str | Callable[[], object] = "",
) -> None:
    """Return as soon as `condition()` (sync or async) is true; fail after `timeout` seconds,
    naming `what` (or what it returns then). An exception in the condition ends the wait: put
    there what must not happen meanwhile (a worker died, a task ended)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await _holds(condition):
        if loop.time() > deadline:
            described = what() if callable(what) else what
            name = getattr(condition, "__name__", "the condition")
            raise AssertionError(f"{described or name} not reached within {timeout:g} s")
        await asyncio.sleep(every)


async def _holds(condition: Condition) -> bool:
    result = condition()
    if inspect.isawaitable(result):
        return bool(await result)
    return bool(result)
