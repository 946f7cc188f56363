"""Webhook subscriptions and their outbox: every statement the API and the sender run.

The outbox is claimed like deliveries are: PostgreSQL skips rows another process is taking
(`FOR UPDATE SKIP LOCKED`), SQLite has one writer (`UPDATE ... RETURNING`). A claim moves the
row's `next_attempt_at` to its lease end, so a sender that dies leaves the row due again when
the lease runs out; an outcome is written only where the claim still holds."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from postpilot.core.events import Message, delivery_event
from postpilot.core.states import DeliveryStatus
from postpilot.core.timezones import as_utc
from postpilot.core.transitions import Event, Transition
from postpilot.store.tables import (
    Delivery,
    WebhookOutbox,
    WebhookSubscription,
    new_id,
    table_of,
)

subscriptions = table_of(WebhookSubscription)
outbox = table_of(WebhookOutbox)
RESOLVER = "person"  # the `scheduler` of an event a person's resolution wrote


class OutboxStatus(enum.StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Position:
    """Where a page of newest-first rows ended: the last row's (created_at, id)."""

    created_at: datetime
    id: str


# --- subscriptions -------------------------------------------------------------------------


async def create_subscription(
    session: AsyncSession,
    *,
    workspace_id: str,
    url: str,
    events: list[str],
    secret: str,  # already encrypted
    enabled: bool,
    description: str,
    now: datetime,
) -> WebhookSubscription:
    row = WebhookSubscription(
        workspace_id=workspace_id,
        url=url,
        events=events,
        secret=secret,
        enabled=enabled,
        description=description,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    await session.flush()
    return row


async def get_subscription(
    session: AsyncSession, workspace_id: str, subscription_id: str
) -> WebhookSubscription | None:
    """The subscription, only if it belongs to `workspace_id`."""
    found = await session.execute(
        select(WebhookSubscription).where(
            WebhookSubscription.id == subscription_id,
            WebhookSubscription.workspace_id == workspace_id,
        )
    )
    return found.scalar_one_or_none()


async def list_subscriptions(
    session: AsyncSession, workspace_id: str, *, limit: int, after: Position | None
) -> list[WebhookSubscription]:
    """Newest first, `limit` of them after `after`."""
    query = select(WebhookSubscription).where(WebhookSubscription.workspace_id == workspace_id)
    if after is not None:
        query = query.where(_before(WebhookSubscription.created_at, WebhookSubscription.id, after))
    query = query.order_by(
        WebhookSubscription.created_at.desc(), WebhookSubscription.id.desc()
    ).limit(limit)
    return list((await session.execute(query)).scalars())


async def delete_subscription(session: AsyncSession, row: WebhookSubscription) -> None:
    # Its outbox rows go with it (the foreign key cascades on both databases).
    await session.execute(delete(outbox).where(outbox.c.subscription_id == row.id))
    await session.delete(row)


@dataclass(frozen=True, slots=True)
class Listener:
    id: str
    workspace_id: str
    events: list[str]

    def wants(self, event: str) -> bool:
        return "*" in self.events or event in self.events


async def listeners(conn: AsyncConnection, workspace_ids: Iterable[str]) -> list[Listener]:
    """The enabled subscriptions of these workspaces."""
    wanted = sorted(set(workspace_ids))
    if not wanted:
        return []
    rows = await conn.execute(
        select(subscriptions.c.id, subscriptions.c.workspace_id, subscriptions.c.events).where(
            subscriptions.c.workspace_id.in_(wanted), subscriptions.c.enabled.is_(True)
        )
    )
    return [Listener(r.id, r.workspace_id, list(r.events or [])) for r in rows]


# --- the outbox ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Entry:
    subscription_id: str
    workspace_id: str
    event_id: str
    event: str
    payload: dict[str, Any]


def entries(messages: Sequence[Message], listeners: Sequence[Listener]) -> list[Entry]:
    """One row per (subscription, message) where the subscription's workspace is the event's
    and it wants the event. Pure."""
    rows = []
    for message in messages:
        workspace = message.workspace_id
        for listener in listeners:
            if listener.workspace_id == workspace and listener.wants(message.kind):
                rows.append(
                    Entry(
                        subscription_id=listener.id,
                        workspace_id=workspace,
                        event_id=message.id,
                        event=message.kind,
                        payload=message.payload,
                    )
                )
    return rows


async def record_events(
    conn: AsyncConnection, messages: Sequence[Message], *, now: datetime
) -> int:
    """Write `messages` for every enabled subscription that wants them, in the caller's
    transaction (the one that writes what they announce); how many rows that made."""
    if not messages:
        return 0
    found = await listeners(conn, {m.workspace_id for m in messages})
    rows = entries(messages, found)
    await enqueue(conn, rows, now=now)
    return len(rows)


@dataclass(frozen=True, slots=True)
class _Resolved:
    """A delivery a person settled, as an event tells of it."""

    id: str
    post_id: str
    workspace_id: str
    account_id: str
    platform: str
    scheduled_at: datetime


async def announce_resolution(session: AsyncSession, delivery: Delivery, *, now: datetime) -> int:
    """A person's resolution of `delivery` (already applied to it) as a webhook event, in the
    session's transaction, the one that writes the resolution: published or failed are
    announced like a pass's outcomes; a retry announces nothing (the next pass will)."""
    published_at = delivery.published_at
    transition = Transition(
        status=DeliveryStatus(delivery.status),
        attempts=delivery.attempts,
        due_at=as_utc(delivery.due_at),
        event=Event.RESOLVED,
        detail=f"resolved as {delivery.status} by a person",
        error=delivery.last_error if delivery.status == DeliveryStatus.FAILED.value else None,
        platform_post_id=delivery.platform_post_id,
        platform_url=delivery.platform_url,
        published_at=as_utc(published_at) if published_at is not None else None,
    )
    subject = _Resolved(
        id=delivery.id,
        post_id=delivery.post_id,
        workspace_id=delivery.workspace_id,
        account_id=delivery.account_id,
        platform=delivery.platform,
        scheduled_at=as_utc(delivery.scheduled_at),
    )
    message = delivery_event(subject, transition, pass_id=new_id(), scheduler=RESOLVER)
    if message is None:
        return 0
    return await record_events(await session.connection(), [message], now=now)


async def enqueue(conn: AsyncConnection, entries: Sequence[Entry], *, now: datetime) -> None:
    """One statement for all of them; an event already written for a subscription is kept
    as it is (announcing it again changes nothing)."""
    if not entries:
        return
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(outbox).values(
        [
            {
                "id": new_id(),
                "subscription_id": e.subscription_id,
                "workspace_id": e.workspace_id,
                "event_id": e.event_id,
                "event": e.event,
                "payload": e.payload,
                "status": OutboxStatus.PENDING.value,
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
            }
            for e in entries
        ]
    )
    await conn.execute(
        stmt.on_conflict_do_nothing(index_elements=[outbox.c.subscription_id, outbox.c.event_id])
    )


@dataclass(frozen=True, slots=True)
class Claimed:
    id: str
    subscription_id: str
    event_id: str
    event: str
    payload: dict[str, Any]
    attempts: int  # counting the one this claim is for
    url: str
    secret: str  # encrypted


async def claim(
    conn: AsyncConnection, *, claimer: str, now: datetime, lease: timedelta, limit: int
) -> list[Claimed]:
    """Take up to `limit` due rows of enabled subscriptions (a disabled one's rows wait)."""
    due = (
        select(outbox.c.id)
        .join(subscriptions, subscriptions.c.id == outbox.c.subscription_id)
        .where(
            outbox.c.status == OutboxStatus.PENDING.value,
            outbox.c.next_attempt_at <= now,
            subscriptions.c.enabled.is_(True),
        )
        .order_by(outbox.c.next_attempt_at, outbox.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True, of=outbox)
    )
    taken = await conn.execute(
        update(outbox)
        .where(outbox.c.id.in_(due.scalar_subquery()))
        .values(
            claimed_by=claimer,
            claimed_until=now + lease,
            next_attempt_at=now + lease,
            attempts=outbox.c.attempts + 1,
        )
        .returning(
            outbox.c.id,
            outbox.c.subscription_id,
            outbox.c.event_id,
            outbox.c.event,
            outbox.c.payload,
            outbox.c.attempts,
        )
    )
    rows = list(taken)
    if not rows:
        return []
    targets = {
        r.id: (r.url, r.secret)
        for r in await conn.execute(
            select(subscriptions.c.id, subscriptions.c.url, subscriptions.c.secret).where(
                subscriptions.c.id.in_({r.subscription_id for r in rows})
            )
        )
    }
    return [
        Claimed(
            id=r.id,
            subscription_id=r.subscription_id,
            event_id=r.event_id,
            event=r.event,
            payload=r.payload,
            attempts=r.attempts,
            url=targets[r.subscription_id][0],
            secret=targets[r.subscription_id][1],
        )
        for r in rows
        if r.subscription_id in targets
    ]


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one attempt came to, as the row will say it."""

    status: OutboxStatus
    next_attempt_at: datetime
    last_status: int | None
    last_error: str | None
    sent_at: datetime | None = None


async def settle(conn: AsyncConnection, row_id: str, *, claimer: str, outcome: Outcome) -> bool:
    """Write an attempt's outcome where `claimer` still holds the row; False if it lost it."""
    done = await conn.execute(
        update(outbox)
        .where(outbox.c.id == row_id, outbox.c.claimed_by == claimer)
        .values(
            status=outcome.status.value,
            next_attempt_at=outcome.next_attempt_at,
            last_status=outcome.last_status,
            last_error=outcome.last_error,
            sent_at=outcome.sent_at,
            claimed_by=None,
            claimed_until=None,
        )
    )
    return bool(done.rowcount)


async def list_deliveries(
    session: AsyncSession,
    subscription_id: str,
    *,
    limit: int,
    after: Position | None,
    status: OutboxStatus | None = None,
) -> list[WebhookOutbox]:
    """A subscription's delivery log, newest first."""
    query = select(WebhookOutbox).where(WebhookOutbox.subscription_id == subscription_id)
    if status is not None:
        query = query.where(WebhookOutbox.status == status.value)
    if after is not None:
        query = query.where(_before(WebhookOutbox.created_at, WebhookOutbox.id, after))
    query = query.order_by(WebhookOutbox.created_at.desc(), WebhookOutbox.id.desc()).limit(limit)
    return list((await session.execute(query)).scalars())


async def redeliver(
    session: AsyncSession, subscription_id: str, delivery_id: str, *, now: datetime
) -> WebhookOutbox | None:
    """Send this row again as soon as a sender looks, with a fresh count of attempts (also a
    sent one: the receiver deduplicates on the event id). A sender still holding it loses it."""
    found = await session.execute(
        update(outbox)
        .where(outbox.c.id == delivery_id, outbox.c.subscription_id == subscription_id)
        .values(
            status=OutboxStatus.PENDING.value,
            attempts=0,
            next_attempt_at=now,
            claimed_by=None,
            claimed_until=None,
            sent_at=None,
        )
        .returning(outbox.c.id)
    )
    if found.scalar_one_or_none() is None:
        return None
    return await session.get(WebhookOutbox, delivery_id, populate_existing=True)


async def prune(conn: AsyncConnection, *, before: datetime) -> int:
    """Remove the log of events settled (sent or failed) before `before`; pending ones stay."""
    done = await conn.execute(
        delete(outbox).where(
            outbox.c.status.in_([OutboxStatus.SENT.value, OutboxStatus.FAILED.value]),
            outbox.c.created_at < before,
        )
    )
    return int(done.rowcount or 0)


async def pending_count(conn: AsyncConnection) -> int:
    found = await conn.execute(
        select(func.count())
        .select_from(outbox)
        .where(outbox.c.status == OutboxStatus.PENDING.value)
    )
    return int(found.scalar_one())


def _before(created_at: Any, row_id: Any, after: Position) -> Any:
    return or_(
        created_at < after.created_at,
        and_(created_at == after.created_at, row_id < after.id),
    )
