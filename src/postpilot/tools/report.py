"""The migration report: the metric tables during and after the move to the optimized scheduler,
and its success criteria, filled from measured data, as Markdown.

Sources, in order of preference:

- "during migration" (target, current, met): the monitor's stored per-pass figures
  (`pass_metrics`) of the active scheduler over the window; without any, the fresh
  comparison's run of the active scheduler (`--from-compare`);
- "after migration" (before = reference, after = optimized): a fresh comparison when one was run,
  because both schedulers then handled the same workload; otherwise the monitor's figures of each
  scheduler over the window (different workloads: compare the per-delivery figures);
- the success criteria read the "after migration" figures, except the cache hit rate: it reads
  the optimized scheduler's steady-state rate (`figures.cache_phase`), as the cache alert does,
  which only the monitor measures (a comparison's pass runs in a fresh process: a cold start).

Outcomes, rates, per-delivery figures, percentiles and improvements are `core.figures`'s, as
everywhere; the rest follows the monitor (`monitor/summary.py`): processing time per job is a
delivery's own time from claim to decision; DB queries per batch are statements per pass;
response time is a pass's duration (what a cron caller waits for). "Average processing time" in
the comparison is pass time per delivery (pass duration / outcomes): what a delivery costs the
scheduler once concurrency overlaps the waits; the per-job time is shown beside it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from postpilot.core import figures
from postpilot.core.durations import format_duration
from postpilot.monitor import store as monitor_store
from postpilot.monitor import summary as monitor_summary
from postpilot.settings import Settings
from postpilot.store import scheduler_config
from postpilot.store.database import Database
from postpilot.tools import compare as comparing

MONITOR = "monitor"
COMPARE = "compare"


@dataclass(frozen=True)
class Figures:
    """One scheduler's measured figures, from one source."""

    scheduler: str
    source: str  # human-readable: where the numbers came from
    passes: int
    outcomes: int
    job_ms: float | None  # processing time per job (mean)
    job_p95_ms: float | None
    per_delivery_ms: float | None  # pass time / outcomes
    db_total: int
    db_per_pass: float | None
    db_per_delivery: float | None
    throughput: float | None  # outcomes per second of pass time
    error_rate: float | None
    success_rate: float | None
    cache_cold_start: float | None  # hit rate of the passes that began a process (figures)
    cache_steady_state: float | None  # hit rate of every later pass
    response_p95_ms: float | None  # pass duration

    @classmethod
    def from_summary(cls, found: monitor_summary.SchedulerSummary, source: str) -> Figures | None:
        if not found.passes:
            return None
        return cls(
            scheduler=found.scheduler,
            source=source,
            passes=found.passes,
            outcomes=found.outcomes,
            job_ms=found.processing_ms.mean,
            job_p95_ms=found.processing_ms.p95,
            per_delivery_ms=figures.per_delivery(found.busy_seconds * 1000, found.outcomes),
            db_total=found.db_statements_total,
            db_per_pass=found.db_statements_per_pass,
            db_per_delivery=figures.per_delivery(found.db_statements_total, found.outcomes),
            throughput=found.throughput_per_second,
            error_rate=found.error_rate,
            success_rate=found.success_rate,
            cache_cold_start=found.cache_cold_start.hit_rate,
            cache_steady_state=found.cache_steady_state.hit_rate,
            response_p95_ms=found.response_time_ms.p95,
        )

    @classmethod
    def from_run(cls, run: comparing.RunMetrics, source: str) -> Figures:
        return cls(
            scheduler=run.scheduler,
            source=source,
            passes=1,
            outcomes=run.outcomes,
            job_ms=run.publish_ms,
            job_p95_ms=figures.percentile(run.processing_ms, 95),
            per_delivery_ms=run.per_delivery_ms,
            db_total=run.db_statements,
            db_per_pass=float(run.db_statements),
            db_per_delivery=run.statements_per_delivery,
            throughput=run.throughput,
            error_rate=run.error_rate,
            success_rate=run.success_rate,
            cache_cold_start=run.cache_hit_rate,  # one pass in a fresh process
            cache_steady_state=None,
            response_p95_ms=run.duration_ms,
        )


