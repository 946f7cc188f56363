"""The due workload, copied: read from a source database in one consistent snapshot (the source
is only read: no lock is taken, no row written), inserted unchanged into an empty copy, and what
became of it there once a pass has run."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table, func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from postpilot.store import work
from postpilot.store.database import Database
from postpilot.store.tables import Activity, Workspace, table_of

CHUNK = 500
workspaces = table_of(Workspace)
# Parents first, the order rows are inserted in.
TABLES: tuple[Table, ...] = (workspaces, work.accounts, work.posts, work.deliveries)

Rows = dict[str, list[dict[str, Any]]]  # table name -> its rows, as column -> value


@dataclass(frozen=True, slots=True)
class FinalState:
    """A delivery as a pass left it, with the activity events passes wrote for it."""

    id: str
    platform: str
    handle: str
    status: str
    attempts: int
    last_error: str | None
    platform_post_id: str | None
    idempotency_key: str
    events: tuple[str, ...]


async def read_due(source: Database, *, now: datetime, limit: int) -> Rows:
    """The deliveries a pass would claim at `now` (pending, due, earliest first, at most `limit`)
    with their posts, accounts and workspaces, in one transaction (REPEATABLE READ on
    PostgreSQL)."""
    deliveries = work.deliveries
    async with source.engine.connect() as conn:
        if not source.is_sqlite:
            await conn.execution_options(isolation_level="REPEATABLE READ")
        async with conn.begin():
            due = await conn.execute(
                select(deliveries)
                .where(deliveries.c.status.in_(work.PENDING), deliveries.c.due_at <= now)
                .order_by(deliveries.c.due_at, deliveries.c.id)
                .limit(limit)
            )
            rows = [dict(row._mapping) for row in due]
            posts = await _by_id(conn, work.posts, {r["post_id"] for r in rows})
            accounts = await _by_id(conn, work.accounts, {r["account_id"] for r in rows})
            spaces = {r["workspace_id"] for r in rows} | {a["workspace_id"] for a in accounts}
            found = await _by_id(conn, workspaces, spaces)
    return {"workspaces": found, "accounts": accounts, "posts": posts, "deliveries": rows}


async def _by_id(conn: AsyncConnection, table: Table, ids: set[str]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    ordered = sorted(ids)
    for start in range(0, len(ordered), CHUNK):
        chunk = ordered[start : start + CHUNK]
        result = await conn.execute(select(table).where(table.c.id.in_(chunk)))
        found.extend(dict(row._mapping) for row in result)
    return found


async def insert_rows(target: Database, rows: Rows) -> None:
    """Insert `rows` into a migrated, empty `target`, parents first, in one transaction."""
    async with target.engine.begin() as conn:
        for table in TABLES:
            given = rows.get(table.name, [])
            for start in range(0, len(given), CHUNK):
                await conn.execute(insert(table), given[start : start + CHUNK])


async def decided(db: Database) -> int:
    """Activity entries passes have written: how far a pass over the copy has come."""
    async with db.engine.connect() as conn:
        count = await conn.execute(
            select(func.count()).select_from(Activity).where(Activity.pass_id.is_not(None))
        )
        return int(count.scalar_one())


async def final_states(db: Database, ids: Sequence[str]) -> list[FinalState]:
    deliveries, accounts = work.deliveries, work.accounts
    async with db.engine.connect() as conn:
        rows = (
            await conn.execute(
                select(
                    deliveries.c.id,
                    deliveries.c.platform,
                    deliveries.c.status,
                    deliveries.c.attempts,
                    deliveries.c.last_error,
                    deliveries.c.platform_post_id,
                    deliveries.c.idempotency_key,
                    accounts.c.handle,
                )
                .select_from(deliveries.join(accounts, accounts.c.id == deliveries.c.account_id))
                .where(deliveries.c.id.in_(ids))
            )
        ).all()
        events: dict[str, list[str]] = {}
        activity = await conn.execute(
            select(Activity.delivery_id, Activity.event)
            .where(Activity.pass_id.is_not(None))
            .order_by(Activity.id)
        )
        for delivery_id, event in activity:
            events.setdefault(str(delivery_id), []).append(str(event))
    return [
        FinalState(
            id=row.id,
            platform=row.platform,
            handle=row.handle,
            status=row.status,
            attempts=row.attempts,
            last_error=row.last_error,
            platform_post_id=row.platform_post_id,
            idempotency_key=row.idempotency_key,
            events=tuple(events.get(row.id, [])),
        )
        for row in rows
    ]
