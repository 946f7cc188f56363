"""The webhook outbox in one process, on SQLite and PostgreSQL, with real receivers on loopback
sockets and a clock the test moves: a real pass writes one row per subscription that wants the
event (its workspace's, enabled), each sent signed with its own secret; failures are retried
with backoff until a 2xx, refusals fail at once; a dead sender's rows go to another once its
lease ends; two senders never send one row twice; the client refuses private addresses."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import select

from postpilot.core.events import Message
from postpilot.monitor import events
from postpilot.monitor import webhooks as signing
from postpilot.monitor.outbox import OutboxSender, seal_secret
from postpilot.runtime import ServiceRuntime, build_runtime
from postpilot.sandbox.client import SandboxClient
from postpilot.scheduler.passes import run_pass
from postpilot.store import webhooks as store
from postpilot.store.database import Database
from postpilot.store.tables import WebhookOutbox
from tests.clock import Clock
from tests.factories import due_posts, workspace_with_accounts
from tests.helpers import make_settings, new_workspace
from tests.monitor.support import Receiver, receiver
from tests.waiting import wait_until

SECRET = "outbox-secret-0123456789"


def hostport(hook: Receiver) -> str:
    return hook.url.split("//", 1)[1].split("/", 1)[0]


@contextlib.asynccontextmanager
async def outbox_runtime(
    db: Database, sandbox: SandboxClient, clock: Clock, *hooks: Receiver, **settings: Any
) -> AsyncIterator[ServiceRuntime]:
    allowed = ",".join(hostport(h) for h in hooks)
    values: dict[str, Any] = {"WEBHOOK_RETRY_BASE_SECONDS": 10, "WEBHOOK_TIMEOUT_SECONDS": 5}
    values.update(settings)
    runtime = build_runtime(
        make_settings(db, sandbox, PRIVATE_HOSTS_ALLOWED=allowed, **values), db=db, clock=clock
    )
    try:
        yield runtime
    finally:
        await runtime.close()


async def subscribe(
    runtime: ServiceRuntime,
    workspace_id: str,
    url: str,
    *,
    events: list[str] | None = None,
    enabled: bool = True,
    secret: str = SECRET,
) -> str:
    async with runtime.db.transaction() as session:
        row = await store.create_subscription(
            session,
            workspace_id=workspace_id,
            url=url,
            events=events or ["*"],
            secret=seal_secret(runtime.cipher, secret),
            enabled=enabled,
            description="",
            now=runtime.now(),
        )
        return row.id


async def rows(db: Database, subscription_id: str | None = None) -> list[WebhookOutbox]:
    async with db.session() as session:
        query = select(WebhookOutbox).order_by(WebhookOutbox.event_id)
        if subscription_id is not None:
            query = query.where(WebhookOutbox.subscription_id == subscription_id)
        return list((await session.execute(query)).scalars())


def signed_bodies(hook: Receiver, secret: str = SECRET) -> list[dict[str, Any]]:
    bodies = []
    for request in hook.received:
        assert signing.verify(
            secret,
            body=request.body,
            timestamp=request.headers["x-postpilot-timestamp"],
            signature=request.headers["x-postpilot-signature"],
        ), "signed with the subscription's own secret"
        bodies.append(json.loads(request.body))
    return bodies


async def one_event(runtime: ServiceRuntime, workspace_id: str, event_id: str = "e-1") -> None:
    """An event of `workspace_id` as a pass would announce it."""
    payload = {"id": event_id, "type": "delivery.published", "data": {"workspace_id": workspace_id}}
    await runtime.monitor.outbox.record([Message("delivery.published", event_id, payload)])


async def test_a_pass_reaches_only_the_subscriptions_that_want_its_events(
    any_db: Database, sandbox: SandboxClient
) -> None:
    clock = Clock()
    async with (
        receiver() as every,
        receiver() as failures,
        receiver() as disabled,
        receiver() as elsewhere,
        outbox_runtime(any_db, sandbox, clock, every, failures, disabled, elsewhere) as runtime,
    ):
        workspace, accounts = await workspace_with_accounts(any_db, sandbox, count=3)
        other, _ = await new_workspace(any_db, "other")
        all_id = await subscribe(runtime, workspace, every.url)
        failed_id = await subscribe(
            runtime, workspace, failures.url, events=["delivery.failed"], secret="f" * 24
        )
        off_id = await subscribe(runtime, workspace, disabled.url, enabled=False)
        await subscribe(runtime, other, elsewhere.url)

        await due_posts(any_db, workspace, accounts, count=1, at=clock())
        sandbox.inject("bad_media", "mastodon", remaining=1)
        clock.advance(seconds=1)
        report = await run_pass(runtime, scheduler="optimized")
        assert (report.published, report.failed) == (2, 1)

        assert len(await rows(any_db, all_id)) == 3
        assert [r.event for r in await rows(any_db, failed_id)] == ["delivery.failed"]
        assert await rows(any_db, off_id) == []
        assert len(await rows(any_db)) == 4, "nothing for the other workspace"
        await runtime.monitor.outbox.drain()
        # The same outcomes announced again write nothing: one row per event and subscription.
        await runtime.monitor.outbox.record(list(events.delivery_events(report).values()))
        assert len(await rows(any_db)) == 4
        assert await runtime.monitor.outbox.send_due() == 0

    published = sorted(e["type"] for e in signed_bodies(every))
    assert published == ["delivery.failed", "delivery.published", "delivery.published"]
    (failed,) = signed_bodies(failures, "f" * 24)
    assert failed["type"] == "delivery.failed" and failed["data"]["workspace_id"] == workspace
    assert disabled.received == [] and elsewhere.received == []
    for row in await rows(any_db):
        assert (row.status, row.attempts, row.last_status) == ("sent", 1, 200)
        assert row.sent_at is not None


async def test_a_failing_receiver_is_retried_with_backoff_until_it_accepts(
    any_db: Database, sandbox: SandboxClient
) -> None:
    clock = Clock()
    async with (
        receiver(fail_first=2, fail_status=503) as hook,
        outbox_runtime(any_db, sandbox, clock, hook) as runtime,
    ):
        workspace, _ = await new_workspace(any_db)
        subscription = await subscribe(runtime, workspace, hook.url)
        await one_event(runtime, workspace)
        outbox = runtime.monitor.outbox
        assert await outbox.send_due() == 1
        (row,) = await rows(any_db, subscription)
        assert (row.status, row.attempts, row.last_status) == ("pending", 1, 503)
        assert row.last_error == "HTTP 503"
        assert await outbox.send_due() == 0, "not before its backoff"
        clock.advance(seconds=13)  # 10 s, give or take the jitter
        assert await outbox.send_due() == 1
        assert await outbox.send_due() == 0
        clock.advance(seconds=25)  # 20 s the second time
        assert await outbox.send_due() == 1
        (row,) = await rows(any_db, subscription)
        assert (row.status, row.attempts, row.last_status, row.last_error) == ("sent", 3, 200, None)
    assert [r.status for r in hook.received] == [503, 503, 200]
    assert {r.headers["x-postpilot-id"] for r in hook.received} == {"e-1"}
    assert len(signed_bodies(hook)) == 3, "each attempt signed afresh"


async def test_a_refusal_fails_at_once_and_retries_stop_after_the_last_attempt(
    any_db: Database, sandbox: SandboxClient
) -> None:
    clock = Clock()
    async with (
        receiver(fail_first=1, fail_status=410) as refusing,
        receiver(fail_first=100, fail_status=500) as broken,
        outbox_runtime(
            any_db, sandbox, clock, refusing, broken, WEBHOOK_OUTBOX_MAX_ATTEMPTS=2
        ) as runtime,
    ):
        workspace, _ = await new_workspace(any_db)
        refused_id = await subscribe(runtime, workspace, refusing.url)
        broken_id = await subscribe(runtime, workspace, broken.url)
        await one_event(runtime, workspace)
        await runtime.monitor.outbox.drain()
        clock.advance(hours=1)
        await runtime.monitor.outbox.drain()
        clock.advance(hours=1)
        await runtime.monitor.outbox.drain()
        (refused,) = await rows(any_db, refused_id)
        (gave_up,) = await rows(any_db, broken_id)
    assert (refused.status, refused.attempts, refused.last_status) == ("failed", 1, 410)
    assert (gave_up.status, gave_up.attempts, gave_up.last_status) == ("failed", 2, 500)
    assert len(refusing.received) == 1 and len(broken.received) == 2


async def test_a_dead_senders_rows_go_to_another_once_its_lease_ends(
    any_db: Database, sandbox: SandboxClient
) -> None:
    clock = Clock()
    async with (
        receiver() as hook,
        outbox_runtime(any_db, sandbox, clock, hook) as runtime,
    ):
        workspace, _ = await new_workspace(any_db)
        subscription = await subscribe(runtime, workspace, hook.url)
        await one_event(runtime, workspace)
        outbox = runtime.monitor.outbox
        async with any_db.engine.begin() as conn:  # a sender that claims, then dies
            (taken,) = await store.claim(
                conn, claimer="dead", now=clock(), lease=outbox.lease, limit=10
            )
        assert await outbox.send_due() == 0, "held by its lease"
        clock.advance(seconds=outbox.lease.total_seconds() + 1)
        assert await outbox.send_due() == 1
        late = store.Outcome(store.OutboxStatus.FAILED, clock(), 500, "late")
        async with any_db.engine.begin() as conn:
            assert not await store.settle(conn, taken.id, claimer="dead", outcome=late)
        (row,) = await rows(any_db, subscription)
    assert (row.status, row.attempts) == ("sent", 2)
    assert len(hook.received) == 1


async def test_two_senders_never_send_one_row_twice(
    any_db: Database, sandbox: SandboxClient
) -> None:
    clock = Clock()
    async with (
        receiver() as hook,
        outbox_runtime(any_db, sandbox, clock, hook, WEBHOOK_OUTBOX_BATCH=5) as runtime,
    ):
        workspace, _ = await new_workspace(any_db)
        await subscribe(runtime, workspace, hook.url)
        for n in range(40):
            await one_event(runtime, workspace, f"e-{n:02}")
        first = runtime.monitor.outbox
        second = OutboxSender(
            db=any_db,
            http=runtime.http,
            cipher=runtime.cipher,
            clock=clock,
            policy=first.policy,
            timeout_seconds=5,
            poll_seconds=1,
            batch_size=5,
        )
        assert first.claimer != second.claimer
        while sum(await asyncio.gather(first.send_due(), second.send_due())):
            pass
    ids = [r.headers["x-postpilot-id"] for r in hook.received]
    assert sorted(ids) == [f"e-{n:02}" for n in range(40)]
    assert {r.status for r in await rows(any_db)} == {"sent"}


async def test_the_sender_refuses_a_private_address_saved_past_the_api(
    any_db: Database, sandbox: SandboxClient
) -> None:
    clock = Clock()
    async with (
        receiver() as allowed,
        receiver() as private,
        outbox_runtime(any_db, sandbox, clock, allowed) as runtime,
    ):
        workspace, _ = await new_workspace(any_db)
        sneaked = await subscribe(runtime, workspace, private.url)  # not in the allowed hosts
        await one_event(runtime, workspace)
        assert await runtime.monitor.outbox.send_due() == 1
        (row,) = await rows(any_db, sneaked)
    assert private.received == []
    assert row.status == "pending" and row.last_status is None
    assert row.last_error and "public" in row.last_error


async def test_the_monitor_loop_sends_what_a_pass_wrote(
    any_db: Database, sandbox: SandboxClient
) -> None:
    """What the worker and the API run: `Monitor.run` sends the outbox until stopped."""
    clock = Clock()
    async with (
        receiver() as hook,
        outbox_runtime(any_db, sandbox, clock, hook, WEBHOOK_OUTBOX_POLL_SECONDS=60) as runtime,
    ):
        workspace, accounts = await workspace_with_accounts(any_db, sandbox, count=2)
        await subscribe(runtime, workspace, hook.url)
        stop = asyncio.Event()
        running = asyncio.create_task(runtime.monitor.run(stop))
        try:
            await due_posts(any_db, workspace, accounts, count=1, at=runtime.now())
            clock.advance(seconds=1)
            await run_pass(runtime, scheduler="reference")
            # Woken by the rows it wrote, long before its 60 s poll.
            await wait_until(lambda: len(hook.accepted()) == 2, timeout=10, what="2 events")
        finally:
            stop.set()
            await running
    assert sorted(e["type"] for e in signed_bodies(hook)) == ["delivery.published"] * 2


async def test_the_log_keeps_pending_events_and_prunes_old_settled_ones(
    any_db: Database, sandbox: SandboxClient
) -> None:
    clock = Clock()
    async with (
        receiver() as accepting,
        receiver(fail_first=100, fail_status=400) as refusing,
        receiver(fail_first=100, fail_status=503) as failing,
        outbox_runtime(
            any_db, sandbox, clock, accepting, refusing, failing, WEBHOOK_LOG_RETENTION_DAYS=30
        ) as runtime,
    ):
        workspace, _ = await new_workspace(any_db)
        for hook in (accepting, refusing, failing):
            await subscribe(runtime, workspace, hook.url)
        await one_event(runtime, workspace)
        outbox = runtime.monitor.outbox
        await outbox.drain()
        assert sorted(r.status for r in await rows(any_db)) == ["failed", "pending", "sent"]
        assert await outbox.prune_if_due() == 0, "nothing old enough yet"
        clock.advance(days=31)
        assert await outbox.prune_if_due() == 2
        assert [r.status for r in await rows(any_db)] == ["pending"]
        assert await outbox.prune_if_due() == 0, "at most once an hour"
