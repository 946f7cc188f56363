"""The caches of one process, opened from the settings.

What goes where:

| cache        | where                          | key                                         |
| ------------ | ------------------------------ | ------------------------------------------- |
| credentials  | in-process only (decrypted!)   | (account id, credentials_version)           |
| media        | in-process (bytes, per URL)    | media URL, for SCHEDULER_CACHE_TTL          |
| uploads      | Redis when set, else in-process| (platform, account id, media URL)           |
| budgets      | Redis when set, else in-process| platform:account:<id> / platform:app:<id>   |
| account slots| Redis when set, else this machine's lock files | inflight:<account id>  |

Credentials are keyed on `credentials_version`, which every change of an account's credentials
bumps, so an edited token is never served from a cache. Uploaded-media ids belong to the account
that uploaded them and stay valid across token refreshes. Budgets expire at their reset time.

With `REDIS_URL` set, uploads and budgets are shared by every worker; if Redis cannot be
reached, `link.RedisLink` warns once and the stores serve from memory until it answers again.
Account slots (`slots.py`: how many sends an account has in flight across every worker) are
taken in this machine's lock files (shared by its workers of the same database) and then in
Redis when it is set; the lock files alone answer while Redis is unreachable.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from postpilot.cache.link import RedisLink
from postpilot.cache.memory import CacheStats, TTLCache
from postpilot.cache.shared import RedisBudgetStore, RedisUploadStore
from postpilot.cache.slots import AccountSlots, MachineAccountSlots, RedisAccountSlots
from postpilot.publishers.budgets import BudgetStore, MemoryBudgetStore
from postpilot.publishers.uploads import UploadCache, UploadStore
from postpilot.settings import Settings

StatsSource = Callable[[], CacheStats]


class CacheService:
    def __init__(
        self,
        *,
        credentials: TTLCache[dict[str, Any]],
        budgets: BudgetStore,
        uploads: UploadStore,
        link: RedisLink | None = None,
        slots: AccountSlots | None = None,
    ) -> None:
        self.credentials = credentials
        self.budgets = budgets
        self.uploads = uploads
        self.link = link
        self.slots = slots
        self._sources: dict[str, StatsSource] = {"credentials": lambda: credentials.stats}
        if isinstance(budgets, RedisBudgetStore):
            self._sources["budgets"] = lambda: budgets.stats
        if isinstance(uploads, RedisUploadStore):
            self._sources["uploads"] = lambda: uploads.stats
        elif isinstance(uploads, UploadCache):
            self._sources["uploads"] = lambda: CacheStats(uploads.hits, uploads.misses)

    @classmethod
    def open(cls, settings: Settings, *, slots_directory: Path | None = None) -> CacheService:
        """The caches `settings` ask for; account slots only given `slots_directory` (the lock
        files every worker of the database on this machine shares), in Redis when set."""
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
        uploads: UploadStore = RedisUploadStore(link) if link else UploadCache()
        slots: AccountSlots | None = None
        if slots_directory is not None:
            slots = MachineAccountSlots(slots_directory)
            if link:
                # Renewed while held: a dead process's slots come back with its lease.
                slots = RedisAccountSlots(
                    link, holder_seconds=settings.SCHEDULER_LEASE_SECONDS, machine=slots
                )
        return cls(
            credentials=TTLCache("credentials", ttl_seconds=settings.SCHEDULER_CACHE_TTL),
            budgets=budgets,
            uploads=uploads,
            link=link,
            slots=slots,
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

    async def close(self) -> None:
        if self.slots is not None:
            self.slots.close()
        if self.link is not None:
            await self.link.close()
