"""What the worker and fault tests share: a worker process's environment, the deliveries by
status, and what the sandbox holds in its latency right now."""

from __future__ import annotations

import asyncio
import os

from sqlalchemy import func, select

from postpilot.sandbox.client import SandboxClient
from postpilot.store.database import Database
from postpilot.store.tables import Delivery
from tests.helpers import TEST_SECRET_KEY


def worker_env(db: Database, sandbox: SandboxClient, **extra: str) -> dict[str, str]:
    port = sandbox.url.rsplit(":", 1)[1]
    env = {
        **os.environ,
        "DATABASE_URL": db.url,
        "SECRET_KEY": TEST_SECRET_KEY,
        "SANDBOX_URL": sandbox.url,
        "MEDIA_ALLOWED_HOSTS": f"127.0.0.1:{port}",
        "SCHEDULER_RETRY_BASE_SECONDS": "0",
        "LOG_FORMAT": "text",
        "LOG_LEVEL": "WARNING",
    }
    env.update(extra)
    return env


async def delivery_counts(db: Database) -> dict[str, int]:
    async with db.session() as session:
        rows = await session.execute(
            select(Delivery.status, func.count()).group_by(Delivery.status)
        )
        return dict(rows.all())


async def in_flight(sandbox: SandboxClient, n: int) -> bool:
    """`n` publishes have reached the sandbox and are held in its latency."""
    return await asyncio.to_thread(sandbox.waiting) >= n


async def nothing_held(sandbox: SandboxClient) -> bool:
    """The sandbox answered every request it held: nothing late leaks into the next test."""
    return await asyncio.to_thread(sandbox.waiting) == 0
