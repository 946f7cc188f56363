"""What the web calendar shows: the first posts of each day of a grid with each day's count, or
a page of posts, with their deliveries' state."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Subquery, case, func, literal, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from postpilot.core.states import DeliveryStatus, PostStatus, derive_post_status
from postpilot.core.transitions import Event
from postpilot.store import posts
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
    status: PostStatus | None = None


@dataclass(frozen=True, slots=True)
class GridDay:
    """One day of a grid: how many posts it has, and the first of them in time order."""

    total: int
    entries: list[Entry]

    @property
    def more(self) -> int:
        return self.total - len(self.entries)


def _shown(workspace_id: str, filters: Filters) -> list[ColumnElement[bool]]:
    """What a post must be to show: the workspace's, not cancelled, passing `filters`. Built
    once per page and shared by its statements' parts."""
    conditions = [Post.workspace_id == workspace_id, Post.cancelled_at.is_(None)]
    if filters.status is not None:
        # Derived from the post's own deliveries, post by post: a day's LIMIT stops early.
        conditions.append(posts.post_status_sql() == filters.status.value)
    if filters.account_id:
        conditions.append(
            Post.id.in_(
                select(Delivery.post_id).where(
                    Delivery.workspace_id == workspace_id,
                    Delivery.account_id == filters.account_id,
                )
            )
        )
    if filters.author:
        conditions.append(
            Post.id.in_(
                select(Activity.post_id).where(
                    Activity.workspace_id == workspace_id,
                    Activity.event == Event.CREATED.value,
                    Activity.actor == filters.author,
                )
            )
        )
    return conditions


def _between(start: datetime, end: datetime | None) -> list[ColumnElement[bool]]:
    """Scheduled in [start, end), or from `start` on."""
    return [Post.scheduled_at >= start, *([] if end is None else [Post.scheduled_at < end])]


async def _entries(
    session: AsyncSession, chosen: Subquery, *extra: Any
) -> tuple[list[Entry], dict[str, tuple[Any, ...]]]:
    """The posts whose ids `chosen` holds, with their targets, oldest first; and per post the
    values of the `extra` columns (of `chosen`)."""
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
            *extra,
        )
        .join(chosen, chosen.c.id == Post.id)
        .join(Delivery, Delivery.post_id == Post.id)
        .join(Account, Account.id == Delivery.account_id)
        .order_by(Post.scheduled_at, Post.id, Delivery.created_at, Delivery.id)
    )
    entries: dict[str, Entry] = {}
    values: dict[str, tuple[Any, ...]] = {}
    for post_id, text, at, zone, cancelled, account_id, platform, handle, st, n, *more in rows:
        entry = entries.get(post_id)
        if entry is None:
            entry = entries[post_id] = Entry(post_id, text, at, zone, cancelled is not None)
            values[post_id] = tuple(more)
        entry.targets.append(Target(account_id, platform, handle, st, n))
    for entry in entries.values():
        entry.status = derive_post_status(
            (DeliveryStatus(t.status), t.attempts) for t in entry.targets
        )
    return list(entries.values()), values


def _day_of(bounds: Sequence[datetime], first: int = 0, last: int | None = None) -> Any:
    """The index of the day a post falls on, given the instants the days start at (local
    midnights in UTC, the last one ending the grid): worked out in the viewer's zone by Python,
    so a day is 23 or 25 hours across a clock change, in any database. A binary search of
    nested CASEs: six comparisons a post for a month's 42 days rather than 21 on average."""
    last = len(bounds) - 1 if last is None else last
    if last - first <= 1:
        return literal(first)
    middle = (first + last) // 2
    return case(
        (Post.scheduled_at < bounds[middle], _day_of(bounds, first, middle)),
        else_=_day_of(bounds, middle, last),
    )


async def grid(
    session: AsyncSession,
    workspace_id: str,
    bounds: Sequence[datetime],
    filters: Filters,
    *,
    per_day: int,
) -> dict[int, GridDay]:
    """Per day index (for days with posts): the day's count and its first `per_day` posts in
    time order. `bounds` are the days' starts and the grid's end (UTC).

    Two statements whatever the number of posts: the counts grouped by day, then each busy
    day's first posts, one LIMIT per day on the (workspace, scheduled_at) index. Numbering a
    month's posts with row_number() over each day instead sorts all of them (about 25 ms of
    CPU for 10,000 posts on SQLite, against 2 ms for the limits)."""
    shown = _shown(workspace_id, filters)
    counted = await session.execute(
        select(_day_of(bounds).label("day"), func.count())
        .where(*shown, *_between(bounds[0], bounds[-1]))
        .group_by("day")
    )
    totals = {int(index): int(total) for index, total in counted}
    if not totals:
        return {}
    firsts = union_all(
        *(
            select(Post.id, literal(index))
            .where(*shown, *_between(bounds[index], bounds[index + 1]))
            .order_by(Post.scheduled_at, Post.id)
            .limit(per_day)
            .subquery()
            .select()
            for index in sorted(totals)
        )
    ).subquery("chosen")
    entries, placed = await _entries(session, firsts, firsts.c[1])
    days = {index: GridDay(total, []) for index, total in totals.items()}
    for entry in entries:
        days[int(placed[entry.id][0])].entries.append(entry)
    return days


async def page_from(
    session: AsyncSession,
    workspace_id: str,
    start: datetime,
    filters: Filters,
    *,
    size: int,
    offset: int,
    end: datetime | None = None,
) -> list[Entry]:
    """Up to `size` + 1 posts scheduled from `start` on (before `end` when given), oldest
    first (the extra one says a next page exists)."""
    ids = (
        select(Post.id)
        .where(*_shown(workspace_id, filters), *_between(start, end))
        .order_by(Post.scheduled_at, Post.id)
        .limit(size + 1)
        .offset(offset)
    )
    entries, _ = await _entries(session, ids.subquery("chosen"))
    return entries


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
