"""Per-bucket rollups of pass figures, so a long window reads a bounded number of rows whatever
the number of passes. Pure: pass figures in, rollups out; rollups in, the same summaries and
chart points `summary` makes from passes.

Each recorded pass adds itself to its scheduler's 15-minute and hourly bucket (the 24 h and 7 d
windows' chart resolution): counts and sums add, maxima keep the larger, the pass with the
highest share of DB connections keeps its figures, and the time samples go into histograms
whose bins are RATIO apart on a log scale. Histograms of two buckets merge by adding their
bins, so percentiles over any set of buckets come out within HALF_BIN of the exact ones; every
other figure is exact. Each merge rule is listed once (`SUMS`, `MAXIMA`, ...): the store's
upsert and `merge` both read them."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from typing import Any

from postpilot.core import figures
from postpilot.core.timezones import as_utc
from postpilot.monitor import summary
from postpilot.monitor.figures import PassFigures

# The bucket sizes a pass is added to: those of the windows that read rollups.
SIZES: tuple[timedelta, ...] = (summary.BUCKETS["24h"], summary.BUCKETS["7d"])
RATIO = 1.04  # neighbouring bins' bounds
HALF_BIN = math.sqrt(RATIO) - 1  # a bin's middle is within 2 % of any value in it
_LOG_RATIO = math.log(RATIO)
_SMALLEST_MS = 0.001  # samples are stored to the microsecond; 0 shares this bin

# Bin -> samples in it. The bin's number is kept as the text it is stored as (a JSON object's
# key): a week's rollups are read without converting every key.
Histogram = dict[str, int]

# How each figure of two rollups of one bucket combine.
SUMS: tuple[str, ...] = (
    "passes",
    "claimed",
    "published",
    "failed",
    "retried",
    "rate_limited",
    "unknown",
    "released",
    "lost_lease",
    "db_statements",
    "cache_hits",
    "cache_misses",
    "cold_start_hits",
    "cold_start_misses",
    "steady_state_hits",
    "steady_state_misses",
    "duration_total_ms",
    "processing_count",
    "processing_total_ms",
    "lateness_count",
    "lateness_total_ms",
)
MAXIMA: tuple[str, ...] = (
    "duration_max_ms",
    "processing_max_ms",
    "lateness_max_ms",
    "last_pass_at",
)
MINIMA: tuple[str, ...] = ("first_pass_at",)
HISTOGRAMS: tuple[str, ...] = (
    "duration_histogram",
    "processing_histogram",
    "lateness_histogram",
)
# The figures of the pass that comes first by `summary.peak_order`: the highest peak_ratio,
# then the most peak_db_connections.
PEAK: tuple[str, ...] = ("peak_ratio", "peak_db_connections", "max_db_connections")
KEY: tuple[str, ...] = ("scheduler", "bucket_seconds", "bucket_start")


def bin_of(value: float) -> int:
    return math.floor(math.log(max(value, _SMALLEST_MS)) / _LOG_RATIO)


def middle_of(bin_: int) -> float:
    """The value a bin stands for: its geometric middle."""
    return float(RATIO ** (bin_ + 0.5))


def histogram(values: Iterable[float]) -> Histogram:
    return dict(Counter(str(bin_of(value)) for value in values))


def percentiles(bins: Mapping[str, int], qs: Sequence[float], *, top: float) -> list[float]:
    """`figures.percentile` of the samples a histogram holds (linear between the closest ranks),
    each sample read as its bin's middle, at most `top` (the largest sample); for each of `qs`
    (the histogram is walked once). Empty for an empty histogram."""
    count = sum(bins.values())
    if not count:
        return []
    positions = [(count - 1) * q / 100 for q in qs]
    ranks = sorted({r for p in positions for r in (math.floor(p), math.ceil(p))})
    values: dict[int, float] = {}
    seen, wanted = 0, iter(ranks)
    rank = next(wanted)
    for bin_ in sorted(bins, key=int):
        seen += bins[bin_]
        while rank < seen:
            values[rank] = min(middle_of(int(bin_)), top)
            rank = next(wanted, count)
        if rank == count:
            break
    return [
        values[math.floor(p)] + (values[math.ceil(p)] - values[math.floor(p)]) * (p % 1)
        for p in positions
    ]


def percentile(bins: Mapping[str, int], q: float, *, top: float) -> float | None:
    found = percentiles(bins, [q], top=top)
    return found[0] if found else None


def bucket_start(at: datetime, size: timedelta) -> datetime:
    """The start of the bucket of `size` that holds `at` (buckets align to the epoch)."""
    seconds = int(size.total_seconds())
    stamp = math.floor(as_utc(at).timestamp())
    return datetime.fromtimestamp(stamp - stamp % seconds, UTC)


@dataclass(frozen=True, slots=True)
class Rollup:
    """One scheduler's passes that started in one bucket, added up."""

    scheduler: str
    bucket_seconds: int
    bucket_start: datetime
    passes: int = 0
    claimed: int = 0
    published: int = 0
    failed: int = 0
    retried: int = 0
    rate_limited: int = 0
    unknown: int = 0
    released: int = 0
    lost_lease: int = 0
    db_statements: int = 0
    cache_hits: int = 0
    cache_misses: int = 0
    cold_start_hits: int = 0
    cold_start_misses: int = 0
    steady_state_hits: int = 0
    steady_state_misses: int = 0
    duration_total_ms: float = 0.0
    duration_max_ms: float = 0.0
    duration_histogram: Histogram = field(default_factory=dict)
    processing_count: int = 0
    processing_total_ms: float = 0.0
    processing_max_ms: float = 0.0
    processing_histogram: Histogram = field(default_factory=dict)
    lateness_count: int = 0
    lateness_total_ms: float = 0.0
    lateness_max_ms: float = 0.0
    lateness_histogram: Histogram = field(default_factory=dict)
    peak_ratio: float = 0.0
    peak_db_connections: int = 0
    max_db_connections: int = 0
    first_pass_at: datetime | None = None
    last_pass_at: datetime | None = None

    @classmethod
    def of_pass(cls, one: PassFigures, size: timedelta) -> Rollup:
        """What one pass adds to its bucket of `size`."""
        phase = one.cache_phase
        cold, steady = phase == figures.COLD_START, phase == figures.STEADY_STATE
        processing, lateness = one.processing_samples, one.lateness_samples
        return cls(
            scheduler=one.scheduler,
            bucket_seconds=int(size.total_seconds()),
            bucket_start=bucket_start(one.started_at, size),
            passes=1,
            claimed=one.claimed,
            published=one.published,
            failed=one.failed,
            retried=one.retried,
            rate_limited=one.rate_limited,
            unknown=one.unknown,
            released=one.released,
            lost_lease=one.lost_lease,
            db_statements=one.db_statements,
            cache_hits=one.cache_hits,
            cache_misses=one.cache_misses,
            cold_start_hits=one.cache_hits if cold else 0,
            cold_start_misses=one.cache_misses if cold else 0,
            steady_state_hits=one.cache_hits if steady else 0,
            steady_state_misses=one.cache_misses if steady else 0,
            duration_total_ms=one.duration_ms,
            duration_max_ms=one.duration_ms,
            duration_histogram=histogram([one.duration_ms]),
            processing_count=len(processing),
            processing_total_ms=sum(processing),
            processing_max_ms=max(processing, default=0.0),
            processing_histogram=histogram(processing),
            lateness_count=len(lateness),
            lateness_total_ms=sum(lateness),
            lateness_max_ms=max(lateness, default=0.0),
            lateness_histogram=histogram(lateness),
            peak_ratio=figures.ratio(one.peak_db_connections, one.max_db_connections) or 0.0,
            peak_db_connections=one.peak_db_connections,
            max_db_connections=one.max_db_connections,
            first_pass_at=one.started_at,
            last_pass_at=one.started_at,
        )

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Rollup:
        values = {name: row[name] for name in _NAMES}
        for name in ("bucket_start", "first_pass_at", "last_pass_at"):
            if values[name] is not None:
                values[name] = as_utc(values[name])
        for name in HISTOGRAMS:
            values[name] = values[name] or {}
        return cls(**values)

    @property
    def peak_key(self) -> tuple[float, int]:
        return self.peak_ratio, self.peak_db_connections

    def row(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _NAMES}

    def merge(self, other: Rollup) -> Rollup:
        """Both rollups' passes in one (`self`'s key)."""
        return _added(self, [other])


