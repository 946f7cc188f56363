"""The worker: wakes when a post is created, shares work with other workers and cron passes
without publishing anything twice, survives SIGKILL, and releases what it holds on SIGTERM."""

from __future__ import annotations

import asyncio
import signal
from datetime import UTC, datetime, timedelta
from typing import Literal

import pytest
from sqlalchemy import func, select

from postpilot.runtime import ServiceRuntime, build_runtime
from postpilot.sandbox.client import SandboxClient
from postpilot.scheduler.passes import run_pass
from postpilot.scheduler.summary import PassReport
from postpilot.scheduler.worker import Worker
from postpilot.store.database import Database
from postpilot.store.tables import Activity, Delivery
from tests.factories import due_posts, workspace_with_accounts
from tests.helpers import make_settings
from tests.waiting import wait_until
from tests.workers import delivery_counts, in_flight, nothing_held, worker_env


class WatchedEvent(asyncio.Event):
    """An event that tells whether anything waits on it: a worker asleep until woken."""

    def __init__(self) -> None:
        super().__init__()
        self.waiters = 0

    async def wait(self) -> Literal[True]:
        self.waiters += 1
        try:
            return await super().wait()
        finally:
            self.waiters -= 1


async def test_worker_wakes_for_a_new_post_long_before_its_poll_interval(
    any_db: Database, sandbox: SandboxClient
) -> None:
    """SQLite: the in-process event; PostgreSQL: LISTEN/NOTIFY from another connection."""
    runtime = build_runtime(make_settings(any_db, sandbox, WORKER_POLL_SECONDS=60), db=any_db)
    workspace, accounts = await workspace_with_accounts(any_db, sandbox)
    runtime.wakeup = wakeup = WatchedEvent()
    stop = asyncio.Event()
    worker = Worker(runtime)
    task = asyncio.create_task(worker.run(stop))
    try:
        # Its first pass found nothing due: asleep now for up to 60 s, unless woken.
        await wait_until(lambda: worker.passes >= 1 and wakeup.waiters > 0, timeout=10)
        await due_posts(any_db, workspace, accounts, count=1, at=datetime.now(UTC))
        if any_db.is_sqlite:
            runtime.wakeup.set()  # what the API does after creating a post in this process
        await wait_until(lambda: _published(any_db, 1), timeout=10)
    finally:
        stop.set()
        await task
        await runtime.close()
    assert len(sandbox.records("mastodon")) == 1


class MovableClock:
    """The real clock, which the test moves ahead: the lease a dead worker wrote from its own
    clock runs out for this runtime at once, not seconds later."""

    def __init__(self) -> None:
        self.ahead = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.ahead


async def take_over(
    runtime: ServiceRuntime, clock: MovableClock, lease_seconds: float
) -> PassReport:
    """A pass just after the dead worker's lease has run out: it takes the deliveries over."""
    clock.ahead = timedelta(seconds=lease_seconds + 1)
    return await run_pass(runtime, scheduler="optimized")


async def activity_events(db: Database, event: str) -> int:
    async with db.session() as session:
        return int(
            (
                await session.execute(
                    select(func.count()).select_from(Activity).where(Activity.event == event)
                )
            ).scalar_one()
        )


async def _published(db: Database, n: int) -> bool:
    return (await delivery_counts(db)).get("published", 0) >= n


@pytest.mark.slow
async def test_four_workers_and_cron_passes_publish_2000_deliveries_exactly_once(
    pg_db: Database, sandbox: SandboxClient, spawn
) -> None:
    workspace, accounts = await workspace_with_accounts(pg_db, sandbox, count=20)
    await due_posts(
        pg_db, workspace, accounts, count=100, at=datetime.now(UTC) + timedelta(seconds=3)
    )
    assert sum((await delivery_counts(pg_db)).values()) == 2000
    env = worker_env(pg_db, sandbox, SCHEDULER_BATCH_SIZE="50", SCHEDULER_CONCURRENCY="10")
    workers = [spawn(env) for _ in range(4)]
    runtime = build_runtime(make_settings(pg_db, sandbox), db=pg_db)
    try:
        kinds = ["reference", "optimized"]
        turn = 0
        while (await delivery_counts(pg_db)).get("published", 0) < 2000:
            await run_pass(runtime, scheduler=kinds[turn % 2], limit=25, concurrency=5)
            turn += 1
            assert all(w.poll() is None for w in workers), "a worker died"
            assert turn < 2000
    finally:
        await runtime.close()
    assert await delivery_counts(pg_db) == {"published": 2000}
    records = sandbox.records("mastodon")
    keys = [r["idempotency_key"] for r in records]
    assert len(records) == 2000 and len(set(keys)) == 2000
    creates = [
        r
        for r in sandbox.requests("mastodon")
        if r["path"].endswith("/api/v1/statuses") and r["status"] == 200
    ]
    assert len(creates) == 2000, "each delivery was sent exactly once"


