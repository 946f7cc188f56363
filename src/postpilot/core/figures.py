"""The figures every report of passes shares, each defined once: outcomes and errors, the rates,
throughput and per-delivery costs, means and percentiles, and how one run compares with another.
The pass report, the monitor, `compare`, the migration report and the benchmarks all read them
from here. Pure.

- outcomes: published + failed + retried + rate_limited + unknown (every delivery a pass
  decided); a delivery released untouched or whose lease was lost was claimed, not decided;
- errors: failed + retried + unknown; a rate limit is flow control, not an error;
- error rate: errors / outcomes; success rate: published / outcomes;
- finished: published + failed + unknown, the outcomes that end a delivery (a retried or
  rate-limited one comes back): the deliveries of a run that goes on until nothing is due;
- throughput: deliveries per second; per delivery: a total (time, statements, CPU) divided by the
  deliveries (one pass: its outcomes; a run to the end: the finished ones);
- percentiles: linear interpolation between closest ranks (numpy's default); the median is p50;
- cache hit rate: hits / (hits + misses), over every cache of the process; reported apart for
  cold-start passes and steady-state ones (`cache_phase`), since a fresh process's caches miss
  on every account and medium they have not seen yet;
- a change reads after against before (the optimized run against the reference): its ratio is
  after / before, its percent (after - before) / before, and an improvement is positive when the
  figure moved the better way.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

Better = Literal["lower", "higher"]
CachePhase = Literal["cold_start", "steady_state"]
COLD_START: CachePhase = "cold_start"
STEADY_STATE: CachePhase = "steady_state"


class OutcomeCounts(Protocol):
    """Outcomes by kind: a pass's report, its stored figures, a comparison run, a sum of them."""

    @property
    def published(self) -> int: ...

    @property
    def failed(self) -> int: ...

    @property
    def retried(self) -> int: ...

    @property
    def rate_limited(self) -> int: ...

    @property
    def unknown(self) -> int: ...


@dataclass(frozen=True, slots=True)
class Outcomes:
    """Outcome counts as a value, for totals gathered from elsewhere."""

    published: int = 0
    failed: int = 0
    retried: int = 0
    rate_limited: int = 0
    unknown: int = 0


def outcomes(counts: OutcomeCounts) -> int:
    """Deliveries decided, whatever the decision."""
    return counts.published + counts.failed + counts.retried + counts.rate_limited + counts.unknown


def errors(counts: OutcomeCounts) -> int:
    """Decisions that did not publish, rate limits aside."""
    return counts.failed + counts.retried + counts.unknown


def finished(counts: OutcomeCounts) -> int:
    """Decisions that end a delivery: retried and rate-limited deliveries are decided again."""
    return counts.published + counts.failed + counts.unknown


def error_rate(counts: OutcomeCounts) -> float | None:
    return ratio(errors(counts), outcomes(counts))


def success_rate(counts: OutcomeCounts) -> float | None:
    return ratio(counts.published, outcomes(counts))


def ratio(part: float | None, whole: float | None) -> float | None:
    """part / whole; None when either is missing or whole is zero."""
    if part is None or whole is None or not whole:
        return None
    return part / whole


def hit_rate(hits: int, misses: int) -> float | None:
    return ratio(hits, hits + misses)


def cache_phase(
    *, first_pass: bool, since_start_seconds: float, warmup_seconds: float
) -> CachePhase:
    """Whether a pass's cache lookups are cold-start or steady-state figures.

    Cold-start: the first pass of its process that looked anything up, or a pass that began
    within `warmup_seconds` (ALERT_CACHE_WARMUP_SECONDS) of the process's start; its caches
    were empty then and miss once per account, medium and upload they have not met yet.
    Steady-state: every later pass, whose misses are expiries and new items. A comparison run
    (one pass in a fresh process) is therefore cold-start only."""
    if first_pass or since_start_seconds < warmup_seconds:
        return COLD_START
    return STEADY_STATE


@dataclass(frozen=True, slots=True)
class CacheLookups:
    """Cache hits and misses, of one phase or of all of them."""

    hits: int = 0
    misses: int = 0

    @property
    def lookups(self) -> int:
        return self.hits + self.misses

    @property
    def hit_rate(self) -> float | None:
        return hit_rate(self.hits, self.misses)

    def __add__(self, other: CacheLookups) -> CacheLookups:
        return CacheLookups(self.hits + other.hits, self.misses + other.misses)

    def public(self) -> dict[str, float | int | None]:
        rate = self.hit_rate
        return {
            "hits": self.hits,
            "misses": self.misses,
            "hit_rate": None if rate is None else round(rate, 6),
        }


def throughput(deliveries: int, seconds: float) -> float | None:
    """Deliveries per second."""
    return ratio(deliveries, seconds)


def per_delivery(total: float, deliveries: int) -> float | None:
    """A run's total (milliseconds, statements, CPU time) spread over its deliveries."""
    return ratio(total, deliveries)


def mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0-100), interpolating linearly between the closest ranks; None for
    no values."""
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be within 0-100, got {q}")
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def median(values: Sequence[float]) -> float | None:
    return percentile(values, 50)


@dataclass(frozen=True, slots=True)
class Change:
    """How `after` (the optimized run) compares with `before` (the reference run), for a figure
    where `better` says which way is an improvement."""

    before: float
    after: float
    better: Better

    @classmethod
    def between(cls, before: float | None, after: float | None, better: Better) -> Change | None:
        """None when either run lacks the figure."""
        if before is None or after is None:
            return None
        return cls(before, after, better)

    @property
    def ratio(self) -> float | None:
        """after / before: 0.2 is five times lower."""
        return ratio(self.after, self.before)

    @property
    def percent(self) -> float | None:
        """Signed change in percent of before: -80.0 is 80 % lower."""
        if not self.before:
            return None
        return (self.after - self.before) / self.before * 100

    @property
    def points(self) -> float:
        """Signed change of a rate (0-1) in percentage points."""
        return (self.after - self.before) * 100

    @property
    def factor(self) -> float | None:
        """How many times lower or higher (at least 1); None when either is zero."""
        if not self.before or not self.after:
            return None
        if self.after > self.before:
            return self.after / self.before
        return self.before / self.after

    @property
    def improved(self) -> bool:
        if self.better == "lower":
            return self.after < self.before
        return self.after > self.before

    @property
    def improvement_percent(self) -> float | None:
        """The percent change, positive when it went the better way."""
        percent = self.percent
        return None if percent is None else self._toward_better(percent)

    @property
    def improvement_points(self) -> float:
        """The change in points, positive when it went the better way."""
        return self._toward_better(self.points)

    def _toward_better(self, change: float) -> float:
        return -change if self.better == "lower" else change
