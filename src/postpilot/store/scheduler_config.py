"""Which scheduler is active and with which knobs, stored so every worker follows a switch at its
next pass; every change is recorded with who, when, from and to."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from postpilot.core.knobs import DEFAULT_SCHEDULER, SchedulerKind
from postpilot.store.tables import SchedulerChange, SchedulerSettings, table_of


@dataclass(frozen=True, slots=True)
class SchedulerConfig:
    active: SchedulerKind = DEFAULT_SCHEDULER
    concurrency: int | None = None  # None: the SCHEDULER_CONCURRENCY setting
    batch_size: int | None = None  # None: the SCHEDULER_BATCH_SIZE setting
    interval_seconds: float | None = None  # None: wake when work is due
    updated_at: datetime | None = None
    updated_by: str | None = None


async def read(conn: AsyncConnection) -> SchedulerConfig:
    row = (
        await conn.execute(select(table_of(SchedulerSettings)).where(SchedulerSettings.id == 1))
    ).one_or_none()
    if row is None:
        return SchedulerConfig()
    return SchedulerConfig(
        active=SchedulerKind(row.active_scheduler),
        concurrency=row.concurrency,
        batch_size=row.batch_size,
        interval_seconds=row.interval_seconds,
        updated_at=row.updated_at,
        updated_by=row.updated_by,
    )


_UNSET = object()


async def change(
    session: AsyncSession,
    *,
    actor: str,
    now: datetime,
    active: SchedulerKind | None = None,
    concurrency: int | object | None = _UNSET,
    batch_size: int | object | None = _UNSET,
    interval_seconds: float | object | None = _UNSET,
) -> list[SchedulerChange]:
    """Apply the given changes and record one audit row per setting that really changed."""
    row = await session.get(SchedulerSettings, 1)
    if row is None:
        row = SchedulerSettings(id=1, active_scheduler=DEFAULT_SCHEDULER.value, updated_at=now)
        session.add(row)
    wanted: dict[str, object] = {
        "active_scheduler": SchedulerKind(active).value if active is not None else _UNSET,
        "concurrency": concurrency,
        "batch_size": batch_size,
        "interval_seconds": interval_seconds,
    }
    changes = []
    for name, value in wanted.items():
        if value is _UNSET or getattr(row, name) == value:
            continue
        changes.append(
            SchedulerChange(
                at=now,
                actor=actor,
                setting=name,
                old_value=_text(getattr(row, name)),
                new_value=_text(value),
            )
        )
        setattr(row, name, value)
    if changes:
        row.updated_at = now
        row.updated_by = actor
        session.add_all(changes)
    await session.flush()
    return changes


async def history(session: AsyncSession, limit: int = 50) -> list[SchedulerChange]:
    rows = await session.execute(
        select(SchedulerChange).order_by(SchedulerChange.id.desc()).limit(limit)
    )
    return list(rows.scalars())


def _text(value: object) -> str | None:
    return None if value is None else str(value)
