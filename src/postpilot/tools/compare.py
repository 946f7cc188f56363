"""Compare the reference and the optimized scheduler on identical copies of the same due workload.

1. The workload is read from the source database in one snapshot and copied into two scratch
   databases (see `workload`); the source is never written.
2. A sandbox process is started for each run and every publisher points at it (`SANDBOX_URL`),
   so both runs meet the same, empty platforms.
3. Each scheduler runs one pass with `limit` = the workload size in a child process of its own
   (`_child`), with the clock stopped at the moment the workload was taken. The child reports the
   pass (duration, DB statements, per-delivery processing, cache) and its CPU time and memory.
4. The final state of every delivery in the two copies (status, attempts, error, activity
   events) and what the sandbox received for it (text, media) are compared delivery by delivery.

Runs happen one after the other (reference first), so they never compete for the machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from postpilot.core import figures, knobs
from postpilot.errors import PostpilotError
from postpilot.sandbox.client import SandboxClient
from postpilot.sandbox.process import SandboxProcess, start_sandbox
from postpilot.settings import Settings
from postpilot.store import schema, scratch
from postpilot.store import workload as copies
from postpilot.store.database import Database
from postpilot.tools import workload as workloads

SCHEDULERS: tuple[str, ...] = tuple(knobs.SchedulerKind)
Progress = Callable[[str, int, int], None]  # stage, done, total
COMPARED_FIELDS = ("status", "attempts", "last_error", "events", "published_text", "media")
# Each run is one pass in a fresh process: its cache figures are a cold start (figures.cache_phase).
CACHE_PHASE: figures.CachePhase = figures.COLD_START


class CompareError(PostpilotError):
    """The comparison could not run; the source database was not touched."""


@dataclass(frozen=True)
class RunMetrics:
    """What one scheduler's pass did over the workload, as measured in its child process."""

    scheduler: str
    claimed: int
    published: int
    failed: int
    retried: int
    rate_limited: int
    unknown: int
    duration_ms: float  # the pass, from claim to the last write
    db_statements: int
    processing_ms: list[float]  # per delivery: publish + decide, as the engine timed it
    cache_hits: int
    cache_misses: int
    cpu_ms: float  # user + system CPU of the child process during the pass
    peak_rss_bytes: int  # the child process's high-water mark (includes Python and imports)
    baseline_rss_bytes: int  # its resident size just before the pass
    sandbox_posts: int  # posts the sandbox accepted during the run

    @classmethod
    def from_child(cls, scheduler: str, data: dict[str, Any], sandbox_posts: int) -> RunMetrics:
        return cls(
            scheduler=scheduler,
            claimed=int(data["claimed"]),
            published=int(data["published"]),
            failed=int(data["failed"]),
            retried=int(data["retried"]),
            rate_limited=int(data["rate_limited"]),
            unknown=int(data["unknown"]),
            duration_ms=float(data["duration_ms"]),
            db_statements=int(data["db_statements"]),
            processing_ms=[float(v) for v in data["processing_ms"]],
            cache_hits=int(data["cache_hits"]),
            cache_misses=int(data["cache_misses"]),
            cpu_ms=float(data["cpu_user_ms"]) + float(data["cpu_system_ms"]),
            peak_rss_bytes=int(data["peak_rss_bytes"]),
            baseline_rss_bytes=int(data["baseline_rss_bytes"]),
            sandbox_posts=sandbox_posts,
        )

    @property
    def outcomes(self) -> int:
        return figures.outcomes(self)

    @property
    def errors(self) -> int:
        return figures.errors(self)

    @property
    def per_delivery_ms(self) -> float | None:
        """Pass time per delivery: what a delivery costs the scheduler, waits included."""
        return figures.per_delivery(self.duration_ms, self.outcomes)

    @property
    def publish_ms(self) -> float | None:
        return figures.mean(self.processing_ms)

    @property
    def throughput(self) -> float | None:
        """Deliveries per second over the pass."""
        return figures.throughput(self.outcomes, self.duration_ms / 1000)

    @property
    def success_rate(self) -> float | None:
        return figures.success_rate(self)

    @property
    def error_rate(self) -> float | None:
        return figures.error_rate(self)

    @property
    def cache_hit_rate(self) -> float | None:
        return figures.hit_rate(self.cache_hits, self.cache_misses)

    @property
    def statements_per_delivery(self) -> float | None:
        return figures.per_delivery(self.db_statements, self.outcomes)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(
            outcomes=self.outcomes,
            errors=self.errors,
            per_delivery_ms=self.per_delivery_ms,
            publish_ms=self.publish_ms,
            throughput_per_s=self.throughput,
            success_rate=self.success_rate,
            error_rate=self.error_rate,
            cache_hit_rate=self.cache_hit_rate,
            cache_phase=CACHE_PHASE,
            statements_per_delivery=self.statements_per_delivery,
        )
        return data


