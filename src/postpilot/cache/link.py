"""One Redis connection per process, and what happens when Redis goes away.

Every Redis-backed store asks the link before each call. While Redis answers, it is used; when a
call fails, the link warns once, marks Redis down for `retry_seconds`, and every store serves
from its in-process fallback until then, so publishing goes on. The first call that succeeds
after an outage logs that Redis is back.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from postpilot.errors import PostpilotError

log = logging.getLogger(__name__)

T = TypeVar("T")

# What "Redis is unreachable" looks like: its own errors, and the socket's.
REDIS_ERRORS: tuple[type[BaseException], ...] = (RedisError, OSError, TimeoutError)


class Unavailable(PostpilotError):
    """Redis is down (or was recently): use the in-process fallback."""


class RedisLink:
    def __init__(
        self,
        url: str,
        *,
        prefix: str = "postpilot:",
        retry_seconds: float = 30.0,
        timeout_seconds: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.prefix = prefix
        self.retry_seconds = retry_seconds
        self.client: redis.Redis = redis.Redis.from_url(
            url,
            socket_connect_timeout=timeout_seconds,
            socket_timeout=timeout_seconds,
            retry=Retry(NoBackoff(), 0),  # one try: the fallback is the retry
        )
        self._where = _safe_url(url)
        self._clock = clock
        self._down_until: float | None = None
        self.failures = 0

    @property
    def available(self) -> bool:
        return self._down_until is None or self._clock() >= self._down_until

    @property
    def down(self) -> bool:
        return self._down_until is not None

    def key(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    async def call(self, operation: Callable[[redis.Redis], Awaitable[T]]) -> T:
        """Run `operation` on Redis, or raise `Unavailable` (after noting the failure)."""
        if not self.available:
            raise Unavailable
        try:
            result = await operation(self.client)
        except REDIS_ERRORS as exc:
            self._failed(exc)
            raise Unavailable from exc
        if self._down_until is not None:
            self._down_until = None
            log.info("redis reachable again: shared caches back on", extra={"redis": self._where})
        return result

    async def ping(self) -> bool:
        try:
            await self.call(lambda client: client.ping())
        except Unavailable:
            return False
        return True

    async def close(self) -> None:
        await self.client.aclose()

    def _failed(self, exc: BaseException) -> None:
        self.failures += 1
        first = self._down_until is None
        self._down_until = self._clock() + self.retry_seconds
        if first:  # once per outage, not once per call
            log.warning(
                "redis unreachable: caching in-process until it answers again",
                extra={
                    "redis": self._where,
                    "error": f"{type(exc).__name__}: {exc}",
                    "retry_seconds": self.retry_seconds,
                },
            )


def _safe_url(url: str) -> str:
    """The URL without its password, for logs."""
    if "@" not in url:
        return url
    scheme, _, rest = url.partition("://")
    return f"{scheme}://***@{rest.rsplit('@', 1)[1]}"
