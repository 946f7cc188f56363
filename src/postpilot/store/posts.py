"""Posts and their deliveries, as the API and CLI see them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from sqlalchemy import ColumnElement, case, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from postpilot.core.states import DeliveryStatus, PostStatus, derive_post_status, has_started
from postpilot.core.transitions import Event
from postpilot.errors import PostpilotError
from postpilot.store.tables import Account, Activity, Delivery, Post

NOTIFY_CHANNEL = "postpilot_due"


@dataclass(frozen=True, slots=True)
class PostView:
    post: Post
    deliveries: list[tuple[Delivery, Account]]

    @property
    def status(self) -> PostStatus:
        return derive_post_status(
            (DeliveryStatus(d.status), d.attempts) for d, _ in self.deliveries
        )


async def notify_due(session: AsyncSession) -> None:
    """Wake PostgreSQL workers (LISTEN postpilot_due); SQLite workers use an in-process event."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text("SELECT pg_notify(:channel, '')"), {"channel": NOTIFY_CHANNEL})


async def create_post(
    session: AsyncSession,
    *,
    workspace_id: str,
    text_: str,
    media_urls: list[str],
    overrides: dict[str, str],
    scheduled_at: datetime,
    timezone: str,
    accounts: Sequence[Account],
    source: str = "api",
    now: datetime,
    actor: str = "api",
    account_overrides: dict[str, dict[str, Any]] | None = None,
    external_id: str | None = None,
) -> Post:
    post = Post(
        workspace_id=workspace_id,
        text=text_,
        media_urls=media_urls,
        overrides=overrides,
        account_overrides=account_overrides or {},
        external_id=external_id,
        scheduled_at=scheduled_at,
        timezone=timezone,
        source=source,
        created_at=now,
        updated_at=now,
    )
    session.add(post)
    await session.flush()
    for account in accounts:
        session.add(_delivery(post, account, now))
    session.add(
        Activity(
            workspace_id=workspace_id,
            post_id=post.id,
            at=now,
            event=Event.CREATED.value,
            detail=f"scheduled for {scheduled_at.isoformat()} to {len(accounts)} account(s)",
            actor=actor,
        )
    )
    await session.flush()
    await notify_due(session)
    return post


def _delivery(post: Post, account: Account, now: datetime) -> Delivery:
    return Delivery(
        workspace_id=post.workspace_id,
        post_id=post.id,
        account_id=account.id,
        platform=account.platform,
        status=DeliveryStatus.SCHEDULED.value,
        scheduled_at=post.scheduled_at,
        due_at=post.scheduled_at,
        created_at=now,
        updated_at=now,
    )


async def get_post(session: AsyncSession, workspace_id: str, post_id: str) -> PostView | None:
    post = await session.get(Post, post_id)
    if post is None or post.workspace_id != workspace_id:
        return None
    return (await with_deliveries(session, [post]))[0]


async def with_deliveries(session: AsyncSession, posts: Sequence[Post]) -> list[PostView]:
    if not posts:
        return []
    rows = await session.execute(
        select(Delivery, Account)
        .join(Account, Account.id == Delivery.account_id)
        .where(Delivery.post_id.in_([p.id for p in posts]))
        .order_by(Delivery.created_at, Delivery.id)
    )
    by_post: dict[str, list[tuple[Delivery, Account]]] = {p.id: [] for p in posts}
    for delivery, account in rows.all():
        by_post[delivery.post_id].append((delivery, account))
    return [PostView(post=p, deliveries=by_post[p.id]) for p in posts]


def _delivery_counts() -> list[Any]:
    """A post's deliveries counted by status, as labelled aggregates over `deliveries`."""

    def count(condition: ColumnElement[bool]) -> Any:
        return func.sum(case((condition, 1), else_=0))

    status = Delivery.status
    scheduled, cancelled = DeliveryStatus.SCHEDULED.value, DeliveryStatus.CANCELLED.value
    return [
        func.count().label("total"),
        *(
            count(status == each.value).label(each.value)
            for each in (
                DeliveryStatus.PUBLISHED,
                DeliveryStatus.FAILED,
                DeliveryStatus.CANCELLED,
                DeliveryStatus.UNKNOWN,
                DeliveryStatus.CLAIMED,
                DeliveryStatus.SCHEDULED,
            )
        ),
        count((status == scheduled) & (Delivery.attempts > 0)).label("retrying"),
        count(status.not_in((scheduled, cancelled)) | (Delivery.attempts > 0)).label("started"),
    ]


def status_counts() -> Any:
    return (
        select(Delivery.post_id.label("post_id"), *_delivery_counts())
        .group_by(Delivery.post_id)
        .subquery("counts")
    )


