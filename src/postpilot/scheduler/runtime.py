"""Everything a pass needs, opened once per process: database, HTTP client, publishers' context,
cipher, caches, retry policy, and the observers that receive each pass's summary."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from sqlalchemy.engine import make_url

from postpilot.cache.memory import CacheStats, TTLCache
from postpilot.cache.service import CacheService
from postpilot.core.retry import RetryPolicy
from postpilot.crypto import CredentialCipher
from postpilot.errors import PostpilotError
from postpilot.monitor.service import Monitor
from postpilot.publishers.addresses import AddressPolicy
from postpilot.publishers.base import PublishContext
from postpilot.publishers.budgets import RateBudgets
from postpilot.publishers.media import MediaFetcher
from postpilot.publishers.registry import supported_platforms
from postpilot.publishers.transport import public_only_transport
from postpilot.scheduler.journal import InFlightJournal
from postpilot.settings import Settings
from postpilot.store.database import Database

if TYPE_CHECKING:
    from postpilot.scheduler.summary import PassReport

PassObserver = Callable[["PassReport"], Awaitable[None]]


def utcnow() -> datetime:
    return datetime.now(UTC)


class MissingSecretKey(PostpilotError):
    """SECRET_KEY is not set: it encrypts stored credentials. Put one in .env.local
    (`python -c 'import secrets; print(secrets.token_urlsafe(32))'`)."""


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
    monitor: Monitor  # per-pass figures, Prometheus, alerts, event webhooks
    clock: Callable[[], datetime] = utcnow
    observers: list[PassObserver] = field(default_factory=list)
    # Set when a post is created or rescheduled in this process: the worker wakes at once.
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    journal: InFlightJournal = field(default_factory=lambda: InFlightJournal(Path(".journal")))
    _owns_db: bool = True

    @classmethod
    def open(
        cls,
        settings: Settings,
        *,
        db: Database | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> Runtime:
        if not settings.SECRET_KEY:
            raise MissingSecretKey()
        owns_db = db is None
        database = db or Database(
            settings.DATABASE_URL, max_connections=settings.DATABASE_MAX_CONNECTIONS
        )
        addresses = AddressPolicy.allowing(*settings.private_hosts_allowed)
        http = httpx.AsyncClient(
            timeout=settings.HTTP_TIMEOUT_SECONDS,
            # Every connection to a public address (or an allowed one), whatever URL a
            # publisher builds from an account (environment proxies are not used).
            transport=public_only_transport(
                addresses,
                limits=httpx.Limits(
                    max_connections=max(100, settings.SCHEDULER_CONCURRENCY * 4),
                    max_keepalive_connections=max(20, settings.SCHEDULER_CONCURRENCY * 2),
                ),
            ),
            headers={"User-Agent": "postpilot/0.1"},
        )
        media = MediaFetcher(
            http,
            max_bytes=settings.MEDIA_MAX_BYTES,
            policy=addresses,
            timeout_seconds=settings.HTTP_TIMEOUT_SECONDS,
            cache_ttl_seconds=settings.SCHEDULER_CACHE_TTL,
        )
        base_urls = sandbox_base_urls(settings.SANDBOX_URL, supported_platforms())
        cache = CacheService.open(settings)
        cache.track("media", lambda: CacheStats(media.hits, media.misses))
        monitor = Monitor(settings=settings, db=database, clock=clock, cache=cache)
        return cls(
            settings=settings,
            db=database,
            cipher=CredentialCipher(settings.SECRET_KEY),
            http=http,
            publish=PublishContext(
                http=http,
                media=media,
                now=clock,
                base_urls=base_urls,
                budgets=RateBudgets(cache.budgets),
                uploads=cache.uploads,
                addresses=addresses,
            ),
            policy=RetryPolicy(
                max_attempts=settings.SCHEDULER_MAX_ATTEMPTS,
                base_delay_seconds=settings.SCHEDULER_RETRY_BASE_SECONDS,
                max_delay_seconds=max(3600.0, settings.SCHEDULER_RETRY_BASE_SECONDS),
            ),
            credentials=cache.credentials,
            cache=cache,
            monitor=monitor,
            clock=clock,
            observers=[monitor.observe],
            journal=InFlightJournal(journal_directory(settings)),
            _owns_db=owns_db,
        )

    def now(self) -> datetime:
        return self.clock()

    async def close(self) -> None:
        await self.monitor.close()
        await self.cache.close()
        await self.http.aclose()
        if self._owns_db:
            await self.db.dispose()


def journal_directory(settings: Settings) -> Path:
    """Every worker of one database on this machine must share the directory."""
    if settings.JOURNAL_DIR:
        return Path(settings.JOURNAL_DIR)
    url = make_url(settings.DATABASE_URL)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        return (
            Path(str(url.database)).resolve().with_name(Path(str(url.database)).name + ".journal")
        )
    state_home = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    where = hashlib.sha256(
        url.set(password=None).render_as_string(hide_password=False).encode()
    ).hexdigest()[:16]
    return state_home / "postpilot" / "journal" / where


def sandbox_base_urls(sandbox_url: str | None, platforms: Sequence[str]) -> dict[str, str]:
    if not sandbox_url:
        return {}
    return {platform: f"{sandbox_url.rstrip('/')}/{platform}" for platform in platforms}
