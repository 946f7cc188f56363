"""Helpers for contract tests: publishers called directly, over a real HTTP client, against the
real sandbox process."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from postpilot.publishers.addresses import AddressPolicy
from postpilot.publishers.base import AccountContext, PublishContext, PublishRequest
from postpilot.publishers.client import PublishingClient
from postpilot.publishers.media import MediaFetcher
from postpilot.publishers.transport_aiohttp import PublicOnlyAiohttpTransport
from postpilot.sandbox.client import SandboxClient

CLIENT_TIMEOUT = 1.5  # seconds; timeout faults hold longer than this
HOLD = 3.0  # how long a scripted timeout holds the answer


def utcnow() -> datetime:
    return datetime.now(UTC)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    """The client the service publishes with (aiohttp underneath, the simple calls' shortcut),
    allowed to reach the sandbox on loopback."""
    transport = PublicOnlyAiohttpTransport(
        AddressPolicy.allowing("127.0.0.1", "localhost"), limits=httpx.Limits(max_connections=20)
    )
    async with PublishingClient(transport=transport, timeout=CLIENT_TIMEOUT) as client:
        yield client


@pytest.fixture
def make_ctx(sandbox: SandboxClient, http: httpx.AsyncClient) -> Callable[[str], PublishContext]:
    def make(platform: str) -> PublishContext:
        media = MediaFetcher(
            http, max_bytes=64 * 1024, allowed_hosts=frozenset({"127.0.0.1"}), timeout_seconds=5
        )
        return PublishContext(
            http=http,
            media=media,
            now=utcnow,
            base_urls={platform: sandbox.platform_url(platform)},
        )

    return make


def account(
    platform: str,
    credentials: dict[str, Any],
    options: dict[str, Any] | None = None,
    *,
    account_id: str | None = None,
    handle: str = "sandbox",
    base_url: str | None = None,
) -> AccountContext:
    return AccountContext(
        id=account_id or f"acct-{uuid.uuid4().hex[:8]}",
        platform=platform,
        handle=handle,
        base_url=base_url,
        options=options or {},
        credentials=credentials,
    )


def publish_request(
    acct: AccountContext,
    text: str = "hello from postpilot",
    media: tuple[str, ...] = (),
    *,
    key: str | None = None,
    attempt: int = 1,
    recovered: bool = False,
    scheduled_at: datetime | None = None,
) -> PublishRequest:
    return PublishRequest(
        delivery_id=f"dlv-{uuid.uuid4().hex[:8]}",
        idempotency_key=key or uuid.uuid4().hex,
        text=text,
        media_urls=media,
        account=acct,
        scheduled_at=scheduled_at or utcnow(),
        attempt=attempt,
        recovered=recovered,
    )


def unique(text: str = "post") -> str:
    """Text no other test posted (platforms that refuse duplicates)."""
    return f"{text} {uuid.uuid4().hex[:8]}"
