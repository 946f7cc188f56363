"""Worker heartbeats: who is polling, and since when."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from postpilot.core.states import WorkerState
from postpilot.core.timezones import as_utc
from postpilot.store.tables import WorkerHeartbeat, table_of

table = table_of(WorkerHeartbeat)
# How often a running worker writes its heartbeat.
HEARTBEAT_SECONDS = 5.0


async def beat(
    conn: AsyncConnection,
    *,
    worker_id: str,
    hostname: str,
    pid: int,
    started_at: datetime,
    now: datetime,
    state: WorkerState = WorkerState.RUNNING,
) -> None:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(table).values(
        worker_id=worker_id,
        hostname=hostname,
        pid=pid,
        started_at=started_at,
        last_beat_at=now,
        state=WorkerState(state).value,
    )
    await conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[table.c.worker_id],
            set_={"last_beat_at": now, "state": WorkerState(state).value},
        )
    )


async def cron_pass(conn: AsyncConnection, *, now: datetime) -> None:
    """A pass run from cron (HTTP or `run-once`): what readiness needs in a worker-less setup."""
    host = socket.gethostname()
    await beat(
        conn,
        worker_id=f"cron@{host}"[:64],
        hostname=host[:255],
        pid=os.getpid(),
        started_at=now,
        now=now,
        state=WorkerState.CRON,
    )


async def running(conn: AsyncConnection) -> list[WorkerHeartbeat]:
    rows = await conn.execute(select(table).where(table.c.state == WorkerState.RUNNING.value))
    return [WorkerHeartbeat(**row._mapping) for row in rows]


# Workers whose passes are under way (or stuck), as readiness counts them.
_WORKING = (WorkerState.RUNNING.value, WorkerState.STALLED.value)


@dataclass(frozen=True, slots=True)
class Liveness:
    """What readiness reads: the newest beat of each state (running, stalled, cron) and the
    workers (running or stalled) that beat since the cutoff."""

    last_beat: dict[WorkerState, datetime]
    fresh: dict[str, WorkerState]  # worker id -> state


async def liveness(conn: AsyncConnection, *, fresh_since: datetime) -> Liveness:
    newest = await conn.execute(
        select(table.c.state, func.max(table.c.last_beat_at))
        .where(table.c.state.in_((*_WORKING, WorkerState.CRON.value)))
        .group_by(table.c.state)
    )
    fresh = await conn.execute(
        select(table.c.worker_id, table.c.state).where(
            table.c.state.in_(_WORKING), table.c.last_beat_at >= fresh_since
        )
    )
    return Liveness(
        last_beat={WorkerState(state): as_utc(last) for state, last in newest if last is not None},
        fresh={worker: WorkerState(state) for worker, state in fresh},
    )
