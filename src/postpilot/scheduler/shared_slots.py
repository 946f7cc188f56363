"""A pass's asks for, and returns of, the account slots every worker shares (`cache.slots`):
one exchange at a time, and whatever comes while one is under way goes together in the next,
so a busy pass makes about one round trip per handful of deliveries, not two per delivery.
While the pass holds slots that expire unless renewed, it renews them every `renew_seconds`,
with the next exchange (one with nothing to ask or return, if need be). Only a live pass
renews: a cancelled one's slots expire."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

from postpilot.cache.slots import AccountSlots, Slot
from postpilot.scheduler import engine
from postpilot.store.work import WorkItem

log = logging.getLogger(__name__)

# Hears each exchange's answers: every asked delivery with whether it may start.
Answer = Callable[[Sequence[tuple[WorkItem, bool]]], None]


class SlotBroker:
    def __init__(self, slots: AccountSlots, pass_id: str, answer: Answer) -> None:
        self._slots = slots
        self._pass_id = pass_id
        self._answer = answer
        self._asked: list[WorkItem] = []
        self._returned: list[WorkItem] = []
        self._task: asyncio.Task[None] | None = None
        self._held: dict[str, WorkItem] = {}  # granted, not given back, by delivery id
        self._renew_due = False
        self._renewal: asyncio.TimerHandle | None = None

    def ask(self, item: WorkItem) -> None:
        """Ask for a slot of `item`'s account; the answer comes through `answer`."""
        self._asked.append(item)
        self._wake()

    def give_back(self, item: WorkItem) -> None:
        """`item` (whose slot was granted) is no longer in flight."""
        self._held.pop(item.delivery.id, None)
        self._returned.append(item)
        self._wake()

    async def flush(self) -> None:
        """Wait until every ask is answered and every return made."""
        while self._task is not None:
            await asyncio.shield(self._task)
        self._stop_renewing()

    def cancel(self) -> None:
        """Stop exchanging (the pass is cancelled): slots still held expire or are dropped when
        the process closes its slots."""
        self._stop_renewing()
        if self._task is not None:
            self._task.cancel()

    def _keep_renewing(self) -> None:
        every = self._slots.renew_seconds
        if every is not None and self._held and self._renewal is None:
            self._renewal = asyncio.get_running_loop().call_later(every, self._renew)

    def _renew(self) -> None:
        self._renewal = None
        if self._held:
            self._renew_due = True
            self._wake()
            self._keep_renewing()

    def _stop_renewing(self) -> None:
        if self._renewal is not None:
            self._renewal.cancel()
            self._renewal = None

    def _wake(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._exchange(), name=f"slots-{self._pass_id}")

    def _slot(self, item: WorkItem) -> Slot:
        return Slot(
            account=item.account.id,
            holder=f"{self._pass_id}:{item.delivery.id}",
            cap=engine.in_flight_cap(item.delivery.platform),
        )

    async def _exchange(self) -> None:
        try:
            while self._asked or self._returned or self._renew_due:
                renewed = list(self._held.values()) if self._renew_due else []
                self._renew_due = False
                asked, self._asked = self._asked, []
                returned, self._returned = self._returned, []
                try:
                    granted = await self._slots.exchange(
                        [self._slot(item) for item in returned],
                        [self._slot(item) for item in asked],
                        [self._slot(item) for item in renewed],
                    )
                except Exception:  # a bug: the pass's own cap still holds
                    log.exception("exchanging account slots failed")
                    granted = [True] * len(asked)
                for item, ok in zip(asked, granted, strict=True):
                    if ok:
                        self._held[item.delivery.id] = item
                self._keep_renewing()
                self._answer(list(zip(asked, granted, strict=True)))
        finally:
            self._task = None