@dataclass(frozen=True)
class MetricRow:
    key: str
    label: str
    unit: str
    reference: float | None
    optimized: float | None
    better: figures.Better
    points: bool = False  # a rate: the improvement is in percentage points

    @property
    def improvement(self) -> float | None:
        """Positive is better: percent less (or more) than the reference; for rates, points."""
        change = figures.Change.between(self.reference, self.optimized, self.better)
        if change is None:
            return None
        return change.improvement_points if self.points else change.improvement_percent

    def to_json(self) -> dict[str, Any]:
        return {
            "metric": self.key,
            "label": self.label,
            "unit": self.unit,
            "reference": self.reference,
            "optimized": self.optimized,
            "better": self.better,
            "improvement": self.improvement,
            "improvement_unit": "points" if self.points else "percent",
        }


def metric_rows(reference: RunMetrics, optimized: RunMetrics) -> list[MetricRow]:
    def row(
        key: str, label: str, unit: str, better: figures.Better, *, points: bool = False
    ) -> MetricRow:
        get: Callable[[RunMetrics], float | None] = lambda run: getattr(run, key)  # noqa: E731
        return MetricRow(key, label, unit, get(reference), get(optimized), better, points)

    mb = 1024 * 1024
    return [
        row("per_delivery_ms", "processing time per delivery", "ms", "lower"),
        row("publish_ms", "publish time per delivery (mean)", "ms", "lower"),
        row("duration_ms", "pass duration", "ms", "lower"),
        row("db_statements", "DB statements (total)", "", "lower"),
        row("statements_per_delivery", "DB statements per delivery", "", "lower"),
        row("throughput", "throughput", "deliveries/s", "higher"),
        row("error_rate", "error rate", "%", "lower", points=True),
        row("success_rate", "success rate", "%", "higher", points=True),
        row("cache_hit_rate", "cache hit rate (cold start)", "%", "higher", points=True),
        row("cpu_ms", "CPU time", "ms", "lower"),
        MetricRow(
            "peak_rss_mb",
            "peak memory (process RSS)",
            "MB",
            reference.peak_rss_bytes / mb,
            optimized.peak_rss_bytes / mb,
            "lower",
        ),
    ]


@dataclass(frozen=True)
class DeliveryOutcome:
    delivery_id: str
    platform: str
    handle: str
    status: str
    attempts: int
    last_error: str | None
    events: tuple[str, ...]  # activity events the pass wrote for it
    published_text: str | None  # what the sandbox received, when it received something
    media: int | None

    def value(self, name: str) -> Any:
        value = getattr(self, name)
        return list(value) if isinstance(value, tuple) else value


@dataclass(frozen=True)
class Difference:
    delivery_id: str
    platform: str
    handle: str
    field: str
    reference: Any
    optimized: Any

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def differences(
    reference: dict[str, DeliveryOutcome], optimized: dict[str, DeliveryOutcome], ids: list[str]
) -> list[Difference]:
    found = []
    for delivery_id in ids:
        before, after = reference.get(delivery_id), optimized.get(delivery_id)
        either = before or after
        if either is None:
            continue
        if before is None or after is None:
            found.append(
                Difference(
                    delivery_id,
                    either.platform,
                    either.handle,
                    "present",
                    before is not None,
                    after is not None,
                )
            )
            continue
        for name in COMPARED_FIELDS:
            if before.value(name) != after.value(name):
                found.append(
                    Difference(
                        delivery_id,
                        before.platform,
                        before.handle,
                        name,
                        before.value(name),
                        after.value(name),
                    )
                )
    return found


@dataclass
class Comparison:
    source: str
    dialect: str
    taken_at: datetime
    limit: int
    concurrency: int
    latency_ms: float
    workload: dict[str, int]
    reference: RunMetrics
    optimized: RunMetrics
    outcomes: dict[str, dict[str, DeliveryOutcome]]
    differences: list[Difference]
    notes: list[str] = field(default_factory=list)

    @property
    def identical(self) -> bool:
        return not self.differences

    def rows(self) -> list[MetricRow]:
        return metric_rows(self.reference, self.optimized)

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "dialect": self.dialect,
            "taken_at": self.taken_at.isoformat(),
            "limit": self.limit,
            "concurrency": self.concurrency,
            "sandbox_latency_ms": self.latency_ms,
            "workload": self.workload,
            "metrics": [row.to_json() for row in self.rows()],
            "runs": {"reference": self.reference.to_json(), "optimized": self.optimized.to_json()},
            "identical_outcomes": self.identical,
            "differences": [d.to_json() for d in self.differences],
            "outcomes": {
                name: {k: asdict(v) for k, v in found.items()}
                for name, found in self.outcomes.items()
            },
            "notes": self.notes,
        }


