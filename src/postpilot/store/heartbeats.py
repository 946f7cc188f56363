"""Worker heartbeats: who is polling, and since when."""

from __future__ import annotations

import os
import socket
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

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
    state: str = "running",
) -> None:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(table).values(
        worker_id=worker_id,
        hostname=hostname,
        pid=pid,
        started_at=started_at,
        last_beat_at=now,
        state=state,
    )
    await conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[table.c.worker_id], set_={"last_beat_at": now, "state": state}
        )
    )


CRON = "cron"


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
        state=CRON,
    )


async def running(conn: AsyncConnection) -> list[WorkerHeartbeat]:
    rows = await conn.execute(select(table).where(table.c.state == "running"))
    return [WorkerHeartbeat(**row._mapping) for row in rows]
