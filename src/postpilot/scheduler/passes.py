"""One pass of a scheduler. The reference takes one delivery at a time with its natural queries;
the optimized claims a batch, publishes with bounded concurrency and writes back in bulk. Both use
the same claim protocol, engine and state machine, so they decide identically."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from opentelemetry import trace

from postpilot import logs
from postpilot.core.knobs import SchedulerKind
from postpilot.core.states import DeliveryStatus
from postpilot.core.transitions import Event
from postpilot.errors import PostpilotError
from postpilot.scheduler import engine
from postpilot.scheduler.lease import LeaseGuard
from postpilot.scheduler.runtime import Runtime
from postpilot.scheduler.summary import PassReport
from postpilot.store import activity, database, heartbeats, work
from postpilot.store.database import counting

log = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)  # a no-op until tracing is configured (postpilot.tracing)
PASS_SPAN_ATTRIBUTES = (
    *("scheduler", "pass_id", "limit", "concurrency", "claimed", "published", "failed"),
    *("retried", "rate_limited", "unknown", "released", "lost_lease"),
)


async def run_pass(
    runtime: Runtime,
    *,
    scheduler: SchedulerKind | str,
    limit: int | None = None,
    concurrency: int | None = None,
    stop: asyncio.Event | None = None,
) -> PassReport:
    """Run one pass over at most `limit` due deliveries and report what it did."""
    kind = SchedulerKind(scheduler)
    settings = runtime.settings
    report = PassReport(
        pass_id=str(uuid.uuid4()),
        scheduler=kind.value,
        started_at=runtime.now(),
        limit=limit or settings.SCHEDULER_BATCH_SIZE,
        concurrency=concurrency or settings.SCHEDULER_CONCURRENCY,
    )
    started = time.perf_counter()
    hits_before, misses_before = _cache_totals(runtime)
    runtime.db.reset_peak_connections()
    with (
        counting() as statements,
        logs.context(pass_id=report.pass_id),
        tracer.start_as_current_span("postpilot.pass") as span,
    ):
        # Before the claim: a pass that dies at any point after it leaves a journal saying
        # what it began sending, so its unsent deliveries are not taken for maybe-sent ones.
        await runtime.journal.begin(report.pass_id)
        if kind is SchedulerKind.REFERENCE:
            await _reference(runtime, report, stop)
        else:
            await _optimized(runtime, report, stop)
        await _end_journal(runtime, report.pass_id)
        if span.is_recording():
            span.set_attributes(_span_attributes(report))
    report.db_statements = statements.count
    report.duration_ms = (time.perf_counter() - started) * 1000
    report.peak_db_connections = runtime.db.peak_connections_in_use
    hits_after, misses_after = _cache_totals(runtime)
    report.cache_hits = hits_after - hits_before
    report.cache_misses = misses_after - misses_before
    if report.claimed:
        log.info("pass finished", extra={"pass_id": report.pass_id, **report.summary()})
    for observer in runtime.observers:
        try:
            await observer(report)
        except Exception:
            log.exception("pass observer failed", extra={"pass_id": report.pass_id})
    return report


async def cron_pass(
    runtime: Runtime,
    *,
    scheduler: SchedulerKind | str,
    limit: int | None = None,
    concurrency: int | None = None,
) -> PassReport:
    """A pass triggered from outside (HTTP cron, `run-once`), recorded so that readiness knows
    passes run in a deployment without a worker."""
    report = await run_pass(runtime, scheduler=scheduler, limit=limit, concurrency=concurrency)
    try:
        async with runtime.db.engine.begin() as conn:
            await heartbeats.cron_pass(conn, now=runtime.now())
    except Exception:  # the pass's own outcomes are written: this is only for readiness
        log.warning("could not record the cron pass for readiness", exc_info=True)
    return report


def _span_attributes(report: PassReport) -> dict[str, str | int]:
    return {f"postpilot.{name}": getattr(report, name) for name in PASS_SPAN_ATTRIBUTES}


def _cache_totals(runtime: Runtime) -> tuple[int, int]:
    """Hits and misses over every cache of the process (credentials, media, uploads, budgets).
    Another pass running in the same process at the same time would be counted in both."""
    stats = runtime.cache.stats().values()
    return sum(s.hits for s in stats), sum(s.misses for s in stats)


async def _reference(runtime: Runtime, report: PassReport, stop: asyncio.Event | None) -> None:
    state = engine.PassState(runtime, report.pass_id)
    guard = LeaseGuard(runtime, report.pass_id, runtime.settings.SCHEDULER_LEASE_SECONDS)
    lease = guard.lease
    async with guard.kept(), _Interrupter(runtime, guard, stop) as interrupter:
        for _ in range(report.limit):
            if stop is not None and stop.is_set():
                break
            claimed_at = runtime.now()
            async with runtime.db.engine.begin() as conn:
                rows = await work.claim_rows(
                    conn, now=claimed_at, limit=1, claimer=report.pass_id, lease=lease
                )
            if not rows:
                break
            guard.claimed(claimed_at)
            report.claimed += 1
            async with runtime.db.engine.connect() as conn:
                item = await work.load_separately(conn, rows[0])
            if item is None:  # its post was deleted in the meantime: the cascade removed it too
                continue
            # Its own task, so that stopping it can never cancel the pass itself.
            processed = await asyncio.create_task(interrupter.deliver(item, state))
            if processed is None:
                await _write_kept(
                    runtime, report, state, [], released=[item.delivery.id], stop=stop
                )
                break
            await _write_kept(runtime, report, state, [processed], released=[], stop=stop)


async def _optimized(runtime: Runtime, report: PassReport, stop: asyncio.Event | None) -> None:
    guard = LeaseGuard(runtime, report.pass_id, runtime.settings.SCHEDULER_LEASE_SECONDS)
    claimed_at = runtime.now()
    async with runtime.db.engine.begin() as conn:
        items = await work.claim(
            conn, now=claimed_at, limit=report.limit, claimer=report.pass_id, lease=guard.lease
        )
    guard.claimed(claimed_at)
    report.claimed = len(items)
    if not items:
        return
    state = engine.PassState(runtime, report.pass_id)
    gate = asyncio.Semaphore(report.concurrency)

    async def publish(item: work.WorkItem) -> engine.Processed | None:
        async with gate:
            return await interrupter.deliver(item, state)

    async with guard.kept(), _Interrupter(runtime, guard, stop) as interrupter:
        results = await asyncio.gather(*(publish(item) for item in items))
        released = [
            item.delivery.id for item, result in zip(items, results, strict=True) if not result
        ]
        done = [r for r in results if r is not None]
        await _write_kept(runtime, report, state, done, released=released, stop=stop)


class _Interrupter:
    """Bounds every delivery of a pass: its own timeout, and a stop for all in flight when the
    lease is about to run out or the shutdown grace is over. What was not started is handed
    back; what was stopped gets the decision `engine.interrupted` gives it."""

    def __init__(self, runtime: Runtime, guard: LeaseGuard, stop: asyncio.Event | None) -> None:
        self._runtime = runtime
        self._guard = guard
        self._stop = stop
        self._timeout = runtime.settings.SCHEDULER_DELIVERY_TIMEOUT_SECONDS
        self._in_flight: set[asyncio.Task[Any]] = set()
        self._reason: str | None = None
        self._watcher: asyncio.Task[None] | None = None

    async def __aenter__(self) -> _Interrupter:
        self._watcher = asyncio.create_task(self._watch(), name="pass-interrupter")
        return self

    async def __aexit__(self, *_exc: object) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher

    async def deliver(
        self, item: work.WorkItem, state: engine.PassState
    ) -> engine.Processed | None:
        """The delivery's decision, or None when it was not started (hand it back)."""
        stopping = self._stop is not None and self._stop.is_set()
        if stopping or self._reason is not None or not self._guard.holds:
            return None
        task = asyncio.current_task()
        assert task is not None
        self._in_flight.add(task)
        try:
            async with asyncio.timeout(self._timeout):
                return await engine.process(item, self._runtime, state)
        except TimeoutError:
            why = f"it took longer than SCHEDULER_DELIVERY_TIMEOUT_SECONDS ({self._timeout:g} s)"
            log.warning("delivery stopped: %s", why, extra={"delivery_id": item.delivery.id})
            return engine.interrupted(item, self._runtime, state, f"stopped because {why}")
        except asyncio.CancelledError:
            if self._reason is None:
                raise
            task.uncancel()
            return engine.interrupted(item, self._runtime, state, self._reason)
        finally:
            self._in_flight.discard(task)

    async def _watch(self) -> None:
        lost = asyncio.create_task(self._guard.lost.wait())
        waits: set[asyncio.Task[Any]] = {lost}
        if self._stop is not None:
            waits.add(asyncio.create_task(self._grace_over(self._stop)))
        try:
            done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()
        self._reason = (
            "stopped because the pass could no longer renew its lease (database unreachable)"
            if lost in done
            else "stopped because the worker is shutting down and the grace period is over"
        )
        for task in list(self._in_flight):
            task.cancel()

    async def _grace_over(self, stop: asyncio.Event) -> None:
        await stop.wait()
        grace = self._runtime.settings.WORKER_SHUTDOWN_GRACE_SECONDS
        if self._in_flight:
            # A warning, so that it reaches a console that shows only warnings (the demo's).
            log.warning(
                "stopping: waiting at most %g s for %d publishes in flight",
                grace,
                len(self._in_flight),
            )
        await asyncio.sleep(grace)


