"""The activity log: appended in bulk by passes, one row at a time by the API."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from postpilot.store import bulk
from postpilot.store.tables import Activity, table_of

activity_table = table_of(Activity)


@dataclass(frozen=True, slots=True)
class Entry:
    workspace_id: str
    post_id: str | None
    delivery_id: str | None
    at: datetime
    event: str
    detail: str
    actor: str
    pass_id: str | None = None


# What a bulk append writes (also the outcome writer's, which appends in its own statement).
COLUMNS: tuple[tuple[str, bulk.ColumnType], ...] = (
    ("workspace_id", "text"),
    ("post_id", "text"),
    ("delivery_id", "text"),
    ("at", "timestamptz"),
    ("event", "text"),
    ("detail", "text"),
    ("actor", "text"),
    ("pass_id", "text"),
)


async def append(conn: AsyncConnection, entries: Sequence[Entry]) -> None:
    """Append every entry in one statement."""
    if not entries:
        return
    rows = bulk.json_rows(conn.dialect.name, COLUMNS)
    names = ", ".join(name for name, _ in COLUMNS)
    values = ", ".join(rows.columns[name] for name, _ in COLUMNS)
    payload = bulk.encode(
        conn.dialect.name,
        (
            {
                "workspace_id": e.workspace_id,
                "post_id": e.post_id,
                "delivery_id": e.delivery_id,
                "at": e.at,
                "event": e.event,
                "detail": e.detail,
                "actor": e.actor,
                "pass_id": e.pass_id,
            }
            for e in entries
        ),
    )
    await conn.execute(
        text(f"INSERT INTO activity ({names}) SELECT {values} FROM {rows.from_clause}").bindparams(
            payload=payload
        )
    )


async def recent(
    session: AsyncSession, workspace_id: str, *, limit: int, before: int | None = None
) -> list[Activity]:
    """A workspace's entries, newest first; `before` (an entry id) pages further back."""
    query = select(Activity).where(Activity.workspace_id == workspace_id)
    if before is not None:
        query = query.where(Activity.id < before)
    rows = await session.execute(query.order_by(Activity.id.desc()).limit(limit))
    return list(rows.scalars())


async def last_detail(conn: AsyncConnection, post_id: str, delivery_id: str) -> str | None:
    """The detail of a delivery's newest activity entry."""
    row = await conn.execute(
        select(activity_table.c.detail)
        .where(activity_table.c.post_id == post_id, activity_table.c.delivery_id == delivery_id)
        .order_by(activity_table.c.id.desc())
        .limit(1)
    )
    return row.scalar_one_or_none()
