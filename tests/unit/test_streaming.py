"""The streaming flow of the optimized pass alone: a scripted deliverer that counts what is in
flight per account and finishes each delivery when the test says, a claim over a list, a sink
that keeps what it is handed, and account slots shared by passes (as Redis would hold them).
No database, no network, the clock stopped."""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import timedelta
from types import SimpleNamespace
from typing import cast

from postpilot.cache.slots import Slot
from postpilot.core import outcomes
from postpilot.core.retry import RetryPolicy
from postpilot.core.transitions import Event, Recovery, apply_outcome
from postpilot.scheduler import engine, streaming
from postpilot.scheduler.runtime import Runtime
from postpilot.store.work import (
    AccountRecord,
    ClaimedDelivery,
    Decision,
    PostContent,
    WorkItem,
)
from tests.mock_platform import NOW
from tests.waiting import wait_until

RUNTIME = cast(Runtime, SimpleNamespace(now=lambda: NOW, policy=RetryPolicy()))
LIMITED_UNTIL = NOW + timedelta(minutes=15)


def item(
    number: int,
    *,
    account: str,
    platform: str = "mastodon",
    recovered: bool = False,
    media: bool = False,
) -> WorkItem:
    delivery = ClaimedDelivery(
        id=f"d-{number:03d}",
        workspace_id="w",
        post_id=f"p-{number:03d}",
        account_id=account,
        platform=platform,
        attempts=0,
        scheduled_at=NOW - timedelta(seconds=100 - number),
        due_at=NOW,
        idempotency_key=f"k-{number}",
        recovered=recovered,
        previous_claimer="gone" if recovered else None,
    )
    urls = ("https://media.example/cat.png",) if media else ()
    post = PostContent(id=delivery.post_id, text="hi", media_urls=urls, overrides={}, version=1)
    record = AccountRecord(
        id=account,
        workspace_id="w",
        platform=platform,
        handle=account,
        base_url=None,
        options={},
        credentials="",
        credentials_version=1,
        token_expires_at=None,
        status="active",
    )
    return WorkItem(delivery=delivery, post=post, account=record)


class Deliverer:
    """Starts every delivery it is given and finishes it when `finish` says (or at once when
    `automatic`), answering `answers[id]` (published by default)."""

    def __init__(self, *, automatic: bool = True) -> None:
        self.automatic = automatic
        self.started: list[str] = []
        self.in_flight: Counter[str] = Counter()
        self.peak: Counter[str] = Counter()
        self.answers: dict[str, outcomes.Outcome] = {}
        self._gates: dict[str, asyncio.Event] = {}

    def finish(self, delivery_id: str) -> None:
        self._gates.setdefault(delivery_id, asyncio.Event()).set()

    async def deliver(self, work: WorkItem, state: engine.PassState) -> engine.Processed | None:
        account = work.account.id
        self.started.append(work.delivery.id)
        self.in_flight[account] += 1
        self.peak[account] = max(self.peak[account], self.in_flight[account])
        try:
            if self.automatic:
                await asyncio.sleep(0)  # let every other ready task run first
            else:
                await self._gates.setdefault(work.delivery.id, asyncio.Event()).wait()
        finally:
            self.in_flight[account] -= 1
        outcome = self.answers.get(work.delivery.id, outcomes.Published("42"))
        transition = apply_outcome(
            work.delivery.snapshot,
            outcome,
            NOW,
            policy=RetryPolicy(),
            recovery=Recovery.IDEMPOTENT,
        )
        return engine.Processed(
            decision=Decision(work.delivery, transition),
            outcome=outcomes.outcome_kind(outcome),
            duration_ms=0.0,
        )


class Sink:
    def __init__(self) -> None:
        self.decided: list[engine.Processed] = []
        self.released: list[str] = []

    @property
    def failed(self) -> bool:
        return False

    def add(self, processed: engine.Processed) -> None:
        self.decided.append(processed)

    def release(self, ids: Sequence[str]) -> None:
        self.released.extend(ids)

    def ids(self, event: Event | None = None) -> list[str]:
        return [
            p.decision.delivery.id
            for p in self.decided
            if event is None or p.decision.transition.event is event
        ]


