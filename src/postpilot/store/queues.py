"""Queues in the store: their posts in order, and the re-timing that maps them to slots.

The rule: a queue's *waiting* posts (not cancelled, no delivery started: every delivery still
scheduled with no attempt) take, in queue order, the queue's free slots after now, one post a
slot (core/queue_slots.py). Any change (a post added, removed, reordered, shuffled, the slots
edited, the queue resumed) re-times every waiting post in the same transaction, so removing one
moves the later ones up a slot. A post whose publishing has started keeps its time and leaves
the order. A paused queue holds its waiting posts' deliveries (due at the far end of time) until
it is resumed, when they take the slots after that moment."""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from postpilot.core import queue_slots
from postpilot.core.queue_slots import MAX_WAITING
from postpilot.core.states import DeliveryStatus
from postpilot.core.timezones import LATEST, as_utc
from postpilot.core.transitions import Event
from postpilot.errors import PostpilotError
from postpilot.store import accounts as store_accounts
from postpilot.store import posts as store_posts
from postpilot.store.tables import Activity, Delivery, Post, Queue, QueueEntry

SCHEDULED = DeliveryStatus.SCHEDULED.value
log = logging.getLogger(__name__)


class QueueRefusal(PostpilotError):
    """The queue cannot take this change."""


@dataclass(frozen=True, slots=True)
class EntryView:
    entry: QueueEntry
    post: Post
    waiting: bool  # still in the order: nothing of it has started


async def create_queue(
    session: AsyncSession,
    *,
    workspace_id: str,
    name: str,
    timezone: str,
    slots: Sequence[queue_slots.Slot],
    account_ids: list[str],
    paused: bool,
    now: datetime,
) -> Queue:
    queue = Queue(
        workspace_id=workspace_id,
        name=name,
        timezone=timezone,
        slots=[s.describe() for s in slots],
        account_ids=account_ids,
        paused=paused,
        created_at=now,
        updated_at=now,
    )
    session.add(queue)
    await session.flush()
    return queue


async def get_queue(session: AsyncSession, workspace_id: str, queue_id: str) -> Queue | None:
    queue = await session.get(Queue, queue_id)
    return queue if queue is not None and queue.workspace_id == workspace_id else None


async def list_queues(session: AsyncSession, workspace_id: str) -> list[Queue]:
    rows = await session.execute(
        select(Queue).where(Queue.workspace_id == workspace_id).order_by(Queue.created_at, Queue.id)
    )
    return list(rows.scalars())


async def update_queue(
    session: AsyncSession, queue: Queue, *, changes: dict[str, Any], now: datetime
) -> None:
    for name, value in changes.items():
        setattr(queue, name, value)
    queue.updated_at = now
    await retime(session, queue, now=now)


async def delete_queue(session: AsyncSession, queue: Queue, *, now: datetime) -> None:
    """The queue goes; its posts stay scheduled at the times they had."""
    if queue.paused:
        await _release(session, [v.post for v in await entries(session, queue.id)], now)
    await session.execute(delete(QueueEntry).where(QueueEntry.queue_id == queue.id))
    await session.delete(queue)


async def entries(
    session: AsyncSession, queue_id: str, *, now: datetime | None = None
) -> list[EntryView]:
    """The queue's posts in order, each saying whether it still waits for a slot (given
    `now`, a post whose slot has come keeps it and waits no more)."""
    rows = (
        await session.execute(
            select(QueueEntry, Post)
            .join(Post, Post.id == QueueEntry.post_id)
            .where(QueueEntry.queue_id == queue_id)
            .order_by(QueueEntry.position, QueueEntry.post_id)
        )
    ).all()
    started = await _started(session, [post.id for _, post in rows], now=now)
    return [
        EntryView(entry, post, waiting=post.cancelled_at is None and post.id not in started)
        for entry, post in rows
    ]


async def _started(
    session: AsyncSession, post_ids: list[str], *, now: datetime | None = None
) -> set[str]:
    """Posts with a delivery no longer waiting untouched (claimed, sent, retried, cancelled)
    and, given `now`, those whose slot has come (due, or rescheduled by a rate limit): a
    worker may be about to take them, so the queue no longer moves them."""
    if not post_ids:
        return set()
    moved_on = (Delivery.status != SCHEDULED) | (Delivery.attempts > 0)
    if now is not None:
        moved_on = moved_on | ((Delivery.scheduled_at <= now) & (Delivery.due_at != LATEST))
    rows = await session.execute(
        select(Delivery.post_id).where(Delivery.post_id.in_(post_ids), moved_on).distinct()
    )
    return {row[0] for row in rows}


async def entry_of(session: AsyncSession, post_id: str) -> QueueEntry | None:
    return await session.get(QueueEntry, post_id)


