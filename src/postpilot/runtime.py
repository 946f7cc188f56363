"""The composition root: the one place that builds what a process runs on (database, HTTP
client, media fetcher, caches, publishers' context, monitor) and wires the layers together.

The scheduler knows nothing above it: the monitor's pass observer and delivery-event hook are
handed to it here as plain callables. Entry points (the API, the worker, the CLI, the demo)
open a runtime with one call, which checks the schema and closes everything in reverse order
of building, also on error:

    async with open_runtime(settings) as runtime:
        ...
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import httpx
from sqlalchemy.engine import make_url

from postpilot import tracing
from postpilot.cache.memory import CacheStats
from postpilot.cache.service import CacheService
from postpilot.core.retry import RetryPolicy
from postpilot.crypto import CredentialCipher
from postpilot.errors import PostpilotError
from postpilot.media import library, links
from postpilot.monitor.service import Monitor
from postpilot.publishers.addresses import AddressPolicy
from postpilot.publishers.base import PublishContext
from postpilot.publishers.budgets import RateBudgets
from postpilot.publishers.client import PublishingClient
from postpilot.publishers.media import MediaFetcher
from postpilot.publishers.registry import supported_platforms
from postpilot.publishers.transport_aiohttp import PublicOnlyAiohttpTransport
from postpilot.scheduler.journal import InFlightJournal
from postpilot.scheduler.runtime import Runtime, utcnow
from postpilot.settings import Settings
from postpilot.store import schema
from postpilot.store.database import Database


class MissingSecretKey(PostpilotError):
    """SECRET_KEY is not set: it encrypts stored credentials. Put one in .env.local
    (`python -c 'import secrets; print(secrets.token_urlsafe(32))'`)."""


@dataclass(kw_only=True)
class ServiceRuntime(Runtime):
    """The scheduler's runtime plus what sits above the scheduler, and what closes it all."""

    monitor: Monitor  # per-pass figures, Prometheus, alerts, event webhooks
    closing: contextlib.AsyncExitStack

    async def close(self) -> None:
        await self.closing.aclose()


def build_runtime(
    settings: Settings,
    *,
    db: Database | None = None,
    clock: Callable[[], datetime] = utcnow,
) -> ServiceRuntime:
    """Everything built, nothing awaited yet; `close()` releases it. A `db` passed in stays
    open (its owner disposes of it). Entry points use `open_runtime`."""
    if not settings.SECRET_KEY:
        raise MissingSecretKey()
    closing = contextlib.AsyncExitStack()  # unwinds last-built first: monitor, caches, http, db
    if db is None:
        db = database(settings)
        closing.push_async_callback(db.dispose)
    if stop_tracing := tracing.start(settings.TRACING_OTLP_ENDPOINT, db.engine.sync_engine):
        closing.callback(stop_tracing)
    addresses = AddressPolicy.allowing(*settings.private_hosts_allowed)
    http = PublishingClient(
        timeout=settings.HTTP_TIMEOUT_SECONDS,
        # Every connection to a public address (or an allowed one), whatever URL a
        # publisher builds from an account (environment proxies are not used).
        transport=PublicOnlyAiohttpTransport(
            addresses,
            limits=httpx.Limits(
                max_connections=max(100, settings.SCHEDULER_CONCURRENCY * 4),
                max_keepalive_connections=max(20, settings.SCHEDULER_CONCURRENCY * 2),
            ),
        ),
        headers={"User-Agent": "postpilot/0.1"},
    )
    closing.push_async_callback(http.aclose)
    media = MediaFetcher(
        http,
        max_bytes=settings.MEDIA_MAX_BYTES,
        policy=addresses,
        timeout_seconds=settings.HTTP_TIMEOUT_SECONDS,
        cache_ttl_seconds=settings.SCHEDULER_CACHE_TTL,
        library=library.LibraryReader(library.open_storage(settings)),
        links=links.for_settings(settings),
    )
    cache = CacheService.open(settings, slots_directory=journal_directory(settings) / "slots")
    closing.push_async_callback(cache.close)
    cache.track("media", lambda: CacheStats(media.hits, media.misses))
    monitor = Monitor(settings=settings, db=db, clock=clock, cache=cache, http=http)
    closing.push_async_callback(monitor.close)
    return ServiceRuntime(
        settings=settings,
        db=db,
        cipher=CredentialCipher(settings.SECRET_KEY),
        http=http,
        publish=PublishContext(
            http=http,
            media=media,
            now=clock,
            base_urls=sandbox_base_urls(settings.SANDBOX_URL, supported_platforms()),
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
        clock=clock,
        observers=[monitor.observe],
        delivery_events=monitor.announce,
        journal=InFlightJournal(journal_directory(settings)),
        monitor=monitor,
        closing=closing,
    )


@contextlib.asynccontextmanager
async def open_runtime(
    settings: Settings,
    *,
    db: Database | None = None,
    clock: Callable[[], datetime] = utcnow,
    check_schema: bool = True,
) -> AsyncIterator[ServiceRuntime]:
    """The runtime for the life of the block, its database's schema checked (`check_schema`
    off only for a caller that upgrades it itself)."""
    runtime = build_runtime(settings, db=db, clock=clock)
    try:
        if check_schema:
            await schema.ensure_current(runtime.db)
        yield runtime
    finally:
        await runtime.close()


@contextlib.asynccontextmanager
async def open_database(
    settings: Settings, *, check_schema: bool = True
) -> AsyncIterator[Database]:
    """Only the database, for commands that need nothing else; disposed of on the way out."""
    db = database(settings)
    try:
        if check_schema:
            await schema.ensure_current(db)
        yield db
    finally:
        await db.dispose()


def database(settings: Settings) -> Database:
    return Database(settings.DATABASE_URL, max_connections=settings.DATABASE_MAX_CONNECTIONS)


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
