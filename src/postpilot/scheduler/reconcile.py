"""Settle stored `unknown` deliveries by reading the platform back, so few wait for a person.

A delivery is `unknown` when an attempt may have reached a platform that cannot deduplicate a
repeat. Where its publisher can read back what the account posted (`FindsPublished`), this looks
every RECONCILE_INTERVAL_SECONDS at a small batch of them:

- found there: `published`, with the platform's id and link;
- provably absent (a complete listing, at least RECONCILE_SETTLE_SECONDS after it became
  unknown, so no send of it can still land): `scheduled` to be published again now;
- cannot tell: looked at again later, after as long again as it has been unknown (at least the
  settle delay, at most MAX_LOOK_DELAY). A person can resolve it at any time.

`due_at` means nothing else for an unknown delivery, so it holds the time of its next look.
Every write is conditional on the row still being the unknown row that was read (status and
`updated_at`), so two workers, or a person resolving it meanwhile, never both settle it. Each
settlement is in the activity log, naming what was found.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncConnection

from postpilot.core import readback
from postpilot.core.states import DeliveryStatus
from postpilot.core.transitions import DeliverySnapshot, Event, Transition, reconcile
from postpilot.publishers.registry import PUBLISHERS
from postpilot.scheduler import engine, lookups
from postpilot.scheduler.runtime import Runtime
from postpilot.scheduler.summary import PassReport, events_of
from postpilot.store import activity, unknown, webhooks, work
from postpilot.store.work import WorkItem

log = logging.getLogger(__name__)

BATCH = 10
MAX_LOOK_DELAY = timedelta(hours=6)
ACTOR = "reconciler"


@dataclass
class ReconcileReport:
    looked: int = 0
    published: int = 0
    retried: int = 0
    undecided: int = 0


async def reconcile_unknown(runtime: Runtime, *, limit: int = BATCH) -> ReconcileReport:
    """One look at up to `limit` unknown deliveries whose next look is due, one at a time (a
    post found for one is then out of reach of the next one on the same account)."""
    report = ReconcileReport()
    for row in await _due(runtime, limit):
        report.looked += 1
        result = await _settle(runtime, row)
        setattr(report, result, getattr(report, result) + 1)
    if report.retried:
        runtime.wakeup.set()
    return report


@contextlib.asynccontextmanager
async def running(runtime: Runtime, stop: asyncio.Event) -> AsyncIterator[None]:
    """Reconcile in the background while a worker runs (never in a pass's way)."""

    async def loop() -> None:
        while not stop.is_set():
            try:
                report = await reconcile_unknown(runtime)
                if report.looked:
                    log.info("reconciled unknown deliveries", extra=vars(report))
            except Exception:
                log.exception("reconciliation failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), runtime.settings.RECONCILE_INTERVAL_SECONDS)

    task = asyncio.create_task(loop(), name="reconcile-unknown")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _due(runtime: Runtime, limit: int) -> list[unknown.UnknownDelivery]:
    now = runtime.now()
    settle = timedelta(seconds=runtime.settings.RECONCILE_SETTLE_SECONDS)
    async with runtime.db.engine.connect() as conn:
        return await unknown.due_for_a_look(
            conn,
            now=now,
            unknown_since=now - settle,
            platforms=[name for name in PUBLISHERS if lookups.readable(name)],
            limit=limit,
        )


async def _settle(runtime: Runtime, row: unknown.UnknownDelivery) -> str:
    """Look one delivery up and write what follows; the name of the report's counter."""
    item = row.item
    answer = await lookups.look(item, runtime, engine.account_context)
    now = runtime.now()
    unknown_for = now - row.seen_at
    settled = unknown_for >= timedelta(seconds=runtime.settings.RECONCILE_SETTLE_SECONDS)
    snapshot = DeliverySnapshot(DeliveryStatus.UNKNOWN, item.delivery.attempts, now)
    transition = reconcile(snapshot, answer, now, settled=settled)
    async with runtime.db.engine.begin() as conn:
        if transition is None:
            later = now + _next_look(unknown_for, runtime)
            if await unknown.put_off_look(conn, item.delivery.id, seen_at=row.seen_at, until=later):
                await _explain(conn, item, answer, now)
            log.info(
                "unknown delivery still undecided",
                extra={"delivery_id": item.delivery.id, "answer": repr(answer), "next": later},
            )
            return "undecided"
        written = await unknown.settle(
            conn, item.delivery.id, seen_at=row.seen_at, transition=transition, now=now
        )
        if not written:
            return "undecided"  # settled by someone else meanwhile
        await _note(conn, item, now, transition.event, transition.detail)
        report = _report(runtime, item, transition)
        # In this transaction: a reconciler that dies after the commit has still announced it.
        announced = events_of(report.decisions, pass_id=report.pass_id, scheduler=ACTOR)
        await webhooks.record_events(conn, list(announced.values()), now=now)
    runtime.delivery_events(report)  # the operator's webhook, and the outbox sender wakes
    published = transition.status is DeliveryStatus.PUBLISHED
    log.info(
        "unknown delivery reconciled",
        extra={"delivery_id": item.delivery.id, "detail": transition.detail},
    )
    return "published" if published else "retried"


async def _explain(
    conn: AsyncConnection, item: WorkItem, answer: readback.ReadBack, now: datetime
) -> None:
    """Tell the person who may resolve it why it still waits, once per reason."""
    why = answer.reason if isinstance(answer, readback.CannotTell) else "too early to tell"
    detail = (
        f"could not tell from {item.delivery.platform} whether it was published ({why}); it is "
        "looked up again later, or resolve it by hand"
    )
    if await activity.last_detail(conn, item.delivery.post_id, item.delivery.id) != detail:
        await _note(conn, item, now, Event.UNKNOWN, detail)


async def _note(
    conn: AsyncConnection, item: WorkItem, now: datetime, event: Event, detail: str
) -> None:
    entry = activity.Entry(
        workspace_id=item.delivery.workspace_id,
        post_id=item.delivery.post_id,
        delivery_id=item.delivery.id,
        at=now,
        event=event.value,
        detail=detail,
        actor=ACTOR,
    )
    await activity.append(conn, [entry])


def _report(runtime: Runtime, item: WorkItem, transition: Transition) -> PassReport:
    """The settlement as a one-decision report: users' tools hear of a delivery published here
    as of one a pass published."""
    return PassReport(
        pass_id=str(uuid.uuid4()),
        scheduler=ACTOR,
        started_at=runtime.now(),
        limit=1,
        concurrency=1,
        decisions=[work.Decision(delivery=item.delivery, transition=transition)],
    )


def _next_look(unknown_for: timedelta, runtime: Runtime) -> timedelta:
    settle = timedelta(seconds=runtime.settings.RECONCILE_SETTLE_SECONDS)
    return min(max(unknown_for, settle, timedelta(seconds=1)), MAX_LOOK_DELAY)
