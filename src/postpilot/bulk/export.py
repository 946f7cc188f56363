"""Posts as the CSV the import takes back: a header from every variant the selected posts
use, then one line per post, read in keyset pages so a large export holds little memory."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from postpilot.bulk import columns as c
from postpilot.core import variants
from postpilot.core.media_limits import LIBRARY_PREFIX
from postpilot.core.states import DeliveryStatus
from postpilot.core.timezones import in_zone
from postpilot.store import posts

PAGE = 200

Sessions = Callable[[], AbstractAsyncContextManager[AsyncSession]]


async def _pages(
    sessions: Sessions, workspace_id: str, filters: dict[str, Any]
) -> AsyncIterator[list[posts.PostView]]:
    after = None
    while True:
        # A short session per page: a slow reader holds no connection between pages.
        async with sessions() as session:
            page = await posts.export_page(
                session, workspace_id, after=after, limit=PAGE, **filters
            )
        if not page:
            return
        yield page
        last = page[-1].post
        after = (last.scheduled_at, last.id)


def header(platforms: set[str], texts: set[str], media: set[str]) -> list[str]:
    return [
        *c.FIXED,
        *(f"{c.PLATFORM_TEXT}{p}" for p in sorted(platforms)),
        *(f"{c.ACCOUNT_TEXT}{a}" for a in sorted(texts)),
        *(f"{c.ACCOUNT_MEDIA}{a}" for a in sorted(media)),
    ]


def cells(view: posts.PostView) -> dict[str, str]:
    post = view.post
    live = [a.id for d, a in view.deliveries if d.status != DeliveryStatus.CANCELLED.value]
    row = {
        c.EXTERNAL_ID: post.external_id or "",
        c.TEXT: post.text,
        c.SCHEDULED_AT: in_zone(post.scheduled_at, post.timezone).isoformat(),
        c.TIMEZONE: post.timezone,
        c.TARGETS: c.SEPARATOR.join(live),
        c.MEDIA_URLS: c.SEPARATOR.join(u for u in post.media_urls if not _library(u)),
        c.MEDIA_IDS: c.SEPARATOR.join(i for u in post.media_urls if (i := _library(u))),
        c.SOURCE: post.source,
    }
    row.update({f"{c.PLATFORM_TEXT}{p}": text for p, text in post.overrides.items()})
    for account_id, stored in (post.account_overrides or {}).items():
        variant = variants.from_stored(stored)
        row[f"{c.ACCOUNT_TEXT}{account_id}"] = variant.text
        if variant.media_ids is not None:
            row[f"{c.ACCOUNT_MEDIA}{account_id}"] = c.SEPARATOR.join(variant.media_ids)
    return row


def _library(url: str) -> str | None:
    return url.removeprefix(LIBRARY_PREFIX) if url.startswith(LIBRARY_PREFIX) else None


async def lines(
    sessions: Sessions, workspace_id: str, filters: dict[str, Any]
) -> AsyncIterator[str]:
    """The CSV, line by line: the posts are read twice, once for the header's columns."""
    platforms: set[str] = set()
    texts: set[str] = set()
    media: set[str] = set()
    async for page in _pages(sessions, workspace_id, filters):
        for view in page:
            platforms.update(view.post.overrides)
            for account_id, stored in (view.post.account_overrides or {}).items():
                texts.add(account_id)
                if variants.from_stored(stored).media_ids is not None:
                    media.add(account_id)
    names = header(platforms, texts, media)
    yield c.line(names)
    async for page in _pages(sessions, workspace_id, filters):
        for view in page:
            row = cells(view)
            yield c.line([row.get(name, "") for name in names])
