"""Exactly once through database faults: workers that lose PostgreSQL for seconds mid-pass keep
their outcomes, stop sending before their lease can run out, and nothing is sent twice or lost.
The database sits behind a TCP proxy that the test cuts and restores."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from postpilot.core import outcomes
from postpilot.publishers.telegram import TelegramPublisher
from postpilot.runtime import build_runtime
from postpilot.sandbox.client import SandboxClient
from postpilot.scheduler.passes import OutcomesNotWritten, run_pass
from postpilot.scheduler.worker import Worker
from postpilot.store.database import Database
from postpilot.store.tables import Activity, Delivery
from tests.factories import due_posts, telegram_workspace, workspace_with_accounts
from tests.helpers import make_settings
from tests.proxy import TcpProxy
from tests.waiting import wait_until
from tests.workers import delivery_counts

pytestmark = pytest.mark.postgres

log = logging.getLogger(__name__)


@pytest.fixture
async def pg_proxy(pg_db: Database) -> AsyncIterator[tuple[TcpProxy, str]]:
    """A proxy in front of the test's PostgreSQL, and the database URL that goes through it."""
    parts = urlsplit(pg_db.url)
    proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432)
    await proxy.restore()
    url = pg_db.url.replace(f":{parts.port}/", f":{proxy.port}/")
    yield proxy, url
    await proxy.cut()


def fault_settings(db: Database, sandbox: SandboxClient, tmp_path: Path, **extra: Any) -> Any:
    values: dict[str, Any] = {
        "SCHEDULER_LEASE_SECONDS": 5,
        "SCHEDULER_BATCH_SIZE": 20,
        "SCHEDULER_CONCURRENCY": 2,
        "WORKER_POLL_SECONDS": 0.2,
        "JOURNAL_DIR": str(tmp_path / "journal"),  # one machine: the workers share it
        "ENABLE_PERFORMANCE_MONITORING": False,
    }
    values.update(extra)
    return make_settings(db, sandbox, **values)


async def _settled(db: Database) -> bool:
    counts = await delivery_counts(db)
    return not counts.get("scheduled") and not counts.get("claimed")


@pytest.mark.slow
@pytest.mark.parametrize("cut_seconds", [5.0, 10.0])
async def test_a_database_cut_during_passes_sends_nothing_twice_and_loses_nothing(
    pg_db: Database,
    pg_proxy: tuple[TcpProxy, str],
    sandbox: SandboxClient,
    tmp_path: Path,
    cut_seconds: float,
) -> None:
    proxy, proxied_url = pg_proxy
    telegram_ws, telegram = await telegram_workspace(pg_db, sandbox)
    mastodon_ws, mastodon = await workspace_with_accounts(pg_db, sandbox)
    now = datetime.now(UTC)
    await due_posts(pg_db, telegram_ws, telegram, count=60, at=now, text="telegram")
    await due_posts(pg_db, mastodon_ws, mastodon, count=60, at=now, text="mastodon")
    sandbox.configure(latency_ms=150)

    databases = [Database(proxied_url, max_connections=5) for _ in range(2)]
    runtimes = [build_runtime(fault_settings(db, sandbox, tmp_path), db=db) for db in databases]
    stop = asyncio.Event()
    workers = [asyncio.create_task(Worker(r).run(stop)) for r in runtimes]
    try:

        async def some_published() -> bool:
            return (await delivery_counts(pg_db)).get("published", 0) >= 10

        await wait_until(some_published, timeout=30, every=0.05)
        await proxy.cut()
        await asyncio.sleep(cut_seconds)  # the fault itself: the database is gone this long
        await proxy.restore()
        await wait_until(lambda: _settled(pg_db), timeout=90, every=0.2)
    finally:
        stop.set()
        await asyncio.gather(*workers, return_exceptions=True)
        for runtime in runtimes:
            await runtime.close()
        for db in databases:
            await db.dispose()

    async with pg_db.session() as session:
        rows = (
            await session.execute(
                select(Delivery.platform, Delivery.status, Delivery.platform_post_id)
            )
        ).all()
    statuses = Counter((platform, status) for platform, status, _ in rows)
    assert set(statuses) <= {
        ("telegram", "published"),
        ("telegram", "unknown"),
        ("mastodon", "published"),
    }, statuses
    assert statuses["mastodon", "published"] == 60, "nothing lost on an idempotent platform"
    unknown = statuses["telegram", "unknown"]
    # Only a send stopped in flight may be unknown: at most one per worker slot.
    assert unknown <= 2 * 2, statuses

    telegram_texts = Counter(r["text"] for r in sandbox.records("telegram"))
    assert telegram_texts and max(telegram_texts.values()) == 1, "a telegram post went out twice"
    telegram_ids = {r["id"] for r in sandbox.records("telegram")}
    assert {pid for p, s, pid in rows if p == "telegram" and s == "published"} <= telegram_ids
    assert len(telegram_ids) <= statuses["telegram", "published"] + unknown
    mastodon_keys = Counter(r["idempotency_key"] for r in sandbox.records("mastodon"))
    assert len(mastodon_keys) == 60 and max(mastodon_keys.values()) == 1
    creates = [r for r in sandbox.requests("mastodon") if r["path"].endswith("/statuses")]
    log.warning(
        "database cut of %g s: %d unknown, %d Mastodon sends for 60 posts",
        cut_seconds,
        unknown,
        len(creates),
    )


