"""/api/activity: the workspace's activity, newest first: posts, deliveries, accounts and API
keys, each entry naming who acted (an API key, a person at the CLI, or a scheduler pass)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from postpilot.api.deps import SessionDep, WorkspaceDep
from postpilot.api.schemas import WorkspaceActivity
from postpilot.core.timezones import as_utc
from postpilot.store import activity

router = APIRouter(prefix="/api/activity", tags=["activity"])

# Entry ids are BIGINT on PostgreSQL: a larger cursor is a 422, not a database error.
MAX_ID = 2**63 - 1


@router.get("", response_model=list[WorkspaceActivity])
async def list_activity(
    workspace: WorkspaceDep,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    before: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="Only entries older than this id.")
    ] = None,
) -> list[WorkspaceActivity]:
    return [
        WorkspaceActivity(
            id=a.id,
            at=as_utc(a.at),
            event=a.event,
            detail=a.detail,
            actor=a.actor,
            post_id=a.post_id,
            delivery_id=a.delivery_id,
            pass_id=a.pass_id,
        )
        for a in await activity.recent(session, workspace.id, limit=limit, before=before)
    ]
