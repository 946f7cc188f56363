"""The media library's rows: media items, which posts use them, what may be deleted or purged."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, delete, exists, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql.expression import Exists

from postpilot.core import media_limits
from postpilot.core.states import DeliveryStatus
from postpilot.store.tables import Delivery, MediaItem, Post, PostMedia, RecurrenceMedia

# Deliveries that will still read their media: waiting, in flight, or waiting for a person who
# may send them again.
NEEDING = (
    DeliveryStatus.SCHEDULED.value,
    DeliveryStatus.CLAIMED.value,
    DeliveryStatus.UNKNOWN.value,
)
REFERENCE_PREFIX = media_limits.LIBRARY_PREFIX


def reference(media_id: str) -> str:
    """How a post's media_urls name library media (the fetcher reads it from storage)."""
    return f"{REFERENCE_PREFIX}{media_id}"


def referenced_id(url: str) -> str | None:
    return url[len(REFERENCE_PREFIX) :] if url.startswith(REFERENCE_PREFIX) else None


async def add(session: AsyncSession, item: MediaItem) -> None:
    session.add(item)
    await session.flush()


async def get(session: AsyncSession, workspace_id: str, media_id: str) -> MediaItem | None:
    item = await session.get(MediaItem, media_id)
    return item if item is not None and item.workspace_id == workspace_id else None


async def page(
    session: AsyncSession, workspace_id: str, *, limit: int, after: tuple[datetime, str] | None
) -> list[MediaItem]:
    """Newest first; up to `limit` + 1 rows, so the caller knows whether another page follows."""
    query = select(MediaItem).where(MediaItem.workspace_id == workspace_id)
    if after is not None:
        query = query.where(tuple_(MediaItem.created_at, MediaItem.id) < tuple_(*after))
    query = query.order_by(MediaItem.created_at.desc(), MediaItem.id.desc()).limit(limit + 1)
    return list((await session.scalars(query)).all())


async def by_ids(
    session: AsyncSession, workspace_id: str, ids: Sequence[str]
) -> dict[str, MediaItem]:
    """Those of `ids` that are this workspace's media, share-locked (PostgreSQL) until the
    caller's transaction ends, so a concurrent delete or purge waits for the post being linked."""
    if not ids:
        return {}
    rows = await session.scalars(
        select(MediaItem)
        .where(MediaItem.workspace_id == workspace_id, MediaItem.id.in_(list(ids)))
        .with_for_update(read=True)
    )
    return {item.id: item for item in rows.all()}


async def link_post(
    session: AsyncSession, post_id: str, media_ids: Sequence[str], now: datetime
) -> None:
    """The post uses exactly `media_ids`, in order; their retention starts again."""
    await session.execute(delete(PostMedia).where(PostMedia.post_id == post_id))
    session.add_all(
        PostMedia(post_id=post_id, media_id=media_id, position=position)
        for position, media_id in enumerate(media_ids)
    )
    await _used(session, media_ids, now)


async def link_recurrence(
    session: AsyncSession, recurrence_id: str, media_ids: Sequence[str], now: datetime
) -> None:
    """The recurrence uses exactly `media_ids`, in order; their retention starts again."""
    await session.execute(
        delete(RecurrenceMedia).where(RecurrenceMedia.recurrence_id == recurrence_id)
    )
    session.add_all(
        RecurrenceMedia(recurrence_id=recurrence_id, media_id=media_id, position=position)
        for position, media_id in enumerate(media_ids)
    )
    await _used(session, media_ids, now)


async def _used(session: AsyncSession, media_ids: Sequence[str], now: datetime) -> None:
    """The links just added are written; their media's retention starts again."""
    if media_ids:
        await session.execute(
            update(MediaItem).where(MediaItem.id.in_(list(media_ids))).values(last_used_at=now)
        )
    await session.flush()


def _needed_by(media_id: ColumnElement[str] | InstrumentedAttribute[str]) -> Exists:
    return exists(
        select(Delivery.id)
        .join(PostMedia, PostMedia.post_id == Delivery.post_id)
        .where(PostMedia.media_id == media_id, Delivery.status.in_(NEEDING))
    )


def _recurring_with(media_id: ColumnElement[str] | InstrumentedAttribute[str]) -> Exists:
    # A recurrence lives until it is deleted (paused ones resume): it makes more posts with it.
    return exists(select(RecurrenceMedia.recurrence_id).where(RecurrenceMedia.media_id == media_id))


async def recurrences_needing(session: AsyncSession, media_id: str) -> list[str]:
    """The recurrences that will make more posts with this media."""
    rows = await session.scalars(
        select(RecurrenceMedia.recurrence_id)
        .where(RecurrenceMedia.media_id == media_id)
        .order_by(RecurrenceMedia.recurrence_id)
    )
    return list(rows.all())


async def posts_needing(session: AsyncSession, media_id: str) -> list[str]:
    """The posts that will still publish this media (a delivery not finished)."""
    rows = await session.scalars(
        select(Post.id)
        .join(PostMedia, PostMedia.post_id == Post.id)
        .where(
            PostMedia.media_id == media_id,
            exists(
                select(Delivery.id).where(Delivery.post_id == Post.id, Delivery.status.in_(NEEDING))
            ),
        )
        .order_by(Post.scheduled_at, Post.id)
    )
    return list(rows.all())


async def lock(session: AsyncSession, workspace_id: str, media_id: str) -> MediaItem | None:
    """The item, locked (PostgreSQL) against posts being linked to it until the transaction
    ends: what `posts_needing` answers next stays true until the delete commits."""
    return (
        await session.scalars(
            select(MediaItem)
            .where(MediaItem.id == media_id, MediaItem.workspace_id == workspace_id)
            .with_for_update()
        )
    ).one_or_none()


async def remove(session: AsyncSession, media_id: str) -> None:
    """The row and its links to finished posts (whose deliveries no longer read it)."""
    await session.execute(delete(PostMedia).where(PostMedia.media_id == media_id))
    await session.execute(delete(MediaItem).where(MediaItem.id == media_id))


async def purgeable(session: AsyncSession, cutoff: datetime, *, limit: int) -> list[MediaItem]:
    """Media unused since before `cutoff` that no unfinished delivery and no recurrence needs,
    oldest first."""
    rows = await session.scalars(
        select(MediaItem)
        .where(
            MediaItem.last_used_at < cutoff,
            ~_needed_by(MediaItem.id),
            ~_recurring_with(MediaItem.id),
        )
        .order_by(MediaItem.last_used_at, MediaItem.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list(rows.all())
