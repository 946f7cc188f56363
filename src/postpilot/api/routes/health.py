"""/api/health: liveness, and readiness (database, schema version, passes running: a worker's
heartbeat or a cron pass). Unauthenticated: it says nothing tenant-specific."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import func, select, text

from postpilot.api.deps import RuntimeDep
from postpilot.api.schemas import Readiness
from postpilot.core.timezones import as_utc
from postpilot.settings import Settings
from postpilot.store import heartbeats, schema
from postpilot.store.tables import WorkerHeartbeat

router = APIRouter(prefix="/api/health", tags=["health"])
NOT_READY: dict[int | str, dict[str, Any]] = {
    503: {"model": Readiness, "description": "Not ready: the failing checks are named."}
}


@router.get("", responses=NOT_READY)
async def health(runtime: RuntimeDep, ready: bool = False) -> JSONResponse:
    """Liveness by default; `?ready=true` is the readiness check (see `/api/health/ready`)."""
    return await readiness(runtime) if ready else liveness()


@router.get("/live")
def liveness() -> JSONResponse:
    """The process answers (200). Restart it when this fails."""
    return JSONResponse({"status": "ok"})


@router.get("/ready", responses=NOT_READY)
async def readiness(runtime: RuntimeDep) -> JSONResponse:
    """200 when the database answers, the schema is at this code's version and passes are
    running: a worker sent a heartbeat within HEALTH_HEARTBEAT_SECONDS and none says its pass
    has run past its bound, or (cron-only deployments) a cron pass ran within
    HEALTH_CRON_SECONDS. 503 with the failing checks otherwise."""
    settings = runtime.settings
    checks: dict[str, Any] = {}
    info: dict[str, Any] = {"cache": runtime.cache.backend}
    try:
        async with runtime.db.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
            beats = (
                await conn.execute(
                    select(WorkerHeartbeat.state, func.max(WorkerHeartbeat.last_beat_at))
                    .where(WorkerHeartbeat.state.in_(("running", "stalled", heartbeats.CRON)))
                    .group_by(WorkerHeartbeat.state)
                )
            ).all()
            cutoff = runtime.now() - timedelta(seconds=settings.HEALTH_HEARTBEAT_SECONDS)
            fresh = (
                await conn.execute(
                    select(WorkerHeartbeat.worker_id, WorkerHeartbeat.state).where(
                        WorkerHeartbeat.state.in_(("running", "stalled")),
                        WorkerHeartbeat.last_beat_at >= cutoff,
                    )
                )
            ).all()
        checks["database"] = "ok"
        current, head = await schema.current_revision(runtime.db), schema.head_revision()
        info["schema_version"] = current
        checks["schema"] = "ok" if current == head else f"at {current}, needs {head}"
        ages = {
            state: (runtime.now() - as_utc(last)).total_seconds()
            for state, last in beats
            if last is not None
        }
        stalled = [worker for worker, state in fresh if state == "stalled"]
        info["workers_alive"] = len(fresh) - len(stalled)
        checks["worker"] = _passes_check(ages, stalled, settings)
        if "running" in ages:
            info["last_heartbeat_s"] = round(ages["running"], 1)
        if heartbeats.CRON in ages:
            info["last_cron_pass_s"] = round(ages[heartbeats.CRON], 1)
    except Exception as exc:  # report, do not crash: this is what health checks are for
        checks["database"] = f"unreachable: {type(exc).__name__}"
    healthy = bool(checks) and all(value == "ok" for value in checks.values())
    return JSONResponse(
        {"status": "ok" if healthy else "unavailable", "checks": checks, "info": info},
        status_code=200 if healthy else 503,
    )


def _passes_check(ages: dict[str, float], stalled: list[str], settings: Settings) -> str:
    if stalled:
        return (
            f"the pass of worker {', '.join(sorted(stalled))} has run past its bound "
            "(SCHEDULER_DELIVERY_TIMEOUT_SECONDS per wave): it is stuck, restart it"
        )
    worker_limit = settings.HEALTH_HEARTBEAT_SECONDS
    if ages.get("running", float("inf")) <= worker_limit:
        return "ok"
    if ages.get(heartbeats.CRON, float("inf")) <= settings.HEALTH_CRON_SECONDS:
        return "ok"
    if not ages:
        return "no worker has sent a heartbeat and no cron pass has run"
    parts = []
    if "running" in ages or "stalled" in ages:
        age = min(ages.get("running", float("inf")), ages.get("stalled", float("inf")))
        parts.append(f"last heartbeat {age:.0f} s ago (limit {worker_limit:g} s)")
    if heartbeats.CRON in ages:
        limit = settings.HEALTH_CRON_SECONDS
        parts.append(f"last cron pass {ages[heartbeats.CRON]:.0f} s ago (limit {limit:g} s)")
    return f"{'; '.join(parts)}: is a worker running?"
