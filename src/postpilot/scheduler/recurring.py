"""The worker's step for recurring and evergreen posts: each worker makes the coming window's
occurrences into posts and brings published evergreen posts back to their queue, at most once
every STEP_SECONDS. Several workers doing it at once is safe: an occurrence's unique key and
an evergreen entry's `requeued` flag let only one of them make each post."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from postpilot.scheduler.runtime import Runtime
from postpilot.store import database, queues, recurrence

log = logging.getLogger(__name__)

STEP_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class PlanReport:
    occurrences_made: int
    evergreen_requeued: int


async def run_once(runtime: Runtime) -> PlanReport:
    """One step, in one transaction."""
    now = runtime.now()
    async with runtime.db.transaction() as session:
        made = await recurrence.materialise(session, now=now)
        back = await queues.requeue_evergreen(session, now=now)
    if made or back:
        runtime.wakeup.set()
        log.info("plans", extra={"occurrences_made": made, "evergreen_requeued": back})
    return PlanReport(made, back)


class PlanStep:
    """Called by the worker before each pass; runs `run_once` when its interval has passed."""

    def __init__(self, runtime: Runtime, every: float = STEP_SECONDS) -> None:
        self.runtime = runtime
        self.every = every
        self._last: float | None = None

    async def maybe_run(self) -> None:
        if self._last is not None and time.monotonic() - self._last < self.every:
            return
        self._last = time.monotonic()
        try:
            await run_once(self.runtime)
        except Exception as exc:
            # The passes go on without it; the next interval tries again.
            if database.unreachable(exc):
                log.warning(
                    "recurring and evergreen step failed: the database is unreachable (%s)",
                    type(exc).__name__,
                )
            else:
                log.exception("recurring and evergreen step failed")
