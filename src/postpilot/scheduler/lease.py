"""A pass's hold on what it claimed: renewed while it works, and known to be at risk before it
can run out, so the pass stops sending before another worker may take its deliveries over.

The lease is renewed every third of its length (one statement, whatever the batch). When the
database cannot be reached, renewal is retried every second; once less than a fifth of the
lease is left unrenewed the guard counts the lease as lost: the pass starts nothing more and
stops what is in flight, while its claims are still its own; a renewal that commits only after
that point moves nothing, and no publishing request starts once the lease is at risk
(`engine.PassState.before_send`). Nothing here trusts the database's clock more than the claim
does: lease ends are written from this process's clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

from postpilot.scheduler.runtime import Runtime
from postpilot.store import work

log = logging.getLogger(__name__)

RETRY_SECONDS = 1.0


class LeaseGuard:
    def __init__(self, runtime: Runtime, claimer: str, lease_seconds: float) -> None:
        self._runtime = runtime
        self._claimer = claimer
        self.lease = timedelta(seconds=lease_seconds)
        self.margin = self.lease / 5
        self.expires_at: datetime = runtime.now() + self.lease
        self.lost = asyncio.Event()

    def claimed(self, at: datetime) -> None:
        """A claim made at `at` holds until `at + lease`."""
        self.expires_at = at + self.lease

    @property
    def holds(self) -> bool:
        """Safe to start a send: the lease is ours for longer than the margin."""
        if self.lost.is_set():
            return False
        if self._runtime.now() >= self.expires_at - self.margin:
            self.lost.set()
            return False
        return True

    async def renew(self) -> None:
        at = self._runtime.now()
        async with self._runtime.db.engine.begin() as conn:
            await work.extend_lease(conn, claimer=self._claimer, until=at + self.lease)
        # Only a renewal committed while the lease surely held renewed all of it: one that
        # ends later (the process stalled, the statement waited) may have come after another
        # worker took some deliveries over, and moving the end would hide that.
        if self.holds:
            self.expires_at = at + self.lease

    @contextlib.asynccontextmanager
    async def kept(self) -> AsyncIterator[LeaseGuard]:
        """Renew in the background and watch the deadline while the block runs."""
        tasks = [
            asyncio.create_task(self._renew_loop(), name=f"lease-renew-{self._claimer}"),
            asyncio.create_task(self._watch(), name=f"lease-watch-{self._claimer}"),
        ]
        try:
            yield self
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _renew_loop(self) -> None:
        every = self.lease.total_seconds() / 3
        wait = every
        while not self.lost.is_set():
            await asyncio.sleep(wait)
            try:
                await self.renew()
                wait = every
            except Exception as exc:  # the database may be back in a moment: keep trying
                log.warning(
                    "could not renew the lease (%s); retrying",
                    type(exc).__name__,
                    extra={"pass_id": self._claimer},
                )
                wait = min(RETRY_SECONDS, every)

    async def _watch(self) -> None:
        step = min(0.25, self.lease.total_seconds() / 20)
        while self.holds:
            await asyncio.sleep(step)
        log.warning(
            "lease about to run out: starting nothing more and stopping what is in flight",
            extra={"pass_id": self._claimer},
        )
