"""Emptying the shared cache: every Redis key under the prefix, found with SCAN and deleted in
batches. Never FLUSHDB: the database may hold other applications' keys, or another prefix's.
Account slots (`slots.py`) are not a cache but what is in flight now: they stay."""

from __future__ import annotations

import re

import redis.asyncio as redis

from postpilot.cache.link import REDIS_ERRORS, _safe_url
from postpilot.cache.slots import SLOTS_KEY
from postpilot.errors import PostpilotError

BATCH = 500


class SharedCacheUnreachable(PostpilotError):
    """Redis could not be reached to clear the shared cache."""


async def clear_shared(url: str, *, prefix: str, batch: int = BATCH) -> int:
    """Delete every key under `prefix` at `url`; return how many were deleted."""
    client: redis.Redis = redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=10)
    pattern = re.sub(r"([*?\[\]\\])", r"\\\1", prefix) + "*"  # the prefix taken literally
    in_flight = f"{prefix}{SLOTS_KEY}:".encode()
    deleted = 0
    try:
        keys: list[bytes] = []
        async for key in client.scan_iter(match=pattern, count=batch):
            if key.startswith(in_flight):
                continue
            keys.append(key)
            if len(keys) >= batch:
                deleted += await client.delete(*keys)
                keys.clear()
        if keys:
            deleted += await client.delete(*keys)
    except REDIS_ERRORS as exc:
        raise SharedCacheUnreachable(
            f"could not clear Redis at {_safe_url(url)}: {type(exc).__name__}: {exc} "
            f"({deleted} keys deleted before)"
        ) from None
    finally:
        await client.aclose()
    return deleted