@dataclass(frozen=True)
class Target:
    label: str
    unit: str  # "ms", "%", "count"
    better: figures.Better
    threshold: float
    read: Callable[[Figures], float | None]

    def met(self, value: float | None) -> bool | None:
        if value is None:
            return None
        return value < self.threshold if self.better == "lower" else value > self.threshold


DURING = (
    Target("Processing time per job (mean)", "ms", "lower", 200, lambda f: f.job_ms),
    Target("Error rate", "%", "lower", 0.05, lambda f: f.error_rate),
    Target("Success rate", "%", "higher", 0.95, lambda f: f.success_rate),
    Target("DB queries per batch", "count", "lower", 5, lambda f: f.db_per_pass),
    Target("Cache hit rate (steady state)", "%", "higher", 0.70, lambda f: f.cache_steady_state),
    Target("Response time (pass duration, p95)", "ms", "lower", 5000, lambda f: f.response_p95_ms),
)


@dataclass(frozen=True)
class AfterRow:
    label: str
    unit: str
    better: figures.Better
    read: Callable[[Figures], float | None]
    points: bool = False


AFTER = (
    AfterRow(
        "Average processing time (pass time per delivery)",
        "ms",
        "lower",
        lambda f: f.per_delivery_ms,
    ),
    AfterRow("Processing time per job (mean)", "ms", "lower", lambda f: f.job_ms),
    AfterRow("Total DB queries", "count", "lower", lambda f: float(f.db_total)),
    AfterRow("DB queries per delivery", "count", "lower", lambda f: f.db_per_delivery),
    AfterRow("Throughput (deliveries/s)", "per_second", "higher", lambda f: f.throughput),
    AfterRow("Error rate", "%", "lower", lambda f: f.error_rate, points=True),
    AfterRow("Success rate", "%", "higher", lambda f: f.success_rate, points=True),
    AfterRow("Cache hit rate (cold start)", "%", "higher", lambda f: f.cache_cold_start, True),
    AfterRow("Cache hit rate (steady state)", "%", "higher", lambda f: f.cache_steady_state, True),
)


@dataclass(frozen=True)
class Criterion:
    label: str
    value: float | None  # measured
    threshold: float
    unit: str  # "% cut" or "%"
    source: str

    @property
    def met(self) -> bool | None:
        return None if self.value is None else self.value > self.threshold


@dataclass
class ReportData:
    generated_at: datetime
    database: str
    window: timedelta
    active: str
    monitoring_enabled: bool
    monitor: dict[str, Figures | None]  # per scheduler, over the window
    comparison: comparing.Comparison | None
    current: Figures | None = None
    before: Figures | None = None
    after: Figures | None = None
    missing: list[str] = field(default_factory=list)

    def criteria(self) -> list[Criterion]:
        source = self.after.source if self.after else "no data"

        def cut(read: Callable[[Figures], float | None]) -> float | None:
            if self.before is None or self.after is None:
                return None
            change = figures.Change.between(read(self.before), read(self.after), "lower")
            return None if change is None else change.improvement_percent

        processing = cut(lambda f: f.per_delivery_ms)
        # Same workload in a comparison: the total is the figure; otherwise per delivery.
        db_read: Callable[[Figures], float | None] = (
            (lambda f: float(f.db_total)) if self.comparison else (lambda f: f.db_per_delivery)
        )
        return [
            Criterion("Processing time cut > 50 %", processing, 50, "% cut", source),
            Criterion("Processing time cut > 70 %", processing, 70, "% cut", source),
            Criterion("DB queries cut > 80 %", cut(db_read), 80, "% cut", source),
            self._cache_criterion(),
        ]

    def _cache_criterion(self) -> Criterion:
        """Steady state, from the after figures when they have it, else the monitor's."""
        label = "Cache hit rate > 85 % (optimized, steady state)"
        for found in (self.after, self.monitor.get("optimized")):
            if found is not None and found.cache_steady_state is not None:
                return Criterion(label, found.cache_steady_state * 100, 85, "%", found.source)
        return Criterion(label, None, 85, "%", "no steady-state passes")