async def test_outcomes_the_database_did_not_take_are_written_by_whoever_takes_over(
    pg_db: Database,
    pg_proxy: tuple[TcpProxy, str],
    sandbox: SandboxClient,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The first pass publishes while the database is gone, gives up writing after its retry
    window and keeps its outcomes in the journal; the pass that takes the deliveries over
    writes them from there and sends nothing again."""
    # All four in flight at once, before the writes fail (one chat takes one at a time).
    monkeypatch.setattr(TelegramPublisher, "max_in_flight_per_account", 4)
    proxy, proxied_url = pg_proxy
    workspace, accounts = await telegram_workspace(pg_db, sandbox)
    await due_posts(pg_db, workspace, accounts, count=4, at=datetime.now(UTC))
    sandbox.configure(latency_ms=600)
    proxied = Database(proxied_url, max_connections=5)
    first = build_runtime(
        fault_settings(proxied, sandbox, tmp_path, SCHEDULER_WRITE_RETRY_SECONDS=0.5), db=proxied
    )
    second = build_runtime(fault_settings(pg_db, sandbox, tmp_path), db=pg_db)
    try:
        publishing = asyncio.create_task(
            run_pass(first, scheduler="optimized", limit=4, concurrency=4)
        )
        await wait_until(lambda: _claimed(pg_db, 4), timeout=10, every=0.02)
        await proxy.cut()
        with pytest.raises(OutcomesNotWritten):
            await publishing
        assert len(sandbox.records("telegram")) == 4
        await proxy.restore()

        async def taken_over() -> bool:
            report = await run_pass(second, scheduler="optimized")
            return report.claimed > 0

        await wait_until(taken_over, timeout=15, every=0.2)
    finally:
        await first.close()
        await second.close()
        await proxied.dispose()
    assert await delivery_counts(pg_db) == {"published": 4}
    assert len(sandbox.records("telegram")) == 4, "nothing was sent a second time"
    async with pg_db.session() as session:
        details = (
            await session.execute(
                select(Activity.event, Activity.detail).where(
                    Activity.event.in_(("published", "lease_recovered"))
                )
            )
        ).all()
    events = Counter(event for event, _ in details)
    assert events == {"published": 4, "lease_recovered": 4}
    assert all("journal of pass" in d for e, d in details if e == "published")


async def _claimed(db: Database, n: int) -> bool:
    return (await delivery_counts(db)).get("claimed", 0) == n


async def test_one_row_the_database_refuses_holds_back_no_one_else(
    pg_db: Database, sandbox: SandboxClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A platform id longer than its column fails the bulk write; the pass writes row by row,
    and only the refused row is left for whoever takes it over."""
    workspace, accounts = await telegram_workspace(pg_db, sandbox)
    await due_posts(pg_db, workspace, accounts, count=3, at=datetime.now(UTC))
    original = TelegramPublisher.publish
    calls = 0

    async def publish(self: TelegramPublisher, request: Any, ctx: Any) -> outcomes.Outcome:
        nonlocal calls
        calls += 1
        outcome = await original(self, request, ctx)
        if calls == 2 and isinstance(outcome, outcomes.Published):
            return outcomes.Published(platform_post_id="x" * 600)  # longer than its column
        return outcome

    monkeypatch.setattr(TelegramPublisher, "publish", publish)
    runtime = build_runtime(fault_settings(pg_db, sandbox, tmp_path), db=pg_db)
    try:
        report = await run_pass(runtime, scheduler="optimized", limit=3, concurrency=1)
    finally:
        await runtime.close()
    assert report.published == 2
    assert await delivery_counts(pg_db) == {"published": 2, "claimed": 1}
