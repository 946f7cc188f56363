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
from datetime import UTC, datetime
from typing import Any

from postpilot.cache.link import RedisLink, Unavailable
from postpilot.cache.memory import CacheStats
from postpilot.publishers.budgets import Budget, BudgetStore, MemoryBudgetStore
from postpilot.publishers.uploads import UploadCache, UploadStore


class RedisBudgetStore:
    """Budgets as JSON under `<prefix>budget:<key>`, expiring at their reset time."""

    name = "budgets"

    def __init__(self, link: RedisLink, *, fallback: BudgetStore | None = None) -> None:
        self.link = link
        self.fallback: BudgetStore = fallback or MemoryBudgetStore()
        self.stats = CacheStats()

    async def get(self, key: str) -> Budget | None:
        try:
            raw = await self.link.call(lambda client: client.get(self.link.key("budget", key)))
        except Unavailable:
            budget = await self.fallback.get(key)
        else:
            budget = _budget_from_json(raw) if raw is not None else None
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
        try:
            await self.link.call(
                lambda client: client.set(self.link.key("budget", key), value, px=ttl_ms)
            )
        except Unavailable:
            await self.fallback.put(key, budget)

    async def clear(self) -> None:
        await self.fallback.clear()
        pattern = self.link.key("budget", "*")

        async def delete_all(client: Any) -> None:
            async for name in client.scan_iter(match=pattern, count=500):
                await client.delete(name)

        with contextlib.suppress(Unavailable):
            await self.link.call(delete_all)


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