async def gather(
    db: Database,
    settings: Settings,
    *,
    now: datetime,
    window: timedelta,
    comparison: comparing.Comparison | None = None,
) -> ReportData:
    async with db.engine.connect() as conn:
        config = await scheduler_config.read(conn)
        passes = await monitor_store.passes_since(conn, now - window)
    summaries = monitor_summary.by_scheduler(passes, window=window)
    span = format_duration(window.total_seconds())
    label = f"monitor: {len(passes)} stored passes in the last {span}"
    monitor = {
        name: Figures.from_summary(summaries[name], f"{label} ({name})")
        for name in monitor_summary.SCHEDULERS
    }
    data = ReportData(
        generated_at=now,
        database=db.engine.url.render_as_string(hide_password=True),
        window=window,
        active=config.active,
        monitoring_enabled=settings.ENABLE_PERFORMANCE_MONITORING,
        monitor=monitor,
        comparison=comparison,
    )
    compared: dict[str, Figures] = {}
    if comparison is not None:
        where = (
            f"compare: one pass each over the same {comparison.workload.get('deliveries', 0)} "
            f"due deliveries at {comparison.taken_at:%Y-%m-%d %H:%M} UTC"
        )
        compared = {
            "reference": Figures.from_run(comparison.reference, f"{where} (reference)"),
            "optimized": Figures.from_run(comparison.optimized, f"{where} (optimized)"),
        }
    data.current = monitor.get(config.active) or compared.get(config.active)
    if compared:
        data.before, data.after = compared["reference"], compared["optimized"]
    else:
        data.before, data.after = monitor.get("reference"), monitor.get("optimized")
    if not settings.ENABLE_PERFORMANCE_MONITORING:
        data.missing.append(
            "ENABLE_PERFORMANCE_MONITORING is off in these settings: workers configured the same "
            "way store no per-pass figures."
        )
    for name in monitor_summary.SCHEDULERS:
        if monitor[name] is None:
            data.missing.append(
                f"The monitor stored no {name} passes that claimed work in the window."
            )
    if data.current is None:
        data.missing.append(
            f"No figures for the active scheduler ({config.active}): the 'current' column is "
            "empty. Run workers for a while, or add --from-compare."
        )
    if data.before is None or data.after is None:
        data.missing.append(
            "The 'after migration' table needs figures for both schedulers: add --from-compare "
            "to measure both on the same workload now."
        )
    elif not compared:
        data.missing.append(
            "Before and after come from different workloads (whatever each scheduler handled in "
            "the window): compare per-delivery figures, not totals; --from-compare gives a like-"
            "for-like comparison."
        )
    return data


def _value(value: float | None, unit: str) -> str:
    if value is None:
        return "not measured"
    if unit == "%":
        return f"{value * 100:.1f} %"
    if unit == "ms":
        return f"{value:,.1f} ms"
    if unit == "per_second":
        return f"{value:,.2f}/s"
    return f"{value:,.2f}".rstrip("0").rstrip(".") if value != int(value) else f"{value:,.0f}"


def _target(target: Target) -> str:
    sign = "<" if target.better == "lower" else ">"
    if target.unit == "%":
        return f"{sign} {target.threshold * 100:g} %"
    if target.unit == "ms" and target.threshold >= 1000:
        return f"{sign} {target.threshold / 1000:g} s"
    if target.unit == "ms":
        return f"{sign} {target.threshold:g} ms"
    return f"{sign} {target.threshold:g}"


def _met(met: bool | None) -> str:
    return "n/a (not measured)" if met is None else "met" if met else "**not met**"


def _improvement(row: AfterRow, before: Figures | None, after: Figures | None) -> str:
    if before is None or after is None:
        return "n/a"
    change = figures.Change.between(row.read(before), row.read(after), row.better)
    if change is None:
        return "n/a"
    if row.points:
        points = change.improvement_points
        return "no change" if abs(points) < 0.05 else f"{points:+.1f} pts"
    percent, value = change.percent, change.improvement_percent
    if percent is None or value is None:
        return "n/a"
    if change.after == change.before:
        return "no change"
    direction = "lower" if change.after < change.before else "higher"
    return f"{abs(percent):.1f} % {direction}" + ("" if value > 0 else " (worse)")


