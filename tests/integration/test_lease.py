"""The lease guard: renewing writes the new lease end to every delivery the pass holds, and the
guard stops counting the lease as held a fifth of a lease before it can run out. A renewal that
commits too late does not count, and a pass whose lease is at risk sends nothing more."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select

from postpilot.core import outcomes
from postpilot.core.timezones import as_utc
from postpilot.publishers import flow
from postpilot.runtime import ServiceRuntime, build_runtime
from postpilot.sandbox.client import SandboxClient
from postpilot.scheduler import engine
from postpilot.scheduler.journal import InFlightJournal
from postpilot.scheduler.lease import LeaseGuard
from postpilot.store import work
from postpilot.store.database import Database
from postpilot.store.tables import Delivery
from tests.clock import Clock
from tests.factories import due_posts, workspace_with_accounts
from tests.helpers import make_settings

LEASE = timedelta(seconds=15)


@pytest.fixture
async def held(
    any_db: Database, sandbox: SandboxClient
) -> AsyncIterator[tuple[ServiceRuntime, Clock, LeaseGuard]]:
    clock = Clock(datetime(2026, 12, 1, 9, tzinfo=UTC))
    runtime = build_runtime(make_settings(any_db, sandbox), db=any_db, clock=clock)
    workspace, accounts = await workspace_with_accounts(any_db, sandbox)
    await due_posts(any_db, workspace, accounts, count=2, at=clock.at - timedelta(seconds=1))
    async with any_db.engine.begin() as conn:
        claimed = await work.claim(conn, now=clock.at, limit=2, claimer="pass-1", lease=LEASE)
    assert len(claimed) == 2
    guard = LeaseGuard(runtime, "pass-1", LEASE.total_seconds())
    guard.claimed(clock.at)
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
    clock.at += timedelta(seconds=10)
    await guard.renew()
    assert await lease_ends(runtime.db) == {clock.at + LEASE}
    assert guard.expires_at == clock.at + LEASE
    assert guard.holds


async def test_the_lease_counts_as_lost_a_fifth_before_it_runs_out(
    held: tuple[ServiceRuntime, Clock, LeaseGuard],
) -> None:
    _, clock, guard = held
    clock.at += LEASE * 0.79
    assert guard.holds and not guard.lost.is_set()
    clock.at += LEASE * 0.02
    assert not guard.holds and guard.lost.is_set()
    clock.at -= LEASE  # once lost, lost for the rest of the pass
    assert not guard.holds


async def test_a_renewal_that_commits_once_the_lease_is_at_risk_does_not_count(
    held: tuple[ServiceRuntime, Clock, LeaseGuard],
) -> None:
    """The process stalls while its renewal waits: by the time it commits, another worker may
    have taken deliveries over, so the pass must not believe its lease was moved."""
    runtime, clock, guard = held
    start = clock.at

    def stalled(*_args: Any) -> None:
        clock.at = start + LEASE * 0.9

    sync_engine = runtime.db.engine.sync_engine
    event.listen(sync_engine, "after_cursor_execute", stalled)
    try:
        await guard.renew()
    finally:
        event.remove(sync_engine, "after_cursor_execute", stalled)
    assert guard.lost.is_set() and not guard.holds
    assert guard.expires_at == start + LEASE


async def test_nothing_is_sent_once_the_lease_is_at_risk_even_after_the_mark(
    held: tuple[ServiceRuntime, Clock, LeaseGuard], tmp_path: Path
) -> None:
    """Checked before the journal mark and again right before the request: a stall in between
    (a slow fsync) stops the send too. The publish ends Transient: nothing went out."""
    runtime, clock, guard = held
    journal = InFlightJournal(tmp_path)
    runtime.journal = journal
    state = engine.PassState(runtime, "pass-1", lease_holds=lambda: guard.holds)
    await journal.begin("pass-1")
    await state.before_send("sent")

    marked = journal.mark

    async def slow_mark(pass_id: str, delivery_id: str, part: int | None = None) -> None:
        await marked(pass_id, delivery_id, part)
        clock.at += LEASE * 0.85

    journal.mark = slow_mark  # type: ignore[method-assign]
    with pytest.raises(flow.Stop) as stopped:
        await state.before_send("stalled")
    assert isinstance(stopped.value.outcome, outcomes.Transient), stopped.value.outcome
    with pytest.raises(flow.Stop):
        await state.before_send("later")
    record = await journal.read("pass-1")
    assert record is not None and record.sending == {"sent", "stalled"}  # "later": no mark
    assert state.may_have_sent("sent")
    assert not state.may_have_sent("stalled") and not state.may_have_sent("later")