class Claims:
    """Hands out `pool` in order, `count` at a time, recording each ask."""

    def __init__(self, pool: Sequence[WorkItem]) -> None:
        self.pool = list(pool)
        self.asks: list[int] = []

    async def __call__(self, count: int) -> Sequence[WorkItem]:
        self.asks.append(count)
        taken, self.pool = self.pool[:count], self.pool[count:]
        return taken


class SharedSlots:
    """Account slots every pass given it shares, answering after a round trip's yield; held
    for as long as the process lives unless `renew_seconds` is given."""

    def __init__(self, *, renew_seconds: float | None = None) -> None:
        self.renew_seconds = renew_seconds
        self.held: defaultdict[str, set[str]] = defaultdict(set)
        self.exchanges = 0
        self.renewed: list[set[str]] = []  # the holders each renewal named
        self.denied = 0

    async def exchange(
        self, returned: Sequence[Slot], asked: Sequence[Slot], renewed: Sequence[Slot] = ()
    ) -> list[bool]:
        self.exchanges += 1
        if renewed:
            self.renewed.append({slot.holder for slot in renewed})
        await asyncio.sleep(0)
        for slot in returned:
            self.held[slot.account].remove(slot.holder)
        granted = []
        for slot in asked:
            free = len(self.held[slot.account]) < slot.cap
            if free:
                self.held[slot.account].add(slot.holder)
            self.denied += not free
            granted.append(free)
        return granted

    def close(self) -> None:
        return None


async def run(
    pool: Sequence[WorkItem],
    deliverer: Deliverer,
    *,
    limit: int,
    concurrency: int,
    halted: bool = False,
    sink: Sink | None = None,
    slots: SharedSlots | None = None,
    pass_id: str = "pass",
) -> tuple[streaming.Stream, Sink, Claims]:
    sink, claims = sink or Sink(), Claims(pool)
    stream = streaming.Stream(
        RUNTIME,
        cast(engine.PassState, None),
        limit=limit,
        concurrency=concurrency,
        claim=claims,
        deliverer=deliverer,
        sink=sink,
        halted=lambda: halted,
        slots=slots,
        pass_id=pass_id,
    )
    asked = min(limit, streaming.claim_group(concurrency))
    await stream.run(await claims(asked), asked=asked)
    return stream, sink, claims


async def test_an_account_never_has_more_in_flight_than_its_platform_tolerates() -> None:
    room = [item(i, account="room", platform="matrix") for i in range(6)]
    toots = [item(10 + i, account="toots") for i in range(12)]
    deliverer = Deliverer()
    stream, sink, _ = await run([*toots, *room], deliverer, limit=100, concurrency=10)
    assert deliverer.peak["room"] == 1  # Matrix: one send per room at a time
    assert deliverer.peak["toots"] == 4  # Mastodon's cap, below the pass's 10 slots
    assert sorted(sink.ids()) == sorted(d.delivery.id for d in [*room, *toots])
    assert stream.claimed == 18


async def test_an_accounts_deliveries_start_in_due_order() -> None:
    # Claimed in reverse: the pass still sends the earliest scheduled first.
    chat = [item(i, account="chat", platform="telegram") for i in reversed(range(8))]
    deliverer = Deliverer()
    await run(chat, deliverer, limit=100, concurrency=4)
    assert deliverer.started == sorted(deliverer.started)
    assert len(deliverer.started) == 8


async def test_outcomes_are_handed_on_while_a_slow_publish_is_in_flight() -> None:
    deliverer, sink = Deliverer(automatic=False), Sink()
    pool = [item(i, account=f"a{i}") for i in range(6)]
    task = asyncio.create_task(run(pool, deliverer, limit=100, concurrency=6, sink=sink))
    await wait_until(lambda: len(deliverer.started) == 6, timeout=5)
    for work in pool[1:]:
        deliverer.finish(work.delivery.id)
    await wait_until(lambda: len(sink.decided) == 5, timeout=5)
    assert not task.done() and pool[0].delivery.id not in sink.ids()
    deliverer.finish(pool[0].delivery.id)
    await asyncio.wait_for(task, timeout=5)
    assert sink.ids()[-1] == pool[0].delivery.id