def post_status_sql() -> Any:
    """A post's derived status, as a subquery correlated with `posts`: for a query that stops
    after a few posts (a page, a calendar day) rather than grouping every delivery first."""
    counts = SimpleNamespace(c=SimpleNamespace(**{c.name: c for c in _delivery_counts()}))
    return select(derived_status_sql(counts)).where(Delivery.post_id == Post.id).scalar_subquery()


def derived_status_sql(counts: Any) -> Any:
    """The SQL twin of `core.states.derive_post_status` (a test keeps them in agreement)."""
    c = counts.c
    started = c.started > 0
    return case(
        (c.unknown > 0, PostStatus.NEEDS_ATTENTION.value),
        (c.claimed > 0, PostStatus.PUBLISHING.value),
        (
            c.scheduled > 0,
            case((started, PostStatus.PUBLISHING.value), else_=PostStatus.SCHEDULED.value),
        ),
        (c.cancelled == c.total, PostStatus.CANCELLED.value),
        (c.published == c.total, PostStatus.PUBLISHED.value),
        (c.published > 0, PostStatus.PARTIALLY_PUBLISHED.value),
        else_=PostStatus.FAILED.value,
    )


async def list_posts(
    session: AsyncSession,
    workspace_id: str,
    *,
    status: PostStatus | None = None,
    account_id: str | None = None,
    platform: str | None = None,
    scheduled_from: datetime | None = None,
    scheduled_to: datetime | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[PostView], int]:
    """A page of posts, newest schedule first, and the total matching count."""
    counts = status_counts()
    query = (
        select(Post)
        .join(counts, counts.c.post_id == Post.id)
        .where(Post.workspace_id == workspace_id)
    )
    if status is not None:
        query = query.where(derived_status_sql(counts) == status.value)
    query = _targeting(
        query,
        workspace_id,
        account_id=account_id,
        platform=platform,
        scheduled_from=scheduled_from,
        scheduled_to=scheduled_to,
    )
    total = (await session.execute(select(func.count()).select_from(query.subquery()))).scalar_one()
    page = (
        await session.execute(
            query.order_by(Post.scheduled_at.desc(), Post.id).limit(limit).offset(offset)
        )
    ).scalars()
    return await with_deliveries(session, list(page)), int(total)


async def post_activity(session: AsyncSession, post_id: str) -> list[Activity]:
    rows = await session.execute(
        select(Activity).where(Activity.post_id == post_id).order_by(Activity.id)
    )
    return list(rows.scalars())


async def cancel_post(
    session: AsyncSession, view: PostView, *, now: datetime, actor: str = "api"
) -> list[str]:
    """Cancel every delivery that has not started; returns the ids that were in flight."""
    post = view.post
    result = await session.execute(
        update(Delivery)
        .where(Delivery.post_id == post.id, Delivery.status == DeliveryStatus.SCHEDULED.value)
        .values(status=DeliveryStatus.CANCELLED.value, updated_at=now)
        .returning(Delivery.id)
    )
    cancelled = {row[0] for row in result}
    post.cancelled_at = now
    post.updated_at = now
    in_flight = [d.id for d, _ in view.deliveries if d.status == DeliveryStatus.CLAIMED.value]
    session.add(
        Activity(
            workspace_id=post.workspace_id,
            post_id=post.id,
            at=now,
            event=Event.CANCELLED.value,
            detail=f"cancelled {len(cancelled)} delivery(ies)"
            + (f"; {len(in_flight)} already publishing" if in_flight else ""),
            actor=actor,
        )
    )
    return in_flight


class NotEditable(PostpilotError):
    """The post has started publishing."""


async def update_post(
    session: AsyncSession,
    view: PostView,
    *,
    changes: dict[str, Any],
    add_accounts: Sequence[Account],
    remove_account_ids: set[str],
    now: datetime,
    actor: str = "api",
) -> None:
    """Edit a post none of whose deliveries has started. `changes` holds Post columns."""
    started = [d for d, _ in view.deliveries if has_started(DeliveryStatus(d.status), d.attempts)]
    if started:
        summary = ", ".join(sorted({f"{d.platform} {d.status}" for d in started}))
        raise NotEditable(
            f"the post has started publishing ({summary}): cancel it and create a new one"
        )
    post = view.post
    for name, value in changes.items():
        setattr(post, name, value)
    post.version += 1
    post.updated_at = now
    for delivery, _ in view.deliveries:
        if delivery.status == DeliveryStatus.CANCELLED.value:
            continue  # its account was deleted: it stays cancelled, as history
        if delivery.account_id in remove_account_ids:
            await session.delete(delivery)
        else:
            delivery.scheduled_at = post.scheduled_at
            delivery.due_at = post.scheduled_at
            delivery.updated_at = now
    for account in add_accounts:
        session.add(_delivery(post, account, now))
    session.add(
        Activity(
            workspace_id=post.workspace_id,
            post_id=post.id,
            at=now,
            event=Event.UPDATED.value,
            detail="edited: " + ", ".join(sorted(changes) or ["targets"]),
            actor=actor,
        )
    )
    await session.flush()
    await notify_due(session)


