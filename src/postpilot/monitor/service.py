"""The monitor of one runtime: the pass observer (stored figures, Prometheus, delivery events,
alert evaluation) and the loop that evaluates alerts when no pass runs (the overdue rule must
fire precisely when nothing is polling), beside which the webhook outbox is sent.

Nothing here may break or block a pass: every part of the observer is guarded on its own, and
webhooks only enqueue: the operator's in memory; workspaces' events are already in the outbox
table (written in the transaction of the outcomes they announce), so this only wakes the sender."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

import httpx

from postpilot.cache.service import CacheService
from postpilot.core import figures as core_figures
from postpilot.core.events import Message
from postpilot.core.retry import RetryPolicy
from postpilot.crypto import CredentialCipher
from postpilot.monitor import events, store
from postpilot.monitor.alerts import AlertEvaluator, Change, Rule, Thresholds, log_change
from postpilot.monitor.figures import PassFigures
from postpilot.monitor.outbox import OutboxSender
from postpilot.monitor.prometheus import PrometheusMetrics
from postpilot.monitor.webhooks import WebhookSender
from postpilot.scheduler.summary import PassReport
from postpilot.settings import Settings
from postpilot.store.database import Database

log = logging.getLogger(__name__)

PRUNE_EVERY = timedelta(hours=1)


class Monitor:
    def __init__(
        self,
        *,
        settings: Settings,
        db: Database,
        clock: Callable[[], datetime],
        cache: CacheService,
        http: httpx.AsyncClient,
    ) -> None:
        self.settings = settings
        self.db = db
        self.clock = clock
        self.cache = cache
        self.enabled = settings.ENABLE_PERFORMANCE_MONITORING
        self.started_at = clock()
        self.alert_hook = _sender(
            "alerts", settings.ALERT_WEBHOOK_URL, settings.ALERT_WEBHOOK_SECRET, settings
        )
        self.event_hook = _sender(
            "events", settings.EVENTS_WEBHOOK_URL, settings.EVENTS_WEBHOOK_SECRET, settings
        )
        self.outbox = outbox_sender(settings, db=db, http=http, clock=clock)
        self.prometheus = PrometheusMetrics(
            max_db_connections=db.max_connections,
            caches=cache.stats,
            webhooks=lambda: [h for h in (self.alert_hook, self.event_hook) if h is not None],
        )
        self.alerts = AlertEvaluator(
            db=db,
            thresholds=Thresholds.from_settings(settings),
            clock=clock,
            started_at=self.started_at,
            notify=self._notify,
        )
        self.evaluate_every = timedelta(seconds=settings.ALERT_EVALUATE_SECONDS)
        self._last_evaluation: datetime | None = None
        self._last_prune: datetime | None = None
        self._looked_up = False  # a pass of this process has used its caches (they are warm)
        self._evaluating = asyncio.Lock()

    async def observe(self, report: PassReport) -> None:
        """The pass observer (handed to the scheduler by the composition root)."""
        extra = {"pass_id": report.pass_id}
        try:
            self.prometheus.observe(report)
        except Exception:
            log.exception("prometheus update failed", extra=extra)
        self._queue_events(report)
        if not self.enabled:
            return
        if report.claimed or report.released or report.lost_lease:
            try:
                await self.record(report)
            except Exception:
                log.exception("storing pass metrics failed", extra=extra)
        if self._evaluation_due():
            try:
                await self.evaluate()
            except Exception:
                log.exception("alert evaluation failed", extra=extra)

    def announce(self, report: PassReport) -> None:
        """The scheduler's delivery-event hook for decisions written outside a pass (their
        outbox rows were written with them)."""
        self._queue_events(report)

    def _queue_events(self, report: PassReport) -> None:
        """Hand the report's delivery events to the operator's webhook, and have the outbox
        sender look at once (the events may have made rows there)."""
        found = events.delivery_events(report)
        if self.event_hook is not None:
            for message in found.values():
                self.event_hook.enqueue(message)
        if found:
            self.outbox.wake()

    async def record(self, report: PassReport) -> PassFigures:
        phase = core_figures.cache_phase(
            first_pass=not self._looked_up,
            since_start_seconds=(report.started_at - self.started_at).total_seconds(),
            warmup_seconds=self.settings.ALERT_CACHE_WARMUP_SECONDS,
        )
        self._looked_up = self._looked_up or bool(report.cache_hits + report.cache_misses)
        figures = PassFigures.from_report(
            report, max_connections=self.db.max_connections, cache_phase=phase
        )
        async with self.db.engine.begin() as conn:
            await store.insert_pass(conn, figures)
        return figures

    async def evaluate(self) -> list[Change]:
        """Evaluate the alert rules now (one at a time per process)."""
        async with self._evaluating:
            self._last_evaluation = self.clock()
            changes = await self.alerts.run()
            await self._refresh_gauges()
            await self._prune_if_due()
            return changes

    async def run(self, stop: asyncio.Event) -> None:
        """Evaluate every ALERT_EVALUATE_SECONDS until `stop` (the first one after one period,
        so a starting worker gets a chance to catch up); send the webhook outbox meanwhile."""
        sending = asyncio.create_task(self.outbox.run(stop), name="webhook-outbox")
        try:
            await self._evaluate_until(stop)
        finally:
            stop.set()  # also when evaluating was cancelled: the sender ends its batch
            await sending

    async def _evaluate_until(self, stop: asyncio.Event) -> None:
        seconds = self.evaluate_every.total_seconds()
        if seconds <= 0:
            await stop.wait()
            return
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), seconds)
            if stop.is_set():
                return
            if not self._evaluation_due():
                continue  # a pass evaluated recently
            try:
                await self.evaluate()
            except Exception:
                log.exception("alert evaluation failed")

    async def close(self) -> None:
        for hook in (self.event_hook, self.alert_hook):
            if hook is not None:
                await hook.close()

    def _evaluation_due(self) -> bool:
        last = self._last_evaluation
        return last is None or self.clock() - last >= self.evaluate_every

    async def _notify(self, change: Change) -> None:
        log_change(change)
        if self.alert_hook is not None:
            alert = change.alert
            self.alert_hook.enqueue(
                Message(
                    f"alert.{change.status}", f"alert-{alert.id}-{change.status}", change.payload()
                )
            )

    async def _refresh_gauges(self) -> None:
        async with self.db.engine.connect() as conn:
            firing = await store.firing_alerts(conn)
        counts: dict[str, int] = {}
        for alert in firing:
            counts[alert.rule] = counts.get(alert.rule, 0) + 1
            if alert.rule == Rule.DELIVERIES_OVERDUE:
                self.prometheus.overdue.set(alert.value or 0)
        if Rule.DELIVERIES_OVERDUE.value not in counts:
            self.prometheus.overdue.set(0)
        for rule in Rule:
            self.prometheus.alerts_firing.labels(rule.value).set(counts.get(rule.value, 0))

    async def _prune_if_due(self) -> None:
        now = self.clock()
        if self._last_prune is not None and now - self._last_prune < PRUNE_EVERY:
            return
        self._last_prune = now
        before = now - timedelta(days=self.settings.METRICS_RETENTION_DAYS)
        rollups_before = now - timedelta(days=self.settings.METRICS_ROLLUP_RETENTION_DAYS)
        async with self.db.engine.begin() as conn:
            removed = await store.prune(conn, before=before, rollups_before=rollups_before)
        if removed:
            log.info(
                "monitor history pruned", extra={"rows": removed, "before": before.isoformat()}
            )


def outbox_sender(
    settings: Settings, *, db: Database, http: httpx.AsyncClient, clock: Callable[[], datetime]
) -> OutboxSender:
    return OutboxSender(
        db=db,
        http=http,
        cipher=CredentialCipher(settings.SECRET_KEY or ""),
        clock=clock,
        policy=RetryPolicy(
            max_attempts=settings.WEBHOOK_OUTBOX_MAX_ATTEMPTS,
            base_delay_seconds=settings.WEBHOOK_RETRY_BASE_SECONDS,
            max_delay_seconds=max(
                settings.WEBHOOK_RETRY_MAX_SECONDS, settings.WEBHOOK_RETRY_BASE_SECONDS
            ),
        ),
        timeout_seconds=settings.WEBHOOK_TIMEOUT_SECONDS,
        poll_seconds=settings.WEBHOOK_OUTBOX_POLL_SECONDS,
        batch_size=settings.WEBHOOK_OUTBOX_BATCH,
        retention=timedelta(days=settings.WEBHOOK_LOG_RETENTION_DAYS),
    )


def _sender(
    name: str, url: str | None, secret: str | None, settings: Settings
) -> WebhookSender | None:
    if not url or not secret:
        return None
    return WebhookSender(
        name,
        url=url,
        secret=secret,
        max_attempts=settings.WEBHOOK_MAX_ATTEMPTS,
        timeout_seconds=settings.WEBHOOK_TIMEOUT_SECONDS,
        queue_size=settings.WEBHOOK_QUEUE_SIZE,
    )