async def test_sigkill_mid_pass_loses_nothing_and_duplicates_nothing(
    any_db: Database, sandbox: SandboxClient, spawn
) -> None:
    workspace, accounts = await workspace_with_accounts(any_db, sandbox, count=2)
    await due_posts(any_db, workspace, accounts, count=5, at=datetime.now(UTC))
    sandbox.configure(latency_ms=1500)
    env = worker_env(
        any_db,
        sandbox,
        SCHEDULER_BATCH_SIZE="10",
        SCHEDULER_CONCURRENCY="4",
        SCHEDULER_LEASE_SECONDS="5",
    )
    worker = spawn(env)

    async def claimed() -> bool:
        return (await delivery_counts(any_db)).get("claimed", 0) == 10

    await wait_until(claimed, timeout=20, every=0.05)
    await wait_until(lambda: in_flight(sandbox, 4), timeout=10, every=0.02)
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    assert (await delivery_counts(any_db)) == {"claimed": 10}

    sandbox.configure(latency_ms=0)
    clock = MovableClock()
    settings = make_settings(any_db, sandbox, SCHEDULER_LEASE_SECONDS=5)
    runtime = build_runtime(settings, db=any_db, clock=clock)
    try:
        early = await run_pass(runtime, scheduler="optimized")
        assert early.claimed == 0, "the dead worker's lease still holds"
        report = await take_over(runtime, clock, lease_seconds=5)
    finally:
        await runtime.close()
    assert report.claimed == 10 and report.published == 10
    assert await activity_events(any_db, "lease_recovered") == 10
    assert await delivery_counts(any_db) == {"published": 10}
    await wait_until(lambda: nothing_held(sandbox), timeout=10)  # the dead worker's requests
    records = sandbox.records("mastodon")
    assert len(records) == 10, "the in-flight ones were replayed by their Idempotency-Key"


async def test_sigterm_finishes_what_is_in_flight_and_releases_the_rest(
    any_db: Database, sandbox: SandboxClient, spawn
) -> None:
    workspace, accounts = await workspace_with_accounts(any_db, sandbox)
    await due_posts(any_db, workspace, accounts, count=8, at=datetime.now(UTC))
    sandbox.configure(latency_ms=1500)
    worker = spawn(worker_env(any_db, sandbox, SCHEDULER_BATCH_SIZE="8", SCHEDULER_CONCURRENCY="2"))

    async def claimed() -> bool:
        return (await delivery_counts(any_db)).get("claimed", 0) == 8

    await wait_until(claimed, timeout=20, every=0.05)
    await wait_until(lambda: in_flight(sandbox, 2), timeout=10, every=0.02)
    worker.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(worker.wait, 20) == 0
    counts = await delivery_counts(any_db)
    # each status takes 1.5 s: the two in flight finish, the six not started go back untouched
    assert counts == {"published": 2, "scheduled": 6}, counts
    assert len(sandbox.records("mastodon")) == 2
    async with any_db.session() as session:
        held = (
            await session.execute(select(Delivery.claimed_by).where(Delivery.status == "scheduled"))
        ).scalars()
        assert set(held) == {None}


async def test_sigkill_on_a_platform_without_idempotency_marks_only_what_was_in_flight(
    any_db: Database, sandbox: SandboxClient, spawn
) -> None:
    """Telegram cannot deduplicate: the two sends in flight become `unknown` for a person to
    check; the four the dead pass held but never sent are published normally."""
    # Two chats, so two sends in flight: a pass sends to one chat one message at a time.
    workspace, accounts = await workspace_with_accounts(
        any_db,
        sandbox,
        count=2,
        platform="telegram",
        credentials={"bot_token": "123:secret"},
        options={"chat_id": "@news"},
    )
    await due_posts(any_db, workspace, accounts, count=3, at=datetime.now(UTC))
    sandbox.configure(latency_ms=1500)
    env = worker_env(
        any_db,
        sandbox,
        SCHEDULER_BATCH_SIZE="6",
        SCHEDULER_CONCURRENCY="2",
        SCHEDULER_LEASE_SECONDS="5",
    )
    worker = spawn(env)

    async def claimed() -> bool:
        return (await delivery_counts(any_db)).get("claimed", 0) == 6

    await wait_until(claimed, timeout=20, every=0.05)
    await wait_until(lambda: in_flight(sandbox, 2), timeout=10, every=0.02)
    worker.send_signal(signal.SIGKILL)
    worker.wait()

    sandbox.configure(latency_ms=0)
    clock = MovableClock()
    settings = make_settings(any_db, sandbox, SCHEDULER_LEASE_SECONDS=5)
    runtime = build_runtime(settings, db=any_db, clock=clock)
    try:
        report = await take_over(runtime, clock, lease_seconds=5)
    finally:
        await runtime.close()
    assert (report.claimed, report.unknown, report.published) == (6, 2, 4)
    assert await delivery_counts(any_db) == {"unknown": 2, "published": 4}
    async with any_db.session() as session:
        published = set(
            (
                await session.execute(
                    select(Delivery.platform_post_id).where(Delivery.status == "published")
                )
            ).scalars()
        )
    await wait_until(lambda: nothing_held(sandbox), timeout=10)  # the dead worker's requests
    records = {r["id"] for r in sandbox.records("telegram")}
    assert published <= records and len(published) == 4
    assert len(records) <= 6  # the two in flight may have reached the platform, never twice
