"""What a pass did, for the cron endpoints, the CLI, logs and the monitor."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from postpilot.core.events import Message, delivery_event
from postpilot.store.work import Decision


def events_of(decisions: Iterable[Decision], *, pass_id: str, scheduler: str) -> dict[str, Message]:
    """The webhook event of each decision that means one, by delivery id."""
    found = {}
    for decision in decisions:
        message = delivery_event(
            decision.delivery, decision.transition, pass_id=pass_id, scheduler=scheduler
        )
        if message is not None:
            found[decision.delivery.id] = message
    return found


@dataclass
class PassReport:
    pass_id: str
    scheduler: str  # reference | optimized
    started_at: datetime
    limit: int
    concurrency: int
    claimed: int = 0
    published: int = 0
    failed: int = 0
    retried: int = 0
    rate_limited: int = 0
    unknown: int = 0
    released: int = 0  # handed back untouched (worker stopping)
    lost_lease: int = 0  # someone else took the delivery over before we wrote the outcome
    duration_ms: float = 0.0
    db_statements: int = 0
    processing_ms: list[float] = field(default_factory=list)  # per delivery
    lateness_ms: list[float] = field(default_factory=list)  # published_at - scheduled_at
    cache_hits: int = 0
    cache_misses: int = 0
    peak_db_connections: int = 0
    decisions: list[Decision] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """The JSON answer of a cron endpoint and `postpilot run-once --json`."""
        return {
            "pass_id": self.pass_id,
            "scheduler": self.scheduler,
            "claimed": self.claimed,
            "published": self.published,
            "failed": self.failed,
            "retried": self.retried,
            "rate_limited": self.rate_limited,
            "unknown": self.unknown,
            "released": self.released,
            "lost_lease": self.lost_lease,
            "duration_ms": round(self.duration_ms, 2),
            "db_statements": self.db_statements,
        }