async def list_deliveries(
    session: AsyncSession, workspace_id: str, *, status: DeliveryStatus | None, limit: int
) -> list[tuple[Delivery, Account]]:
    query = (
        select(Delivery, Account)
        .join(Account, Account.id == Delivery.account_id)
        .where(Delivery.workspace_id == workspace_id)
    )
    if status is not None:
        query = query.where(Delivery.status == status.value)
    rows = await session.execute(query.order_by(Delivery.updated_at.desc()).limit(limit))
    return list(rows.all())


async def get_delivery(
    session: AsyncSession, workspace_id: str, delivery_id: str
) -> Delivery | None:
    delivery = await session.get(Delivery, delivery_id)
    if delivery is None or delivery.workspace_id != workspace_id:
        return None
    return delivery


def resolve_delivery(
    session: AsyncSession,
    delivery: Delivery,
    *,
    resolution: str,
    platform_post_id: str | None,
    platform_url: str | None,
    note: str | None,
    now: datetime,
    actor: str = "api",
) -> None:
    """A person settles a delivery: `published` (give its id), `retry` (publish again now)
    or `failed`. Only unknown and failed deliveries can be resolved."""
    if resolution == "published":
        delivery.status = DeliveryStatus.PUBLISHED.value
        delivery.platform_post_id = platform_post_id
        delivery.platform_url = platform_url
        delivery.published_at = now
        delivery.last_error = None
    elif resolution == "retry":
        delivery.status = DeliveryStatus.SCHEDULED.value
        delivery.due_at = now
        delivery.attempts = 0
    else:
        delivery.status = DeliveryStatus.FAILED.value
        delivery.last_error = note or "marked failed by a person"
    delivery.updated_at = now
    session.add(
        Activity(
            workspace_id=delivery.workspace_id,
            post_id=delivery.post_id,
            delivery_id=delivery.id,
            at=now,
            event=Event.RESOLVED.value,
            detail=f"resolved as {resolution}" + (f": {note}" if note else ""),
            actor=actor,
        )
    )


async def by_external_ids(
    session: AsyncSession, workspace_id: str, external_ids: Sequence[str]
) -> dict[str, str]:
    """external id -> post id, for those of `external_ids` this workspace already imported."""
    if not external_ids:
        return {}
    rows = await session.execute(
        select(Post.external_id, Post.id).where(
            Post.workspace_id == workspace_id, Post.external_id.in_(list(external_ids))
        )
    )
    return {external_id: post_id for external_id, post_id in rows.all() if external_id}


def _targeting(
    query: Any,
    workspace_id: str,
    *,
    account_id: str | None,
    platform: str | None,
    scheduled_from: datetime | None,
    scheduled_to: datetime | None,
) -> Any:
    """The posts list's filters other than status: a target account or platform, a schedule
    window (`scheduled_to` exclusive)."""
    if account_id or platform:
        targets = select(Delivery.post_id).where(Delivery.workspace_id == workspace_id)
        if account_id:
            targets = targets.where(Delivery.account_id == account_id)
        if platform:
            targets = targets.where(Delivery.platform == platform)
        query = query.where(Post.id.in_(targets))
    if scheduled_from:
        query = query.where(Post.scheduled_at >= scheduled_from)
    if scheduled_to:
        query = query.where(Post.scheduled_at < scheduled_to)
    return query


def _export_query(
    workspace_id: str,
    *,
    status: PostStatus | None,
    account_id: str | None,
    platform: str | None,
    scheduled_from: datetime | None,
    scheduled_to: datetime | None,
) -> Any:
    """The posts list's filters, in schedule order (oldest first) for an export."""
    query = select(Post).where(Post.workspace_id == workspace_id)
    if status is not None:
        counts = status_counts()
        query = query.join(counts, counts.c.post_id == Post.id).where(
            derived_status_sql(counts) == status.value
        )
    query = _targeting(
        query,
        workspace_id,
        account_id=account_id,
        platform=platform,
        scheduled_from=scheduled_from,
        scheduled_to=scheduled_to,
    )
    return query


async def export_page(
    session: AsyncSession,
    workspace_id: str,
    *,
    after: tuple[datetime, str] | None,
    limit: int,
    **filters: Any,
) -> list[PostView]:
    """The next `limit` posts an export writes, after the (scheduled_at, id) of the last one:
    a keyset, so posts created meanwhile neither shift nor repeat rows."""
    query = _export_query(workspace_id, **filters)
    if after is not None:
        at, post_id = after
        query = query.where(
            (Post.scheduled_at > at) | ((Post.scheduled_at == at) & (Post.id > post_id))
        )
    page = await session.scalars(query.order_by(Post.scheduled_at, Post.id).limit(limit))
    return await with_deliveries(session, list(page))
