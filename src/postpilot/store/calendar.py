"""What the web calendar shows: the posts of a time window (or a page of them), with their
deliveries' state and author, read in one statement."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from postpilot.core.states import DeliveryStatus, PostStatus, derive_post_status
from postpilot.core.transitions import Event
from postpilot.store.tables import Account, Activity, Delivery, Post

PREVIEW_CHARS = 120  # the calendar shows the start of a post's text only


@dataclass(frozen=True, slots=True)
class Target:
    account_id: str
    platform: str
    handle: str
    status: str
    attempts: int


@dataclass(slots=True)
class Entry:
    """One post on the calendar."""

    id: str
    text: str
    scheduled_at: datetime
    timezone: str
    cancelled: bool
    targets: list[Target] = field(default_factory=list)
    status: PostStatus = PostStatus.SCHEDULED  # derived once its targets are all read


@dataclass(frozen=True, slots=True)
class Filters:
    account_id: str | None = None
    author: str | None = None


def _posts(workspace_id: str, filters: Filters) -> Select[Any]:
    query = select(Post.id).where(Post.workspace_id == workspace_id, Post.cancelled_at.is_(None))
    if filters.account_id:
        query = query.where(
            Post.id.in_(
                select(Delivery.post_id).where(
                    Delivery.workspace_id == workspace_id,
                    Delivery.account_id == filters.account_id,
                )
            )
        )
    if filters.author:
        query = query.where(
            Post.id.in_(
                select(Activity.post_id).where(
                    Activity.workspace_id == workspace_id,
                    Activity.event == Event.CREATED.value,
                    Activity.actor == filters.author,
                )
            )
        )
    return query


async def _entries(session: AsyncSession, ids: Select[Any]) -> list[Entry]:
    chosen = ids.subquery("chosen")
    rows = await session.execute(
        select(
            Post.id,
            func.substr(Post.text, 1, PREVIEW_CHARS),
            Post.scheduled_at,
            Post.timezone,
            Post.cancelled_at,
            Delivery.account_id,
            Account.platform,
            Account.handle,
            Delivery.status,
            Delivery.attempts,
        )
        .join(chosen, chosen.c.id == Post.id)
        .join(Delivery, Delivery.post_id == Post.id)
        .join(Account, Account.id == Delivery.account_id)
        .order_by(Post.scheduled_at, Post.id, Delivery.created_at, Delivery.id)
    )
    entries: dict[str, Entry] = {}
    for post_id, text, at, zone, cancelled, account_id, platform, handle, st, n in rows:
        entry = entries.get(post_id)
        if entry is None:
            entry = entries[post_id] = Entry(post_id, text, at, zone, cancelled is not None)
        entry.targets.append(Target(account_id, platform, handle, st, n))
    for entry in entries.values():
        entry.status = derive_post_status(
            (DeliveryStatus(t.status), t.attempts) for t in entry.targets
        )
    return list(entries.values())


async def in_window(
    session: AsyncSession, workspace_id: str, start: datetime, end: datetime, filters: Filters
) -> list[Entry]:
    """The posts scheduled in [start, end) (UTC), oldest first."""
    ids = _posts(workspace_id, filters).where(Post.scheduled_at >= start, Post.scheduled_at < end)
    return await _entries(session, ids)


async def page_from(
    session: AsyncSession,
    workspace_id: str,
    start: datetime,
    filters: Filters,
    *,
    size: int,
    offset: int,
) -> list[Entry]:
    """Up to `size` + 1 posts scheduled from `start` on (the extra one says a next page exists)."""
    ids = (
        _posts(workspace_id, filters)
        .where(Post.scheduled_at >= start)
        .order_by(Post.scheduled_at, Post.id)
        .limit(size + 1)
        .offset(offset)
    )
    return await _entries(session, ids)


async def authors(session: AsyncSession, workspace_id: str) -> list[str]:
    """Who created posts in the workspace, for the author filter."""
    rows = await session.execute(
        select(Activity.actor)
        .where(Activity.workspace_id == workspace_id, Activity.event == Event.CREATED.value)
        .distinct()
        .order_by(Activity.actor)
        .limit(200)
    )
    return list(rows.scalars())
