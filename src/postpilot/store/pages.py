"""The API's lists as keyset pages: each query reads `limit` rows past the last one shown, in a
stable order, with its filters in SQL; nothing loads a whole list."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped

from postpilot.core.states import AccountStatus, DeliveryStatus, PostStatus
from postpilot.store import keyset, posts
from postpilot.store.tables import (
    Account,
    Activity,
    ApiKey,
    Delivery,
    Post,
    Queue,
    Recurrence,
)

Q = TypeVar("Q", bound=Select[*tuple[Any, ...]])


@dataclass(frozen=True, slots=True)
class TimeRange:
    """[start, end) in UTC; either side may be open."""

    start: datetime | None = None
    end: datetime | None = None

    def apply(self, query: Q, column: Mapped[datetime]) -> Q:
        if self.start is not None:
            query = query.where(column >= self.start)
        if self.end is not None:
            query = query.where(column < self.end)
        return query


async def page_posts(
    session: AsyncSession,
    workspace_id: str,
    *,
    limit: int,
    after: keyset.Key | None,
    status: PostStatus | None = None,
    account_id: str | None = None,
    source: str | None = None,
    scheduled: TimeRange = TimeRange(),
) -> list[posts.PostView]:
    """Oldest first by (created_at, id), with each post's deliveries."""
    query = select(Post).where(Post.workspace_id == workspace_id)
    if status is not None:
        counts = posts.status_counts()
        query = query.join(counts, counts.c.post_id == Post.id).where(
            posts.derived_status_sql(counts) == status.value
        )
    if account_id is not None:
        query = query.where(
            Post.id.in_(select(Delivery.post_id).where(Delivery.account_id == account_id))
        )
    if source is not None:
        query = query.where(Post.source == source)
    query = scheduled.apply(query, Post.scheduled_at)
    if after is not None:
        query = query.where(keyset.after(Post.created_at, Post.id, after))
    rows = await session.execute(query.order_by(Post.created_at, Post.id).limit(limit))
    return await posts.with_deliveries(session, list(rows.scalars()))


async def page_deliveries(
    session: AsyncSession,
    workspace_id: str,
    *,
    limit: int,
    after: keyset.Key | None,
    post_id: str | None = None,
    account_id: str | None = None,
    status: DeliveryStatus | None = None,
    scheduled: TimeRange = TimeRange(),
) -> list[tuple[Delivery, Account]]:
    """Oldest first by (created_at, id), each with its account."""
    query = (
        select(Delivery, Account)
        .join(Account, Account.id == Delivery.account_id)
        .where(Delivery.workspace_id == workspace_id)
    )
    if post_id is not None:
        query = query.where(Delivery.post_id == post_id)
    if account_id is not None:
        query = query.where(Delivery.account_id == account_id)
    if status is not None:
        query = query.where(Delivery.status == status.value)
    query = scheduled.apply(query, Delivery.scheduled_at)
    if after is not None:
        query = query.where(keyset.after(Delivery.created_at, Delivery.id, after))
    rows = await session.execute(query.order_by(Delivery.created_at, Delivery.id).limit(limit))
    return [(d, a) for d, a in rows.all()]


async def page_accounts(
    session: AsyncSession,
    workspace_id: str,
    *,
    limit: int,
    after: keyset.Key | None,
    platform: str | None = None,
    status: AccountStatus | None = None,
) -> list[Account]:
    """Connected (not deleted) accounts, oldest first by (created_at, id)."""
    query = select(Account).where(
        Account.workspace_id == workspace_id, Account.deleted_at.is_(None)
    )
    if platform is not None:
        query = query.where(Account.platform == platform)
    if status is not None:
        query = query.where(Account.status == status.value)
    if after is not None:
        query = query.where(keyset.after(Account.created_at, Account.id, after))
    rows = await session.execute(query.order_by(Account.created_at, Account.id).limit(limit))
    return list(rows.scalars())


# Lists of a workspace's own rows with nothing to filter by.
Owned = TypeVar("Owned", ApiKey, Queue, Recurrence)


async def page_owned(
    session: AsyncSession,
    model: type[Owned],
    workspace_id: str,
    *,
    limit: int,
    after: keyset.Key | None,
) -> list[Owned]:
    """The workspace's rows of `model` (API keys, revoked ones too; queues; recurrences),
    oldest first by (created_at, id)."""
    query = select(model).where(model.workspace_id == workspace_id)
    if after is not None:
        query = query.where(keyset.after(model.created_at, model.id, after))
    rows = await session.execute(query.order_by(model.created_at, model.id).limit(limit))
    return list(rows.scalars())


async def page_activity(
    session: AsyncSession,
    workspace_id: str,
    *,
    limit: int,
    before: int | None,
    post_id: str | None = None,
    account_id: str | None = None,
    kind: str | None = None,
    at: TimeRange = TimeRange(),
) -> list[Activity]:
    """Newest first by id (entries are only appended, so ids follow time). `account_id` keeps
    the entries about that account's deliveries."""
    query = select(Activity).where(Activity.workspace_id == workspace_id)
    if post_id is not None:
        query = query.where(Activity.post_id == post_id)
    if account_id is not None:
        query = query.where(
            Activity.delivery_id.in_(select(Delivery.id).where(Delivery.account_id == account_id))
        )
    if kind is not None:
        query = query.where(Activity.event == kind)
    query = at.apply(query, Activity.at)
    if before is not None:
        query = query.where(Activity.id < before)
    rows = await session.execute(query.order_by(Activity.id.desc()).limit(limit))
    return list(rows.scalars())