_NAMES = tuple(f.name for f in fields(Rollup))


def _added(first: Rollup, others: Iterable[Rollup]) -> Rollup:
    """`first` and `others` as one rollup with `first`'s key, by the rules the store's upsert
    applies too (histograms are added up in place, not copied at each step)."""
    values = first.row()
    histograms = {name: Counter(values[name]) for name in HISTOGRAMS}
    for other in others:
        if other.passes and (
            not values["passes"]
            or other.peak_key > (values["peak_ratio"], values["peak_db_connections"])
        ):
            values.update({name: getattr(other, name) for name in PEAK})
        for name in SUMS:
            values[name] += getattr(other, name)
        for name in MAXIMA:
            values[name] = _pick(values[name], getattr(other, name), max)
        for name in MINIMA:
            values[name] = _pick(values[name], getattr(other, name), min)
        for name, bins in histograms.items():
            bins.update(getattr(other, name))
    values.update({name: dict(bins) for name, bins in histograms.items()})
    return Rollup(**values)


def _pick(first: Any, second: Any, choose: Any) -> Any:
    if first is None or second is None:
        return second if first is None else first
    return choose(first, second)


def total(scheduler: str, rollups: Iterable[Rollup]) -> Rollup:
    """`rollups` (any buckets) as one; an empty one when there are none."""
    return _added(Rollup(scheduler, 0, datetime.fromtimestamp(0, UTC)), rollups)


