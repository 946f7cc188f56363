"""What a pass did, for the cron endpoints, the CLI, logs and the monitor."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from postpilot.core.events import EVENT_TYPES, Message, delivery_event
from postpilot.store.work import Decision


def events_of(
    decisions: Iterable[Decision], *, pass_id: str, scheduler: str
) -> Mapping[str, Message]:
    """The webhook event of each decision that means one, by delivery id; each payload is built
    when it is first read (most are never: only a workspace with a subscription has its events
    put in the outbox)."""
    return _Events(decisions, pass_id=pass_id, scheduler=scheduler)


class _Events(Mapping[str, Message]):
    def __init__(self, decisions: Iterable[Decision], *, pass_id: str, scheduler: str) -> None:
        self._meaning = {d.delivery.id: d for d in decisions if d.transition.status in EVENT_TYPES}
        self._pass_id = pass_id
        self._scheduler = scheduler
        self._built: dict[str, Message] = {}

    def __getitem__(self, delivery_id: str) -> Message:
        if (message := self._built.get(delivery_id)) is None:
            decision = self._meaning[delivery_id]
            message = delivery_event(
                decision.delivery,
                decision.transition,
                pass_id=self._pass_id,
                scheduler=self._scheduler,
            )
            assert message is not None  # its status means an event
            self._built[delivery_id] = message
        return message

    def __iter__(self) -> Iterator[str]:
        return iter(self._meaning)

    def __len__(self) -> int:
        return len(self._meaning)


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