async def test_a_rate_limited_account_gets_no_more_requests_and_holds_no_slot() -> None:
    limited = [item(i, account="limited") for i in range(8)]
    others = [item(20 + i, account=f"other{i}") for i in range(8)]
    deliverer = Deliverer()
    deliverer.answers["d-000"] = outcomes.RateLimited(until=LIMITED_UNTIL)
    deliverer.answers["d-001"] = outcomes.RateLimited(until=LIMITED_UNTIL)
    _, sink, _ = await run([*limited, *others], deliverer, limit=100, concurrency=2)
    sent_limited = [d for d in deliverer.started if d in {w.delivery.id for w in limited}]
    # At most the account's sends already in flight when the first answer came back.
    assert len(sent_limited) <= 2
    assert sorted(sink.ids(Event.PUBLISHED)) == sorted(w.delivery.id for w in others)
    waiting = [p for p in sink.decided if p.decision.delivery.account_id == "limited"]
    assert len(waiting) == 8
    for p in waiting:
        assert p.decision.transition.event is Event.RATE_LIMITED
        assert p.decision.transition.due_at == LIMITED_UNTIL
        assert p.decision.transition.attempts == 0


async def test_a_taken_over_delivery_of_a_limited_account_still_goes_through_the_engine() -> None:
    pool = [
        item(0, account="limited", platform="telegram"),
        item(1, account="limited", platform="telegram", recovered=True),
        item(2, account="limited", platform="telegram"),
    ]
    deliverer = Deliverer()
    deliverer.answers["d-000"] = outcomes.RateLimited(until=LIMITED_UNTIL)
    _, sink, _ = await run(pool, deliverer, limit=100, concurrency=3)
    # Recovery decides first whether it may be sent at all: it is never deferred blindly.
    assert deliverer.started == ["d-000", "d-001"]
    assert sorted(sink.ids()) == ["d-000", "d-001", "d-002"]


async def test_claims_come_in_groups_as_slots_free_up_until_the_limit() -> None:
    pool = [item(i, account=f"a{i % 7}") for i in range(50)]
    deliverer = Deliverer()
    stream, sink, claims = await run(pool, deliverer, limit=30, concurrency=2)
    assert stream.claimed == 30 and len(sink.decided) == 30
    assert claims.asks == [8, 8, 8, 6]
    assert len(claims.pool) == 20, "nothing claimed beyond the pass's limit"


async def test_the_pass_ends_when_a_claim_comes_back_short() -> None:
    pool = [item(i, account=f"a{i % 3}") for i in range(11)]
    deliverer = Deliverer()
    stream, sink, claims = await run(pool, deliverer, limit=100, concurrency=2)
    assert stream.claimed == 11 and len(sink.decided) == 11
    assert claims.asks == [8, 8]


async def test_a_halted_pass_starts_nothing_and_hands_everything_back() -> None:
    pool = [item(i, account=f"a{i}") for i in range(5)]
    deliverer = Deliverer()
    stream, sink, _ = await run(pool, deliverer, limit=100, concurrency=2, halted=True)
    assert deliverer.started == [] and sink.decided == []
    assert sorted(sink.released) == sorted(w.delivery.id for w in pool)
    assert stream.claimed == 5


async def test_a_limit_met_by_a_post_with_media_holds_back_only_posts_with_media() -> None:
    # Possibly the upload limit alone: text-only posts still go (the publisher's budget answers
    # without a request if the account's limit is spent too).
    pool = [
        item(0, account="a", platform="telegram", media=True),
        item(1, account="a", platform="telegram", media=True),
        item(2, account="a", platform="telegram"),
        item(3, account="a", platform="telegram"),
    ]
    deliverer = Deliverer()
    deliverer.answers["d-000"] = outcomes.RateLimited(until=LIMITED_UNTIL)
    _, sink, _ = await run(pool, deliverer, limit=100, concurrency=4)
    assert deliverer.started == ["d-000", "d-002", "d-003"]
    assert sink.ids(Event.RATE_LIMITED) == ["d-000", "d-001"]


