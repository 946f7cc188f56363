"""/api/health: liveness, and readiness (database, schema version, a worker heartbeat within
HEALTH_HEARTBEAT_SECONDS). Unauthenticated: it says nothing tenant-specific."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import func, select, text

from postpilot.api.deps import RuntimeDep
from postpilot.api.schemas import Readiness
from postpilot.core.timezones import as_utc
from postpilot.store import schema
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
    """200 when the database answers, the schema is at this code's version and a worker has
    sent a heartbeat within HEALTH_HEARTBEAT_SECONDS; 503 with the failing checks otherwise (in
    particular when no worker is polling, so scheduled posts would not go out)."""
    fresh = timedelta(seconds=runtime.settings.HEALTH_HEARTBEAT_SECONDS)
    checks: dict[str, Any] = {}
    info: dict[str, Any] = {"cache": runtime.cache.backend}
    try:
        async with runtime.db.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
            cutoff = runtime.now() - fresh
            last_beat, alive = (
                await conn.execute(
                    select(
                        func.max(WorkerHeartbeat.last_beat_at),
                        func.count().filter(WorkerHeartbeat.last_beat_at >= cutoff),
                    ).where(WorkerHeartbeat.state == "running")
                )
            ).one()
        checks["database"] = "ok"
        current, head = await schema.current_revision(runtime.db), schema.head_revision()
        info["schema_version"] = current
        checks["schema"] = "ok" if current == head else f"at {current}, needs {head}"
        info["workers_alive"] = int(alive or 0)
        if last_beat is None:
            checks["worker"] = "no worker has sent a heartbeat"
        else:
            age = runtime.now() - as_utc(last_beat)
            info["last_heartbeat_s"] = round(age.total_seconds(), 1)
            checks["worker"] = (
                "ok"
                if age <= fresh
                else f"last heartbeat {age.total_seconds():.0f} s ago "
                f"(limit {fresh.total_seconds():g} s): is a worker running?"
            )
    except Exception as exc:  # report, do not crash: this is what health checks are for
        checks["database"] = f"unreachable: {type(exc).__name__}"
    healthy = bool(checks) and all(value == "ok" for value in checks.values())
    return JSONResponse(
        {"status": "ok" if healthy else "unavailable", "checks": checks, "info": info},
        status_code=200 if healthy else 503,
    )
