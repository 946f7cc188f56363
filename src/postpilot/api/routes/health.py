"""/api/health: liveness, and readiness (database, schema version, a worker heartbeat)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import func, select, text

from postpilot.api.deps import RuntimeDep
from postpilot.core.timezones import as_utc
from postpilot.store import schema
from postpilot.store.tables import WorkerHeartbeat

router = APIRouter(prefix="/api/health", tags=["health"])

HEARTBEAT_FRESH = timedelta(seconds=30)


@router.get("")
async def health(runtime: RuntimeDep, ready: bool = False) -> JSONResponse:
    """Liveness by default; `?ready=true` also checks the database, the schema version and that
    a worker has sent a heartbeat within 30 s (503 when any check fails)."""
    if not ready:
        return JSONResponse({"status": "ok"})
    checks: dict[str, Any] = {}
    try:
        async with runtime.db.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
            last_beat = (
                await conn.execute(
                    select(func.max(WorkerHeartbeat.last_beat_at)).where(
                        WorkerHeartbeat.state == "running"
                    )
                )
            ).scalar_one_or_none()
        checks["database"] = "ok"
        current, head = await schema.current_revision(runtime.db), schema.head_revision()
        checks["schema"] = "ok" if current == head else f"at {current}, needs {head}"
        if last_beat is None:
            checks["worker"] = "no worker has sent a heartbeat"
        else:
            age = runtime.now() - as_utc(last_beat)
            checks["worker"] = (
                "ok"
                if age <= HEARTBEAT_FRESH
                else f"last heartbeat {age.total_seconds():.0f} s ago"
            )
    except Exception as exc:  # report, do not crash: this is what health checks are for
        checks["database"] = f"unreachable: {type(exc).__name__}"
    healthy = all(value == "ok" for value in checks.values())
    return JSONResponse(
        {"status": "ok" if healthy else "unavailable", "checks": checks},
        status_code=200 if healthy else 503,
    )
