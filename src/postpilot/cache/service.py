"""The caches of one process, opened from the settings.

What goes where:

| cache        | where                          | key                                         |
| ------------ | ------------------------------ | ------------------------------------------- |
| credentials  | in-process only (decrypted!)   | (account id, credentials_version)           |
| media        | in-process (bytes, per URL)    | media URL, for SCHEDULER_CACHE_TTL          |
| uploads      | Redis when set, else in-process| (platform, account id, media URL)           |
| budgets      | Redis when set, else in-process| platform:account:<id> / platform:app:<id>   |

Credentials are keyed on `credentials_version`, which every change of an account's credentials
bumps, so an edited token is never served from a cache. Uploaded-media ids belong to the account
that uploaded them and stay valid across token refreshes. Budgets expire at their reset time.

With `REDIS_URL` set, uploads and budgets are shared by every worker; if Redis cannot be
reached, `link.RedisLink` warns once and the stores serve from memory until it answers again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from postpilot.cache.link import RedisLink
from postpilot.cache.memory import CacheStats, TTLCache
from postpilot.cache.shared import RedisBudgetStore, RedisUploadStore
from postpilot.publishers.budgets import BudgetStore, MemoryBudgetStore
from postpilot.settings import Settings

log = logging.getLogger(__name__)

StatsSource = Callable[[], CacheStats]


class CacheService:
    def __init__(
        self,
        *,
        credentials: TTLCache[dict[str, Any]],
        budgets: BudgetStore,
        link: RedisLink | None = None,
    ) -> None:
        self.credentials = credentials
        self.budgets = budgets
        self.link = link
        self._sources: dict[str, StatsSource] = {"credentials": lambda: credentials.stats}
        if isinstance(budgets, RedisBudgetStore):
            self._sources["budgets"] = lambda: budgets.stats
        self._restore: list[tuple[Any, Any]] = []

    @classmethod
    def open(cls, settings: Settings) -> CacheService:
        link = (
            RedisLink(
                settings.REDIS_URL,
                prefix=settings.REDIS_KEY_PREFIX,
                retry_seconds=settings.REDIS_RETRY_SECONDS,
            )
            if settings.REDIS_URL
            else None
        )
        budgets: BudgetStore = RedisBudgetStore(link) if link else MemoryBudgetStore()
        return cls(
            credentials=TTLCache("credentials", ttl_seconds=settings.SCHEDULER_CACHE_TTL),
            budgets=budgets,
            link=link,
        )

    @property
    def backend(self) -> str:
        if self.link is None:
            return "memory"
        return "memory (redis unreachable)" if self.link.down else "redis"

    def track(self, name: str, source: StatsSource) -> None:
        """Count another cache (e.g. the media fetcher's) under `name`."""
        self._sources[name] = source

    def stats(self) -> dict[str, CacheStats]:
        return {name: source() for name, source in self._sources.items()}

    def share_uploads(self, publishers: Iterable[object]) -> None:
        """Back the publishers' uploaded-media ids by Redis, keeping their own store as the
        fallback. Publishers hold their store themselves (see publishers/registry.py), so this
        swaps it for the life of this service and `close()` puts the original back."""
        if self.link is None:
            self._track_local_uploads(publishers)
            return
        shared: dict[int, RedisUploadStore] = {}
        for publisher in publishers:
            current = getattr(publisher, "uploads", None)
            if current is None:
                continue
            store = shared.setdefault(id(current), RedisUploadStore(self.link, fallback=current))
            self._restore.append((publisher, store))
            publisher.uploads = store  # type: ignore[attr-defined]
        stores = list(shared.values())
        if stores:
            self.track("uploads", lambda: _sum(store.stats for store in stores))

    def _track_local_uploads(self, publishers: Iterable[object]) -> None:
        stores = {id(s): s for p in publishers if (s := getattr(p, "uploads", None)) is not None}
        counted = [s for s in stores.values() if hasattr(s, "hits") and hasattr(s, "misses")]
        if counted:
            self.track("uploads", lambda: _sum(CacheStats(s.hits, s.misses) for s in counted))

    async def close(self) -> None:
        for publisher, ours in self._restore:
            _unwrap(publisher, ours)
        self._restore.clear()
        if self.link is not None:
            await self.link.close()


def _unwrap(publisher: Any, ours: RedisUploadStore) -> None:
    """Take `ours` out of the publisher's chain of stores, wherever it is (another runtime of
    this process may have wrapped it since)."""
    if publisher.uploads is ours:
        publisher.uploads = ours.fallback
        return
    outer = publisher.uploads
    while isinstance(outer, RedisUploadStore):
        if outer.fallback is ours:
            outer.fallback = ours.fallback
            return
        outer = outer.fallback


def _sum(stats: Iterable[CacheStats]) -> CacheStats:
    total = CacheStats()
    for one in stats:
        total.hits += one.hits
        total.misses += one.misses
    return total
