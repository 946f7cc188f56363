"""Posts as the CSV the import takes back: a header from every variant the selected posts
use, then one line per post, read in keyset pages so a large export holds little memory."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
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


@dataclass
class Columns:
    """What the selected posts use beyond the fixed columns."""

    platforms: set[str] = field(default_factory=set)
    texts: set[str] = field(default_factory=set)  # accounts with their own text
    media: set[str] = field(default_factory=set)  # accounts with their own media
    first_comment: bool = False
    thread: set[str] = field(default_factory=set)  # thread columns some post fills

    def add(self, view: posts.PostView) -> None:
        post = view.post
        self.platforms.update(post.overrides)
        for account_id, stored in (post.account_overrides or {}).items():
            self.texts.add(account_id)
            if variants.from_stored(stored).media_ids is not None:
                self.media.add(account_id)
        self.first_comment |= post.first_comment is not None
        self.thread.update(name for name, cell in _thread_cells(post.thread).items() if cell)
        # A part's text column is written even when empty, so the parts keep their numbers.
        self.thread.update(
            c.thread_column(c.THREAD_TEXT, n) for n in range(1, len(post.thread or ()) + 1)
        )

    def header(self) -> list[str]:
        parts = sorted(
            (part[1], c.THREAD_COLUMNS.index(part[0]), name)
            for name in self.thread
            if (part := c.thread_part(name))
        )
        return [
            *c.FIXED,
            *([c.FIRST_COMMENT] if self.first_comment else []),
            *(name for _, _, name in parts),
            *(f"{c.PLATFORM_TEXT}{p}" for p in sorted(self.platforms)),
            *(f"{c.ACCOUNT_TEXT}{a}" for a in sorted(self.texts)),
            *(f"{c.ACCOUNT_MEDIA}{a}" for a in sorted(self.media)),
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
    if post.first_comment is not None:
        row[c.FIRST_COMMENT] = post.first_comment
    row.update(_thread_cells(post.thread))
    return row


def _thread_cells(thread: list[dict[str, Any]] | None) -> dict[str, str]:
    row = {}
    for number, part in enumerate(thread or (), start=1):
        urls = [str(u) for u in part.get("media_urls") or ()]
        row[c.thread_column(c.THREAD_TEXT, number)] = str(part.get("text") or "")
        row[c.thread_column(c.THREAD_MEDIA_URLS, number)] = c.SEPARATOR.join(
            u for u in urls if not _library(u)
        )
        row[c.thread_column(c.THREAD_MEDIA_IDS, number)] = c.SEPARATOR.join(
            i for u in urls if (i := _library(u))
        )
    return row


def _library(url: str) -> str | None:
    return url.removeprefix(LIBRARY_PREFIX) if url.startswith(LIBRARY_PREFIX) else None


async def lines(
    sessions: Sessions, workspace_id: str, filters: dict[str, Any]
) -> AsyncIterator[str]:
    """The CSV, line by line: the posts are read twice, once for the header's columns."""
    used = Columns()
    async for page in _pages(sessions, workspace_id, filters):
        for view in page:
            used.add(view)
    names = used.header()
    yield c.line(names)
    async for page in _pages(sessions, workspace_id, filters):
        for view in page:
            row = cells(view)
            yield c.line([row.get(name, "") for name in names])
