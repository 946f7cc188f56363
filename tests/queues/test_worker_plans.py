"""The worker makes recurring posts' occurrences by itself, before its passes, and publishes
the one that is due."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from postpilot.core import recurrence as rules
from postpilot.runtime import build_runtime
from postpilot.sandbox.client import SandboxClient
from postpilot.scheduler.worker import Worker
from postpilot.store import recurrence
from postpilot.store.database import Database
from tests.factories import workspace_with_accounts
from tests.helpers import make_settings
from tests.waiting import wait_until


async def test_the_worker_materialises_and_publishes_an_occurrence(
    sqlite_db: Database, sandbox: SandboxClient
) -> None:
    runtime = build_runtime(make_settings(sqlite_db, sandbox), db=sqlite_db)
    workspace, accounts = await workspace_with_accounts(sqlite_db, sandbox)
    # The first occurrence is due in a second, the next tomorrow (both inside the window).
    first = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)
    async with sqlite_db.transaction() as session:
        await recurrence.create_recurrence(
            session,
            workspace_id=workspace,
            rule=rules.parse("FREQ=DAILY;COUNT=2", first.replace(tzinfo=None), "UTC"),
            text_="every day",
            media_urls=[],
            overrides={},
            account_ids=[accounts[0].id],
            now=datetime.now(UTC),
        )
    stop = asyncio.Event()
    task = asyncio.create_task(Worker(runtime).run(stop))
    try:
        await wait_until(lambda: len(sandbox.records("mastodon")) >= 1, timeout=20)
    finally:
        stop.set()
        await task
        await runtime.close()
    assert [r["text"] for r in sandbox.records("mastodon")] == ["every day"]
