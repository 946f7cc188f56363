"""The queries of the reconciliation of `unknown` deliveries: which are due for a look, and the
writes that settle one or put its next look off. Every write is conditional on the row still
being the unknown row that was read (status and `updated_at`), so two workers, or a person
resolving it meanwhile, never both settle it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from postpilot.core.states import DeliveryStatus
from postpilot.core.timezones import as_utc
from postpilot.core.transitions import Transition
from postpilot.store import work
from postpilot.store.work import WorkItem, accounts, deliveries, posts


@dataclass(frozen=True, slots=True)
class UnknownDelivery:
    item: WorkItem
    seen_at: datetime  # its `updated_at` when read: the version a settling write requires


async def due_for_a_look(
    conn: AsyncConnection,
    *,
    now: datetime,
    unknown_since: datetime,
    platforms: Sequence[str],
    limit: int,
) -> list[UnknownDelivery]:
    """Unknown deliveries on these platforms whose next look is due, unknown since at most
    `unknown_since`, oldest look first."""
    columns = [c for c in work.content_columns() if c.name not in ("post_id", "account_id")]
    statement = (
        select(*work.CLAIM_COLUMNS, deliveries.c.updated_at.label("seen_at"), *columns)
        .select_from(
            deliveries.join(posts, posts.c.id == deliveries.c.post_id).join(
                accounts, accounts.c.id == deliveries.c.account_id
            )
        )
        .where(
            deliveries.c.status == DeliveryStatus.UNKNOWN.value,
            deliveries.c.platform.in_(platforms),
            deliveries.c.due_at <= now,
            deliveries.c.updated_at <= unknown_since,
        )
        .order_by(deliveries.c.due_at, deliveries.c.id)
        .limit(limit)
    )
    rows = (await conn.execute(statement)).all()
    return [UnknownDelivery(work.work_item(row, row), as_utc(row.seen_at)) for row in rows]


def _still_unknown(delivery_id: str, seen_at: datetime) -> tuple[ColumnElement[bool], ...]:
    return (
        deliveries.c.id == delivery_id,
        deliveries.c.status == DeliveryStatus.UNKNOWN.value,
        deliveries.c.updated_at == seen_at,
    )


async def put_off_look(
    conn: AsyncConnection, delivery_id: str, *, seen_at: datetime, until: datetime
) -> bool:
    """Its next look at `until` (an unknown delivery's `due_at` means nothing else)."""
    moved = await conn.execute(
        update(deliveries).where(*_still_unknown(delivery_id, seen_at)).values(due_at=until)
    )
    return bool(moved.rowcount == 1)


async def settle(
    conn: AsyncConnection,
    delivery_id: str,
    *,
    seen_at: datetime,
    transition: Transition,
    now: datetime,
) -> bool:
    """Write what the look decided; False when someone settled it meanwhile."""
    written = await conn.execute(
        update(deliveries)
        .where(*_still_unknown(delivery_id, seen_at))
        .values(
            status=transition.status.value,
            due_at=transition.due_at,
            last_error=transition.error,
            platform_post_id=transition.platform_post_id,
            platform_url=transition.platform_url,
            published_at=transition.published_at,
            updated_at=now,
        )
    )
    return bool(written.rowcount == 1)


async def platform_ids_held(
    conn: AsyncConnection, *, account_id: str, other_than: str, since: datetime
) -> frozenset[str]:
    """Platform ids the account's other deliveries published since `since` hold."""
    rows = await conn.execute(
        select(deliveries.c.platform_post_id).where(
            deliveries.c.account_id == account_id,
            deliveries.c.id != other_than,
            deliveries.c.platform_post_id.is_not(None),
            deliveries.c.published_at >= since,
        )
    )
    return frozenset(str(value) for value in rows.scalars())
