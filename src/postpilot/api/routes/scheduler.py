"""/api/scheduler: the active scheduler and its knobs, for operators.

Operator-level, not per workspace: the scheduler is shared by every workspace, so a workspace API
key cannot change it. Callers send `Authorization: Bearer <CRON_SECRET>` (the operator secret
that already guards the cron endpoints); the endpoints answer 503 while CRON_SECRET is unset.
Each change is recorded as `api:<actor>@<client address>`, with the optional `actor` of the body
naming the person or tool behind the shared secret.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field, field_validator

from postpilot.api.deps import RuntimeDep, require_cron_secret
from postpilot.api.errors import ApiError
from postpilot.api.fields import Count
from postpilot.api.schemas import Strict
from postpilot.core import knobs
from postpilot.core.durations import parse_duration
from postpilot.scheduler import control

router = APIRouter(
    prefix="/api/scheduler", tags=["scheduler"], dependencies=[Depends(require_cron_secret)]
)


class SchedulerUpdate(Strict):
    """Only the fields sent change. A knob sent as null goes back to its default."""

    active: knobs.SchedulerKind | None = Field(None, description="The scheduler workers run.")
    concurrency: Annotated[Count, knobs.CONCURRENCY.bounds] | None = Field(
        None, description=knobs.CONCURRENCY.help
    )
    batch_size: Annotated[Count, knobs.BATCH_SIZE.bounds] | None = Field(
        None, description=knobs.BATCH_SIZE.help
    )
    interval: Annotated[
        Annotated[str, Field(max_length=50)] | Annotated[float, Field(strict=True)] | None,
        Field(description="Longest sleep between passes: seconds, or '30s', '10m', '1h'."),
    ] = None
    reset: bool = Field(False, description="Every knob back to its default (goes alone).")
    actor: Annotated[str, Field(min_length=1, max_length=100)] | None = Field(
        None, description="Who is behind this call, for the audit trail."
    )

    @field_validator("interval")
    @classmethod
    def _interval(cls, value: str | float | None) -> float | None:
        if value is None:
            return None
        seconds = parse_duration(value) if isinstance(value, str) else float(value)
        problem = knobs.INTERVAL.problem(seconds)
        if problem is not None:
            raise ValueError(problem)
        return seconds


class ChangePublic(BaseModel):
    at: datetime
    actor: str
    setting: str
    old_value: str | None = Field(serialization_alias="from")
    new_value: str | None = Field(serialization_alias="to")


class WorkerPublic(BaseModel):
    worker_id: str
    hostname: str
    pid: int
    started_at: datetime
    last_beat_at: datetime
    stale: bool


class Effective(BaseModel):
    concurrency: int
    batch_size: int
    interval_seconds: float


class SchedulerPublic(BaseModel):
    active: str
    concurrency: int | None = Field(description="Stored value; null means the default.")
    batch_size: int | None
    interval_seconds: float | None
    effective: Effective
    updated_at: datetime | None
    updated_by: str | None
    changes: list[ChangePublic] = Field(description="Recent changes, newest first.")
    workers: list[WorkerPublic] = Field(description="Workers whose last heartbeat says running.")
    applied: list[ChangePublic] = Field(
        default_factory=list, description="What this request changed (PUT only)."
    )


def _public(found: control.SchedulerStatus, applied: list[control.ChangeRecord]) -> SchedulerPublic:
    def change(c: control.ChangeRecord) -> ChangePublic:
        return ChangePublic(
            at=c.at, actor=c.actor, setting=c.setting, old_value=c.old_value, new_value=c.new_value
        )

    return SchedulerPublic(
        active=found.active,
        concurrency=found.concurrency,
        batch_size=found.batch_size,
        interval_seconds=found.interval_seconds,
        effective=Effective(
            concurrency=found.effective_concurrency,
            batch_size=found.effective_batch_size,
            interval_seconds=found.effective_interval_seconds,
        ),
        updated_at=found.updated_at,
        updated_by=found.updated_by,
        changes=[change(c) for c in found.changes],
        workers=[WorkerPublic(**w.to_json()) for w in found.workers],
        applied=[change(c) for c in applied],
    )


@router.get("", response_model=SchedulerPublic, response_model_by_alias=True)
async def get_scheduler(runtime: RuntimeDep) -> SchedulerPublic:
    """The active scheduler, its knobs (stored and effective), recent changes, running workers."""
    found = await control.status(runtime.db, runtime.settings, now=runtime.now())
    return _public(found, [])


@router.put("", response_model=SchedulerPublic, response_model_by_alias=True)
async def put_scheduler(
    runtime: RuntimeDep, request: Request, body: SchedulerUpdate
) -> SchedulerPublic:
    """Switch (`active`) and/or tune (`concurrency`, `batch_size`, `interval`, or `reset`).
    Workers follow at their next pass."""
    sent = body.model_fields_set - {"actor", "reset"}
    values: dict[str, Any] = {}
    if body.reset:
        if sent - {"active"}:
            raise ApiError(422, "invalid_request", "reset goes alone: it resets every knob")
        values.update(control.RESET)
    if "active" in sent:
        if body.active is None:
            kinds = " or ".join(repr(kind.value) for kind in knobs.SchedulerKind)
            raise ApiError(422, "invalid_request", f"active: use {kinds}")
        values["active"] = body.active
    for field, name in (
        ("concurrency", knobs.CONCURRENCY.name),
        ("batch_size", knobs.BATCH_SIZE.name),
        ("interval", knobs.INTERVAL.name),
    ):
        if field in sent:
            values[name] = getattr(body, field)
    if not values:
        raise ApiError(
            422,
            "invalid_request",
            "nothing to change: send active, concurrency, batch_size, interval or reset",
        )
    client = request.client.host if request.client else "unknown"
    actor = f"api:{body.actor or 'operator'}@{client}"
    applied = await control.apply(runtime.db, actor=actor, now=runtime.now(), values=values)
    found = await control.status(runtime.db, runtime.settings, now=runtime.now())
    return _public(found, applied)
