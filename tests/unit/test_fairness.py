"""The fair queue alone: caps per account, due order per account, the earliest head first, a
platform's share of the slots, taking an account's waiting deliveries out, and pausing an
account whose cap other processes hold."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from postpilot.core.fairness import FairQueue

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def at(seconds: int, name: str) -> tuple[datetime, str]:
    return (T0 + timedelta(seconds=seconds), name)


def pop_all(queue: FairQueue[str]) -> list[str]:
    started = []
    while (item := queue.pop()) is not None:
        started.append(item)
    return started


def test_an_account_never_has_more_in_flight_than_its_cap() -> None:
    queue: FairQueue[str] = FairQueue(slots=10)
    for i in range(5):
        queue.push(f"room-{i}", account="room", platform="matrix", cap=1, order=at(i, f"{i}"))
    for i in range(5):
        queue.push(f"toot-{i}", account="toots", platform="mastodon", cap=3, order=at(i, f"{i}"))
    assert sorted(pop_all(queue)) == ["room-0", "toot-0", "toot-1", "toot-2"]
    assert (queue.in_flight, queue.waiting) == (4, 6)
    queue.finished("room")
    assert pop_all(queue) == ["room-1"]
    queue.finished("toots")
    assert pop_all(queue) == ["toot-3"]


def test_an_accounts_deliveries_start_in_due_order_whatever_the_push_order() -> None:
    queue: FairQueue[str] = FairQueue(slots=4)
    for seconds, name in [(3, "c"), (1, "a"), (2, "b2"), (2, "b1"), (0, "first")]:
        queue.push(name, account="a", platform="telegram", cap=1, order=at(seconds, name))
    started = []
    while (item := queue.pop()) is not None:
        started.append(item)
        queue.finished("a")
    assert started == ["first", "a", "b1", "b2", "c"]


def test_the_earliest_head_goes_first_across_accounts() -> None:
    queue: FairQueue[str] = FairQueue(slots=1)
    queue.push("late", account="a", platform="x", cap=4, order=at(5, "late"))
    queue.push("early", account="b", platform="x", cap=4, order=at(1, "early"))
    queue.push("middle", account="c", platform="bluesky", cap=4, order=at(3, "middle"))
    order = []
    while (item := queue.pop()) is not None:
        order.append(item)
        queue.finished({"late": "a", "early": "b", "middle": "c"}[item])
    assert order == ["early", "middle", "late"]


def test_a_platform_takes_more_than_its_share_only_while_no_other_is_ready() -> None:
    queue: FairQueue[str] = FairQueue(slots=4)  # share: 2 slots
    for i in range(6):  # the slow platform's deliveries are all due first
        queue.push(f"slow-{i}", account=f"s{i}", platform="slow", cap=1, order=at(i, f"{i}"))
    for i in range(2):
        queue.push(f"fast-{i}", account=f"f{i}", platform="fast", cap=1, order=at(10 + i, f"{i}"))
    assert pop_all(queue) == ["slow-0", "slow-1", "fast-0", "fast-1"]
    queue.finished("f0")
    queue.finished("f1")
    # Nothing else is ready: the slow platform may fill the free slots.
    assert pop_all(queue) == ["slow-2", "slow-3"]


def test_take_removes_an_accounts_waiting_deliveries_in_due_order() -> None:
    queue: FairQueue[str] = FairQueue(slots=1)
    for seconds in (3, 1, 2):
        name = f"a{seconds}"
        queue.push(name, account="a", platform="x", cap=1, order=at(seconds, name))
    queue.push("b", account="b", platform="x", cap=1, order=at(5, "b"))
    assert queue.pop() == "a1"
    assert queue.take("a") == ["a2", "a3"]
    assert queue.waiting == 1
    queue.finished("a")
    assert pop_all(queue) == ["b"]
    assert queue.take("nobody") == []


def test_drain_empties_the_queue_and_keeps_the_in_flight_count() -> None:
    queue: FairQueue[str] = FairQueue(slots=2)
    for i in range(4):
        queue.push(f"d{i}", account=f"a{i % 2}", platform="x", cap=1, order=at(i, f"{i}"))
    assert len(pop_all(queue)) == 2
    assert sorted(queue.drain()) == ["d2", "d3"]
    assert (queue.waiting, queue.in_flight, queue.pop()) == (0, 2, None)


def test_a_paused_account_starts_nothing_until_resumed_and_the_others_go_on() -> None:
    queue: FairQueue[str] = FairQueue(slots=10)
    for i in range(3):
        queue.push(f"room-{i}", account="room", platform="matrix", cap=1, order=at(i, f"r{i}"))
        queue.push(f"chat-{i}", account="chat", platform="telegram", cap=1, order=at(9, f"c{i}"))
    queue.pause("room")
    assert pop_all(queue) == ["chat-0"]
    queue.finished("chat")
    assert pop_all(queue) == ["chat-1"]
    assert queue.resume() and not queue.resume(), "resumed once: nothing paused after"
    assert pop_all(queue) == ["room-0"], "due order kept through the pause"
