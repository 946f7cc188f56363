"""Redis-backed stores for what every worker may share: rate-limit budgets and uploaded-media
ids. Each implements the publishers' small storage interface (`budgets.BudgetStore`,
`uploads.UploadStore`), counts its hits and misses, and falls back to an in-process store
whenever the link says Redis is unavailable.

Never stored here: decrypted credentials (they stay in the process that decrypted them).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import redis.asyncio as redis

from postpilot.cache.coalesce import Coalescer
from postpilot.cache.link import RedisLink, Unavailable
from postpilot.cache.memory import CacheStats
from postpilot.publishers.budgets import Budget, BudgetStore, MemoryBudgetStore
from postpilot.publishers.uploads import UploadCache, UploadStore


@dataclass(frozen=True, slots=True)
class _Get:
    key: str


@dataclass(frozen=True, slots=True)
class _Put:
    key: str
    budget: Budget
    value: str  # the budget as stored
    ttl_ms: int


class RedisBudgetStore:
    """Budgets as JSON under `<prefix>budget:<key>`, expiring at their reset time.

    Publishes consult and update budgets around every send, so the store coalesces: while one
    round trip is under way, whatever gets and puts arrive wait and go together in the next
    (`cache.coalesce`), the puts as SETs then the gets as one MGET, in one pipeline. A get thus
    sees every put this process made before it.
    """

    name = "budgets"

    def __init__(self, link: RedisLink, *, fallback: BudgetStore | None = None) -> None:
        self.link = link
        self.fallback: BudgetStore = fallback or MemoryBudgetStore()
        self.stats = CacheStats()
        self._batches: Coalescer[_Get | _Put, Budget | None] = Coalescer(
            self._exchange, name="budget-store"
        )

    async def get(self, key: str) -> Budget | None:
        budget = await self._batches.ask(_Get(key))
        if budget is None:
            self.stats.misses += 1
        else:
            self.stats.hits += 1
        return budget

    async def put(self, key: str, budget: Budget) -> None:
        ttl_ms = int((budget.reset_at.timestamp() - time.time()) * 1000)
        if ttl_ms <= 0:
            return
        value = json.dumps(
            {
                "remaining": budget.remaining,
                "reset_at": budget.reset_at.astimezone(UTC).isoformat(),
                "reason": budget.reason,
            }
        )
        await self._batches.ask(_Put(key, budget, value, ttl_ms))

    async def clear(self) -> None:
        await self.fallback.clear()
        pattern = self.link.key("budget", "*")

        async def delete_all(client: Any) -> None:
            async for name in client.scan_iter(match=pattern, count=500):
                await client.delete(name)

        with contextlib.suppress(Unavailable):
            await self.link.call(delete_all)

    async def _exchange(self, batch: Sequence[_Get | _Put]) -> list[Budget | None]:
        """One answer per operation (None for a put): from Redis, or from the fallback in the
        batch's order when the link says Redis is unavailable."""
        try:
            found = await self.link.call(lambda client: self._round_trip(client, batch))
        except Unavailable:
            return [await self._in_fallback(operation) for operation in batch]
        return [found[op.key] if isinstance(op, _Get) else None for op in batch]

    async def _round_trip(
        self, client: redis.Redis, batch: Sequence[_Get | _Put]
    ) -> dict[str, Budget | None]:
        """The batch's puts, then its gets (each key once), in one non-transactional pipeline."""
        keys = list(dict.fromkeys(op.key for op in batch if isinstance(op, _Get)))
        pipeline = client.pipeline(transaction=False)
        for op in batch:
            if isinstance(op, _Put):
                pipeline.set(self.link.key("budget", op.key), op.value, px=op.ttl_ms)
        if keys:
            pipeline.mget([self.link.key("budget", key) for key in keys])
        replies = await pipeline.execute()
        raws = replies[-1] if keys else []
        return {
            key: _budget_from_json(raw) if raw is not None else None
            for key, raw in zip(keys, raws, strict=True)
        }

    async def _in_fallback(self, operation: _Get | _Put) -> Budget | None:
        if isinstance(operation, _Get):
            return await self.fallback.get(operation.key)
        await self.fallback.put(operation.key, operation.budget)
        return None


class RedisUploadStore:
    """Uploaded-media ids as JSON under `<prefix>upload:<platform>:<account>:<sha256(url)>`."""

    name = "uploads"

    def __init__(self, link: RedisLink, *, fallback: UploadStore | None = None) -> None:
        self.link = link
        self.fallback: UploadStore = fallback or UploadCache()
        self.stats = CacheStats()

    def _key(self, platform: str, account_id: str, media_url: str) -> str:
        digest = hashlib.sha256(media_url.encode()).hexdigest()
        return self.link.key("upload", platform, account_id, digest)

    async def get(self, platform: str, account_id: str, media_url: str) -> Any | None:
        key = self._key(platform, account_id, media_url)
        try:
            raw = await self.link.call(lambda client: client.get(key))
        except Unavailable:
            value = await self.fallback.get(platform, account_id, media_url)
        else:
            value = json.loads(raw) if raw is not None else None
        if value is None:
            self.stats.misses += 1
        else:
            self.stats.hits += 1
        return value

    async def put(
        self, platform: str, account_id: str, media_url: str, value: Any, ttl_seconds: float
    ) -> None:
        if ttl_seconds <= 0:
            return
        try:
            encoded = json.dumps(value)
        except (TypeError, ValueError):  # not shareable: keep it in this process
            await self.fallback.put(platform, account_id, media_url, value, ttl_seconds)
            return
        key = self._key(platform, account_id, media_url)
        ttl_ms = max(1, int(ttl_seconds * 1000))
        try:
            await self.link.call(lambda client: client.set(key, encoded, px=ttl_ms))
        except Unavailable:
            await self.fallback.put(platform, account_id, media_url, value, ttl_seconds)

    async def forget(self, platform: str, account_id: str, media_url: str) -> None:
        await self.fallback.forget(platform, account_id, media_url)
        key = self._key(platform, account_id, media_url)
        with contextlib.suppress(Unavailable):
            await self.link.call(lambda client: client.delete(key))


def _budget_from_json(raw: bytes | str) -> Budget | None:
    try:
        data = json.loads(raw)
        reset_at = datetime.fromisoformat(data["reset_at"])
        budget = Budget(int(data["remaining"]), reset_at, str(data.get("reason", "")))
    except (ValueError, KeyError, TypeError):
        return None  # written by another version: treat as unknown
    return budget if reset_at.timestamp() > time.time() else None
