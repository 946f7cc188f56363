"""Passes against a real database and the sandbox process: constant statement cost, leases,
retries, rate limits and token failures, identical decisions from both schedulers."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from postpilot.core.states import DeliveryStatus
from postpilot.runtime import ServiceRuntime, build_runtime
from postpilot.sandbox.client import SandboxClient
from postpilot.scheduler import passes
from postpilot.scheduler.passes import run_pass
from postpilot.store import work
from postpilot.store.database import Database
from postpilot.store.tables import Account, Activity, Delivery
from tests.factories import due_posts, telegram_workspace, workspace_with_accounts
from tests.helpers import make_settings
from tests.waiting import wait_until


@pytest.fixture
async def runtime(any_db: Database, sandbox: SandboxClient) -> AsyncIterator[ServiceRuntime]:
    # A lease long enough that no pass here renews it: a renewal is a statement the statement
    # counts below would see on a slow machine (renewal itself is tested in test_database_faults).
    rt = build_runtime(make_settings(any_db, sandbox, SCHEDULER_LEASE_SECONDS=600), db=any_db)
    yield rt
    await rt.close()


async def statuses(db: Database) -> dict[str, int]:
    async with db.session() as session:
        rows = (await session.execute(select(Delivery.status))).scalars().all()
    counts: dict[str, int] = {}
    for status in rows:
        counts[status] = counts.get(status, 0) + 1
    return counts


async def only_delivery(db: Database) -> Delivery:
    async with db.session() as session:
        return (await session.execute(select(Delivery))).scalar_one()


async def test_statements_per_delivery_stay_low_at_batch_10_and_500(
    runtime: ServiceRuntime, sandbox: SandboxClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Groups written by count only, so that the count does not depend on the machine's speed.
    monkeypatch.setattr(passes._OutcomeWriter, "FLUSH_SECONDS", 600.0)
    db = runtime.db
    workspace, accounts = await workspace_with_accounts(db, sandbox, count=5)
    now = datetime.now(UTC)
    await due_posts(db, workspace, accounts, count=182, at=now - timedelta(seconds=1))
    small = await run_pass(runtime, scheduler="optimized", limit=10, concurrency=10)
    large = await run_pass(runtime, scheduler="optimized", limit=500, concurrency=50)
    c20 = await run_pass(runtime, scheduler="optimized", limit=400, concurrency=20)
    assert (small.claimed, large.claimed, c20.claimed) == (10, 500, 400)
    assert (small.published, large.published, c20.published) == (10, 500, 400)
    # One claim and one outcome group: claim(+load), outcomes (+activity on SQLite).
    assert small.db_statements <= 4
    # Claims of four waves, groups of two: one statement each on PostgreSQL, two on SQLite.
    per_statement = 2 if db.is_sqlite else 1
    assert large.db_statements / 500 <= 0.02 * per_statement
    assert c20.db_statements / 400 <= 0.05 * per_statement
    assert len(sandbox.records("mastodon")) == 910


async def test_reference_costs_statements_per_delivery(
    runtime: ServiceRuntime, sandbox: SandboxClient
) -> None:
    workspace, accounts = await workspace_with_accounts(runtime.db, sandbox)
    await due_posts(runtime.db, workspace, accounts, count=6, at=datetime.now(UTC))
    three = await run_pass(runtime, scheduler="reference", limit=3)
    rest = await run_pass(runtime, scheduler="reference", limit=10)
    assert (three.published, rest.published) == (3, 3)
    per_delivery = three.db_statements / 3
    assert per_delivery >= 4
    assert rest.db_statements == pytest.approx(per_delivery * 3 + 1)  # + the empty final claim


async def test_outcome_is_not_written_once_the_lease_was_taken_over(
    runtime: ServiceRuntime, sandbox: SandboxClient
) -> None:
    db = runtime.db
    workspace, accounts = await workspace_with_accounts(db, sandbox)
    now = datetime.now(UTC)
    await due_posts(db, workspace, accounts, count=1, at=now)
    lease = timedelta(seconds=30)
    async with db.engine.begin() as conn:
        (first,) = await work.claim(conn, now=now, limit=1, claimer="pass-a", lease=lease)
    later = now + lease + timedelta(seconds=1)
    async with db.engine.begin() as conn:
        (second,) = await work.claim(conn, now=later, limit=1, claimer="pass-b", lease=lease)
    assert second.delivery.id == first.delivery.id and second.delivery.recovered
    assert not first.delivery.recovered
    from postpilot.core.transitions import Event, Transition

    done = Transition(DeliveryStatus.PUBLISHED, 1, now, Event.PUBLISHED, "published", None, "1")
    async with db.engine.begin() as conn:
        written_a = await work.apply_decisions(
            conn, [work.Decision(first.delivery, done)], claimer="pass-a", now=later
        )
        written_b = await work.apply_decisions(
            conn, [work.Decision(second.delivery, done)], claimer="pass-b", now=later
        )
    assert written_a == set()
    assert written_b == {first.delivery.id}


async def test_nothing_is_claimed_before_it_is_due(
    runtime: ServiceRuntime, sandbox: SandboxClient
) -> None:
    workspace, accounts = await workspace_with_accounts(runtime.db, sandbox)
    await due_posts(
        runtime.db, workspace, accounts, count=2, at=datetime.now(UTC) + timedelta(hours=1)
    )
    for scheduler in ("reference", "optimized"):
        report = await run_pass(runtime, scheduler=scheduler)
        assert report.claimed == 0
    assert await statuses(runtime.db) == {"scheduled": 2}


@pytest.mark.parametrize("scheduler", ["reference", "optimized"])
async def test_server_error_is_retried_with_the_same_idempotency_key(
    runtime: ServiceRuntime, sandbox: SandboxClient, scheduler: str
) -> None:
    workspace, accounts = await workspace_with_accounts(runtime.db, sandbox)
    await due_posts(runtime.db, workspace, accounts, count=1, at=datetime.now(UTC))
    sandbox.inject("unavailable", "mastodon")
    # limit=1: the retry is due at once (base delay 0 in tests) and would be taken again.
    first = await run_pass(runtime, scheduler=scheduler, limit=1)
    assert (first.claimed, first.retried, first.published) == (1, 1, 0)
    delivery = await only_delivery(runtime.db)
    assert delivery.status == "scheduled" and delivery.attempts == 1
    assert delivery.last_error is not None and "503" in delivery.last_error
    second = await run_pass(runtime, scheduler=scheduler)  # retry base is 0 s in tests
    assert second.published == 1
    records = sandbox.records("mastodon")
    assert len(records) == 1 and records[0]["idempotency_key"] == delivery.idempotency_key


@pytest.mark.parametrize("scheduler", ["reference", "optimized"])
async def test_ambiguous_500_is_retried_on_an_idempotent_platform_without_duplicate(
    runtime: ServiceRuntime, sandbox: SandboxClient, scheduler: str
) -> None:
    workspace, accounts = await workspace_with_accounts(runtime.db, sandbox)
    await due_posts(runtime.db, workspace, accounts, count=1, at=datetime.now(UTC))
    sandbox.inject("timeout_after_commit", "mastodon", hold_seconds=3)
    runtime.http.timeout = runtime.http.timeout.__class__(1.0)
    first = await run_pass(runtime, scheduler=scheduler, limit=1)
    assert first.retried == 1  # a read timeout after sending: ambiguous, safe to repeat here
    second = await run_pass(runtime, scheduler=scheduler)
    assert second.published == 1
    assert len(sandbox.records("mastodon")) == 1  # the repeat replayed the first status


@pytest.mark.parametrize("scheduler", ["reference", "optimized"])
async def test_rate_limit_reschedules_at_the_reset_without_an_attempt(
    runtime: ServiceRuntime, sandbox: SandboxClient, scheduler: str
) -> None:
    workspace, accounts = await workspace_with_accounts(runtime.db, sandbox)
    await due_posts(runtime.db, workspace, accounts, count=1, at=datetime.now(UTC))
    sandbox.inject("rate_limit", "mastodon", retry_after_seconds=120)
    report = await run_pass(runtime, scheduler=scheduler)
    assert report.rate_limited == 1
    delivery = await only_delivery(runtime.db)
    assert delivery.status == "scheduled" and delivery.attempts == 0
    wait = delivery.due_at.replace(tzinfo=UTC) - datetime.now(UTC)
    assert timedelta(seconds=100) < wait <= timedelta(seconds=121)
    assert (await run_pass(runtime, scheduler=scheduler)).claimed == 0


@pytest.mark.parametrize("scheduler", ["reference", "optimized"])
async def test_rejected_token_fails_with_a_reason_and_flags_the_account(
    runtime: ServiceRuntime, sandbox: SandboxClient, scheduler: str
) -> None:
    workspace, accounts = await workspace_with_accounts(runtime.db, sandbox)
    await due_posts(runtime.db, workspace, accounts, count=2, at=datetime.now(UTC))
    sandbox.revoke("token-0")
    report = await run_pass(runtime, scheduler=scheduler)
    assert report.failed == 2
    async with runtime.db.session() as session:
        account = (await session.execute(select(Account))).scalar_one()
        errors = (await session.execute(select(Delivery.last_error))).scalars().all()
    assert account.status == "needs_reconnect"
    assert account.status_reason is not None and "access token" in account.status_reason
    assert all(e is not None and "reconnect the account" in e for e in errors)


@pytest.mark.parametrize("scheduler", ["reference", "optimized"])
async def test_media_that_is_not_an_image_fails_naming_the_url(
    runtime: ServiceRuntime, sandbox: SandboxClient, scheduler: str
) -> None:
    workspace, accounts = await workspace_with_accounts(runtime.db, sandbox)
    bad = sandbox.media_url("notes.txt")
    await due_posts(
        runtime.db, workspace, accounts, count=1, at=datetime.now(UTC), media_urls=[bad]
    )
    report = await run_pass(runtime, scheduler=scheduler)
    assert report.failed == 1
    delivery = await only_delivery(runtime.db)
    assert delivery.last_error is not None
    assert bad in delivery.last_error and "not an image" in delivery.last_error
    assert sandbox.records() == []


async def test_activity_is_appended_for_every_decision(
    runtime: ServiceRuntime, sandbox: SandboxClient
) -> None:
    workspace, accounts = await workspace_with_accounts(runtime.db, sandbox, count=2)
    await due_posts(runtime.db, workspace, accounts, count=3, at=datetime.now(UTC))
    report = await run_pass(runtime, scheduler="optimized", limit=50)
    async with runtime.db.session() as session:
        events = (
            await session.execute(select(Activity.event).where(Activity.pass_id == report.pass_id))
        ).scalars()
        assert sorted(events) == ["published"] * 6


async def test_a_stopping_worker_hands_back_what_it_did_not_start(
    runtime: ServiceRuntime, sandbox: SandboxClient
) -> None:
    workspace, accounts = await workspace_with_accounts(runtime.db, sandbox)
    await due_posts(runtime.db, workspace, accounts[:1], count=3, at=datetime.now(UTC))
    stop = asyncio.Event()
    stop.set()  # the optimized pass claims its batch, then starts none of it
    report = await run_pass(runtime, scheduler="optimized", stop=stop)
    assert (report.claimed, report.released, report.published) == (3, 3, 0)
    async with runtime.db.session() as session:
        holders = (await session.execute(select(Delivery.claimed_by))).scalars().all()
    assert holders == [None] * 3, "a released delivery is nobody's: the next pass takes it"


async def test_outcomes_are_written_while_a_slow_publish_is_still_in_flight(
    any_db: Database, sandbox: SandboxClient
) -> None:
    settings = make_settings(
        any_db, sandbox, SCHEDULER_LEASE_SECONDS=600, WORKER_SHUTDOWN_GRACE_SECONDS=0.1
    )
    runtime = build_runtime(settings, db=any_db)
    now = datetime.now(UTC)
    chat_ws, chat = await telegram_workspace(any_db, sandbox)
    await due_posts(any_db, chat_ws, chat, count=1, at=now - timedelta(seconds=5))
    workspace, accounts = await workspace_with_accounts(any_db, sandbox, count=3)
    await due_posts(any_db, workspace, accounts, count=2, at=now)
    sandbox.inject("timeout", "telegram", hold_seconds=60, step="publish")
    stop = asyncio.Event()
    publishing = asyncio.create_task(
        run_pass(runtime, scheduler="optimized", limit=20, concurrency=4, stop=stop)
    )
    try:
        # The slow send was claimed and started first; the six others are written meanwhile.
        await wait_until(
            lambda: _published(any_db, 6), timeout=20, what="six outcomes written mid-pass"
        )
        assert not publishing.done(), "the pass is still waiting for the slow publish"
        stop.set()
        report = await asyncio.wait_for(publishing, timeout=10)
    finally:
        stop.set()
        await runtime.close()
    assert (report.claimed, report.published, report.unknown) == (7, 6, 1)
    # Telegram cannot deduplicate: a send stopped in flight waits for a person.
    assert await statuses(any_db) == {"published": 6, "unknown": 1}


async def _published(db: Database, n: int) -> bool:
    return (await statuses(db)).get("published", 0) == n


async def test_a_rate_limited_account_does_not_hold_back_the_others(
    runtime: ServiceRuntime, sandbox: SandboxClient
) -> None:
    db = runtime.db
    sandbox.configure(rate_limits={"mastodon": [3, 3600]})  # 3 statuses per token, then 429
    workspace, accounts = await workspace_with_accounts(db, sandbox, count=3)
    now = datetime.now(UTC)
    # The busy account's eight are due first, so it takes the slots first.
    await due_posts(db, workspace, accounts[:1], count=8, at=now - timedelta(seconds=10))
    await due_posts(db, workspace, accounts[1:], count=3, at=now - timedelta(seconds=5))
    report = await run_pass(runtime, scheduler="optimized", limit=50, concurrency=2)
    assert report.claimed == 14
    assert (report.published, report.rate_limited) == (9, 5)
    per_account = Counter(record["account"] for record in sandbox.records("mastodon"))
    assert sorted(per_account.values()) == [3, 3, 3]
    refused = [r for r in sandbox.requests("mastodon") if r["status"] == 429]
    # At most what the account had in flight when it was told: the rest were not sent.
    assert len(refused) <= 2
    async with db.session() as session:
        waiting = (
            await session.execute(
                select(Delivery.attempts, Delivery.due_at).where(Delivery.status == "scheduled")
            )
        ).all()
    assert len(waiting) == 5
    assert all(attempts == 0 for attempts, _ in waiting)
    assert all(due.replace(tzinfo=UTC) > now + timedelta(minutes=30) for _, due in waiting)


async def test_one_accounts_deliveries_go_out_in_due_order(
    runtime: ServiceRuntime, sandbox: SandboxClient
) -> None:
    db = runtime.db
    workspace, chat = await telegram_workspace(db, sandbox)
    now = datetime.now(UTC)
    for minute in (5, 1, 4, 2, 6, 3):  # created out of order, all due
        at = now - timedelta(minutes=minute)
        await due_posts(db, workspace, chat, count=1, at=at, text=f"{10 - minute} minutes")
    report = await run_pass(runtime, scheduler="optimized", limit=10, concurrency=10)
    assert report.published == 6
    sent = [record["text"] for record in sandbox.records("telegram")]
    assert sent == [f"{n} minutes 0" for n in (4, 5, 6, 7, 8, 9)]


async def test_a_rate_limited_matrix_room_costs_one_refused_request_not_one_per_message(
    runtime: ServiceRuntime, sandbox: SandboxClient
) -> None:
    db = runtime.db
    sandbox.configure(rate_limits={"matrix": [3, 3600]})  # 3 requests per user, then 429
    tokens = sandbox.issue_token("matrix", "@bot:sandbox.test")
    workspace, room = await workspace_with_accounts(
        db,
        sandbox,
        platform="matrix",
        credentials={"access_token": tokens["access_token"]},
        options={"room_id": "!room:sandbox.test"},
    )
    await due_posts(db, workspace, room, count=8, at=datetime.now(UTC))
    report = await run_pass(runtime, scheduler="optimized", limit=20, concurrency=10)
    assert (report.published, report.rate_limited) == (3, 5)
    # One send at a time to the room: only the send that met the limit was refused.
    assert [r["status"] for r in sandbox.requests("matrix")].count(429) == 1


async def test_one_pass_claims_in_groups_as_slots_free_up_and_publishes_each_once(
    runtime: ServiceRuntime, sandbox: SandboxClient
) -> None:
    db = runtime.db
    workspace, accounts = await workspace_with_accounts(db, sandbox, count=6)
    await due_posts(db, workspace, accounts, count=10, at=datetime.now(UTC))
    report = await run_pass(runtime, scheduler="optimized", limit=100, concurrency=2)
    # Groups of eight (four waves of two slots): the sixty come in eight claims, one pass.
    assert (report.claimed, report.published) == (60, 60)
    assert await statuses(db) == {"published": 60}
    keys = Counter(r["idempotency_key"] for r in sandbox.records("mastodon"))
    assert len(keys) == 60 and set(keys.values()) == {1}
    async with db.session() as session:
        events = (
            await session.execute(select(Activity.event).where(Activity.pass_id == report.pass_id))
        ).scalars()
        assert Counter(events) == {"published": 60}


async def test_a_platform_that_does_not_answer_holds_no_more_than_half_the_slots(
    any_db: Database, sandbox: SandboxClient
) -> None:
    settings = make_settings(
        any_db, sandbox, SCHEDULER_LEASE_SECONDS=600, WORKER_SHUTDOWN_GRACE_SECONDS=0.1
    )
    runtime = build_runtime(settings, db=any_db)
    now = datetime.now(UTC)
    chats_ws, chats = await workspace_with_accounts(
        any_db,
        sandbox,
        count=6,
        platform="telegram",
        credentials={"bot_token": "123:secret"},
        options={"chat_id": "@news"},
    )
    await due_posts(any_db, chats_ws, chats, count=1, at=now - timedelta(seconds=5))
    workspace, accounts = await workspace_with_accounts(any_db, sandbox, count=6)
    await due_posts(any_db, workspace, accounts, count=1, at=now)
    # Telegram holds every send far longer than the wait below; its six are due first.
    sandbox.inject("timeout", "telegram", remaining=6, hold_seconds=30, step="publish")
    stop = asyncio.Event()
    publishing = asyncio.create_task(
        run_pass(runtime, scheduler="optimized", limit=20, concurrency=4, stop=stop)
    )
    try:
        await wait_until(
            lambda: _published(any_db, 6), timeout=10, what="Mastodon published beside Telegram"
        )
        assert not publishing.done()
        stop.set()
        await asyncio.wait_for(publishing, timeout=10)
    finally:
        stop.set()
        await runtime.close()
    # Telegram held half the slots while Mastodon had deliveries ready, then the slots Mastodon
    # freed: four sends stopped in flight (unknown: Telegram cannot deduplicate), two unstarted.
    assert await statuses(any_db) == {"published": 6, "unknown": 4, "scheduled": 2}