async def add_post(
    session: AsyncSession,
    queue: Queue,
    post: Post,
    *,
    now: datetime,
    evergreen_gap: timedelta | None = None,
    variants: Sequence[str] = (),
    not_before: datetime | None = None,
) -> None:
    """Put `post` at the end of `queue` and re-time the queue. Refused for a post in a queue
    already, one that started publishing, or one aimed at accounts the queue does not serve."""
    if not queue.slots:
        raise QueueRefusal(f"queue {queue.name!r} has no slots: add some first")
    if sum(v.waiting for v in await entries(session, queue.id, now=now)) >= MAX_WAITING:
        raise QueueRefusal(f"queue {queue.name!r} holds {queue_slots.MAX_WAITING} posts already")
    if await entry_of(session, post.id) is not None:
        raise QueueRefusal(f"post {post.id} is in a queue already: remove it from there first")
    if post.cancelled_at is not None or await _started(session, [post.id]):
        raise QueueRefusal(f"post {post.id} was cancelled or has started publishing")
    targets = await _target_ids(session, post.id)
    outside = sorted(targets - set(queue.account_ids))
    if outside:
        raise QueueRefusal(
            f"post {post.id} goes to account(s) this queue does not serve: {', '.join(outside)}"
        )
    last = (
        await session.execute(
            select(func.max(QueueEntry.position)).where(QueueEntry.queue_id == queue.id)
        )
    ).scalar_one()
    session.add(
        QueueEntry(
            post_id=post.id,
            queue_id=queue.id,
            position=(last or 0) + 1,
            evergreen_gap_seconds=int(evergreen_gap.total_seconds()) if evergreen_gap else None,
            variants=list(variants),
            requeued=False,
            not_before=not_before,
        )
    )
    # Held until the queue times it, so the time it had (now, for a new post) is no slot.
    await session.execute(
        update(Delivery)
        .where(Delivery.post_id == post.id, Delivery.status == SCHEDULED, Delivery.attempts == 0)
        .values(due_at=LATEST, updated_at=now)
    )
    await session.flush()
    await retime(session, queue, now=now)


async def _target_ids(session: AsyncSession, post_id: str) -> set[str]:
    rows = await session.execute(
        select(Delivery.account_id).where(
            Delivery.post_id == post_id, Delivery.status != DeliveryStatus.CANCELLED.value
        )
    )
    return {row[0] for row in rows}


async def remove_post(session: AsyncSession, post_id: str, *, now: datetime) -> None:
    """Take the post out of its queue (if any) and move the later posts up."""
    entry = await entry_of(session, post_id)
    if entry is None:
        return
    queue = await session.get(Queue, entry.queue_id)
    await session.delete(entry)
    await session.flush()
    if queue is not None:
        if queue.paused:
            post = await session.get(Post, post_id)
            await _release(session, [post] if post is not None else [], now)
        await retime(session, queue, now=now)


async def after_edit(
    session: AsyncSession, post_id: str, *, rescheduled: bool, now: datetime
) -> None:
    """A queued post was edited: given a time of its own it leaves the queue (its slot is
    freed); otherwise the queue times it again (an edit must not release a held post)."""
    if rescheduled:
        await remove_post(session, post_id, now=now)
        return
    entry = await entry_of(session, post_id)
    queue = await session.get(Queue, entry.queue_id) if entry is not None else None
    if queue is not None:
        await retime(session, queue, now=now)


async def _release(session: AsyncSession, held: Sequence[Post], now: datetime) -> None:
    """Posts leaving a paused queue are due again at their own time (at once if it passed)."""
    for post in held:
        await session.execute(
            update(Delivery)
            .where(
                Delivery.post_id == post.id,
                Delivery.status == SCHEDULED,
                Delivery.attempts == 0,
                Delivery.due_at == LATEST,
            )
            .values(due_at=post.scheduled_at, updated_at=now)
        )


async def reorder(
    session: AsyncSession, queue: Queue, post_ids: list[str], *, now: datetime
) -> None:
    """The waiting posts in this order: `post_ids` must name each of them exactly once."""
    views = [v for v in await entries(session, queue.id, now=now) if v.waiting]
    expected = {v.post.id for v in views}
    if len(set(post_ids)) != len(post_ids) or set(post_ids) != expected:
        raise QueueRefusal(
            "post_ids must list each waiting post of the queue exactly once "
            f"({len(expected)} post(s); GET /api/queues/{queue.id}/posts lists them)"
        )
    await _place(session, queue, [next(v for v in views if v.post.id == i) for i in post_ids], now)


async def shuffle(
    session: AsyncSession, queue: Queue, *, now: datetime, rng: random.Random | None = None
) -> None:
    views = [v for v in await entries(session, queue.id, now=now) if v.waiting]
    (rng or random.SystemRandom()).shuffle(views)
    await _place(session, queue, views, now)


async def _place(
    session: AsyncSession, queue: Queue, ordered: list[EntryView], now: datetime
) -> None:
    # Waiting posts go after every post that has left the order, in the order given.
    last = (
        await session.execute(
            select(func.max(QueueEntry.position)).where(QueueEntry.queue_id == queue.id)
        )
    ).scalar_one()
    for offset, view in enumerate(ordered, start=(last or 0) + 1):
        view.entry.position = offset
    await session.flush()
    await retime(session, queue, now=now)


