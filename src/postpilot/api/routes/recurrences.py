"""/api/recurrences: posts that recur by an RFC 5545 RRULE in a time zone. Occurrences become
posts a window ahead (store/recurrence.py), made at once on create and then by each worker
pass; each is a post of its own, cancellable like any other."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from postpilot.api.deps import ActorDep, RuntimeDep, SessionDep, WorkspaceDep
from postpilot.api.errors import ApiError, not_found
from postpilot.api.queue_schemas import (
    OccurrencePublic,
    RecurrenceCreate,
    RecurrencePublic,
    RecurrenceUpdate,
)
from postpilot.api.routes import posts as post_routes
from postpilot.core import recurrence as rules
from postpilot.core.timezones import as_utc
from postpilot.store import media as store_media
from postpilot.store import recurrence
from postpilot.store.tables import Recurrence

router = APIRouter(prefix="/api/recurrences", tags=["recurrences"])

NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such recurrence in this workspace."}
}


async def public(session: Any, row: Recurrence) -> RecurrencePublic:
    return RecurrencePublic(
        id=row.id,
        rrule=row.rrule,
        starts_at_local=row.starts_local,
        timezone=row.timezone,
        text=row.text,
        media_urls=post_routes.plain_urls(row.media_urls),
        media_ids=post_routes.library_ids(row.media_urls),
        overrides=dict(row.overrides),
        targets=list(row.account_ids),
        paused=row.paused,
        occurrences=[
            OccurrencePublic(
                occurrence_at=as_utc(o.occurrence_at),
                post_id=o.post_id,
                late_seconds=o.late_seconds,
            )
            for o in await recurrence.occurrences(session, row.id)
        ],
        created_at=as_utc(row.created_at),
        updated_at=as_utc(row.updated_at),
    )


async def _row(session: Any, workspace_id: str, recurrence_id: str) -> Recurrence:
    row = await recurrence.get_recurrence(session, workspace_id, recurrence_id)
    if row is None:
        raise not_found("recurrence", recurrence_id)
    return row


@router.post("", status_code=201, response_model=RecurrencePublic)
async def create_recurrence(
    body: RecurrenceCreate, workspace: WorkspaceDep, session: SessionDep, runtime: RuntimeDep
) -> RecurrencePublic:
    """A refused rule is a 422 naming the problem (no end, FREQ finer than HOURLY, a part
    dateutil cannot read) and stores nothing."""
    try:
        rule = rules.parse(body.rrule, body.starts_at, body.timezone)
    except rules.InvalidRule as exc:
        raise ApiError(
            422, "invalid_rrule", str(exc), [{"field": "rrule", "message": str(exc)}]
        ) from exc
    # The same checks as a post's: the targets, and the text and media for their platforms.
    targets = await post_routes.resolve_targets(session, workspace.id, body.targets)
    post_routes.check_content(
        body.text,
        body.media_urls,
        body.overrides,
        targets,
        post_routes.post_max_text(runtime),
        runtime.publish.addresses,
        len(body.media_ids),
    )
    await post_routes.checked_library(session, runtime, workspace.id, body.media_ids, targets)
    now = runtime.now()
    row = await recurrence.create_recurrence(
        session,
        workspace_id=workspace.id,
        rule=rule,
        text_=body.text,
        media_urls=body.media_urls + [store_media.reference(i) for i in body.media_ids],
        overrides=body.overrides,
        account_ids=body.targets,
        now=now,
    )
    await store_media.link_recurrence(session, row.id, body.media_ids, now)
    await recurrence.materialise(session, now=now, recurrence_ids=[row.id])
    answer = await public(session, row)
    await session.commit()
    runtime.wakeup.set()
    return answer


@router.get("", response_model=list[RecurrencePublic])
async def list_recurrences(workspace: WorkspaceDep, session: SessionDep) -> list[RecurrencePublic]:
    return [
        await public(session, r) for r in await recurrence.list_recurrences(session, workspace.id)
    ]


@router.get("/{recurrence_id}", response_model=RecurrencePublic, responses=NOT_FOUND)
async def get_recurrence(
    recurrence_id: str, workspace: WorkspaceDep, session: SessionDep
) -> RecurrencePublic:
    return await public(session, await _row(session, workspace.id, recurrence_id))


@router.patch("/{recurrence_id}", response_model=RecurrencePublic, responses=NOT_FOUND)
async def update_recurrence(
    recurrence_id: str,
    body: RecurrenceUpdate,
    workspace: WorkspaceDep,
    actor: ActorDep,
    session: SessionDep,
    runtime: RuntimeDep,
) -> RecurrencePublic:
    row = await _row(session, workspace.id, recurrence_id)
    now = runtime.now()
    if body.paused and not row.paused:
        await recurrence.cancel_pending(session, row, now=now, actor=actor)
    await recurrence.set_paused(session, row, body.paused, now)
    await session.flush()
    await session.refresh(row)
    if not row.paused:
        await recurrence.materialise(session, now=now, recurrence_ids=[row.id])
    answer = await public(session, row)
    await session.commit()
    runtime.wakeup.set()
    return answer


@router.delete("/{recurrence_id}", status_code=204, responses=NOT_FOUND)
async def delete_recurrence(
    recurrence_id: str,
    workspace: WorkspaceDep,
    actor: ActorDep,
    session: SessionDep,
    runtime: RuntimeDep,
) -> Response:
    """The rule goes and its occurrences made ahead that have not started are cancelled;
    published ones stay as they are."""
    row = await _row(session, workspace.id, recurrence_id)
    await recurrence.cancel_pending(session, row, now=runtime.now(), actor=actor)
    await session.delete(row)
    await session.commit()
    return Response(status_code=204)
