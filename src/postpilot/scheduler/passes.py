"""One pass of a scheduler. The reference takes one delivery at a time with its natural queries;
the optimized streams: it keeps up to C publishes in flight, claims in groups as slots free up
(`streaming`) and writes outcomes in small bulk groups as they are decided. Both use the same
claim protocol, engine and state machine, so they decide identically."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from opentelemetry import trace

from postpilot import logs, tracing
from postpilot.core.knobs import SchedulerKind
from postpilot.core.states import DeliveryStatus
from postpilot.core.transitions import Event
from postpilot.errors import PostpilotError
from postpilot.scheduler import engine, streaming
from postpilot.scheduler.lease import LeaseGuard
from postpilot.scheduler.runtime import Runtime
from postpilot.scheduler.summary import PassReport, events_of
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
        tracing.span(tracer, "postpilot.pass") as span,
    ):
        # Before the claim: a pass that dies at any point after it leaves a journal saying
        # what it began sending, so its unsent deliveries are not taken for maybe-sent ones.
        await runtime.journal.begin(report.pass_id)
        if kind is SchedulerKind.REFERENCE:
            await _reference(runtime, report, stop)
            journal_done = True
        else:
            journal_done = await _optimized(runtime, report, stop)
        if journal_done:
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
    guard = LeaseGuard(runtime, report.pass_id, runtime.settings.SCHEDULER_LEASE_SECONDS)
    state = engine.PassState(runtime, report.pass_id, lease_holds=lambda: guard.holds)
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


async def _optimized(runtime: Runtime, report: PassReport, stop: asyncio.Event | None) -> bool:
    """Stream the pass; False when its journal must stay (a later claim's answer was lost, so
    rows may be ours that the pass never saw: the journal says it sent none of them)."""
    guard = LeaseGuard(runtime, report.pass_id, runtime.settings.SCHEDULER_LEASE_SECONDS)
    asked = min(report.limit, streaming.claim_group(report.concurrency))
    claimed_at = runtime.now()
    async with runtime.db.engine.begin() as conn:
        items = await work.claim(
            conn, now=claimed_at, limit=asked, claimer=report.pass_id, lease=guard.lease
        )
    # Later claims end later: the guard keeps this first end until a renewal moves them all.
    guard.claimed(claimed_at)
    report.claimed = len(items)
    if not items:
        return True
    state = engine.PassState(runtime, report.pass_id, lease_holds=lambda: guard.holds)

    async def claim(count: int) -> Sequence[work.WorkItem]:
        async with runtime.db.engine.begin() as conn:
            return await work.claim(
                conn, now=runtime.now(), limit=count, claimer=report.pass_id, lease=guard.lease
            )

    # Nothing starts after this: a delivery started before it is decided and written within
    # the bound the worker holds a pass to (`worker.pass_bound`), whose lease of slack this
    # spends when an account's cap makes its deliveries wait for each other.
    settings = runtime.settings
    waves = math.ceil(report.limit / max(1, report.concurrency))
    deadline = time.monotonic() + (
        (waves - 1) * settings.SCHEDULER_DELIVERY_TIMEOUT_SECONDS + settings.SCHEDULER_LEASE_SECONDS
    )

    async with (
        guard.kept(),
        _Interrupter(runtime, guard, stop) as interrupter,
        _OutcomeWriter(runtime, report, state, stop) as writer,
    ):

        def halted() -> bool:
            stopping = stop is not None and stop.is_set()
            return stopping or writer.failed or not guard.holds or time.monotonic() > deadline

        stream = streaming.Stream(
            runtime,
            state,
            limit=report.limit,
            concurrency=report.concurrency,
            claim=claim,
            deliverer=interrupter,
            sink=writer,
            halted=halted,
            slots=runtime.cache.slots,
            pass_id=report.pass_id,
        )
        try:
            await stream.run(items, asked=asked)
        finally:
            report.claimed = stream.claimed
    if stream.error is not None:
        raise stream.error
    return not stream.claim_failed


class _OutcomeWriter:
    """Writes a streaming pass's decisions as they come, in small groups: a group is written
    once it holds two waves of the slots, or FLUSH_SECONDS after its oldest decision, whichever
    comes first; one group at a time, each in one transaction (`_write_kept`, retried while the
    database is away). Once outcomes could not be written, later ones go to the journal only,
    and the pass ends with `OutcomesNotWritten` once everything in flight is decided."""

    # Long enough that a group carries dozens of outcomes at full speed (statements per
    # delivery stay near 0.02), short against any publish.
    FLUSH_SECONDS = 0.05

    def __init__(
        self,
        runtime: Runtime,
        report: PassReport,
        state: engine.PassState,
        stop: asyncio.Event | None,
    ) -> None:
        self._runtime = runtime
        self._report = report
        self._state = state
        self._stop = stop
        self._count = 2 * max(1, report.concurrency)
        self._processed: list[engine.Processed] = []
        self._released: list[str] = []
        self._due = asyncio.Event()
        self._timer: asyncio.TimerHandle | None = None
        self._closing = False
        self._error: Exception | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def failed(self) -> bool:
        return self._error is not None

    def add(self, processed: engine.Processed) -> None:
        self._processed.append(processed)
        self._arrived()

    def release(self, ids: Sequence[str]) -> None:
        self._released.extend(ids)
        self._arrived()

    async def __aenter__(self) -> _OutcomeWriter:
        self._task = asyncio.create_task(self._loop(), name=f"outcomes-{self._report.pass_id}")
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, *_exc: object) -> None:
        assert self._task is not None
        if exc_type is not None:  # the pass failed: its deliveries wait for a takeover
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            return
        self._closing = True
        self._due.set()
        await self._task
        if self._error is not None:
            raise self._error

    def _arrived(self) -> None:
        if len(self._processed) + len(self._released) >= self._count or self._closing:
            self._due.set()
        elif self._timer is None:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(self.FLUSH_SECONDS, self._due.set)

    def _take(self) -> tuple[list[engine.Processed], list[str]]:
        taken = self._processed, self._released
        self._processed, self._released = [], []
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        return taken

    async def _loop(self) -> None:
        while True:
            await self._due.wait()
            self._due.clear()
            processed, released = self._take()
            if self._error is not None:
                await self._runtime.journal.keep_outcomes(
                    self._state.pass_id,
                    [(p.decision.delivery.id, p.decision.transition) for p in processed],
                )
            elif processed or released:
                try:
                    await _write_kept(
                        self._runtime,
                        self._report,
                        self._state,
                        processed,
                        released=released,
                        stop=self._stop,
                        more=self._take,
                    )
                except Exception as exc:  # kept in the journal: the pass ends with it
                    self._error = exc
            pending = bool(self._processed or self._released)
            if self._closing and not pending:
                return
            if pending:
                self._arrived()


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
    more: Callable[[], tuple[list[engine.Processed], list[str]]] | None = None,
) -> None:
    """Write outcomes, retrying while the database is unreachable (bounded, with backoff; a
    worker that is stopping waits at most its shutdown grace). Every failure also puts them in
    the journal, so a pass that dies or gives up meanwhile loses nothing; `more` hands over
    what was decided meanwhile, to join the group being retried. A row the database refuses is
    written alone, so it holds back no one else's."""
    settings = runtime.settings
    processed, released = list(processed), list(released)
    journaled = 0
    deadline = time.monotonic() + settings.SCHEDULER_WRITE_RETRY_SECONDS
    shortened = False
    delay = 0.1
    one_by_one = False
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
            if more is not None:
                arrived, freed = more()
                processed.extend(arrived)
                released.extend(freed)
            await runtime.journal.keep_outcomes(
                state.pass_id,
                [(p.decision.delivery.id, p.decision.transition) for p in processed[journaled:]],
            )
            journaled = len(processed)
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
    """Outcomes, activity, webhook events and account changes in one transaction."""
    now = runtime.now()
    entries = [entry for p in processed for entry in _activity(p, report, now)]
    decisions = [p.decision for p in processed]
    announced = events_of(decisions, pass_id=report.pass_id, scheduler=report.scheduler)
    async with runtime.db.engine.begin() as conn:
        if report.scheduler == SchedulerKind.OPTIMIZED.value:
            applied = await work.apply_decisions(
                conn,
                decisions,
                claimer=report.pass_id,
                now=now,
                entries=entries,
                events=announced,
            )
        else:  # the reference keeps its natural statements: the outcome, then its activity
            applied = await work.apply_decisions(
                conn, decisions, claimer=report.pass_id, now=now, events=announced
            )
            await activity.append(conn, [e for e in entries if e.delivery_id in applied])
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
