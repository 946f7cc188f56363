"""Switch the active scheduler and tune its knobs at run time, with an audit row per change.

Workers re-read the stored settings before every pass (`scheduler/worker.py`), so a switch or a
tune takes effect at each worker's next pass without a restart. The cron endpoints are not
affected: `/api/cron/scheduler` always runs the reference pass and `/api/cron/scheduler-optimized`
the optimized one, for setups that trigger passes themselves.
"""

from __future__ import annotations

import getpass
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from postpilot.core import knobs
from postpilot.core.timezones import as_utc
from postpilot.errors import InvalidValue
from postpilot.settings import Settings
from postpilot.store import heartbeats, scheduler_config
from postpilot.store.database import Database
from postpilot.store.tables import SchedulerChange

ACTOR_MAX = 200
# A worker that has not beaten for six heartbeats is probably gone (it may still be stopping).
STALE_AFTER = timedelta(seconds=heartbeats.HEARTBEAT_SECONDS * 6)


class InvalidChange(InvalidValue):
    """The requested scheduler change is not valid; nothing was changed."""


@dataclass(frozen=True, slots=True)
class ChangeRecord:
    at: datetime
    actor: str
    setting: str
    old_value: str | None
    new_value: str | None

    @classmethod
    def from_row(cls, row: SchedulerChange) -> ChangeRecord:
        return cls(
            at=as_utc(row.at),
            actor=row.actor,
            setting=row.setting,
            old_value=row.old_value,
            new_value=row.new_value,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "actor": self.actor,
            "setting": self.setting,
            "from": self.old_value,
            "to": self.new_value,
        }


@dataclass(frozen=True, slots=True)
class WorkerRecord:
    worker_id: str
    hostname: str
    pid: int
    started_at: datetime
    last_beat_at: datetime
    stale: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "worker_id": self.worker_id,
            "hostname": self.hostname,
            "pid": self.pid,
            "started_at": self.started_at.isoformat(),
            "last_beat_at": self.last_beat_at.isoformat(),
            "stale": self.stale,
        }


@dataclass(frozen=True, slots=True)
class SchedulerStatus:
    active: str
    concurrency: int | None  # stored value; None means the setting's default
    batch_size: int | None
    interval_seconds: float | None  # None: sleep until the next due time (poll cap applies)
    default_concurrency: int
    default_batch_size: int
    poll_seconds: float
    updated_at: datetime | None
    updated_by: str | None
    changes: list[ChangeRecord]
    workers: list[WorkerRecord]

    @property
    def effective_concurrency(self) -> int:
        return self.concurrency or self.default_concurrency

    @property
    def effective_batch_size(self) -> int:
        return self.batch_size or self.default_batch_size

    @property
    def effective_interval_seconds(self) -> float:
        """The longest a worker sleeps between passes when nothing is due sooner."""
        return self.interval_seconds or self.poll_seconds

    def to_json(self) -> dict[str, Any]:
        return {
            "active": self.active,
            "concurrency": self.concurrency,
            "batch_size": self.batch_size,
            "interval_seconds": self.interval_seconds,
            "effective": {
                "concurrency": self.effective_concurrency,
                "batch_size": self.effective_batch_size,
                "interval_seconds": self.effective_interval_seconds,
            },
            "updated_at": self.updated_at.isoformat() if self.updated_at else None,
            "updated_by": self.updated_by,
            "changes": [c.to_json() for c in self.changes],
            "workers": [w.to_json() for w in self.workers],
        }


