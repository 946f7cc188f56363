"""Which claimed delivery a pass starts next, fair to each account and each platform. Pure.

- An account never has more sends in flight than its platform tolerates (its cap): beyond it,
  a platform answers with rate limits, each one a wasted request.
- An account's deliveries start in due order (scheduled time, then id), whatever order they
  were claimed in.
- Across accounts the earliest head goes first, so lateness stays even.
- A platform takes more than its share of the slots only while no other platform has a delivery
  ready: one slow platform cannot hold every slot while the others wait.

Every operation is O(log n) in the deliveries waiting (heaps with lazily dropped stale entries),
so the policy costs the same at any batch size.
"""

from __future__ import annotations

import heapq
import itertools
import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Generic, TypeVar

T = TypeVar("T")
Order = tuple[datetime, str]  # (scheduled_at, delivery id)

# Of the slots, what one platform may hold while another has a delivery ready.
PLATFORM_SHARE = 0.5


@dataclass
class _Account(Generic[T]):
    platform: str
    cap: int
    queue: list[tuple[Order, int, T]] = field(default_factory=list)
    in_flight: int = 0
    version: int = 0  # bumped whenever its entry in the ready heap goes stale
    listed: Order | None = None  # the head order its current ready entry carries
    paused: bool = False  # at its cap elsewhere (other processes' sends): not started for now

    @property
    def startable(self) -> bool:
        return bool(self.queue) and self.in_flight < self.cap and not self.paused


# (head order, tie-break, account key, version)
_Ready = tuple[Order, int, str, int]


class FairQueue(Generic[T]):
    """Deliveries a pass holds and has not started, with what it has in flight."""

    def __init__(self, *, slots: int, platform_share: float = PLATFORM_SHARE) -> None:
        self.slots = max(1, slots)
        self.share = max(1, math.ceil(self.slots * platform_share))
        self.waiting = 0
        self.in_flight = 0
        self._accounts: dict[str, _Account[T]] = {}
        self._ready: dict[str, list[_Ready]] = {}  # per platform
        self._platform_in_flight: dict[str, int] = {}
        self._tie = itertools.count()
        self._paused: set[str] = set()

    def push(self, item: T, *, account: str, platform: str, cap: int, order: Order) -> None:
        """Queue a claimed delivery behind its account's earlier ones."""
        held = self._accounts.get(account)
        if held is None:
            held = self._accounts[account] = _Account(platform=platform, cap=max(1, cap))
        heapq.heappush(held.queue, (order, next(self._tie), item))
        self.waiting += 1
        if held.listed is None or order < held.listed:
            self._relist(account, held)

    def pop(self) -> T | None:
        """The next delivery to start, or None when every slot is taken or every waiting
        delivery's account is at its cap."""
        if self.in_flight >= self.slots:
            return None
        best: tuple[_Ready, str] | None = None
        within_share: tuple[_Ready, str] | None = None
        for platform, heap in self._ready.items():
            top = self._top(heap)
            if top is None:
                continue
            if best is None or top < best[0]:
                best = (top, platform)
            under = self._platform_in_flight.get(platform, 0) < self.share
            if under and (within_share is None or top < within_share[0]):
                within_share = (top, platform)
        chosen = within_share or best
        if chosen is None:
            return None
        (_, _, key, _), platform = chosen
        heapq.heappop(self._ready[platform])
        held = self._accounts[key]
        _, _, item = heapq.heappop(held.queue)
        self.waiting -= 1
        held.in_flight += 1
        self.in_flight += 1
        self._platform_in_flight[platform] = self._platform_in_flight.get(platform, 0) + 1
        self._relist(key, held)
        return item

    def finished(self, account: str) -> None:
        """A delivery of `account` that `pop` gave is no longer in flight."""
        held = self._accounts[account]
        held.in_flight -= 1
        self.in_flight -= 1
        self._platform_in_flight[held.platform] -= 1
        self._relist(account, held)

    def pause(self, account: str) -> None:
        """Start nothing more of `account` until `resume` (its cap is taken elsewhere)."""
        held = self._accounts[account]
        if not held.paused:
            held.paused = True
            self._paused.add(account)
            self._relist(account, held)

    def resume(self) -> bool:
        """Let every paused account start again; whether any was paused."""
        paused, self._paused = self._paused, set()
        for account in paused:
            held = self._accounts[account]
            held.paused = False
            self._relist(account, held)
        return bool(paused)

    def take(self, account: str) -> list[T]:
        """Every waiting delivery of `account`, in due order, removed from the queue."""
        held = self._accounts.get(account)
        if held is None or not held.queue:
            return []
        items = [item for _, _, item in sorted(held.queue, key=lambda entry: entry[:2])]
        held.queue.clear()
        self.waiting -= len(items)
        self._relist(account, held)
        return items

    def drain(self) -> list[T]:
        """Every waiting delivery, removed from the queue (in flight ones stay counted)."""
        items: list[T] = []
        for account in list(self._accounts):
            items.extend(self.take(account))
        return items

    def _relist(self, key: str, held: _Account[T]) -> None:
        """Put the account in its platform's ready heap under its current head, dropping any
        entry it had there (lazily: a stale entry is skipped when it reaches the top)."""
        held.version += 1
        held.listed = None
        if held.startable:
            head = held.queue[0][0]
            entry = (head, next(self._tie), key, held.version)
            heapq.heappush(self._ready.setdefault(held.platform, []), entry)
            held.listed = head

    def _top(self, heap: list[_Ready]) -> _Ready | None:
        while heap:
            top = heap[0]
            if self._accounts[top[2]].version == top[3]:
                return top
            heapq.heappop(heap)
        return None