async def retime(session: AsyncSession, queue: Queue, *, now: datetime) -> dict[str, datetime]:
    """Give every waiting post its slot (see the module's rule); returns post id -> time.
    Only deliveries still scheduled with no attempt are moved: one a worker holds is left."""
    views = [v for v in await entries(session, queue.id, now=now) if v.waiting]
    if queue.paused:
        times = {v.post.id: LATEST for v in views}
    else:
        times = queue_slots.assign(
            [
                queue_slots.Waiting(
                    v.post.id, as_utc(v.entry.not_before) if v.entry.not_before else None
                )
                for v in views
            ],
            queue_slots.parse_slots(queue.slots),
            queue.timezone,
            now,
        )
    moved = 0
    for view in views:
        when = times.get(view.post.id)
        if when is None:  # a queue without slots: the post keeps its time
            continue
        if not queue.paused:
            view.post.scheduled_at = when
        # Only what changes is written, so re-timing an unchanged queue writes nothing.
        result = await session.execute(
            update(Delivery)
            .where(
                Delivery.post_id == view.post.id,
                Delivery.status == SCHEDULED,
                Delivery.attempts == 0,
                Delivery.due_at != when,
            )
            .values(scheduled_at=view.post.scheduled_at, due_at=when, updated_at=now)
        )
        if not result.rowcount:  # type: ignore[attr-defined]
            continue
        moved += 1
        view.post.updated_at = now
        session.add(
            Activity(
                workspace_id=view.post.workspace_id,
                post_id=view.post.id,
                at=now,
                event=Event.UPDATED.value,
                detail=f"queue {queue.name!r}: "
                + ("held while paused" if queue.paused else f"slot {when.isoformat()}"),
                actor="queue",
            )
        )
    await session.flush()
    if moved:
        await store_posts.notify_due(session)
    return times


async def requeue_evergreen(session: AsyncSession, *, now: datetime, limit: int = 100) -> int:
    """Evergreen posts that went out come back at the end of their queue, as a new post that
    takes no slot before the gap has passed; the next text variant (if any) is used, the
    current one going to the back of the cycle. Returns how many came back."""
    published, cancelled = DeliveryStatus.PUBLISHED.value, DeliveryStatus.CANCELLED.value
    of_entry = Delivery.post_id == QueueEntry.post_id
    # Only posts that went out, so the limit never fills up with posts still waiting.
    unfinished = select(Delivery.id).where(of_entry, Delivery.status.not_in((published, cancelled)))
    sent = select(Delivery.id).where(of_entry, Delivery.status == published)
    candidates = (
        await session.execute(
            select(QueueEntry, Post, Queue)
            .join(Post, Post.id == QueueEntry.post_id)
            .join(Queue, Queue.id == QueueEntry.queue_id)
            .where(
                QueueEntry.evergreen_gap_seconds.is_not(None),
                QueueEntry.requeued.is_(False),
                ~unfinished.exists(),
                sent.exists(),
            )
            .limit(limit)
        )
    ).all()
    came_back = 0
    for entry, post, queue in candidates:
        last_sent = await _all_published(session, post.id)
        if last_sent is None:
            continue
        # Claimed first: a concurrent worker's update finds requeued already set and stops.
        claimed = await session.execute(
            update(QueueEntry)
            .where(QueueEntry.post_id == entry.post_id, QueueEntry.requeued.is_(False))
            .values(requeued=True)
        )
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            continue
        found = await store_accounts.accounts_by_ids(
            session, post.workspace_id, sorted(await _target_ids(session, post.id))
        )
        if not found:
            continue
        variants = list(entry.variants)
        text = variants.pop(0) if variants else post.text
        if entry.variants:
            variants.append(post.text)
        gap = timedelta(seconds=entry.evergreen_gap_seconds or 0)
        try:
            # A savepoint: a queue that cannot take it now (full, its slots or accounts
            # changed) leaves no post behind; the entry stays marked, so it is not retried.
            async with session.begin_nested():
                again = await store_posts.create_post(
                    session,
                    workspace_id=post.workspace_id,
                    text_=text,
                    media_urls=list(post.media_urls),
                    overrides=dict(post.overrides),
                    scheduled_at=max(now, last_sent + gap),
                    timezone=post.timezone,
                    accounts=list(found.values()),
                    source="evergreen",
                    now=now,
                    actor="evergreen",
                )
                await add_post(
                    session,
                    queue,
                    again,
                    now=now,
                    evergreen_gap=gap,
                    variants=variants,
                    not_before=last_sent + gap,
                )
        except QueueRefusal as exc:
            log.warning("an evergreen post did not come back: %s", exc)
            continue
        came_back += 1
    return came_back


async def _all_published(session: AsyncSession, post_id: str) -> datetime | None:
    """When the last delivery went out, if every live delivery of the post is published."""
    rows = (
        await session.execute(
            select(Delivery.status, Delivery.published_at).where(
                Delivery.post_id == post_id, Delivery.status != DeliveryStatus.CANCELLED.value
            )
        )
    ).all()
    if not rows or any(s != DeliveryStatus.PUBLISHED.value or at is None for s, at in rows):
        return None
    return max(as_utc(at) for _, at in rows if at is not None)
