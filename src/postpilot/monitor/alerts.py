"""Alert rules: what is wrong right now, decided purely from observations, and the firing /
resolved life of each alert.

Rules (thresholds from settings), each with its subject:

- error_rate (per scheduler): (failed+retried+unknown)/outcomes > ALERT_ERROR_RATE over the
  window, once the window holds ALERT_MIN_DELIVERIES outcomes;
- processing_time (per scheduler): p95 processing time > ALERT_PROCESSING_SECONDS (same minimum);
- db_connections (per scheduler): a pass held > ALERT_DB_CONNECTIONS_RATIO of the maximum;
- cache_hit_rate (per scheduler): the steady-state hit rate (passes after their process's
  cold start, `figures.cache_phase`) < ALERT_CACHE_HIT_RATE, once the monitor has watched for
  ALERT_CACHE_WARMUP_SECONDS and the window holds ALERT_CACHE_MIN_LOOKUPS steady-state lookups;
- deliveries_overdue (subject ''): a delivery waits > ALERT_OVERDUE_SECONDS past its due time;
- token_refresh_failed (per account id): the account's status is needs_reconnect.

An alert fires once when its condition starts, stays firing (no repeat notification) while the
condition holds, and resolves once when an evaluation no longer finds it. The state lives in the
`monitor_alerts` table with at most one firing row per (rule, subject), so several processes
evaluating at once notify exactly once.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from postpilot.core.states import AlertStatus
from postpilot.monitor import store
from postpilot.monitor.summary import SchedulerSummary, by_scheduler
from postpilot.settings import Settings
from postpilot.store import accounts, work
from postpilot.store.database import Database

log = logging.getLogger(__name__)


class Rule(StrEnum):
    ERROR_RATE = "error_rate"
    PROCESSING_TIME = "processing_time"
    DB_CONNECTIONS = "db_connections"
    CACHE_HIT_RATE = "cache_hit_rate"
    DELIVERIES_OVERDUE = "deliveries_overdue"
    TOKEN_REFRESH_FAILED = "token_refresh_failed"


class Severity(StrEnum):
    WARNING = "warning"
    CRITICAL = "critical"


@dataclass(frozen=True, slots=True)
class Thresholds:
    window_seconds: float = 300.0
    min_deliveries: int = 20
    error_rate: float = 0.05
    processing_seconds: float = 5.0
    db_connections_ratio: float = 0.8
    cache_hit_rate: float = 0.7
    cache_warmup_seconds: float = 300.0
    cache_min_lookups: int = 50
    overdue_seconds: float = 120.0

    @classmethod
    def from_settings(cls, settings: Settings) -> Thresholds:
        return cls(
            window_seconds=settings.ALERT_WINDOW_SECONDS,
            min_deliveries=settings.ALERT_MIN_DELIVERIES,
            error_rate=settings.ALERT_ERROR_RATE,
            processing_seconds=settings.ALERT_PROCESSING_SECONDS,
            db_connections_ratio=settings.ALERT_DB_CONNECTIONS_RATIO,
            cache_hit_rate=settings.ALERT_CACHE_HIT_RATE,
            cache_warmup_seconds=settings.ALERT_CACHE_WARMUP_SECONDS,
            cache_min_lookups=settings.ALERT_CACHE_MIN_LOOKUPS,
            overdue_seconds=settings.ALERT_OVERDUE_SECONDS,
        )


@dataclass(frozen=True, slots=True)
class Observations:
    """Everything the rules look at, gathered at `now`."""

    now: datetime
    schedulers: Mapping[str, SchedulerSummary]  # over the last window
    overdue: work.Overdue
    reconnect: Sequence[accounts.ReconnectNeeded]
    monitoring_seconds: float  # how long this monitor has been watching (cache warm-up)


@dataclass(frozen=True, slots=True)
class Finding:
    """A condition that holds now."""

    rule: Rule
    subject: str
    severity: Severity
    value: float | None
    threshold: float | None
    message: str
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str]:
        return (self.rule.value, self.subject)


def evaluate(observed: Observations, limits: Thresholds) -> list[Finding]:
    """The conditions that hold at `observed.now`. Pure."""
    findings: list[Finding] = []
    for name, summary in sorted(observed.schedulers.items()):
        findings.extend(_scheduler_findings(name, summary, observed, limits))
    overdue = observed.overdue
    if overdue.count and overdue.oldest_due_at is not None:
        late = (observed.now - overdue.oldest_due_at).total_seconds()
        findings.append(
            Finding(
                Rule.DELIVERIES_OVERDUE,
                "",
                Severity.CRITICAL,
                float(overdue.count),
                limits.overdue_seconds,
                f"{overdue.count} deliveries are more than {limits.overdue_seconds:g} s past "
                f"their due time (oldest {late:.0f} s): is a worker polling?",
                {"oldest_due_at": overdue.oldest_due_at.isoformat(), "oldest_late_s": round(late)},
            )
        )
    for account in observed.reconnect:
        findings.append(
            Finding(
                Rule.TOKEN_REFRESH_FAILED,
                account.account_id,
                Severity.WARNING,
                None,
                None,
                f"{account.platform} account {account.handle} needs reconnecting: "
                f"{account.reason or 'its token could not be refreshed'}",
                {
                    "account_id": account.account_id,
                    "workspace_id": account.workspace_id,
                    "platform": account.platform,
                    "handle": account.handle,
                    "reason": account.reason,
                },
            )
        )
    return findings


def _scheduler_findings(
    name: str, summary: SchedulerSummary, observed: Observations, limits: Thresholds
) -> list[Finding]:
    found: list[Finding] = []
    window = f"over the last {limits.window_seconds:g} s"
    enough = summary.outcomes >= limits.min_deliveries
    counts = {"outcomes": summary.outcomes, "passes": summary.passes}
    if enough and summary.error_rate is not None and summary.error_rate > limits.error_rate:
        found.append(
            Finding(
                Rule.ERROR_RATE,
                name,
                Severity.CRITICAL,
                summary.error_rate,
                limits.error_rate,
                f"{name} scheduler error rate {summary.error_rate:.1%} {window} "
                f"(threshold {limits.error_rate:.1%})",
                {
                    **counts,
                    "failed": summary.failed,
                    "retried": summary.retried,
                    "unknown": summary.unknown,
                },
            )
        )
    p95 = summary.processing_ms.p95
    if enough and p95 is not None and p95 > limits.processing_seconds * 1000:
        found.append(
            Finding(
                Rule.PROCESSING_TIME,
                name,
                Severity.WARNING,
                p95 / 1000,
                limits.processing_seconds,
                f"{name} scheduler p95 processing time {p95 / 1000:.2f} s {window} "
                f"(threshold {limits.processing_seconds:g} s)",
                counts,
            )
        )
    used = summary.db_connections_ratio
    if used is not None and used > limits.db_connections_ratio:
        found.append(
            Finding(
                Rule.DB_CONNECTIONS,
                name,
                Severity.WARNING,
                used,
                limits.db_connections_ratio,
                f"{name} scheduler used {summary.db_connections_peak} of "
                f"{summary.db_connections_max} DB connections {window} "
                f"({used:.0%}, threshold {limits.db_connections_ratio:.0%})",
                {"peak": summary.db_connections_peak, "max": summary.db_connections_max},
            )
        )
    steady = summary.cache_steady_state  # a fresh process's caches miss: not a fault
    lookups, rate = steady.lookups, steady.hit_rate
    warm = observed.monitoring_seconds >= limits.cache_warmup_seconds
    counted = warm and lookups >= limits.cache_min_lookups
    if counted and rate is not None and rate < limits.cache_hit_rate:
        found.append(
            Finding(
                Rule.CACHE_HIT_RATE,
                name,
                Severity.WARNING,
                rate,
                limits.cache_hit_rate,
                f"{name} scheduler steady-state cache hit rate {rate:.1%} {window} "
                f"(threshold {limits.cache_hit_rate:.0%})",
                {"hits": steady.hits, "misses": steady.misses, "phase": "steady_state"},
            )
        )
    return found


@dataclass(frozen=True, slots=True)
class Plan:
    fire: list[Finding]
    resolve: list[store.AlertRecord]
    keep: list[tuple[store.AlertRecord, Finding]]


def plan(firing: Sequence[store.AlertRecord], findings: Sequence[Finding]) -> Plan:
    """What changes: new findings fire, firing alerts no longer found resolve, the rest stay
    firing without a new notification. Pure."""
    current = {alert.key: alert for alert in firing}
    found = {finding.key: finding for finding in findings}
    return Plan(
        fire=[f for key, f in found.items() if key not in current],
        resolve=[a for key, a in current.items() if key not in found],
        keep=[(current[key], f) for key, f in found.items() if key in current],
    )


@dataclass(frozen=True, slots=True)
class Change:
    """An alert that fired or resolved: what gets notified."""

    status: AlertStatus
    alert: store.AlertRecord

    def payload(self) -> dict[str, Any]:
        return {"type": f"alert.{self.status}", "alert": self.alert.public()}


Notify = Callable[[Change], Awaitable[None]]


class AlertEvaluator:
    """Gathers observations, evaluates the rules and applies the plan to the stored state."""

    def __init__(
        self,
        *,
        db: Database,
        thresholds: Thresholds,
        clock: Callable[[], datetime],
        started_at: datetime,
        notify: Notify,
    ) -> None:
        self.db = db
        self.thresholds = thresholds
        self.clock = clock
        self.started_at = started_at
        self.notify = notify

    async def observe(self) -> Observations:
        now = self.clock()
        window = timedelta(seconds=self.thresholds.window_seconds)
        async with self.db.engine.connect() as conn:
            passes = await store.passes_since(conn, now - window)
            overdue = await work.overdue_deliveries(
                conn, due_before=now - timedelta(seconds=self.thresholds.overdue_seconds)
            )
            reconnect = await accounts.accounts_needing_reconnect(conn)
        return Observations(
            now=now,
            schedulers=by_scheduler(passes, window=window),
            overdue=overdue,
            reconnect=reconnect,
            monitoring_seconds=(now - self.started_at).total_seconds(),
        )

    async def run(self) -> list[Change]:
        """One evaluation: returns (and notifies) what fired or resolved."""
        observed = await self.observe()
        findings = evaluate(observed, self.thresholds)
        changes: list[Change] = []
        async with self.db.engine.begin() as conn:
            todo = plan(await store.firing_alerts(conn), findings)
            for finding in todo.fire:
                opened = await store.fire(
                    conn,
                    rule=finding.rule.value,
                    subject=finding.subject,
                    severity=finding.severity.value,
                    value=finding.value,
                    threshold=finding.threshold,
                    message=finding.message,
                    details=finding.details,
                    now=observed.now,
                )
                if opened is not None:
                    changes.append(Change(AlertStatus.FIRING, opened))
            for alert in todo.resolve:
                closed = await store.resolve(conn, alert.id, now=observed.now)
                if closed is not None:
                    changes.append(Change(AlertStatus.RESOLVED, closed))
            for alert, finding in todo.keep:
                await store.still_firing(
                    conn,
                    alert.id,
                    value=finding.value,
                    message=finding.message,
                    details=finding.details,
                    now=observed.now,
                )
        for change in changes:
            await self.notify(change)
        return changes


def log_change(change: Change) -> None:
    alert = change.alert
    extra = {
        "alert_id": alert.id,
        "rule": alert.rule,
        "subject": alert.subject,
        "severity": alert.severity,
        "value": alert.value,
        "threshold": alert.threshold,
    }
    if change.status is AlertStatus.FIRING:
        log.warning("alert firing: %s", alert.message, extra=extra)
    else:
        log.info("alert resolved: %s", alert.message, extra=extra)
