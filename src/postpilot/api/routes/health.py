"""/api/health: liveness, and readiness (database, schema version, passes running: a worker's
heartbeat or a cron pass). Unauthenticated: it says nothing tenant-specific."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from postpilot.api.deps import RuntimeDep
from postpilot.api.schemas import Readiness
from postpilot.core.states import WorkerState
from postpilot.settings import Settings
from postpilot.store import heartbeats, schema

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
        cutoff = runtime.now() - timedelta(seconds=settings.HEALTH_HEARTBEAT_SECONDS)
        async with runtime.db.engine.connect() as conn:
            found = await heartbeats.liveness(conn, fresh_since=cutoff)
        checks["database"] = "ok"
        current, head = await schema.current_revision(runtime.db), schema.head_revision()
        info["schema_version"] = current
        checks["schema"] = "ok" if current == head else f"at {current}, needs {head}"
        ages = {
            state: (runtime.now() - last).total_seconds() for state, last in found.last_beat.items()
        }
        stalled = [worker for worker, state in found.fresh.items() if state is WorkerState.STALLED]
        info["workers_alive"] = len(found.fresh) - len(stalled)
        checks["worker"] = _passes_check(ages, stalled, settings)
        if WorkerState.RUNNING in ages:
            info["last_heartbeat_s"] = round(ages[WorkerState.RUNNING], 1)
        if WorkerState.CRON in ages:
            info["last_cron_pass_s"] = round(ages[WorkerState.CRON], 1)
    except Exception as exc:  # report, do not crash: this is what health checks are for
        checks["database"] = f"unreachable: {type(exc).__name__}"
    healthy = bool(checks) and all(value == "ok" for value in checks.values())
    return JSONResponse(
        {"status": "ok" if healthy else "unavailable", "checks": checks, "info": info},
        status_code=200 if healthy else 503,
    )


def _passes_check(ages: dict[WorkerState, float], stalled: list[str], settings: Settings) -> str:
    if stalled:
        return (
            f"the pass of worker {', '.join(sorted(stalled))} has run past its bound "
            "(SCHEDULER_DELIVERY_TIMEOUT_SECONDS per wave): it is stuck, restart it"
        )
    worker_limit = settings.HEALTH_HEARTBEAT_SECONDS
    if ages.get(WorkerState.RUNNING, float("inf")) <= worker_limit:
        return "ok"
    if ages.get(WorkerState.CRON, float("inf")) <= settings.HEALTH_CRON_SECONDS:
        return "ok"
    if not ages:
        return "no worker has sent a heartbeat and no cron pass has run"
    parts = []
    if WorkerState.RUNNING in ages or WorkerState.STALLED in ages:
        age = min(
            ages.get(WorkerState.RUNNING, float("inf")), ages.get(WorkerState.STALLED, float("inf"))
        )
        parts.append(f"last heartbeat {age:.0f} s ago (limit {worker_limit:g} s)")
    if WorkerState.CRON in ages:
        limit = settings.HEALTH_CRON_SECONDS
        parts.append(f"last cron pass {ages[WorkerState.CRON]:.0f} s ago (limit {limit:g} s)")
    return f"{'; '.join(parts)}: is a worker running?"
