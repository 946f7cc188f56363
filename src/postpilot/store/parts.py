"""The parts of a delivery that were sent: written one by one, as soon as the platform answered
for each (a retry reads them and resumes after the last), never overwritten."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from postpilot.core.timezones import as_utc
from postpilot.store.tables import DeliveryPart, table_of

parts = table_of(DeliveryPart)

SENT = "sent"


@dataclass(frozen=True, slots=True)
class StoredPart:
    delivery_id: str
    index: int
    platform_post_id: str
    platform_ref: str | None
    url: str | None
    status: str
    sent_at: datetime


async def record_sent(
    conn: AsyncConnection,
    *,
    delivery_id: str,
    index: int,
    platform_post_id: str,
    platform_ref: str | None,
    url: str | None,
    now: datetime,
) -> None:
    """Record that part `index` was sent. A part already recorded keeps its first row: the
    platform's id of what was sent first is the one replies point at."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(parts).values(
        delivery_id=delivery_id,
        index=index,
        platform_post_id=platform_post_id,
        platform_ref=platform_ref,
        url=url,
        status=SENT,
        sent_at=now,
    )
    await conn.execute(
        statement.on_conflict_do_nothing(index_elements=[parts.c.delivery_id, parts.c.index])
    )


async def sent_parts(conn: AsyncConnection, delivery_ids: Sequence[str]) -> list[StoredPart]:
    """The parts recorded for these deliveries, by delivery then index."""
    if not delivery_ids:
        return []
    rows = await conn.execute(
        select(parts)
        .where(parts.c.delivery_id.in_(list(delivery_ids)))
        .order_by(parts.c.delivery_id, parts.c.index)
    )
    return [
        StoredPart(
            delivery_id=row.delivery_id,
            index=row._mapping["index"],  # `row.index` is the tuple's method
            platform_post_id=row.platform_post_id,
            platform_ref=row.platform_ref,
            url=row.url,
            status=row.status,
            sent_at=as_utc(row.sent_at),
        )
        for row in rows
    ]