async def compare(
    settings: Settings,
    *,
    limit: int,
    concurrency: int,
    latency_ms: float = 0.0,
    progress: Progress | None = None,
) -> Comparison:
    say = progress or (lambda _stage, _done, _total: None)
    source = Database(settings.DATABASE_URL, max_connections=2)
    try:
        await schema.ensure_current(source)
        say("copy", 0, 1)
        taken = await workloads.take(source, now=datetime.now(UTC), limit=limit)
        if not taken.size:
            raise workloads.NothingDue(
                "nothing is due in the database: schedule posts (or `postpilot demo seed "
                "--posts 50 --spread 0s`) and compare again"
            )
        runs: dict[str, RunMetrics] = {}
        outcomes: dict[str, dict[str, DeliveryOutcome]] = {}
        # A sandbox process per run, so no platform state (duplicate memory, sessions, rate
        # windows, idempotency keys) carries over from the first run to the second. Both start
        # at once: starting one takes seconds.
        async with (
            scratch.databases(source, SCHEDULERS, prefix="postpilot_compare") as urls,
            _sandboxes(SCHEDULERS) as sandboxes,
        ):
            say("copy", 1, 1)
            for name in SCHEDULERS:
                sandbox, client = sandboxes[name]
                copy = Database(urls[name], max_connections=2)
                try:
                    await workloads.materialize(taken, copy, sandbox_url=sandbox.url)
                finally:
                    await copy.dispose()
                await asyncio.to_thread(client.configure, latency_ms=latency_ms)
                data = await _run_child(
                    settings,
                    database_url=urls[name],
                    sandbox_url=sandbox.url,
                    scheduler=name,
                    limit=taken.size,
                    concurrency=concurrency,
                    clock=taken.taken_at,
                    progress=functools.partial(say, name),
                    total=taken.size,
                )
                records = await asyncio.to_thread(client.records)
                outcomes[name] = await _outcomes(urls[name], taken.delivery_ids, records)
                runs[name] = RunMetrics.from_child(name, data, len(records))
                say(name, taken.size, taken.size)
    finally:
        await source.dispose()
    comparison = Comparison(
        source=source.engine.url.render_as_string(hide_password=True),
        dialect=source.dialect,
        taken_at=taken.taken_at,
        limit=limit,
        concurrency=concurrency,
        latency_ms=latency_ms,
        workload=taken.counts(),
        reference=runs["reference"],
        optimized=runs["optimized"],
        outcomes=outcomes,
        differences=differences(outcomes["reference"], outcomes["optimized"], taken.delivery_ids),
    )
    comparison.notes = _notes(comparison)
    return comparison


@contextlib.asynccontextmanager
async def _sandboxes(
    names: Sequence[str],
) -> AsyncIterator[dict[str, tuple[SandboxProcess, SandboxClient]]]:
    started = await asyncio.gather(
        *(asyncio.to_thread(start_sandbox) for _ in names), return_exceptions=True
    )
    processes = [s for s in started if isinstance(s, SandboxProcess)]
    clients = [SandboxClient(s.url) for s in processes]
    try:
        failed = [s for s in started if isinstance(s, BaseException)]
        if failed:
            raise CompareError(f"could not start the sandbox: {failed[0]}")
        yield {
            name: (process, client)
            for name, process, client in zip(names, processes, clients, strict=True)
        }
    finally:
        for client in clients:
            client.close()
        for process in processes:
            process.stop()


def child_settings(settings: Settings, *, database_url: str, sandbox_url: str) -> dict[str, Any]:
    values = settings.model_dump(mode="json")
    sandbox_host = sandbox_url.split("://", 1)[1].rstrip("/")
    allowed = [h for h in settings.MEDIA_ALLOWED_HOSTS.split(",") if h.strip()] + [sandbox_host]
    values.update(
        DATABASE_URL=database_url,
        SANDBOX_URL=sandbox_url,
        MEDIA_ALLOWED_HOSTS=",".join(allowed),
        REDIS_URL=None,  # a cache shared between the two runs would warm the second one
        # Passes over a copy must not notify anyone, nor mix their figures into the monitor's.
        ENABLE_PERFORMANCE_MONITORING=False,
        ALERT_WEBHOOK_URL=None,
        EVENTS_WEBHOOK_URL=None,
        LOG_LEVEL="WARNING",
        LOG_FORMAT="text",
    )
    return values


