"""/api/performance: the monitor's figures for operators and the dashboard.

Auth: operator-level data across every workspace, so a workspace API key is not enough: send
`Authorization: Bearer <CRON_SECRET>` (the operator secret that already guards /api/cron). With
CRON_SECRET unset the endpoint answers 503, as the cron endpoints do.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query

from postpilot.api.deps import Credentials, RuntimeDep
from postpilot.api.errors import ApiError
from postpilot.core import figures, knobs
from postpilot.crypto import same_secret
from postpilot.monitor import store, summary
from postpilot.runtime import ServiceRuntime


def require_operator(runtime: RuntimeDep, credentials: Credentials) -> None:
    expected = runtime.settings.CRON_SECRET
    if not expected:
        raise ApiError(
            503,
            "monitor_disabled",
            "the monitor's endpoints need the operator secret: set CRON_SECRET to use them",
        )
    if credentials is None or not same_secret(credentials.credentials, expected):
        raise ApiError(401, "unauthorized", "send `Authorization: Bearer <CRON_SECRET>`")


router = APIRouter(
    prefix="/api/performance", tags=["monitor"], dependencies=[Depends(require_operator)]
)

Kind = Literal["summary", "runs", "alerts", "compare"]


@router.get("")
async def performance(
    runtime: RuntimeDep,
    type: Annotated[Kind, Query(description="summary, runs, alerts or compare.")] = "summary",
    window: Annotated[
        summary.Window, Query(description="For summary and compare: 1h, 24h or 7d.")
    ] = "1h",
    scheduler: Annotated[
        knobs.SchedulerKind | None, Query(description="Only this scheduler.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500, description="For runs and alerts.")] = 50,
    status: Annotated[
        Literal["firing", "resolved", "all"], Query(description="For alerts.")
    ] = "all",
) -> dict[str, Any]:
    """Per-scheduler figures over a window (`summary`, with a chart series), the latest passes
    (`runs`), alerts firing and recent (`alerts`), or reference beside optimized (`compare`)."""
    if type == "runs":
        return await _runs(runtime, scheduler=scheduler, limit=limit)
    if type == "alerts":
        return await _alerts(runtime, limit=limit, status=status)
    now = runtime.now()
    span = summary.WINDOWS[window]
    start = now - span
    compared = type == "compare"  # always both schedulers, whatever `scheduler` says
    async with runtime.db.engine.connect() as conn:
        passes = await store.passes_since(conn, start, scheduler=None if compared else scheduler)
        firing = await store.firing_alerts(conn)
    per_scheduler = summary.by_scheduler(passes, window=span)
    head = _head(runtime, type, window, start, now)
    if compared:
        rows = summary.compare(
            per_scheduler[knobs.SchedulerKind.REFERENCE],
            per_scheduler[knobs.SchedulerKind.OPTIMIZED],
        )
        return {
            **head,
            "rows": [_row(row) for row in rows],
            "passes": {name: s.passes for name, s in per_scheduler.items()},
            "outcomes": {name: s.outcomes for name, s in per_scheduler.items()},
        }
    bucket = summary.BUCKETS[window]
    points = summary.series(passes, start=start, end=now, bucket=bucket)
    if scheduler:
        per_scheduler = {scheduler: per_scheduler[scheduler]}
        points = {scheduler: points[scheduler]}
    return {
        **head,
        "schedulers": {name: s.as_dict() for name, s in per_scheduler.items()},
        "series": {"bucket_seconds": int(bucket.total_seconds()), "points": points},
        "cache": _cache(runtime),
        "alerts": {"firing": len(firing), "rules": sorted({a.rule for a in firing})},
        "thresholds": _thresholds(runtime),
    }


def _head(
    runtime: ServiceRuntime, kind: str, window: str, start: datetime, now: datetime
) -> dict[str, Any]:
    return {
        "type": kind,
        "window": window,
        "from": start.isoformat(),
        "to": now.isoformat(),
        "monitoring": runtime.settings.ENABLE_PERFORMANCE_MONITORING,
    }


def _row(row: summary.Comparison) -> dict[str, Any]:
    return {
        "metric": row.metric,
        "label": row.label,
        "unit": row.unit,
        "better": row.better,
        "reference": row.reference,
        "optimized": row.optimized,
        "change_pct": row.change_pct,
        "improved": row.improved,
        "improvement": row.improvement,
    }


async def _runs(runtime: ServiceRuntime, *, scheduler: str | None, limit: int) -> dict[str, Any]:
    async with runtime.db.engine.connect() as conn:
        runs = await store.recent_passes(conn, limit=limit, scheduler=scheduler)
    return {
        "type": "runs",
        "monitoring": runtime.settings.ENABLE_PERFORMANCE_MONITORING,
        "runs": [one.public() for one in runs],
    }


async def _alerts(runtime: ServiceRuntime, *, limit: int, status: str) -> dict[str, Any]:
    async with runtime.db.engine.connect() as conn:
        firing = await store.firing_alerts(conn)
        recent = await store.recent_alerts(
            conn, limit=limit, status=None if status == "all" else status
        )
    return {
        "type": "alerts",
        "firing": [alert.public() for alert in firing],
        "recent": [alert.public() for alert in recent],
        "webhook": bool(runtime.settings.ALERT_WEBHOOK_URL),
    }


def _cache(runtime: ServiceRuntime) -> dict[str, Any]:
    """This process's caches since it started (the stored figures cover every process)."""
    caches = {
        name: {"hits": stats.hits, "misses": stats.misses, "hit_rate": stats.hit_rate}
        for name, stats in runtime.cache.stats().items()
    }
    return {"backend": runtime.cache.backend, "process": caches}


def _thresholds(runtime: ServiceRuntime) -> dict[str, Any]:
    """The alert thresholds, for a dashboard's target lines."""
    limits = runtime.monitor.alerts.thresholds
    return {
        "error_rate": limits.error_rate,
        "processing_ms": limits.processing_seconds * 1000,
        "db_connections_ratio": limits.db_connections_ratio,
        "cache_hit_rate": limits.cache_hit_rate,
        # Which of a summary's cache rates the alert reads, and where cold start ends.
        "cache_hit_rate_reads": figures.STEADY_STATE,
        "cache_warmup_seconds": limits.cache_warmup_seconds,
        "overdue_seconds": limits.overdue_seconds,
        "window_seconds": limits.window_seconds,
    }
