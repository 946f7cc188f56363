"""Settling deliveries that may have been sent by reading the platform back: against a real
database, the sandbox process and a clock the test moves (no sleeps)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from postpilot.core.events import Message
from postpilot.core.outcomes import Published
from postpilot.publishers.base import PublishRequest
from postpilot.publishers.registry import PUBLISHERS
from postpilot.runtime import ServiceRuntime, build_runtime
from postpilot.sandbox.client import SandboxClient
from postpilot.scheduler import engine, reconcile
from postpilot.scheduler.passes import run_pass
from postpilot.store import work
from postpilot.store.database import Database
from postpilot.store.tables import Activity, Delivery
from tests.clock import Clock
from tests.factories import due_posts, workspace_with_accounts
from tests.helpers import make_settings
from tests.waiting import wait_until

LEASE = timedelta(seconds=30)
SETTLE = timedelta(seconds=120)


@dataclass
class Collector:
    """Stands in for the events webhook: keeps what would be sent."""

    sent: list[Message]

    def enqueue(self, message: Message) -> None:
        self.sent.append(message)

    async def close(self) -> None:
        return None


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime.now(UTC))


@pytest.fixture
async def runtime(
    any_db: Database, sandbox: SandboxClient, clock: Clock, tmp_path: Path
) -> AsyncIterator[ServiceRuntime]:
    settings = make_settings(
        any_db,
        sandbox,
        SCHEDULER_LEASE_SECONDS=LEASE.total_seconds(),
        RECONCILE_SETTLE_SECONDS=SETTLE.total_seconds(),
        JOURNAL_DIR=str(tmp_path / "journal"),
        HTTP_TIMEOUT_SECONDS=2,
    )
    rt = build_runtime(settings, db=any_db, clock=clock)
    yield rt
    await rt.close()


async def deliveries(db: Database) -> dict[str, Delivery]:
    async with db.session() as session:
        rows = (await session.execute(select(Delivery))).scalars().all()
    return {row.id: row for row in rows}


async def reconciled_activity(db: Database) -> dict[str, str]:
    async with db.session() as session:
        rows = await session.execute(
            select(Activity.delivery_id, Activity.detail).where(Activity.event == "reconciled")
        )
        return {str(delivery_id): detail for delivery_id, detail in rows.all()}


async def slack_workspace(runtime: ServiceRuntime, sandbox: SandboxClient, count: int) -> list[str]:
    workspace, accounts = await workspace_with_accounts(
        runtime.db,
        sandbox,
        platform="slack",
        credentials={"access_token": "xoxb-reconcile"},
        options={"channel": "C0RECONCILE"},
    )
    await due_posts(runtime.db, workspace, accounts, count=count, at=runtime.now())
    return list(await deliveries(runtime.db))


async def test_a_dead_pass_s_sends_are_settled_exactly_once(
    runtime: ServiceRuntime, sandbox: SandboxClient, clock: Clock
) -> None:
    """Pass A claims three Slack deliveries, journals two as sending, sends one, and dies
    before writing anything. The sent one is found and published without a second send; the
    journaled one it never sent waits until no send can land, then is published once; the
    unjournaled one is published normally."""
    await slack_workspace(runtime, sandbox, count=3)
    async with runtime.db.engine.begin() as conn:
        items = await work.claim(conn, now=clock(), limit=3, claimer="pass-a", lease=LEASE)
    sent, journaled, untouched = sorted(items, key=lambda i: i.delivery.id)
    await runtime.journal.begin("pass-a")
    await runtime.journal.mark("pass-a", sent.delivery.id)
    await runtime.journal.mark("pass-a", journaled.delivery.id)
    lookup = sent  # the dead pass's one real send, through the real publisher
    request = PublishRequest(
        delivery_id=lookup.delivery.id,
        idempotency_key=lookup.delivery.idempotency_key,
        text=lookup.post.text,
        media_urls=(),
        account=engine.account_context(lookup.account, runtime),
        scheduled_at=lookup.delivery.scheduled_at,
        attempt=1,
    )
    outcome = await PUBLISHERS["slack"].publish(request, runtime.publish)
    assert isinstance(outcome, Published)

    clock.at += LEASE + timedelta(seconds=1)
    report = await run_pass(runtime, scheduler="optimized")
    assert (report.claimed, report.published, report.unknown) == (3, 2, 1)
    rows = await deliveries(runtime.db)
    assert rows[sent.delivery.id].status == "published"
    assert rows[sent.delivery.id].platform_post_id == outcome.platform_post_id
    assert rows[untouched.delivery.id].status == "published"
    assert rows[journaled.delivery.id].status == "unknown"
    assert len(sandbox.records("slack")) == 2

    # Too early to call it absent: the look does nothing until the settle delay has passed.
    assert (await reconcile.reconcile_unknown(runtime)).looked == 0
    clock.at += SETTLE
    settled = await reconcile.reconcile_unknown(runtime)
    assert (settled.looked, settled.retried) == (1, 1)
    assert (await deliveries(runtime.db))[journaled.delivery.id].status == "scheduled"
    again = await run_pass(runtime, scheduler="optimized")
    assert (again.claimed, again.published) == (1, 1)

    records = sandbox.records("slack")
    assert len(records) == 3  # each delivery exactly once
    markers = [r["extra"]["metadata"]["event_payload"]["delivery_id"] for r in records]
    assert sorted(markers) == sorted(rows)
    activity = await reconciled_activity(runtime.db)
    assert set(activity) == {sent.delivery.id, journaled.delivery.id}
    assert "carries our marker" in activity[sent.delivery.id]
    assert "never published" in activity[journaled.delivery.id]
    assert (await reconcile.reconcile_unknown(runtime)).looked == 0


async def test_a_lost_answer_becomes_unknown_then_published_with_the_platform_s_id(
    runtime: ServiceRuntime, sandbox: SandboxClient, clock: Clock
) -> None:
    workspace, accounts = await workspace_with_accounts(
        runtime.db,
        sandbox,
        platform="facebook",
        credentials={"page_access_token": "page-token"},
        options={"page_id": "4242"},
    )
    await due_posts(runtime.db, workspace, accounts, count=1, at=clock())
    sandbox.inject("timeout_after_commit", "facebook", hold_seconds=4, step="publish")
    report = await run_pass(runtime, scheduler="optimized")
    assert report.unknown == 1
    [record] = sandbox.records("facebook")

    sent: list[Message] = []
    runtime.monitor.event_hook = Collector(sent)  # type: ignore[assignment]
    clock.at += SETTLE
    settled = await reconcile.reconcile_unknown(runtime)
    assert (settled.looked, settled.published) == (1, 1)
    [row] = (await deliveries(runtime.db)).values()
    assert (row.status, row.platform_post_id) == ("published", record["id"])
    assert row.platform_url and record["id"] in row.platform_url
    assert "exact text" in (await reconciled_activity(runtime.db))[row.id]
    assert len(sandbox.records("facebook")) == 1
    [event] = sent  # users' tools hear of it as of any publish
    assert event.kind == "delivery.published"
    assert event.payload["data"]["platform_post_id"] == record["id"]


async def test_when_the_platform_cannot_tell_it_waits_and_looks_again_later(
    runtime: ServiceRuntime, sandbox: SandboxClient, clock: Clock
) -> None:
    [delivery_id] = await slack_workspace(runtime, sandbox, count=1)
    async with runtime.db.engine.begin() as conn:
        await work.claim(conn, now=clock(), limit=1, claimer="pass-b", lease=LEASE)
    # No journal of pass-b on this machine: it may have sent, and Slack's history fails.
    clock.at += LEASE + timedelta(seconds=1)
    sandbox.inject("server_error", "slack", step="read", remaining=3)
    assert (await run_pass(runtime, scheduler="optimized")).unknown == 1
    clock.at += SETTLE
    first = await reconcile.reconcile_unknown(runtime)
    assert (first.looked, first.undecided) == (1, 1)
    # Not looked at again before its next look is due, and still for a person meanwhile.
    assert (await reconcile.reconcile_unknown(runtime)).looked == 0
    assert (await deliveries(runtime.db))[delivery_id].status == "unknown"
    clock.at += SETTLE * 2
    assert (await reconcile.reconcile_unknown(runtime)).undecided == 1
    # The person sees why it waits, once for the same reason.
    async with runtime.db.session() as session:
        notes = (
            await session.execute(select(Activity.detail).where(Activity.actor == "reconciler"))
        ).scalars()
        [why] = list(notes)
    assert "could not tell from slack" in why and "internal_error" in why
    clock.at += SETTLE * 4
    final = await reconcile.reconcile_unknown(runtime)
    assert (final.looked, final.retried) == (1, 1)
    assert (await run_pass(runtime, scheduler="optimized")).published == 1
    assert len(sandbox.records("slack")) == 1


async def test_a_look_that_is_stopped_leaves_the_delivery_in_doubt(
    runtime: ServiceRuntime, sandbox: SandboxClient, clock: Clock
) -> None:
    """The taking-over pass journals the delivery as sending before it looks: if it is stopped
    (or dies) mid-look, whoever comes next must not take it as never sent."""
    await slack_workspace(runtime, sandbox, count=1)
    async with runtime.db.engine.begin() as conn:
        await work.claim(conn, now=clock(), limit=1, claimer="pass-c", lease=LEASE)
    clock.at += LEASE + timedelta(seconds=1)
    async with runtime.db.engine.begin() as conn:
        [item] = await work.claim(conn, now=clock(), limit=1, claimer="pass-d", lease=LEASE)
    assert item.delivery.recovered
    await runtime.journal.begin("pass-d")
    sandbox.inject("timeout", "slack", step="read", hold_seconds=30)
    task = asyncio.create_task(engine.process(item, runtime, engine.PassState(runtime, "pass-d")))

    async def journaled() -> bool:
        assert not task.done()
        return await runtime.journal.may_have_sent("pass-d", item.delivery.id)

    await wait_until(journaled, timeout=10, every=0.02)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # The journal exists and lists only that delivery: it is in doubt, not provably unsent.
    assert not await runtime.journal.may_have_sent("pass-d", "another-delivery")
    assert sandbox.records("slack") == []


async def test_a_read_back_that_breaks_leaves_the_delivery_unknown(
    runtime: ServiceRuntime, sandbox: SandboxClient, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    [delivery_id] = await slack_workspace(runtime, sandbox, count=1)
    async with runtime.db.engine.begin() as conn:
        await work.claim(conn, now=clock(), limit=1, claimer="pass-e", lease=LEASE)
    clock.at += LEASE + timedelta(seconds=1)

    async def broken(*_args: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(type(PUBLISHERS["slack"]), "find_published", broken)
    assert (await run_pass(runtime, scheduler="optimized")).unknown == 1
    clock.at += SETTLE
    assert (await reconcile.reconcile_unknown(runtime)).undecided == 1
    assert (await deliveries(runtime.db))[delivery_id].status == "unknown"
    async with runtime.db.session() as session:
        why = (
            await session.execute(select(Activity.detail).where(Activity.actor == "reconciler"))
        ).scalar_one()
    assert "internal error reading back (RuntimeError)" in why
    assert sandbox.records("slack") == []
