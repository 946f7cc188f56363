"""Windowed summaries per scheduler, time series for charts, and the reference-beside-optimized
comparison. Pure: stored pass figures in, numbers out.

Outcomes, error and success rates, throughput, percentiles and changes are `core.figures`'s; the
API and the alerts read them from here:

- processing time per job: per-delivery time from claim to decision, over every delivery;
- response time: a pass's duration (what a cron caller waits for);
- throughput: outcomes per second of pass time (speed while working), and published per minute
  of the window (what went out);
- DB queries per batch: statements per pass; per delivery: statements / outcomes;
- lateness: published_at - scheduled_at;
- cache hit rate: over every pass, and apart for cold-start and steady-state passes
  (`figures.cache_phase`); the cache alert reads the steady-state one;
- DB connections: the most in use during any pass, against DATABASE_MAX_CONNECTIONS.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from postpilot.core import figures, knobs
from postpilot.monitor.figures import PassFigures

SCHEDULERS: tuple[str, ...] = tuple(knobs.SchedulerKind)
Window = Literal["1h", "24h", "7d"]
WINDOWS: dict[str, timedelta] = {
    "1h": timedelta(hours=1),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
}
# Chart resolution per window: 60, 96 and 168 points.
BUCKETS: dict[str, timedelta] = {
    "1h": timedelta(minutes=1),
    "24h": timedelta(minutes=15),
    "7d": timedelta(hours=1),
}


@dataclass(frozen=True, slots=True)
class Distribution:
    count: int
    mean: float | None
    p50: float | None
    p95: float | None
    p99: float | None
    max: float | None

    @classmethod
    def of(cls, values: Sequence[float]) -> Distribution:
        return cls(
            count=len(values),
            mean=_round(figures.mean(values)),
            p50=_round(figures.percentile(values, 50)),
            p95=_round(figures.percentile(values, 95)),
            p99=_round(figures.percentile(values, 99)),
            max=_round(max(values)) if values else None,
        )


@dataclass(frozen=True, slots=True)
class SchedulerSummary:
    scheduler: str
    passes: int
    claimed: int
    published: int
    failed: int
    retried: int
    rate_limited: int
    unknown: int
    released: int
    lost_lease: int
    outcomes: int
    error_rate: float | None
    success_rate: float | None
    processing_ms: Distribution
    response_time_ms: Distribution
    db_statements_total: int
    db_statements_per_pass: float | None
    db_statements_per_delivery: float | None
    cache_hits: int
    cache_misses: int
    cache_hit_rate: float | None
    cache_cold_start: figures.CacheLookups
    cache_steady_state: figures.CacheLookups
    busy_seconds: float
    throughput_per_second: float | None
    published_per_minute: float | None
    lateness_ms: Distribution
    db_connections_peak: int
    db_connections_max: int
    db_connections_ratio: float | None
    first_pass_at: datetime | None
    last_pass_at: datetime | None

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["cache_cold_start"] = self.cache_cold_start.public()
        data["cache_steady_state"] = self.cache_steady_state.public()
        for name in ("first_pass_at", "last_pass_at"):
            moment = data[name]
            data[name] = moment.isoformat() if moment else None
        return data


def summarize(
    scheduler: str, passes: Sequence[PassFigures], *, window: timedelta | None = None
) -> SchedulerSummary:
    """One scheduler's figures over `passes` (all of one scheduler, any order). `window` is the
    wall-clock span they cover, for per-minute rates."""
    total = _Totals.of(passes)
    processing = [s for p in passes for s in p.processing_samples]
    lateness = [s for p in passes for s in p.lateness_samples]
    busy_seconds = sum(p.duration_ms for p in passes) / 1000
    peak = max(passes, key=peak_order, default=None)
    starts = [p.started_at for p in passes]
    return SchedulerSummary(
        scheduler=scheduler,
        passes=len(passes),
        claimed=total.claimed,
        published=total.published,
        failed=total.failed,
        retried=total.retried,
        rate_limited=total.rate_limited,
        unknown=total.unknown,
        released=total.released,
        lost_lease=total.lost_lease,
        outcomes=total.outcomes,
        error_rate=_round(figures.error_rate(total), 6),
        success_rate=_round(figures.success_rate(total), 6),
        processing_ms=Distribution.of(processing),
        response_time_ms=Distribution.of([p.duration_ms for p in passes]),
        db_statements_total=total.db_statements,
        db_statements_per_pass=_round(figures.ratio(total.db_statements, len(passes))),
        db_statements_per_delivery=_round(
            figures.per_delivery(total.db_statements, total.outcomes)
        ),
        cache_hits=total.cache_hits,
        cache_misses=total.cache_misses,
        cache_hit_rate=_round(figures.hit_rate(total.cache_hits, total.cache_misses), 6),
        cache_cold_start=_lookups(passes, figures.COLD_START),
        cache_steady_state=_lookups(passes, figures.STEADY_STATE),
        busy_seconds=round(busy_seconds, 3),
        throughput_per_second=_round(figures.throughput(total.outcomes, busy_seconds)),
        published_per_minute=(
            _round(figures.ratio(total.published, window.total_seconds() / 60)) if window else None
        ),
        lateness_ms=Distribution.of(lateness),
        db_connections_peak=peak.peak_db_connections if peak else 0,
        db_connections_max=peak.max_db_connections if peak else 0,
        db_connections_ratio=_round(_connection_ratio(peak), 6) if peak else None,
        first_pass_at=min(starts, default=None),
        last_pass_at=max(starts, default=None),
    )


def by_scheduler(
    passes: Iterable[PassFigures], *, window: timedelta | None = None
) -> dict[str, SchedulerSummary]:
    """A summary for each scheduler; both known schedulers are always present (maybe empty)."""
    groups: dict[str, list[PassFigures]] = {name: [] for name in SCHEDULERS}
    for one in passes:
        groups.setdefault(one.scheduler, []).append(one)
    return {name: summarize(name, group, window=window) for name, group in groups.items()}


def series(
    passes: Iterable[PassFigures], *, start: datetime, end: datetime, bucket: timedelta
) -> dict[str, list[dict[str, Any]]]:
    """Per scheduler, one point per `bucket` from `start` to `end` (empty buckets included, so
    a chart's x axis is regular)."""
    count = max(1, int((end - start) / bucket) + (1 if (end - start) % bucket else 0))
    groups: dict[str, list[list[PassFigures]]] = {
        name: [[] for _ in range(count)] for name in SCHEDULERS
    }
    for one in passes:
        index = int((one.started_at - start) / bucket)
        if 0 <= index < count:
            buckets = groups.setdefault(one.scheduler, [[] for _ in range(count)])
            buckets[index].append(one)
    return {
        name: [
            point(start + bucket * index, summarize(name, members, window=bucket))
            for index, members in enumerate(buckets)
        ]
        for name, buckets in groups.items()
    }


def point(at: datetime, bucket: SchedulerSummary) -> dict[str, Any]:
    """A chart's point: the figures of one bucket's summary."""
    return {
        "at": at.isoformat(),
        "passes": bucket.passes,
        "published": bucket.published,
        "failed": bucket.failed,
        "outcomes": bucket.outcomes,
        "error_rate": bucket.error_rate,
        "processing_p95_ms": bucket.processing_ms.p95,
        "lateness_p99_ms": bucket.lateness_ms.p99,
        "db_statements_per_pass": bucket.db_statements_per_pass,
        "cache_hit_rate": bucket.cache_hit_rate,
        "cache_hit_rate_steady_state": _round(bucket.cache_steady_state.hit_rate, 6),
        "throughput_per_second": bucket.throughput_per_second,
    }


@dataclass(frozen=True, slots=True)
class Comparison:
    metric: str
    label: str
    unit: str  # ms, ratio, count, per_second
    better: figures.Better
    reference: float | None
    optimized: float | None
    change_pct: float | None  # optimized against reference, signed
    improved: bool | None
    improvement: str | None  # for the table: "83.2 % lower", "+4.0 pp", "6.0x higher"


# (attribute path in a summary, label, unit, which way is better)
_COMPARED: tuple[tuple[str, str, str, figures.Better], ...] = (
    ("processing_ms.mean", "Processing time per job (mean)", "ms", "lower"),
    ("processing_ms.p95", "Processing time per job (p95)", "ms", "lower"),
    ("error_rate", "Error rate", "ratio", "lower"),
    ("success_rate", "Success rate", "ratio", "higher"),
    ("db_statements_per_pass", "DB queries per batch", "count", "lower"),
    ("db_statements_per_delivery", "DB queries per delivery", "count", "lower"),
    ("cache_hit_rate", "Cache hit rate", "ratio", "higher"),
    ("cache_cold_start.hit_rate", "Cache hit rate (cold start)", "ratio", "higher"),
    ("cache_steady_state.hit_rate", "Cache hit rate (steady state)", "ratio", "higher"),
    ("response_time_ms.mean", "Response time (pass duration, mean)", "ms", "lower"),
    ("throughput_per_second", "Throughput (deliveries per second of work)", "per_second", "higher"),
    ("lateness_ms.p50", "Lateness (p50)", "ms", "lower"),
    ("lateness_ms.p99", "Lateness (p99)", "ms", "lower"),
    ("db_connections_peak", "Peak DB connections", "count", "lower"),
)


def compare(reference: SchedulerSummary, optimized: SchedulerSummary) -> list[Comparison]:
    """The before/after table: reference (before) beside optimized (after), with improvement."""
    rows = []
    for metric, label, unit, better in _COMPARED:
        before, after = _read(reference, metric), _read(optimized, metric)
        rows.append(_comparison(metric, label, unit, better, before, after))
    return rows


def _comparison(
    metric: str,
    label: str,
    unit: str,
    better: figures.Better,
    before: float | None,
    after: float | None,
) -> Comparison:
    found = figures.Change.between(before, after, better)
    if found is None:
        return Comparison(metric, label, unit, better, before, after, None, None, None)
    change, improved = found.percent, found.improved
    text: str | None
    if found.after == found.before:
        text = "no change"
    elif unit == "ratio":
        text = f"{found.points:+.1f} pp"
    elif change is None:
        text = None
    else:
        direction = "lower" if change < 0 else "higher"
        factor = found.factor
        text = f"{abs(change):.1f} % {direction}"
        if factor is not None and factor >= 2:
            text = f"{factor:.1f}x {direction}"
        if not improved:
            text += " (worse)"
    return Comparison(metric, label, unit, better, before, after, _round(change), improved, text)


def _read(summary: SchedulerSummary, metric: str) -> float | None:
    value: Any = summary
    for part in metric.split("."):
        value = getattr(value, part)
    return None if value is None else float(value)


def peak_order(one: PassFigures) -> tuple[float, int]:
    """Which pass's DB connections a summary reports: the highest share of the pool, then the
    most connections (so the choice does not depend on the order passes are read in)."""
    return _connection_ratio(one), one.peak_db_connections


def _connection_ratio(one: PassFigures | None) -> float:
    if one is None or not one.max_db_connections:
        return 0.0
    return one.peak_db_connections / one.max_db_connections


def _lookups(passes: Iterable[PassFigures], phase: figures.CachePhase) -> figures.CacheLookups:
    """The cache lookups of the passes of one phase (passes stored before phases were recorded
    count only in the overall rate)."""
    total = figures.CacheLookups()
    for p in passes:
        if p.cache_phase == phase:
            total += figures.CacheLookups(p.cache_hits, p.cache_misses)
    return total


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


@dataclass
class _Totals:
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

    @classmethod
    def of(cls, passes: Iterable[PassFigures]) -> _Totals:
        total = cls()
        for p in passes:
            total.claimed += p.claimed
            total.published += p.published
            total.failed += p.failed
            total.retried += p.retried
            total.rate_limited += p.rate_limited
            total.unknown += p.unknown
            total.released += p.released
            total.lost_lease += p.lost_lease
            total.db_statements += p.db_statements
            total.cache_hits += p.cache_hits
            total.cache_misses += p.cache_misses
        return total

    @property
    def outcomes(self) -> int:
        return figures.outcomes(self)