async def _run_child(
    settings: Settings,
    *,
    database_url: str,
    sandbox_url: str,
    scheduler: str,
    limit: int,
    concurrency: int,
    clock: datetime,
    progress: Callable[[int, int], None],
    total: int,
) -> dict[str, Any]:
    job = {
        "settings": child_settings(settings, database_url=database_url, sandbox_url=sandbox_url),
        "scheduler": scheduler,
        "limit": limit,
        "concurrency": concurrency,
        "clock": clock.isoformat(),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "postpilot.tools._child",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    communicate = asyncio.create_task(process.communicate(json.dumps(job).encode()))
    watch = Database(database_url, max_connections=1)
    try:
        while not communicate.done():
            with contextlib.suppress(Exception):  # progress is best effort
                progress(await copies.decided(watch), total)
            await asyncio.wait({communicate}, timeout=0.25)
        stdout, stderr = communicate.result()
    finally:
        if not communicate.done():
            process.kill()
            await process.wait()
        await watch.dispose()
    if process.returncode != 0:
        lines = [line for line in stderr.decode(errors="replace").splitlines() if line.strip()]
        raise CompareError(
            f"the {scheduler} run failed (exit {process.returncode}): "
            + (lines[-1] if lines else "no error output")
        )
    result: dict[str, Any] = json.loads(stdout)
    return result


def _match_record(
    records: list[dict[str, Any]], platform_post_id: str | None, idempotency_key: str
) -> dict[str, Any] | None:
    for record in records:
        rid = str(record.get("id"))
        if platform_post_id and (platform_post_id == rid or platform_post_id.endswith("/" + rid)):
            return record
    for record in records:
        if record.get("idempotency_key") and record.get("idempotency_key") == idempotency_key:
            return record
    return None


async def _outcomes(
    url: str, ids: list[str], records: list[dict[str, Any]]
) -> dict[str, DeliveryOutcome]:
    db = Database(url, max_connections=1)
    try:
        states = await copies.final_states(db, ids)
    finally:
        await db.dispose()
    found = {}
    for row in states:
        record = _match_record(records, row.platform_post_id, row.idempotency_key)
        found[row.id] = DeliveryOutcome(
            delivery_id=row.id,
            platform=row.platform,
            handle=row.handle,
            status=row.status,
            attempts=row.attempts,
            last_error=row.last_error,
            events=row.events,
            published_text=str(record["text"]) if record else None,
            media=len(record.get("media") or []) if record else None,
        )
    return found


def _notes(comparison: Comparison) -> list[str]:
    notes = [
        f"Workload: the {comparison.workload.get('deliveries', 0)} deliveries due at "
        f"{comparison.taken_at:%Y-%m-%d %H:%M:%S} UTC (earliest first, at most "
        f"{comparison.limit}), copied with their posts, accounts and workspaces into two scratch "
        f"{comparison.dialect} databases; the source was only read.",
        "Both passes ran with the clock stopped at that moment: the workload is exactly what was "
        "due then, and a retry never comes due within the pass.",
        "Media URLs point at the sandbox in the copies (same count and file names), so nothing "
        "was fetched from the internet; the runs had the monitor, its webhooks and Redis off.",
        f"Each pass ran in its own process, reference first, against a sandbox process of its "
        f"own (simulated platform latency {comparison.latency_ms:g} ms per request); the "
        f"optimized pass used concurrency {comparison.concurrency}, the reference takes one "
        f"delivery at a time.",
        "Processing time per delivery = pass duration / deliveries decided; publish time = the "
        "engine's own timing of each delivery (publish + decide), which overlaps under "
        "concurrency. Error rate counts failed, retried and unknown; success rate counts "
        "published.",
        "Cache hit rate: hits / lookups over every cache of the pass's process. Each run is one "
        "pass in a fresh process whose caches start empty, so it is a cold-start rate; a running "
        "worker's steady-state rate is in /api/performance (cache_steady_state), which the "
        "cache alert and the migration report's criterion read.",
        "CPU time: user + system time of the child process during the pass (all its threads). "
        "Peak memory: that process's RSS high-water mark, which includes the interpreter and "
        f"imports (RSS just before the pass: reference "
        f"{comparison.reference.baseline_rss_bytes / 1048576:.1f} MB, optimized "
        f"{comparison.optimized.baseline_rss_bytes / 1048576:.1f} MB).",
    ]
    for run in (comparison.reference, comparison.optimized):
        if run.sandbox_posts != run.published:
            notes.append(
                f"The sandbox accepted {run.sandbox_posts} posts during the {run.scheduler} run "
                f"for {run.published} published deliveries."
            )
        if run.claimed < comparison.workload.get("deliveries", 0):
            notes.append(
                f"The {run.scheduler} pass claimed {run.claimed} of the "
                f"{comparison.workload.get('deliveries', 0)} deliveries."
            )
    return notes
