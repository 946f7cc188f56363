"""Each alert rule fires and resolves, driven by a clock the test moves; a firing alert is not
notified again; notifications reach the log and a real signed-webhook receiver; two processes
evaluating together notify once; the timer evaluates when no pass runs."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import update

from postpilot.monitor import alerts, store, webhooks
from postpilot.monitor.alerts import Change
from postpilot.runtime import ServiceRuntime, build_runtime
from postpilot.sandbox.client import SandboxClient
from postpilot.scheduler.passes import run_pass
from postpilot.store import accounts as account_store
from postpilot.store import work
from postpilot.store.database import Database
from postpilot.store.tables import Account
from tests.clock import Clock
from tests.factories import due_posts, workspace_with_accounts
from tests.helpers import make_settings
from tests.monitor.support import (
    OPERATOR,
    WEBHOOK_SECRET,
    Receiver,
    api_for,
    receiver,
    synthetic_pass,
)
from tests.waiting import wait_until

RULE_SETTINGS: dict[str, Any] = {
    "ALERT_MIN_DELIVERIES": 10,
    "ALERT_WINDOW_SECONDS": 300,
    "ALERT_CACHE_WARMUP_SECONDS": 60,
    "ALERT_CACHE_MIN_LOOKUPS": 10,
    "ALERT_OVERDUE_SECONDS": 120,
    # Only the test evaluates (passes would otherwise evaluate after themselves, too).
    "ALERT_EVALUATE_SECONDS": 86_400,
}
Seen = list[tuple[str, str, str]]


@pytest.fixture
async def hook() -> AsyncIterator[Receiver]:
    async with receiver() as running:
        yield running


@pytest.fixture
async def clock() -> Clock:
    return Clock()


def open_runtime(
    db: Database, sandbox: SandboxClient, clock: Clock, hook: Receiver | None = None
) -> ServiceRuntime:
    extra = {"ALERT_WEBHOOK_URL": hook.url, "ALERT_WEBHOOK_SECRET": WEBHOOK_SECRET} if hook else {}
    settings = make_settings(db, sandbox, **RULE_SETTINGS, **extra)
    return build_runtime(settings, db=db, clock=clock)


@pytest.fixture
async def runtime(
    any_db: Database, sandbox: SandboxClient, clock: Clock, hook: Receiver
) -> AsyncIterator[ServiceRuntime]:
    rt = open_runtime(any_db, sandbox, clock, hook)
    yield rt
    await rt.close()


async def evaluate(runtime: ServiceRuntime) -> Seen:
    changes: list[Change] = await runtime.monitor.evaluate()
    return [(c.status, c.alert.rule, c.alert.subject) for c in changes]


async def notified(runtime: ServiceRuntime, hook: Receiver) -> list[tuple[str, str, str]]:
    """(event, rule, subject) of every alert message the receiver accepted, each signature
    checked as a receiver would."""
    assert runtime.monitor.alert_hook is not None
    assert await runtime.monitor.alert_hook.drain(10)
    seen = []
    for request in hook.accepted():
        assert webhooks.verify(
            WEBHOOK_SECRET,
            body=request.body,
            timestamp=request.headers["x-postpilot-timestamp"],
            signature=request.headers["x-postpilot-signature"],
        )
        payload = json.loads(request.body)
        assert request.headers["x-postpilot-event"] == payload["type"]
        alert = payload["alert"]
        seen.append((payload["type"], alert["rule"], alert["subject"]))
    return seen


async def test_error_rate_fires_once_and_resolves(
    runtime: ServiceRuntime, clock: Clock, hook: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="postpilot.monitor.alerts")
    record = runtime.monitor.record
    await record(synthetic_pass(clock, claimed=5, failed=5))
    assert await evaluate(runtime) == [], "5 outcomes: below ALERT_MIN_DELIVERIES"
    await record(synthetic_pass(clock, claimed=10, published=10))
    await record(synthetic_pass(clock, claimed=10, published=10))
    assert await evaluate(runtime) == [("firing", "error_rate", "optimized")], (
        "5 errors in 25 outcomes is 20 %"
    )
    await record(synthetic_pass(clock, claimed=10, published=10))
    clock.advance(seconds=30)
    assert await evaluate(runtime) == [], "still firing: no repeat"
    clock.advance(seconds=301)
    assert await evaluate(runtime) == [("resolved", "error_rate", "optimized")]
    assert await evaluate(runtime) == []

    assert await notified(runtime, hook) == [
        ("alert.firing", "error_rate", "optimized"),
        ("alert.resolved", "error_rate", "optimized"),
    ]
    messages = [r.getMessage() for r in caplog.records if r.name == "postpilot.monitor.alerts"]
    assert len(messages) == 2
    assert messages[0].startswith("alert firing: optimized scheduler error rate 20.0%")
    assert messages[1].startswith("alert resolved:")
    firing_record = next(r for r in caplog.records if r.getMessage() == messages[0])
    assert firing_record.levelno == logging.WARNING and firing_record.__dict__["rule"] == (
        "error_rate"
    )

    async with api_for(runtime) as client:
        listed = (await client.get("/api/performance?type=alerts", headers=OPERATOR)).json()
    assert listed["firing"] == []
    (alert,) = listed["recent"]
    assert (alert["rule"], alert["status"], alert["severity"]) == (
        "error_rate",
        "resolved",
        "critical",
    )
    # The value follows the condition while firing: 5 errors in 35 outcomes when last seen.
    assert alert["value"] == pytest.approx(round(5 / 35, 6)) and alert["threshold"] == 0.05
    assert alert["resolved_at"] is not None


async def test_processing_time_fires_and_resolves(runtime: ServiceRuntime, clock: Clock) -> None:
    slow = synthetic_pass(clock, claimed=10, published=10, processing_ms=[6000.0] * 10)
    await runtime.monitor.record(slow)
    assert await evaluate(runtime) == [("firing", "processing_time", "optimized")]
    async with runtime.db.engine.connect() as conn:
        (alert,) = await store.firing_alerts(conn)
    assert alert.value == pytest.approx(6.0) and alert.threshold == 5.0
    clock.advance(seconds=301)
    fast = synthetic_pass(clock, claimed=10, published=10, processing_ms=[100.0] * 10)
    await runtime.monitor.record(fast)
    assert await evaluate(runtime) == [("resolved", "processing_time", "optimized")]


async def test_db_connections_fire_above_80_percent_and_resolve(
    runtime: ServiceRuntime, clock: Clock
) -> None:
    assert runtime.db.max_connections == 20
    await runtime.monitor.record(synthetic_pass(clock, claimed=1, peak_db_connections=16))
    assert await evaluate(runtime) == [], "16 of 20 is 80 %: not above"
    await runtime.monitor.record(
        synthetic_pass(clock, scheduler="reference", claimed=1, peak_db_connections=17)
    )
    assert await evaluate(runtime) == [("firing", "db_connections", "reference")]
    clock.advance(seconds=301)
    assert await evaluate(runtime) == [("resolved", "db_connections", "reference")]


async def test_cache_hit_rate_reads_steady_state_passes_then_fires_and_resolves(
    runtime: ServiceRuntime, clock: Clock
) -> None:
    cold = synthetic_pass(clock, claimed=5, cache_hits=5, cache_misses=95)
    await runtime.monitor.record(cold)
    assert await evaluate(runtime) == [], "cold caches miss: no alert during warm-up"
    clock.advance(seconds=61)
    assert await evaluate(runtime) == [], "a cold start's misses stay out of the rate it reads"
    await runtime.monitor.record(synthetic_pass(clock, claimed=5, cache_hits=5, cache_misses=15))
    assert await evaluate(runtime) == [("firing", "cache_hit_rate", "optimized")]
    async with runtime.db.engine.connect() as conn:
        (alert,) = await store.firing_alerts(conn)
    assert alert.value == pytest.approx(0.25) and alert.details["phase"] == "steady_state"
    await runtime.monitor.record(synthetic_pass(clock, claimed=5, cache_hits=100))
    assert await evaluate(runtime) == [("resolved", "cache_hit_rate", "optimized")]


async def test_overdue_deliveries_fire_when_nothing_polls_and_resolve_when_published(
    runtime: ServiceRuntime, sandbox: SandboxClient, clock: Clock, hook: Receiver
) -> None:
    workspace, accounts = await workspace_with_accounts(runtime.db, sandbox)
    await due_posts(runtime.db, workspace, accounts, count=2, at=clock())
    assert await evaluate(runtime) == []
    clock.advance(seconds=119)
    assert await evaluate(runtime) == []
    clock.advance(seconds=2)
    assert await evaluate(runtime) == [("firing", "deliveries_overdue", "")]
    async with runtime.db.engine.connect() as conn:
        (alert,) = await store.firing_alerts(conn)
    assert alert.severity == "critical" and alert.value == 2.0
    assert "is a worker polling?" in alert.message and alert.details["oldest_late_s"] == 121
    assert b"postpilot_deliveries_overdue 2.0" in runtime.monitor.prometheus.exposition()

    report = await run_pass(runtime, scheduler="optimized")
    assert report.published == 2
    assert await evaluate(runtime) == [("resolved", "deliveries_overdue", "")]
    assert b"postpilot_deliveries_overdue 0.0" in runtime.monitor.prometheus.exposition()
    assert await notified(runtime, hook) == [
        ("alert.firing", "deliveries_overdue", ""),
        ("alert.resolved", "deliveries_overdue", ""),
    ]


async def test_failed_token_refresh_fires_per_account_and_resolves_on_reconnect(
    runtime: ServiceRuntime, sandbox: SandboxClient, clock: Clock
) -> None:
    _, accounts = await workspace_with_accounts(runtime.db, sandbox, count=2)
    broken = accounts[1]
    async with runtime.db.transaction() as session:
        await session.execute(
            update(Account)
            .where(Account.id == broken.id)
            .values(status="needs_reconnect", status_reason="token refresh failed: revoked")
        )
    assert await evaluate(runtime) == [("firing", "token_refresh_failed", broken.id)]
    assert await evaluate(runtime) == []
    async with runtime.db.engine.connect() as conn:
        (alert,) = await store.firing_alerts(conn)
    assert alert.message == (
        "mastodon account @user1 needs reconnecting: token refresh failed: revoked"
    )
    assert alert.details["workspace_id"] == broken.workspace_id

    async with runtime.db.transaction() as session:
        account = await session.get(Account, broken.id)
        assert account is not None
        account_store.set_credentials(account, account.credentials, None, clock())
    assert await evaluate(runtime) == [("resolved", "token_refresh_failed", broken.id)]


async def test_two_processes_evaluating_at_once_notify_once(
    any_db: Database, sandbox: SandboxClient, clock: Clock, hook: Receiver
) -> None:
    _, _accounts = await workspace_with_accounts(any_db, sandbox)
    async with any_db.transaction() as session:
        await session.execute(update(Account).values(status="needs_reconnect"))
    first, second = (open_runtime(any_db, sandbox, clock, hook) for _ in range(2))
    try:
        together = await asyncio.gather(first.monitor.evaluate(), second.monitor.evaluate())
        assert sum(len(changes) for changes in together) == 1
        assert await evaluate(first) == [] and await evaluate(second) == []
        async with any_db.transaction() as session:
            await session.execute(update(Account).values(status="active"))
        together = await asyncio.gather(first.monitor.evaluate(), second.monitor.evaluate())
        assert [c.status for changes in together for c in changes] == ["resolved"]
        for rt in (first, second):
            assert rt.monitor.alert_hook is not None
            await rt.monitor.alert_hook.drain(10)
        assert [json.loads(r.body)["type"] for r in hook.accepted()] == [
            "alert.firing",
            "alert.resolved",
        ]
    finally:
        await first.close()
        await second.close()


async def test_the_timer_evaluates_when_no_pass_runs(
    any_db: Database, sandbox: SandboxClient, clock: Clock
) -> None:
    settings = make_settings(any_db, sandbox, **{**RULE_SETTINGS, "ALERT_EVALUATE_SECONDS": 0.1})
    runtime = build_runtime(settings, db=any_db, clock=clock)
    workspace, accounts = await workspace_with_accounts(any_db, sandbox)
    await due_posts(any_db, workspace, accounts, count=1, at=clock())
    clock.advance(seconds=600)
    stop = asyncio.Event()
    loop = asyncio.create_task(runtime.monitor.run(stop))
    try:

        async def fired() -> bool:
            async with any_db.engine.connect() as conn:
                return bool(await store.firing_alerts(conn))

        await wait_until(fired, timeout=5, what="an alert firing")
        async with any_db.engine.connect() as conn:
            firing = await store.firing_alerts(conn)
        assert [a.rule for a in firing] == ["deliveries_overdue"]
    finally:
        stop.set()
        await loop
        await runtime.close()


# --- the pure parts -------------------------------------------------------------------------


def test_plan_fires_new_keeps_firing_and_resolves_gone() -> None:
    now = datetime(2026, 11, 30, tzinfo=UTC)

    def record(rule: str, subject: str) -> store.AlertRecord:
        return store.AlertRecord(
            1, rule, subject, "firing", "warning", 1.0, 1.0, "", {}, now, now, None
        )

    def finding(rule: alerts.Rule, subject: str) -> alerts.Finding:
        return alerts.Finding(rule, subject, alerts.Severity.WARNING, 1.0, 1.0, "")

    firing = [record("error_rate", "optimized"), record("token_refresh_failed", "a1")]
    found = [
        finding(alerts.Rule.ERROR_RATE, "optimized"),
        finding(alerts.Rule.TOKEN_REFRESH_FAILED, "a2"),
    ]
    todo = alerts.plan(firing, found)
    assert [f.key for f in todo.fire] == [("token_refresh_failed", "a2")]
    assert [a.key for a in todo.resolve] == [("token_refresh_failed", "a1")]
    assert [a.key for a, _ in todo.keep] == [("error_rate", "optimized")]


def test_rules_respect_their_thresholds() -> None:
    from postpilot.monitor import summary
    from postpilot.monitor.figures import PassFigures

    clock = Clock()
    limits = alerts.Thresholds(min_deliveries=10, error_rate=0.05)

    def observed(**figures: Any) -> alerts.Observations:
        passes = [PassFigures.from_report(synthetic_pass(clock, **figures), max_connections=10)]
        return alerts.Observations(
            now=clock(),
            schedulers=summary.by_scheduler(passes, window=timedelta(minutes=5)),
            overdue=work.Overdue(0, None),
            reconnect=[],
            monitoring_seconds=0,
        )

    exactly = observed(claimed=20, published=19, failed=1)  # 5 %: not above
    assert alerts.evaluate(exactly, limits) == []
    above = observed(claimed=20, published=18, retried=2)  # 10 %
    assert [f.key for f in alerts.evaluate(above, limits)] == [("error_rate", "optimized")]
    limited = observed(claimed=20, published=10, rate_limited=10)  # flow control, not errors
    assert alerts.evaluate(limited, limits) == []
    full = observed(claimed=1, published=1, peak_db_connections=9)  # 90 % of 10
    assert [f.rule for f in alerts.evaluate(full, limits)] == [alerts.Rule.DB_CONNECTIONS]


async def test_old_figures_and_resolved_alerts_are_pruned(
    runtime: ServiceRuntime, clock: Clock
) -> None:
    await runtime.monitor.record(synthetic_pass(clock, claimed=10, failed=10))
    assert await evaluate(runtime) == [("firing", "error_rate", "optimized")]
    clock.advance(minutes=10)
    assert await evaluate(runtime) == [("resolved", "error_rate", "optimized")]
    clock.advance(days=1)
    await runtime.monitor.record(synthetic_pass(clock, claimed=1, published=1))
    clock.advance(days=13, hours=1)  # METRICS_RETENTION_DAYS is 14 by default
    await runtime.monitor.evaluate()
    async with runtime.db.engine.connect() as conn:
        kept = await store.recent_passes(conn, limit=10)
        assert await store.recent_alerts(conn, limit=10) == []
    assert [p.published for p in kept] == [1], "only the pass younger than 14 days is kept"