def render(data: ReportData) -> str:
    lines: list[str] = []
    add = lines.append
    add("# postpilot migration report")
    add("")
    add(f"- Generated: {data.generated_at:%Y-%m-%d %H:%M:%S} UTC")
    add(f"- Database: `{data.database}`")
    add(f"- Active scheduler: **{data.active}**")
    add(f"- Window for stored figures: last {format_duration(data.window.total_seconds())}")
    if data.comparison is not None:
        c = data.comparison
        add(
            f"- Fresh comparison: {c.workload.get('deliveries', 0)} due deliveries, concurrency "
            f"{c.concurrency}, sandbox latency {c.latency_ms:g} ms; outcomes "
            + ("identical" if c.identical else f"**differ** ({len(c.differences)} differences)")
        )
    add("")
    add("## During migration")
    add("")
    add(
        "Current = "
        + (
            data.current.source
            if data.current
            else "not measured (no figures for the active scheduler)"
        )
        + "."
    )
    add("")
    add("| Metric | Target | Current | Status |")
    add("| --- | --- | --- | --- |")
    for target in DURING:
        value = target.read(data.current) if data.current else None
        add(
            f"| {target.label} | {_target(target)} | {_value(value, target.unit)} "
            f"| {_met(target.met(value))} |"
        )
    add("")
    add("## After migration")
    add("")
    add(f"Before (reference) = {data.before.source if data.before else 'not measured'}.  ")
    add(f"After (optimized) = {data.after.source if data.after else 'not measured'}.")
    add("")
    add("| Metric | Before (reference) | After (optimized) | Improvement |")
    add("| --- | --- | --- | --- |")
    for row in AFTER:
        before = row.read(data.before) if data.before else None
        after = row.read(data.after) if data.after else None
        add(
            f"| {row.label} | {_value(before, row.unit)} | {_value(after, row.unit)} | "
            f"{_improvement(row, data.before, data.after)} |"
        )
    add("")
    add("## Success criteria")
    add("")
    add("| Criterion | Measured | Status |")
    add("| --- | --- | --- |")
    for criterion in data.criteria():
        measured = (
            "not measured" if criterion.value is None else f"{criterion.value:.1f} {criterion.unit}"
        )
        add(f"| {criterion.label} | {measured} | {_met(criterion.met)} |")
    add("")
    add("## Where the numbers come from")
    add("")
    for line in _sources(data):
        add(f"- {line}")
    if data.missing:
        add("")
        add("## Missing")
        add("")
        for line in data.missing:
            add(f"- {line}")
    add("")
    return "\n".join(lines)


def _sources(data: ReportData) -> Sequence[str]:
    found = [
        "Definitions follow the monitor: processing time per job is a delivery's own time from "
        "claim to decision; error rate = (failed + retried + unknown) / outcomes; success rate = "
        "published / outcomes; DB queries per batch = statements per pass; response time = pass "
        "duration (p95 over passes; a comparison has one pass per scheduler).",
        "Average processing time = pass time / deliveries decided: what a delivery costs the "
        "scheduler once concurrency overlaps the waits. The processing-time criteria use it.",
        "DB queries cut: total statements when both schedulers ran the same workload (a "
        "comparison), statements per delivery otherwise.",
        "Cache hit rate: hits / lookups over every cache of the process (credentials, media, "
        "uploads, budgets), apart for cold-start passes (a process's first pass with lookups, "
        "or one within ALERT_CACHE_WARMUP_SECONDS of its start: its caches were empty) and "
        "steady-state ones (every later pass). The target and the criterion read the steady "
        "state, as the cache alert does; a comparison's run is one pass in a fresh process, so "
        "it measures a cold start only.",
    ]
    for name, measured in data.monitor.items():
        if measured is not None:
            found.append(
                f"Monitor, {name}: {measured.passes} passes, {measured.outcomes} outcomes "
                f"(`pass_metrics`, written after each pass that claimed work)."
            )
    if data.comparison is not None:
        found.append("Comparison (`postpilot compare`): " + " ".join(data.comparison.notes))
    return found
