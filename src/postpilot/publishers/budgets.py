"""Rate-limit budgets: what each platform told us about how many calls are left before a reset.

Publishers update a budget from every response's rate-limit signals (headers, codes) and consult
it before sending: a budget spent until a reset answers `RateLimited(until=reset)` without a
request, so the scheduler waits before a limit instead of hitting it. Budgets are kept per key:
one per account, and one per app where the platform limits the app as a whole.

The storage is a small async interface (`BudgetStore`); `MemoryBudgetStore` is the in-process
default and a Redis-backed store can implement the same three methods.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Budget:
    remaining: int  # calls left until `reset_at`; 0 means spent
    reset_at: datetime
    reason: str = ""


class BudgetStore(Protocol):
    async def get(self, key: str) -> Budget | None: ...

    async def put(self, key: str, budget: Budget) -> None:
        """Keep `budget` until its reset time, then forget it."""
        ...

    async def clear(self) -> None: ...


class MemoryBudgetStore:
    def __init__(self) -> None:
        self._budgets: dict[str, Budget] = {}

    async def get(self, key: str) -> Budget | None:
        budget = self._budgets.get(key)
        if budget is not None and budget.reset_at.timestamp() <= time.time():
            del self._budgets[key]
            return None
        return budget

    async def put(self, key: str, budget: Budget) -> None:
        self._budgets[key] = budget

    async def clear(self) -> None:
        self._budgets.clear()


def account_key(platform: str, account_id: str) -> str:
    return f"{platform}:account:{account_id}"


def app_key(platform: str, app_id: str) -> str:
    return f"{platform}:app:{app_id}"


class RateBudgets:
    def __init__(self, store: BudgetStore | None = None) -> None:
        self.store: BudgetStore = store or MemoryBudgetStore()

    async def blocked_until(self, keys: Iterable[str], now: datetime) -> Budget | None:
        """The spent budget among `keys` that resets last, or None when all may send."""
        blocking: Budget | None = None
        for key in keys:
            budget = await self.store.get(key)
            if budget is None or budget.remaining > 0 or budget.reset_at <= now:
                continue
            if blocking is None or budget.reset_at > blocking.reset_at:
                blocking = budget
        return blocking

    async def update(
        self, key: str, *, remaining: int | None, reset_at: datetime | None, reason: str = ""
    ) -> None:
        """Record what the platform said; silently ignores missing or past values."""
        if remaining is None or reset_at is None or reset_at.timestamp() <= time.time():
            return
        await self.store.put(key, Budget(max(0, remaining), reset_at.astimezone(UTC), reason))

    async def spend(self, key: str, *, until: datetime, reason: str) -> None:
        """The platform refused with a rate limit: nothing more for this key until `until`."""
        await self.update(key, remaining=0, reset_at=until, reason=reason)


def parse_int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(float(value))
    except ValueError:
        return None
