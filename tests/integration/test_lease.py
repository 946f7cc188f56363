"""The lease guard: renewing writes the new lease end to every delivery the pass holds, and the
guard stops counting the lease as held a fifth of a lease before it can run out."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from postpilot.core.timezones import as_utc
from postpilot.runtime import ServiceRuntime, build_runtime
from postpilot.sandbox.client import SandboxClient
from postpilot.scheduler.lease import LeaseGuard
from postpilot.store import work
from postpilot.store.database import Database
from postpilot.store.tables import Delivery
from tests.factories import due_posts, workspace_with_accounts
from tests.helpers import make_settings

LEASE = timedelta(seconds=15)


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 1, 9, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def held(
    any_db: Database, sandbox: SandboxClient
) -> AsyncIterator[tuple[ServiceRuntime, Clock, LeaseGuard]]:
    clock = Clock()
    runtime = build_runtime(make_settings(any_db, sandbox), db=any_db, clock=clock)
    workspace, accounts = await workspace_with_accounts(any_db, sandbox)
    await due_posts(any_db, workspace, accounts, count=2, at=clock.now - timedelta(seconds=1))
    async with any_db.engine.begin() as conn:
        claimed = await work.claim(conn, now=clock.now, limit=2, claimer="pass-1", lease=LEASE)
    assert len(claimed) == 2
    guard = LeaseGuard(runtime, "pass-1", LEASE.total_seconds())
    guard.claimed(clock.now)
    yield runtime, clock, guard
    await runtime.close()


async def lease_ends(db: Database) -> set[datetime]:
    async with db.session() as session:
        rows = (await session.execute(select(Delivery.claimed_until))).scalars().all()
    return {as_utc(end) for end in rows if end is not None}


async def test_renewing_moves_every_held_lease_end(
    held: tuple[ServiceRuntime, Clock, LeaseGuard],
) -> None:
    runtime, clock, guard = held
    clock.now += timedelta(seconds=10)
    await guard.renew()
    assert await lease_ends(runtime.db) == {clock.now + LEASE}
    assert guard.expires_at == clock.now + LEASE
    assert guard.holds


async def test_the_lease_counts_as_lost_a_fifth_before_it_runs_out(
    held: tuple[ServiceRuntime, Clock, LeaseGuard],
) -> None:
    _, clock, guard = held
    clock.now += LEASE * 0.79
    assert guard.holds and not guard.lost.is_set()
    clock.now += LEASE * 0.02
    assert not guard.holds and guard.lost.is_set()
    clock.now -= LEASE  # once lost, lost for the rest of the pass
    assert not guard.holds
