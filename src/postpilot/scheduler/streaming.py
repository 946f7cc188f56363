"""The optimized pass's flow: up to C publishes in flight, more claimed as slots free up, each
decision handed to the outcome writer as soon as it is made, so no outcome waits for a slower
publish. What starts next is fair to each account and platform (`core.fairness`).

A pass ends once everything it started is decided and either nothing more is due (a claim came
back short) or its budget (`limit` deliveries) is claimed. It starts nothing more, and hands
back what it holds unstarted, once it is told to stop, its lease is at risk, its outcomes
cannot be written or its deadline has passed. An account told it is rate limited gets no more
requests in the pass: its waiting deliveries are rescheduled for when the limit ends, without
an attempt, and hold no slot.

With account slots shared by every worker (`cache.slots`: Redis, or this machine's lock files),
a delivery starts only once its account's slot is granted there too; an account whose slots
other processes hold waits (SHARED_RETRY_SECONDS between asks) while the pass goes on with the
others, and is never sent over its cap.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from postpilot.cache.slots import AccountSlots
from postpilot.core import variants
from postpilot.core.fairness import FairQueue
from postpilot.scheduler import engine
from postpilot.scheduler.runtime import Runtime
from postpilot.scheduler.shared_slots import SlotBroker
from postpilot.store import database
from postpilot.store.work import WorkItem

log = logging.getLogger(__name__)

Claim = Callable[[int], Awaitable[Sequence[WorkItem]]]

# How soon an account whose shared slots were all taken asks again: about one publish.
SHARED_RETRY_SECONDS = 0.02


def claim_group(concurrency: int) -> int:
    """How many deliveries one claim takes: four waves of the slots, so that a claim (one
    statement on PostgreSQL) serves dozens of deliveries and the fair queue has accounts to
    choose from."""
    return 4 * max(1, concurrency)


class Deliverer(Protocol):
    async def deliver(self, item: WorkItem, state: engine.PassState) -> engine.Processed | None: ...


class Sink(Protocol):
    @property
    def failed(self) -> bool: ...

    def add(self, processed: engine.Processed) -> None: ...

    def release(self, ids: Sequence[str]) -> None: ...


class Stream:
    def __init__(
        self,
        runtime: Runtime,
        state: engine.PassState,
        *,
        limit: int,
        concurrency: int,
        claim: Claim,
        deliverer: Deliverer,
        sink: Sink,
        halted: Callable[[], bool],
        slots: AccountSlots | None = None,
        pass_id: str = "",
    ) -> None:
        self._runtime = runtime
        self._state = state
        self._limit = limit
        self._slots = max(1, concurrency)
        self._group = claim_group(concurrency)
        self._claim = claim
        self._deliverer = deliverer
        self._sink = sink
        self._halted = halted
        self._queue: FairQueue[WorkItem] = FairQueue(slots=self._slots)
        self._more = True  # a claim may still find something due
        self._claiming: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._done = asyncio.Event()
        self._limited: dict[str, _Limit] = {}  # by account id
        self._broker = SlotBroker(slots, pass_id, self._answered) if slots else None
        self._retry: asyncio.TimerHandle | None = None
        self.claimed = 0
        self.claim_failed = False  # a claim's answer was lost: keep the journal
        self.error: Exception | None = None  # a bug: raised by the pass once it has drained

    async def run(self, first: Sequence[WorkItem], *, asked: int) -> None:
        """Publish `first` (the pass's first claim, of `asked`) and whatever later claims
        bring, until the pass ends."""
        self._more = len(first) >= asked
        self._add(first)
        self._pump()
        try:
            await self._done.wait()
            if self._broker is not None:
                await self._broker.flush()  # the last slots given back
        except asyncio.CancelledError:
            running = [*self._tasks, *([self._claiming] if self._claiming else [])]
            for task in running:
                task.cancel()
            if self._broker is not None:
                self._broker.cancel()
            await asyncio.gather(*running, return_exceptions=True)
            raise
        finally:
            if self._retry is not None:
                self._retry.cancel()

    def _add(self, items: Sequence[WorkItem]) -> None:
        now = self._runtime.now()
        for item in items:
            self.claimed += 1
            self._admit(item, now)

    def _admit(self, item: WorkItem, now: datetime) -> None:
        limited = self._limited.get(item.account.id)
        if limited is not None and limited.until > now and limited.holds(item):
            self._defer(item, limited)
        else:
            self._push(item)

    def _push(self, item: WorkItem) -> None:
        self._queue.push(
            item,
            account=item.account.id,
            platform=item.delivery.platform,
            cap=engine.in_flight_cap(item.delivery.platform),
            order=(item.delivery.scheduled_at, item.delivery.id),
        )

    def _pump(self) -> None:
        """Start what may start, claim more when the queue runs low, and notice the end."""
        if self._halted() or self.error is not None:
            if self._queue.waiting:
                self._sink.release([item.delivery.id for item in self._queue.drain()])
        else:
            while (item := self._queue.pop()) is not None:
                if self._broker is None:
                    self._start(item)
                else:
                    self._broker.ask(item)  # counted in flight until answered
            self._maybe_claim(stuck=self._queue.in_flight < self._slots)
        if not self._queue.in_flight and not self._queue.waiting and self._claiming is None:
            self._done.set()

    def _start(self, item: WorkItem) -> None:
        task = asyncio.create_task(self._one(item), name=f"deliver-{item.delivery.id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _answered(self, answers: Sequence[tuple[WorkItem, bool]]) -> None:
        """Start what got its shared slot; queue again, paused, what did not."""
        assert self._broker is not None
        halted = self._halted() or self.error is not None
        now = self._runtime.now()
        for item, granted in answers:
            if granted and not halted:
                self._start(item)
                continue
            self._queue.finished(item.account.id)
            if granted:
                self._broker.give_back(item)
            if halted:
                self._sink.release([item.delivery.id])
                continue
            self._admit(item, now)
            self._queue.pause(item.account.id)
            if self._retry is None:
                loop = asyncio.get_running_loop()
                self._retry = loop.call_later(SHARED_RETRY_SECONDS, self._resume)
        self._pump()

    def _resume(self) -> None:
        self._retry = None
        if self._queue.resume():
            self._pump()

    def _maybe_claim(self, *, stuck: bool) -> None:
        """Claim when fewer than a wave wait, or when slots are free but every waiting
        delivery's account is at its cap; never hold more than a few claims' worth unstarted."""
        if self._claiming is not None or not self._more or self.claimed >= self._limit:
            return
        waiting = self._queue.waiting
        if waiting >= 2 * self._group or (waiting >= self._slots and not stuck):
            return
        asked = min(self._group, self._limit - self.claimed)
        self._claiming = asyncio.create_task(self._claim_more(asked), name="claim")

    async def _claim_more(self, asked: int) -> None:
        items: Sequence[WorkItem] = ()
        try:
            items = await self._claim(asked)
            self._more = len(items) >= asked
        except Exception as exc:
            # Whether the claim took rows is unknown: they stay ours until the lease ends, and
            # the journal (kept) tells whoever takes them over that none was sent.
            self._more = False
            self.claim_failed = True
            if database.unreachable(exc):  # the type only: a driver's text may name the server
                log.warning(
                    "claiming more failed: the database is unreachable (%s)", type(exc).__name__
                )
            else:
                log.exception("claiming more failed")
        finally:
            self._claiming = None
        self._add(items)
        self._pump()

    async def _one(self, item: WorkItem) -> None:
        processed: engine.Processed | None = None
        answered = False
        try:
            processed = await self._deliverer.deliver(item, self._state)
            answered = True
        except Exception as exc:  # a bug: left claimed, for a takeover to decide from the journal
            log.exception("delivery crashed the pass", extra={"delivery_id": item.delivery.id})
            self.error = self.error or exc
        finally:
            self._queue.finished(item.account.id)
            if self._broker is not None:
                self._broker.give_back(item)
        if processed is not None:
            self._sink.add(processed)
            if processed.outcome == "rate_limited":
                self._rate_limited(item, processed)
        elif answered:
            self._sink.release([item.delivery.id])  # not started
        self._pump()

    def _rate_limited(self, item: WorkItem, processed: engine.Processed) -> None:
        transition = processed.decision.transition
        if transition.due_at <= self._runtime.now():
            return
        limit = _Limit(
            until=transition.due_at,
            reason=transition.error or "rate limited by the platform",
            with_media=_with_media(item),
        )
        known = self._limited.get(item.account.id)
        if known is None or known.until <= self._runtime.now() or known.with_media:
            self._limited[item.account.id] = limit  # a limit without media holds every post
        for waiting in self._queue.take(item.account.id):
            if limit.holds(waiting):
                self._defer(waiting, limit)
            else:
                self._push(waiting)

    def _defer(self, item: WorkItem, limit: _Limit) -> None:
        why = f"not sent: another delivery to this account was just told to wait ({limit.reason})"
        self._sink.add(engine.deferred(item, self._runtime, limit.until, why))


@dataclass(frozen=True, slots=True)
class _Limit:
    """An account's rate limit as a pass learned it from one of its deliveries."""

    until: datetime
    reason: str
    with_media: bool  # met by a post with media: it may be the upload limit alone

    def holds(self, item: WorkItem) -> bool:
        """Whether `item` waits for it unsent. Not a taken-over delivery: its recovery decides
        first whether it may be sent at all (through the engine). Not a post without media
        when a post with media met the limit: that may be the upload limit (Mastodon's is 30
        per 30 minutes, its statuses' 300 per 3 hours), and the publisher's own budget answers
        without a request when the account's is spent."""
        if item.delivery.recovered:
            return False
        return not (self.with_media and not _with_media(item))


def _with_media(item: WorkItem) -> bool:
    """Whether the delivery sends media: its account's variant may bring or drop them."""
    return bool(
        variants.media_for(
            media_urls=item.post.media_urls,
            account_overrides=item.post.account_overrides,
            account_id=item.account.id,
        )
    )
