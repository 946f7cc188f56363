"""One pass of a scheduler. The reference takes one delivery at a time with its natural queries;
the optimized claims a batch, publishes with bounded concurrency and writes back in bulk. Both use
the same claim protocol, engine and state machine, so they decide identically."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta
from enum import StrEnum

from postpilot import logs
from postpilot.core.states import DeliveryStatus
from postpilot.core.transitions import Event
from postpilot.scheduler import engine
from postpilot.scheduler.runtime import Runtime
from postpilot.scheduler.summary import PassReport
from postpilot.store import activity, work
from postpilot.store.database import counting

log = logging.getLogger(__name__)


class SchedulerKind(StrEnum):
    REFERENCE = "reference"
    OPTIMIZED = "optimized"


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
    with counting() as statements, logs.context(pass_id=report.pass_id):
        if kind is SchedulerKind.REFERENCE:
            await _reference(runtime, report, stop)
        else:
            await _optimized(runtime, report, stop)
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


def _cache_totals(runtime: Runtime) -> tuple[int, int]:
    """Hits and misses over every cache of the process (credentials, media, uploads, budgets).
    Another pass running in the same process at the same time would be counted in both."""
    stats = runtime.cache.stats().values()
    return sum(s.hits for s in stats), sum(s.misses for s in stats)


async def _reference(runtime: Runtime, report: PassReport, stop: asyncio.Event | None) -> None:
    state = engine.PassState(runtime, report.pass_id)
    lease = timedelta(seconds=runtime.settings.SCHEDULER_LEASE_SECONDS)
    for _ in range(report.limit):
        if stop is not None and stop.is_set():
            break
        async with runtime.db.engine.begin() as conn:
            rows = await work.claim_rows(
                conn, now=runtime.now(), limit=1, claimer=report.pass_id, lease=lease
            )
        if not rows:
            break
        report.claimed += 1
        async with runtime.db.engine.connect() as conn:
            item = await work.load_separately(conn, rows[0])
        if item is None:  # its post was deleted in the meantime: the cascade removed it too
            continue
        processed = await engine.process(item, runtime, state)
        await _write(runtime, report, [processed], released=[])
    await _end_journal(runtime, state)


async def _optimized(runtime: Runtime, report: PassReport, stop: asyncio.Event | None) -> None:
    lease_seconds = runtime.settings.SCHEDULER_LEASE_SECONDS
    async with runtime.db.engine.begin() as conn:
        items = await work.claim(
            conn,
            now=runtime.now(),
            limit=report.limit,
            claimer=report.pass_id,
            lease=timedelta(seconds=lease_seconds),
        )
    report.claimed = len(items)
    if not items:
        return
    state = engine.PassState(runtime, report.pass_id)
    gate = asyncio.Semaphore(report.concurrency)

    async def publish(item: work.WorkItem) -> engine.Processed | None:
        async with gate:
            if stop is not None and stop.is_set():
                return None  # not started: hand it back untouched
            return await engine.process(item, runtime, state)

    async with _lease_keeper(runtime, report.pass_id, lease_seconds):
        results = await asyncio.gather(*(publish(item) for item in items))
    released = [item.delivery.id for item, result in zip(items, results, strict=True) if not result]
    await _write(runtime, report, [r for r in results if r is not None], released=released)
    await _end_journal(runtime, state)


async def _end_journal(runtime: Runtime, state: engine.PassState) -> None:
    """Every outcome is written: the journal has nothing left to tell a recovery."""
    if state.journal_begun:
        await runtime.journal.end(state.pass_id)


@contextlib.asynccontextmanager
async def _lease_keeper(
    runtime: Runtime, claimer: str, lease_seconds: float
) -> AsyncIterator[None]:
    """Extend the lease while a long pass is still publishing (one statement per half lease)."""

    async def keep() -> None:
        while True:
            await asyncio.sleep(lease_seconds / 2)
            async with runtime.db.engine.begin() as conn:
                until = runtime.now() + timedelta(seconds=lease_seconds)
                await work.extend_lease(conn, claimer=claimer, until=until)

    task = asyncio.create_task(keep(), name=f"lease-keeper-{claimer}")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


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
        await activity.append(
            conn,
            [
                activity.Entry(
                    workspace_id=p.decision.delivery.workspace_id,
                    post_id=p.decision.delivery.post_id,
                    delivery_id=p.decision.delivery.id,
                    at=now,
                    event=p.decision.transition.event.value,
                    detail=p.decision.transition.detail,
                    actor=report.scheduler,
                    pass_id=report.pass_id,
                )
                for p in processed
                if p.decision.delivery.id in applied
            ],
        )
        changes = [change for p in processed for change in p.account_changes]
        if changes:
            await work.apply_account_changes(conn, changes, now=now)
        if released:
            report.released += await work.release(conn, released, claimer=report.pass_id, now=now)
    _tally(report, processed, applied)


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
        log.info(
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
