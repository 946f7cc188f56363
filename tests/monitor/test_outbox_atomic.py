"""A workspace's webhook events are written in the transaction of the outcomes they announce, on
SQLite and PostgreSQL: nothing runs after the commit to write them (a process killed right after
it has still announced them), a fault between the outcome and its event writes neither (the
delivery is decided again after its lease, and its event is written then), the outbox costs a
statement only when a subscription wants one of the group's events, and a person's resolution
is announced in the transaction that writes it."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select, update

from postpilot.monitor import events
from postpilot.runtime import ServiceRuntime
from postpilot.sandbox.client import SandboxClient
from postpilot.scheduler.passes import run_pass
from postpilot.store import webhooks as store
from postpilot.store.database import Database
from postpilot.store.tables import Activity, Delivery
from tests.clock import Clock
from tests.factories import due_posts, workspace_with_accounts
from tests.helpers import api_server, mastodon_account
from tests.monitor.support import receiver
from tests.monitor.test_webhook_outbox import (
    hostport,
    outbox_runtime,
    rows,
    signed_bodies,
    subscribe,
)
from tests.waiting import wait_until


async def _delivery(db: Database) -> Delivery:
    async with db.session() as session:
        return (await session.execute(select(Delivery))).scalar_one()


async def _activity_events(db: Database) -> list[str]:
    async with db.session() as session:
        return list((await session.execute(select(Activity.event))).scalars())


async def _one_due_post(runtime: ServiceRuntime, sandbox: SandboxClient, clock: Clock) -> str:
    workspace, accounts = await workspace_with_accounts(runtime.db, sandbox)
    await due_posts(runtime.db, workspace, accounts, count=1, at=clock())
    clock.advance(seconds=1)
    return workspace


async def test_the_event_is_written_with_the_outcome_and_nothing_after_the_commit(
    any_db: Database, sandbox: SandboxClient
) -> None:
    clock = Clock()
    async with receiver() as hook, outbox_runtime(any_db, sandbox, clock, hook) as runtime:
        workspace = await _one_due_post(runtime, sandbox, clock)
        subscription = await subscribe(runtime, workspace, hook.url)
        runtime.observers.clear()  # as if the process died the moment the outcome committed

        report = await run_pass(runtime, scheduler="optimized")
        assert report.published == 1
        (row,) = await rows(any_db, subscription)
        # The payload users' tools always got.
        (announced,) = events.delivery_events(report).values()
        assert (row.event, row.event_id, row.payload) == (
            "delivery.published",
            announced.id,
            announced.payload,
        )
        assert row.payload["data"]["workspace_id"] == workspace
        await runtime.monitor.outbox.drain()
    (received,) = hook.received
    assert received.headers["x-postpilot-id"] == announced.id


@pytest.mark.parametrize("scheduler", ["optimized", "reference"])
async def test_a_fault_between_the_outcome_and_its_event_writes_neither(
    any_db: Database, sandbox: SandboxClient, monkeypatch: pytest.MonkeyPatch, scheduler: str
) -> None:
    clock = Clock()
    async with receiver() as hook, outbox_runtime(any_db, sandbox, clock, hook) as runtime:
        workspace = await _one_due_post(runtime, sandbox, clock)
        subscription = await subscribe(runtime, workspace, hook.url)
        enqueue = store.enqueue

        async def fault(*args: Any, **kwargs: Any) -> None:
            raise RuntimeError("fault injected after the outcome's statement")

        monkeypatch.setattr(store, "enqueue", fault)
        report = await run_pass(runtime, scheduler=scheduler)
        assert report.published == 0
        delivery = await _delivery(any_db)
        assert delivery.status == "claimed" and delivery.published_at is None
        assert await rows(any_db, subscription) == []
        assert "published" not in await _activity_events(any_db)

        # Whoever takes it over after the lease decides it again; its event is written with it.
        monkeypatch.setattr(store, "enqueue", enqueue)
        clock.advance(seconds=runtime.settings.SCHEDULER_LEASE_SECONDS + 1)
        again = await run_pass(runtime, scheduler=scheduler)
        assert again.published == 1
        assert (await _delivery(any_db)).status == "published"
        (row,) = await rows(any_db, subscription)
        assert row.event == "delivery.published"
        assert row.payload["data"]["pass_id"] == again.pass_id
    keys = [r["idempotency_key"] for r in sandbox.records("mastodon")]
    assert len(keys) == 1, "the platform's key made the second send a replay"


async def test_the_outbox_costs_a_statement_only_when_a_subscription_wants_an_event(
    any_db: Database, sandbox: SandboxClient
) -> None:
    clock = Clock()
    async with receiver() as hook, outbox_runtime(any_db, sandbox, clock, hook) as runtime:
        costs = []
        for wanted in (None, ["delivery.failed"], ["delivery.published"]):
            workspace = await _one_due_post(runtime, sandbox, clock)
            if wanted is not None:
                await subscribe(runtime, workspace, hook.url, events=wanted)
            report = await run_pass(runtime, scheduler="optimized")
            assert report.published == 1
            costs.append(report.db_statements)
        assert costs[1] == costs[0], "a subscription that wants none of the events costs nothing"
        assert costs[2] == costs[0] + 1, "one INSERT for the group's events"
        assert len(await rows(any_db)) == 1


async def test_a_persons_resolution_is_announced_with_it(
    any_db: Database, sandbox: SandboxClient
) -> None:
    async with (
        receiver() as hook,
        api_server(
            any_db, sandbox, PRIVATE_HOSTS_ALLOWED=hostport(hook), WEBHOOK_OUTBOX_POLL_SECONDS=0.2
        ) as api,
    ):
        subscription = await subscribe(api.runtime, api.workspace_id, hook.url)
        account_id = await mastodon_account(api, sandbox)
        made = await api.client.post("/api/posts", json={"text": "?", "targets": [account_id]})
        (target,) = made.json()["targets"]
        async with any_db.transaction() as session:
            await session.execute(
                update(Delivery).where(Delivery.id == target["id"]).values(status="unknown")
            )
        settled = await api.client.post(
            f"/api/deliveries/{target['id']}/resolve",
            json={"resolution": "published", "platform_post_id": "123"},
        )
        assert settled.status_code == 200, settled.text
        (row,) = await rows(any_db, subscription)
        assert row.event == "delivery.published"
        data = row.payload["data"]
        assert (data["delivery_id"], data["platform_post_id"]) == (target["id"], "123")
        assert data["scheduler"] == "person" and data["status"] == "published"
        await wait_until(lambda: bool(hook.received), timeout=30, what="the API's outbox sender")

        refused = await api.client.post(
            f"/api/deliveries/{target['id']}/resolve", json={"resolution": "failed"}
        )
        assert refused.status_code == 409, "nothing to resolve: nothing announced"
        assert len(await rows(any_db, subscription)) == 1
    (body,) = signed_bodies(hook)
    assert body["id"] == row.event_id
