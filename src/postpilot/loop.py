"""Which event loop an entry point runs on: uvloop where it is installed (not on Windows), the
standard one otherwise. uvloop's loop costs less CPU per request and per database round trip,
which is what bounds a worker's deliveries per second."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

LoopFactory = Callable[[], asyncio.AbstractEventLoop]


def factory() -> LoopFactory | None:
    """uvloop's loop factory when it can be used, else None (asyncio's default)."""
    if sys.platform == "win32":
        return None
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def name() -> str:
    """The loop in use, for logs and for uvicorn's `loop` option."""
    return "uvloop" if factory() is not None else "asyncio"


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run` on the chosen loop."""
    with asyncio.Runner(loop_factory=factory()) as runner:
        return runner.run(coroutine)
