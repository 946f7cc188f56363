"""Everything a pass needs: database, HTTP client, publishers' context, cipher, caches, retry
policy, and the callables that hear what passes did. Built and closed by the composition root
(`postpilot.runtime`), which is the one place that knows what sits above the scheduler."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from postpilot.cache.memory import TTLCache
from postpilot.cache.service import CacheService
from postpilot.core.retry import RetryPolicy
from postpilot.crypto import CredentialCipher
from postpilot.publishers.base import PublishContext
from postpilot.scheduler.journal import InFlightJournal
from postpilot.settings import Settings
from postpilot.store.database import Database

if TYPE_CHECKING:
    from postpilot.scheduler.summary import PassReport

# Hears every pass's report once the pass has ended (stored figures, metrics, alerts).
PassObserver = Callable[["PassReport"], Awaitable[None]]
# Hears decisions written outside a pass (a reconciled delivery), to tell users' tools of them
# as of one a pass wrote; must only enqueue, never block.
DeliveryEventHook = Callable[["PassReport"], None]


def utcnow() -> datetime:
    return datetime.now(UTC)


def no_delivery_events(_report: PassReport) -> None:
    return None


@dataclass
class Runtime:
    settings: Settings
    db: Database
    cipher: CredentialCipher
    http: httpx.AsyncClient
    publish: PublishContext
    policy: RetryPolicy
    credentials: TTLCache[dict[str, Any]]  # in-process only: decrypted secrets
    cache: CacheService  # every cache of this process; Redis-backed ones when REDIS_URL is set
    clock: Callable[[], datetime] = utcnow
    observers: list[PassObserver] = field(default_factory=list)
    delivery_events: DeliveryEventHook = no_delivery_events
    # Set when a post is created or rescheduled in this process: the worker wakes at once.
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    journal: InFlightJournal = field(default_factory=lambda: InFlightJournal(Path(".journal")))

    def now(self) -> datetime:
        return self.clock()