async def test_a_cancelled_pass_leaves_no_delivery_or_claim_running() -> None:
    class SlowClaims(Claims):
        async def __call__(self, count: int) -> Sequence[WorkItem]:
            if self.asks:  # every claim after the first never answers
                self.asks.append(count)
                await asyncio.Event().wait()
            return await super().__call__(count)

    deliverer, claims = Deliverer(automatic=False), SlowClaims([])
    # One chat: one send in flight, the other slots free, so the pass claims more meanwhile.
    claims.pool = [item(i, account="chat", platform="telegram") for i in range(40)]
    stream = streaming.Stream(
        RUNTIME,
        cast(engine.PassState, None),
        limit=100,
        concurrency=4,
        claim=claims,
        deliverer=deliverer,
        sink=Sink(),
        halted=lambda: False,
    )
    task = asyncio.create_task(stream.run(await claims(16), asked=16))
    await wait_until(lambda: len(deliverer.started) == 1 and len(claims.asks) == 2, timeout=5)
    others = asyncio.all_tasks() - {asyncio.current_task(), task}
    assert len(others) == 2  # the send and the claim
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert all(t.done() for t in others)


async def test_passes_sharing_slots_never_send_an_account_over_its_cap_together() -> None:
    # Two passes (as two processes would) hold deliveries of one Matrix room (cap 1) and of
    # one Mastodon account (cap 4); one deliverer counts what is in flight across both.
    first = [item(i, account="room", platform="matrix") for i in range(6)]
    first += [item(10 + i, account="toots") for i in range(10)]
    second = [item(30 + i, account="room", platform="matrix") for i in range(6)]
    second += [item(40 + i, account="toots") for i in range(10)]
    deliverer, slots = Deliverer(), SharedSlots()
    (_, one, _), (_, two, _) = await asyncio.gather(
        run(first, deliverer, limit=100, concurrency=10, slots=slots, pass_id="one"),
        run(second, deliverer, limit=100, concurrency=10, slots=slots, pass_id="two"),
    )
    assert deliverer.peak["room"] == 1 and deliverer.peak["toots"] == 4
    assert slots.denied > 0, "the passes did meet each other at the caps"
    assert sorted(one.ids()) == sorted(w.delivery.id for w in first)
    assert sorted(two.ids()) == sorted(w.delivery.id for w in second)
    assert not one.released and not two.released
    assert all(not holders for holders in slots.held.values()), "every slot given back"
    # Asks and returns go together: fewer exchanges than deliveries.
    assert slots.exchanges < len(first) + len(second)


async def test_a_delivery_waiting_for_a_shared_slot_is_handed_back_when_the_pass_halts() -> None:
    slots = SharedSlots()
    slots.held["room"].add("another-process:d-900")  # the room's one slot, held elsewhere
    pool = [item(i, account="room", platform="matrix") for i in range(3)]
    pool.append(item(5, account="toots"))
    deliverer, sink, stopped = Deliverer(), Sink(), asyncio.Event()
    stream = streaming.Stream(
        RUNTIME,
        cast(engine.PassState, None),
        limit=100,
        concurrency=4,
        claim=Claims([]),
        deliverer=deliverer,
        sink=sink,
        halted=stopped.is_set,
        slots=slots,
        pass_id="pass",
    )
    task = asyncio.create_task(stream.run(pool, asked=16))
    await wait_until(lambda: sink.ids() == ["d-005"] and slots.denied >= 2, timeout=5)
    assert [d for d in deliverer.started if d != "d-005"] == [], "the room waits, unsent"
    stopped.set()
    await asyncio.wait_for(task, timeout=5)
    assert sorted(sink.released) == ["d-000", "d-001", "d-002"]
    assert slots.held["room"] == {"another-process:d-900"}


async def test_a_pass_holding_slots_that_expire_exchanges_often_enough_to_renew_them() -> None:
    slots = SharedSlots(renew_seconds=0.01)
    deliverer, sink = Deliverer(automatic=False), Sink()
    slow = item(1, account="room", platform="matrix")
    task = asyncio.create_task(
        run([slow], deliverer, limit=100, concurrency=4, sink=sink, slots=slots)
    )
    # The send outlasts several renewal periods: each renews the slot it holds, and only it.
    await wait_until(lambda: len(slots.renewed) >= 3, timeout=5)
    assert slots.renewed[:3] == [{"pass:d-001"}] * 3
    deliverer.finish(slow.delivery.id)
    await asyncio.wait_for(task, timeout=5)
    assert sink.ids() == ["d-001"] and not slots.held["room"]
    assert all(renewal == {"pass:d-001"} for renewal in slots.renewed)