async def _end_journal(runtime: Runtime, pass_id: str) -> None:
    """Every outcome is written: the journal has nothing left to tell a recovery."""
    await runtime.journal.end(pass_id)


class OutcomesNotWritten(PostpilotError):
    """The database stayed unreachable for SCHEDULER_WRITE_RETRY_SECONDS: the outcomes are in
    this machine's journal, and whoever takes the deliveries over writes them from there."""


async def _write_kept(
    runtime: Runtime,
    report: PassReport,
    state: engine.PassState,
    processed: Sequence[engine.Processed],
    *,
    released: Sequence[str],
    stop: asyncio.Event | None = None,
) -> None:
    """Write outcomes, retrying while the database is unreachable (bounded, with backoff; a
    worker that is stopping waits at most its shutdown grace). The first failure also puts them
    in the journal, so a pass that dies or gives up meanwhile loses nothing. A row the database
    refuses is written alone, so it holds back no one else's."""
    settings = runtime.settings
    deadline = time.monotonic() + settings.SCHEDULER_WRITE_RETRY_SECONDS
    shortened = False
    delay = 0.1
    one_by_one = False
    kept = False
    while True:
        try:
            if one_by_one:
                await _write_each(runtime, report, processed, released=released)
            else:
                await _write(runtime, report, processed, released=released)
            return
        except Exception as exc:
            if not database.unreachable(exc):
                if one_by_one:
                    raise
                log.warning(
                    "the bulk write was refused (%s): writing row by row",
                    type(exc).__name__,
                    extra={"pass_id": report.pass_id},
                )
                one_by_one = True
                continue
            if not kept:
                await runtime.journal.keep_outcomes(
                    state.pass_id,
                    [(p.decision.delivery.id, p.decision.transition) for p in processed],
                )
                kept = True
            if stop is not None and stop.is_set() and not shortened:
                grace_end = time.monotonic() + settings.WORKER_SHUTDOWN_GRACE_SECONDS
                deadline, shortened = min(deadline, grace_end), True
            if time.monotonic() + delay > deadline:
                raise OutcomesNotWritten(
                    f"the database stayed unreachable ({type(exc).__name__}); "
                    f"{len(processed)} outcomes are kept in the journal of pass {report.pass_id}"
                ) from exc
            log.warning(
                "database unreachable (%s): %d outcomes kept, retrying in %.1f s",
                type(exc).__name__,
                len(processed),
                delay,
                extra={"pass_id": report.pass_id},
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


async def _write_each(
    runtime: Runtime,
    report: PassReport,
    processed: Sequence[engine.Processed],
    *,
    released: Sequence[str],
) -> None:
    for p in processed:
        try:
            await _write(runtime, report, [p], released=[])
        except Exception as exc:
            if database.unreachable(exc):
                raise
            # Left claimed: whoever takes it over after the lease decides again.
            log.exception(
                "the database refused one outcome",
                extra={"pass_id": report.pass_id, "delivery_id": p.decision.delivery.id},
            )
    if released:
        await _write(runtime, report, [], released=released)


async def _write(
    runtime: Runtime,
    report: PassReport,
    processed: Sequence[engine.Processed],
    *,
    released: Sequence[str],
) -> None:
    """Outcomes, activity and account changes in one transaction."""
    now = runtime.now()
    async with runtime.db.engine.begin() as conn:
        applied = await work.apply_decisions(
            conn, [p.decision for p in processed], claimer=report.pass_id, now=now
        )
        entries = [
            entry
            for p in processed
            if p.decision.delivery.id in applied
            for entry in _activity(p, report, now)
        ]
        await activity.append(conn, entries)
        changes = [change for p in processed for change in p.account_changes]
        if changes:
            await work.apply_account_changes(conn, changes, now=now)
        if released:
            report.released += await work.release(conn, released, claimer=report.pass_id, now=now)
    # Once per account: each of its deliveries in the pass carries the same change.
    reconnect = {c.account_id: c.needs_reconnect for c in changes if c.needs_reconnect}
    for account_id, reason in reconnect.items():
        log.warning(
            "account needs reconnecting: %s",
            reason,
            extra={"pass_id": report.pass_id, "account_id": account_id},
        )
    _tally(report, processed, applied)


def _activity(p: engine.Processed, report: PassReport, now: datetime) -> list[activity.Entry]:
    delivery, transition = p.decision.delivery, p.decision.transition

    def entry(event: str, detail: str) -> activity.Entry:
        return activity.Entry(
            workspace_id=delivery.workspace_id,
            post_id=delivery.post_id,
            delivery_id=delivery.id,
            at=now,
            event=event,
            detail=detail,
            actor=report.scheduler,
            pass_id=report.pass_id,
        )

    entries = []
    if delivery.recovered:
        entries.append(
            entry(
                Event.LEASE_RECOVERED.value,
                f"taken over from pass {delivery.previous_claimer or 'unknown'}, "
                "whose lease ran out (its worker stopped or lost the database)",
            )
        )
    entries.append(entry(transition.event.value, transition.detail))
    return entries


def outcome_level(p: engine.Processed) -> int:
    """ERROR when the outcome is our fault; WARNING when the delivery ended without being
    published (failed, or unknown until a person or a read-back settles it); INFO otherwise
    (published, or coming back: retried, rate-limited)."""
    if p.ours:
        return logging.ERROR
    if p.decision.transition.status in (DeliveryStatus.FAILED, DeliveryStatus.UNKNOWN):
        return logging.WARNING
    return logging.INFO


def _tally(report: PassReport, processed: Sequence[engine.Processed], applied: set[str]) -> None:
    for p in processed:
        transition, delivery = p.decision.transition, p.decision.delivery
        if delivery.id not in applied:
            report.lost_lease += 1
            log.warning(
                "lease lost before the outcome was written",
                extra={"pass_id": report.pass_id, "delivery_id": delivery.id},
            )
            continue
        if delivery.recovered:
            log.warning(
                "lease recovered",
                extra={
                    "pass_id": report.pass_id,
                    "delivery_id": delivery.id,
                    "previous_claimer": delivery.previous_claimer,
                },
            )
        report.decisions.append(p.decision)
        report.processing_ms.append(p.duration_ms)
        if transition.status is DeliveryStatus.PUBLISHED:
            report.published += 1
            if transition.published_at is not None:
                lateness = transition.published_at - delivery.scheduled_at
                report.lateness_ms.append(lateness.total_seconds() * 1000)
        elif transition.status is DeliveryStatus.FAILED:
            report.failed += 1
        elif transition.status is DeliveryStatus.UNKNOWN:
            report.unknown += 1
        elif transition.event is Event.RATE_LIMITED:
            report.rate_limited += 1
        else:
            report.retried += 1
        log.log(
            outcome_level(p),
            "delivery %s",
            transition.event.value,
            extra={
                "pass_id": report.pass_id,
                "delivery_id": delivery.id,
                "platform": delivery.platform,
                "outcome": p.outcome,
                "status": transition.status.value,
                "detail": transition.detail,
                "duration_ms": round(p.duration_ms, 2),
            },
        )