def default_actor() -> str:
    """Who runs a CLI command: `user@host`."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def check_actor(actor: str) -> str:
    actor = actor.strip()
    if not actor:
        raise InvalidChange("the actor must not be empty")
    if len(actor) > ACTOR_MAX:
        raise InvalidChange(f"the actor must be at most {ACTOR_MAX} characters")
    return actor


def check_scheduler(name: str) -> knobs.SchedulerKind:
    try:
        return knobs.SchedulerKind(name)
    except ValueError:
        kinds = " or ".join(knobs.SchedulerKind)
        raise InvalidChange(f"unknown scheduler {name!r}: use {kinds}") from None


def check_knobs(
    *,
    concurrency: int | None = None,
    batch_size: int | None = None,
    interval_seconds: float | None = None,
) -> None:
    given: tuple[tuple[knobs.Knob[int] | knobs.Knob[float], float | None], ...] = (
        (knobs.CONCURRENCY, concurrency),
        (knobs.BATCH_SIZE, batch_size),
        (knobs.INTERVAL, interval_seconds),
    )
    for knob, value in given:
        problem = None if value is None else knob.problem(value)
        if problem is not None:
            raise InvalidChange(problem)


async def status(
    db: Database, settings: Settings, *, now: datetime, changes: int = 10
) -> SchedulerStatus:
    async with db.engine.connect() as conn:
        config = await scheduler_config.read(conn)
        running = await heartbeats.running(conn)
    async with db.session() as session:
        history = await scheduler_config.history(session, limit=changes)
    workers = [
        WorkerRecord(
            worker_id=w.worker_id,
            hostname=w.hostname,
            pid=w.pid,
            started_at=as_utc(w.started_at),
            last_beat_at=as_utc(w.last_beat_at),
            stale=now - as_utc(w.last_beat_at) > STALE_AFTER,
        )
        for w in sorted(running, key=lambda w: w.started_at)
    ]
    return SchedulerStatus(
        active=config.active,
        concurrency=config.concurrency,
        batch_size=config.batch_size,
        interval_seconds=config.interval_seconds,
        default_concurrency=settings.SCHEDULER_CONCURRENCY,
        default_batch_size=settings.SCHEDULER_BATCH_SIZE,
        poll_seconds=settings.WORKER_POLL_SECONDS,
        updated_at=as_utc(config.updated_at) if config.updated_at else None,
        updated_by=config.updated_by,
        changes=[ChangeRecord.from_row(row) for row in history],
        workers=workers,
    )


async def use(db: Database, *, scheduler: str, actor: str, now: datetime) -> list[ChangeRecord]:
    """Make `scheduler` the active one; returns the recorded changes (none if it already was)."""
    return await apply(db, actor=actor, now=now, values={"active": check_scheduler(scheduler)})


async def tune(
    db: Database, *, actor: str, now: datetime, values: dict[str, int | float | None]
) -> list[ChangeRecord]:
    """Change the knobs named in `values` (`concurrency`, `batch_size`, `interval_seconds`);
    None sets a knob back to its default from the settings."""
    unknown = set(values) - set(RESET)
    if unknown:
        raise InvalidChange(f"unknown knob(s): {', '.join(sorted(unknown))}")
    if not values:
        raise InvalidChange("nothing to change: give --concurrency, --batch-size or --interval")
    concurrency, batch_size = values.get("concurrency"), values.get("batch_size")
    for knob, value in ((knobs.CONCURRENCY, concurrency), (knobs.BATCH_SIZE, batch_size)):
        if value is not None and value != int(value):
            raise InvalidChange(f"{knob.label} must be a whole number (got {value:g})")
    check_knobs(
        concurrency=int(concurrency) if concurrency is not None else None,
        batch_size=int(batch_size) if batch_size is not None else None,
        interval_seconds=values.get("interval_seconds"),
    )
    return await apply(db, actor=actor, now=now, values=dict(values))


RESET: dict[str, int | float | None] = {knob.name: None for knob in knobs.TUNABLE}


async def apply(
    db: Database, *, actor: str, now: datetime, values: dict[str, Any]
) -> list[ChangeRecord]:
    actor = check_actor(actor)
    async with db.transaction() as session:
        rows = await scheduler_config.change(session, actor=actor, now=now, **values)
        return [ChangeRecord.from_row(row) for row in rows]