def _distribution(count: int, total_ms: float, top: float, bins: Histogram) -> summary.Distribution:
    if not count:
        return summary.Distribution.of([])

    p50, p95, p99 = (round(value, 3) for value in percentiles(bins, (50, 95, 99), top=top))
    return summary.Distribution(
        count=count, mean=round(total_ms / count, 3), p50=p50, p95=p95, p99=p99, max=round(top, 3)
    )


def _rate(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def summarize(r: Rollup, *, window: timedelta | None = None) -> summary.SchedulerSummary:
    """`summary.summarize` of the passes a rollup holds."""
    outcomes = figures.outcomes(r)
    busy_seconds = r.duration_total_ms / 1000
    return summary.SchedulerSummary(
        scheduler=r.scheduler,
        passes=r.passes,
        claimed=r.claimed,
        published=r.published,
        failed=r.failed,
        retried=r.retried,
        rate_limited=r.rate_limited,
        unknown=r.unknown,
        released=r.released,
        lost_lease=r.lost_lease,
        outcomes=outcomes,
        error_rate=_rate(figures.error_rate(r), 6),
        success_rate=_rate(figures.success_rate(r), 6),
        processing_ms=_distribution(
            r.processing_count, r.processing_total_ms, r.processing_max_ms, r.processing_histogram
        ),
        response_time_ms=_distribution(
            r.passes, r.duration_total_ms, r.duration_max_ms, r.duration_histogram
        ),
        db_statements_total=r.db_statements,
        db_statements_per_pass=_rate(figures.ratio(r.db_statements, r.passes)),
        db_statements_per_delivery=_rate(figures.per_delivery(r.db_statements, outcomes)),
        cache_hits=r.cache_hits,
        cache_misses=r.cache_misses,
        cache_hit_rate=_rate(figures.hit_rate(r.cache_hits, r.cache_misses), 6),
        cache_cold_start=figures.CacheLookups(r.cold_start_hits, r.cold_start_misses),
        cache_steady_state=figures.CacheLookups(r.steady_state_hits, r.steady_state_misses),
        busy_seconds=round(busy_seconds, 3),
        throughput_per_second=_rate(figures.throughput(outcomes, busy_seconds)),
        published_per_minute=(
            _rate(figures.ratio(r.published, window.total_seconds() / 60)) if window else None
        ),
        lateness_ms=_distribution(
            r.lateness_count, r.lateness_total_ms, r.lateness_max_ms, r.lateness_histogram
        ),
        db_connections_peak=r.peak_db_connections if r.passes else 0,
        db_connections_max=r.max_db_connections if r.passes else 0,
        db_connections_ratio=round(r.peak_ratio, 6) if r.passes else None,
        first_pass_at=r.first_pass_at,
        last_pass_at=r.last_pass_at,
    )


def by_scheduler(
    rollups: Iterable[Rollup], *, window: timedelta | None = None
) -> dict[str, summary.SchedulerSummary]:
    """`summary.by_scheduler` from rollups: both known schedulers always present."""
    groups: dict[str, list[Rollup]] = {name: [] for name in summary.SCHEDULERS}
    for one in rollups:
        groups.setdefault(one.scheduler, []).append(one)
    return {
        name: summarize(total(name, sorted(group, key=_when)), window=window)
        for name, group in groups.items()
    }


def series(
    rollups: Iterable[Rollup], *, start: datetime, end: datetime, bucket: timedelta
) -> dict[str, list[dict[str, Any]]]:
    """`summary.series` from rollups of size `bucket`, `start` being a bucket's start."""
    count = max(1, math.ceil((end - start) / bucket))
    found: dict[tuple[str, datetime], Rollup] = {}
    for one in rollups:
        found[(one.scheduler, one.bucket_start)] = one
    names = dict.fromkeys([*summary.SCHEDULERS, *(name for name, _ in found)])
    return {
        name: [
            summary.point(
                at,
                summarize(found.get((name, at)) or total(name, []), window=bucket),
            )
            for at in (start + bucket * index for index in range(count))
        ]
        for name in names
    }


def _when(one: Rollup) -> datetime:
    return one.bucket_start
