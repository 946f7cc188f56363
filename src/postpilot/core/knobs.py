"""The scheduler kinds and the knobs an operator turns, each declared once with its bounds and
default. Settings, API bodies, CLI options and run-time control derive theirs from here. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Generic, TypeVar

from annotated_types import Interval

N = TypeVar("N", int, float)


class SchedulerKind(StrEnum):
    """Which pass a worker or a cron call runs. Values are the strings stored in the DB."""

    REFERENCE = "reference"  # one delivery at a time, with its natural queries
    OPTIMIZED = "optimized"  # batched claim, bounded concurrency, bulk writes


DEFAULT_SCHEDULER = SchedulerKind.OPTIMIZED


@dataclass(frozen=True, slots=True)
class Knob(Generic[N]):
    """A number an operator may set, within `low`..`high` inclusive."""

    name: str  # in the stored configuration, the API body and the audit trail
    label: str  # how messages name it
    low: N
    high: N
    help: str

    @property
    def bounds(self) -> Interval:
        """The bounds as constraint metadata: `Annotated[int, knob.bounds]` in pydantic models."""
        return Interval(ge=self.low, le=self.high)

    def problem(self, value: float) -> str | None:
        """What is wrong with `value` for this knob, or None when it is within bounds."""
        if self.low <= value <= self.high:
            return None
        return f"{self.label} must be between {self.low:g} and {self.high:g} (got {value:g})"


@dataclass(frozen=True, slots=True)
class DefaultedKnob(Knob[N]):
    """A knob whose default comes from a setting, which has the same bounds."""

    setting: str
    default: N


CONCURRENCY = DefaultedKnob(
    name="concurrency",
    label="concurrency",
    low=1,
    high=1000,
    help="Parallel publishes per pass.",
    setting="SCHEDULER_CONCURRENCY",
    default=5,
)
BATCH_SIZE = DefaultedKnob(
    name="batch_size",
    label="batch size",
    low=1,
    high=10_000,
    help="Most deliveries a pass takes.",
    setting="SCHEDULER_BATCH_SIZE",
    default=20,
)
# Unset, a worker sleeps until the next due time (at most WORKER_POLL_SECONDS).
INTERVAL = Knob(
    name="interval_seconds",
    label="interval (seconds)",
    low=1.0,
    high=86_400.0,
    help="Longest sleep between passes when nothing is due sooner: 30s, 10m, 1h.",
)

TUNABLE: tuple[Knob[int] | Knob[float], ...] = (CONCURRENCY, BATCH_SIZE, INTERVAL)
