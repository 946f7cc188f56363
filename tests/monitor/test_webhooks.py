"""Signed webhooks against a real HTTP receiver on a loopback socket: the signature verifies,
failures are retried with the same id, refusals are not, a full queue drops instead of waiting;
delivery events come out of real passes and never hold a pass up."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from postpilot.core.events import Message
from postpilot.monitor import webhooks
from postpilot.monitor.webhooks import WebhookSender
from postpilot.runtime import build_runtime
from postpilot.sandbox.client import SandboxClient
from postpilot.sandbox.process import free_port
from postpilot.scheduler.passes import run_pass
from postpilot.settings import SettingsError
from postpilot.store.database import Database
from tests.clock import Clock
from tests.factories import due_posts, workspace_with_accounts
from tests.helpers import make_settings
from tests.monitor.support import WEBHOOK_SECRET, Receiver, receiver

MESSAGE = Message("test.event", "msg-1", {"id": "msg-1", "type": "test.event", "n": 1})


def sender(url: str, **options: object) -> WebhookSender:
    values: dict[str, object] = {
        "url": url,
        "secret": WEBHOOK_SECRET,
        "max_attempts": 3,
        "timeout_seconds": 2.0,
        "backoff_seconds": 0.01,
        "max_backoff_seconds": 0.05,
    }
    values.update(options)
    return WebhookSender("test", **values)  # type: ignore[arg-type]


def verified(hook: Receiver) -> list[dict[str, object]]:
    bodies = []
    for request in hook.received:
        assert webhooks.verify(
            WEBHOOK_SECRET,
            body=request.body,
            timestamp=request.headers["x-postpilot-timestamp"],
            signature=request.headers["x-postpilot-signature"],
        ), "the signature must verify"
        assert request.headers["content-type"] == "application/json"
        bodies.append(json.loads(request.body))
    return bodies


def test_signature_covers_timestamp_and_body() -> None:
    body = b'{"a":1}'
    now = int(time.time())
    signature = webhooks.sign(WEBHOOK_SECRET, now, body)
    assert signature.startswith("sha256=") and len(signature) == 7 + 64
    ok = {"timestamp": str(now), "signature": signature}
    assert webhooks.verify(WEBHOOK_SECRET, body=body, **ok)
    assert not webhooks.verify(WEBHOOK_SECRET, body=b'{"a":2}', **ok)
    assert not webhooks.verify("another-secret-0123456789", body=body, **ok)
    assert not webhooks.verify(
        WEBHOOK_SECRET, body=body, timestamp=str(now + 1), signature=signature
    )
    assert not webhooks.verify(WEBHOOK_SECRET, body=body, now=now + 301, **ok), "replayed late"
    assert not webhooks.verify(WEBHOOK_SECRET, body=body, timestamp="soon", signature=signature)


async def test_message_is_signed_and_received() -> None:
    async with receiver() as hook:
        out = sender(hook.url)
        assert await out.send(MESSAGE)
        await out.close()
    (request,) = hook.received
    assert verified(hook) == [MESSAGE.payload]
    assert request.headers["x-postpilot-event"] == "test.event"
    assert request.headers["x-postpilot-id"] == "msg-1"


async def test_server_errors_are_retried_with_the_same_id() -> None:
    async with receiver(fail_first=2, fail_status=503) as hook:
        out = sender(hook.url)
        assert await out.send(MESSAGE)
        await out.close()
    assert [r.status for r in hook.received] == [503, 503, 200]
    assert {r.headers["x-postpilot-id"] for r in hook.received} == {"msg-1"}
    assert len(verified(hook)) == 3  # every attempt is signed afresh
    assert (out.stats.sent, out.stats.failed, out.stats.attempts) == (1, 0, 3)


async def test_a_refusal_is_not_retried() -> None:
    async with receiver(fail_first=5, fail_status=400) as hook:
        out = sender(hook.url)
        assert not await out.send(MESSAGE)
        await out.close()
    assert len(hook.received) == 1 and out.stats.failed == 1


async def test_rate_limited_receiver_is_retried_until_attempts_run_out() -> None:
    async with receiver(fail_first=10, fail_status=429) as hook:
        out = sender(hook.url)
        assert not await out.send(MESSAGE)
        await out.close()
    assert len(hook.received) == 3 and out.stats.failed == 1


async def test_unreachable_receiver_gives_up_quietly() -> None:
    out = sender(f"http://127.0.0.1:{free_port()}/hook")
    assert not await out.send(MESSAGE)
    assert (out.stats.attempts, out.stats.failed) == (3, 1)
    await out.close()


async def test_full_queue_drops_instead_of_waiting() -> None:
    async with receiver() as hook:
        out = sender(hook.url, queue_size=1)
        results = [
            out.enqueue(Message("e", str(i), {"i": i})) for i in range(3)
        ]  # no await in between: the senders have not run yet
        assert results == [True, False, False] and out.stats.dropped == 2
        assert await out.drain(5)
        await out.close()
    assert [json.loads(r.body) for r in hook.received] == [{"i": 0}]


def test_webhook_urls_need_a_secret() -> None:
    from postpilot.settings import load_settings

    with pytest.raises(SettingsError, match="EVENTS_WEBHOOK_SECRET"):
        load_settings(_env_file=None, EVENTS_WEBHOOK_URL="https://example.com/hook")
    with pytest.raises(SettingsError, match=r"ALERT_WEBHOOK_SECRET: .*<hidden>"):
        load_settings(
            _env_file=None, ALERT_WEBHOOK_URL="https://example.com/h", ALERT_WEBHOOK_SECRET="short"
        )
    with pytest.raises(SettingsError, match="ALERT_WEBHOOK_URL"):
        load_settings(_env_file=None, ALERT_WEBHOOK_URL="ftp://example.com")


@pytest.fixture
async def hook() -> AsyncIterator[Receiver]:
    async with receiver() as running:
        yield running


async def test_delivery_events_from_a_real_pass(
    any_db: Database, sandbox: SandboxClient, hook: Receiver
) -> None:
    clock = Clock()
    settings = make_settings(
        any_db, sandbox, EVENTS_WEBHOOK_URL=hook.url, EVENTS_WEBHOOK_SECRET=WEBHOOK_SECRET
    )
    runtime = build_runtime(settings, db=any_db, clock=clock)
    try:
        workspace, accounts = await workspace_with_accounts(any_db, sandbox, count=3)
        await due_posts(any_db, workspace, accounts, count=1, at=clock())
        sandbox.inject("bad_media", "mastodon", remaining=1)
        clock.advance(seconds=1)
        report = await run_pass(runtime, scheduler="optimized")
        assert (report.published, report.failed) == (2, 1)
        assert runtime.monitor.event_hook is not None
        assert await runtime.monitor.event_hook.drain(10)
    finally:
        await runtime.close()
    events = verified(hook)
    assert sorted(e["type"] for e in events) == [
        "delivery.failed",
        "delivery.published",
        "delivery.published",
    ]
    published = [e for e in events if e["type"] == "delivery.published"]
    records = {r["id"] for r in sandbox.records("mastodon")}
    for event in published:
        data = event["data"]
        assert data["platform_post_id"] in records and data["pass_id"] == report.pass_id
        assert data["scheduler"] == "optimized" and data["attempts"] == 1
        assert data["published_at"] == clock().isoformat()
        assert event["id"] == f"{data['delivery_id']}:published:1"
    failed = next(e for e in events if e["type"] == "delivery.failed")
    assert failed["data"]["error"] and failed["data"]["platform_post_id"] is None
    assert {r.headers["x-postpilot-id"] for r in hook.received} == {e["id"] for e in events}


async def test_a_slow_or_dead_receiver_never_holds_a_pass(
    any_db: Database, sandbox: SandboxClient
) -> None:
    async with receiver(delay=2.0) as slow:
        settings = make_settings(
            any_db,
            sandbox,
            EVENTS_WEBHOOK_URL=slow.url,
            EVENTS_WEBHOOK_SECRET=WEBHOOK_SECRET,
            WEBHOOK_TIMEOUT_SECONDS=0.3,
            WEBHOOK_MAX_ATTEMPTS=1,
        )
        runtime = build_runtime(settings, db=any_db)
        try:
            workspace, accounts = await workspace_with_accounts(any_db, sandbox, count=5)
            await due_posts(
                any_db, workspace, accounts, count=2, at=runtime.now() - timedelta(seconds=1)
            )
            started = time.perf_counter()
            report = await run_pass(runtime, scheduler="optimized")
            elapsed = time.perf_counter() - started
            assert report.published == 10
            assert elapsed < 1.5, "the pass must not wait for the receiver"
        finally:
            await runtime.close()  # gives queued events a few seconds, then lets go
    assert runtime.monitor.event_hook is not None
    assert runtime.monitor.event_hook.stats.sent == 0
