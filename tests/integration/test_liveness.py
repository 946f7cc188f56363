"""No input stalls a pass: a publish that does not answer is stopped at its timeout, and a
worker asked to stop leaves within its shutdown grace whatever is in flight."""

from __future__ import annotations

import asyncio
import signal
from datetime import UTC, datetime

from sqlalchemy import select

from postpilot.runtime import build_runtime
from postpilot.sandbox.client import SandboxClient
from postpilot.scheduler.passes import run_pass
from postpilot.store.database import Database
from postpilot.store.tables import Delivery
from tests.factories import due_posts, telegram_workspace, workspace_with_accounts
from tests.helpers import make_settings
from tests.waiting import wait_until
from tests.workers import delivery_counts, in_flight, nothing_held, worker_env


async def test_a_publish_that_does_not_answer_is_stopped_at_its_timeout(
    any_db: Database, sandbox: SandboxClient
) -> None:
    mastodon_ws, mastodon = await workspace_with_accounts(any_db, sandbox)
    telegram_ws, telegram = await telegram_workspace(any_db, sandbox)
    await due_posts(any_db, mastodon_ws, mastodon, count=2, at=datetime.now(UTC))
    await due_posts(any_db, telegram_ws, telegram, count=2, at=datetime.now(UTC))
    sandbox.configure(latency_ms=4000)
    settings = make_settings(any_db, sandbox, SCHEDULER_DELIVERY_TIMEOUT_SECONDS=0.3)
    runtime = build_runtime(settings, db=any_db)
    try:
        report = await asyncio.wait_for(
            run_pass(runtime, scheduler="optimized", limit=4, concurrency=4), timeout=10
        )
    finally:
        await runtime.close()
    assert report.claimed == 4
    async with any_db.session() as session:
        rows = (await session.execute(select(Delivery.platform, Delivery.status))).all()
    # Mastodon deduplicates by key: retried later. Telegram cannot: the send had begun.
    assert sorted(rows) == [
        ("mastodon", "scheduled"),
        ("mastodon", "scheduled"),
        ("telegram", "unknown"),
        ("telegram", "unknown"),
    ]
    await wait_until(lambda: nothing_held(sandbox), timeout=10)


async def test_sigterm_stops_a_worker_within_its_grace_whatever_is_in_flight(
    any_db: Database, sandbox: SandboxClient, spawn
) -> None:
    workspace, accounts = await workspace_with_accounts(any_db, sandbox)
    await due_posts(any_db, workspace, accounts, count=6, at=datetime.now(UTC))
    sandbox.configure(latency_ms=8000)
    env = worker_env(
        any_db,
        sandbox,
        SCHEDULER_BATCH_SIZE="6",
        SCHEDULER_CONCURRENCY="2",
        WORKER_SHUTDOWN_GRACE_SECONDS="0.5",
    )
    worker = spawn(env)
    await wait_until(lambda: in_flight(sandbox, 2), timeout=20, every=0.02)
    worker.send_signal(signal.SIGTERM)
    # Well under the 8 s the sandbox holds each publish: the grace ended them.
    assert await asyncio.to_thread(worker.wait, 6) == 0
    assert await delivery_counts(any_db) == {"scheduled": 6}
    async with any_db.session() as session:
        rows = (await session.execute(select(Delivery.claimed_by, Delivery.attempts))).all()
    assert {claimer for claimer, _ in rows} == {None}
    # The two stopped in flight count an attempt (and keep their key); the rest were not begun.
    assert sorted(attempts for _, attempts in rows) == [0, 0, 0, 0, 1, 1]
    await wait_until(lambda: nothing_held(sandbox), timeout=10)
