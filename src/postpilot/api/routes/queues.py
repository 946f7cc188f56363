"""/api/queues: weekly posting slots per account or group of accounts, the posts in each queue
in order (reorder, shuffle, add, remove), pause and resume. The rule that maps posts to slots
is in store/queues.py."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Response

from postpilot.api.deps import RuntimeDep, SessionDep, WorkspaceDep
from postpilot.api.errors import ApiError, not_found
from postpilot.api.queue_schemas import (
    QueueAdd,
    QueueCreate,
    QueuedPostPublic,
    QueueOrder,
    QueuePublic,
    QueueUpdate,
    SlotBody,
)
from postpilot.core import queue_slots
from postpilot.core.timezones import as_utc, in_zone
from postpilot.store import accounts, posts, queues
from postpilot.store.tables import Post, Queue

router = APIRouter(prefix="/api/queues", tags=["queues"])

NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such queue (or post) in this workspace."}
}
REFUSED: dict[int | str, dict[str, Any]] = {
    **NOT_FOUND,
    409: {"description": "The queue cannot take this post or order (the message says why)."},
}


def public(queue: Queue) -> QueuePublic:
    return QueuePublic(
        id=queue.id,
        name=queue.name,
        timezone=queue.timezone,
        slots=[SlotBody.model_validate(s) for s in queue.slots],
        accounts=list(queue.account_ids),
        paused=queue.paused,
        created_at=as_utc(queue.created_at),
        updated_at=as_utc(queue.updated_at),
    )


def _slots(body: list[SlotBody]) -> list[queue_slots.Slot]:
    try:
        return queue_slots.parse_slots([s.model_dump() for s in body])
    except queue_slots.InvalidSlots as exc:
        raise ApiError(422, "invalid_request", str(exc), [{"message": str(exc)}]) from exc


async def _accounts(session: Any, workspace_id: str, ids: list[str]) -> list[str]:
    found = await accounts.accounts_by_ids(session, workspace_id, ids)
    missing = [i for i in ids if i not in found]
    if missing:
        problems = [f"accounts: no account {i} in this workspace" for i in missing]
        raise ApiError(
            422, "invalid_request", "; ".join(problems), [{"message": p} for p in problems]
        )
    return ids


async def _queue(session: Any, workspace_id: str, queue_id: str) -> Queue:
    queue = await queues.get_queue(session, workspace_id, queue_id)
    if queue is None:
        raise not_found("queue", queue_id)
    return queue


async def _commit(session: Any, runtime: RuntimeDep) -> None:
    await session.commit()
    runtime.wakeup.set()


@router.post("", status_code=201, response_model=QueuePublic)
async def create_queue(
    body: QueueCreate, workspace: WorkspaceDep, session: SessionDep, runtime: RuntimeDep
) -> QueuePublic:
    queue = await queues.create_queue(
        session,
        workspace_id=workspace.id,
        name=body.name,
        timezone=body.timezone,
        slots=_slots(body.slots),
        account_ids=await _accounts(session, workspace.id, body.accounts),
        paused=body.paused,
        now=runtime.now(),
    )
    answer = public(queue)
    await _commit(session, runtime)
    return answer


@router.get("", response_model=list[QueuePublic])
async def list_queues(workspace: WorkspaceDep, session: SessionDep) -> list[QueuePublic]:
    return [public(q) for q in await queues.list_queues(session, workspace.id)]


@router.get("/{queue_id}", response_model=QueuePublic, responses=NOT_FOUND)
async def get_queue(queue_id: str, workspace: WorkspaceDep, session: SessionDep) -> QueuePublic:
    return public(await _queue(session, workspace.id, queue_id))


@router.patch("/{queue_id}", response_model=QueuePublic, responses=NOT_FOUND)
async def update_queue(
    queue_id: str,
    body: QueueUpdate,
    workspace: WorkspaceDep,
    session: SessionDep,
    runtime: RuntimeDep,
) -> QueuePublic:
    """Editing the slots, zone or pause re-times the waiting posts in the same transaction."""
    queue = await _queue(session, workspace.id, queue_id)
    fields = body.model_dump(exclude_unset=True, exclude_none=True)
    changes: dict[str, Any] = {k: fields[k] for k in ("name", "timezone", "paused") if k in fields}
    if body.slots is not None:
        changes["slots"] = [s.describe() for s in _slots(body.slots)]
    if body.accounts is not None:
        changes["account_ids"] = await _accounts(session, workspace.id, body.accounts)
    await queues.update_queue(session, queue, changes=changes, now=runtime.now())
    answer = public(queue)
    await _commit(session, runtime)
    return answer


@router.post("/{queue_id}/pause", response_model=QueuePublic, responses=NOT_FOUND)
async def pause_queue(
    queue_id: str, workspace: WorkspaceDep, session: SessionDep, runtime: RuntimeDep
) -> QueuePublic:
    """Hold the waiting posts: none is published until the queue is resumed."""
    return await _set_paused(queue_id, True, workspace.id, session, runtime)


@router.post("/{queue_id}/resume", response_model=QueuePublic, responses=NOT_FOUND)
async def resume_queue(
    queue_id: str, workspace: WorkspaceDep, session: SessionDep, runtime: RuntimeDep
) -> QueuePublic:
    """The waiting posts take the slots after now, in order."""
    return await _set_paused(queue_id, False, workspace.id, session, runtime)


async def _set_paused(
    queue_id: str, paused: bool, workspace_id: str, session: Any, runtime: RuntimeDep
) -> QueuePublic:
    queue = await _queue(session, workspace_id, queue_id)
    await queues.update_queue(session, queue, changes={"paused": paused}, now=runtime.now())
    answer = public(queue)
    await _commit(session, runtime)
    return answer


@router.delete("/{queue_id}", status_code=204, responses=NOT_FOUND)
async def delete_queue(
    queue_id: str, workspace: WorkspaceDep, session: SessionDep, runtime: RuntimeDep
) -> Response:
    """The queue goes; its posts stay scheduled at their current times (a paused queue's
    posts: resume it first, or they stay held)."""
    queue = await _queue(session, workspace.id, queue_id)
    await queues.delete_queue(session, queue, now=runtime.now())
    await _commit(session, runtime)
    return Response(status_code=204)


async def _posts(session: Any, queue: Queue, now: datetime) -> list[QueuedPostPublic]:
    return [
        QueuedPostPublic(
            post_id=v.post.id,
            position=v.entry.position,
            waiting=v.waiting,
            scheduled_at=as_utc(v.post.scheduled_at),
            scheduled_at_local=in_zone(v.post.scheduled_at, queue.timezone),
            text=v.post.text,
            evergreen_gap_hours=(
                v.entry.evergreen_gap_seconds // 3600 if v.entry.evergreen_gap_seconds else None
            ),
        )
        for v in await queues.entries(session, queue.id, now=now)
    ]


@router.get("/{queue_id}/posts", response_model=list[QueuedPostPublic], responses=NOT_FOUND)
async def queue_posts(
    queue_id: str, workspace: WorkspaceDep, session: SessionDep, runtime: RuntimeDep
) -> list[QueuedPostPublic]:
    """The queue's posts in order, waiting ones with the slot each has."""
    return await _posts(session, await _queue(session, workspace.id, queue_id), runtime.now())


@router.put("/{queue_id}/posts", response_model=list[QueuedPostPublic], responses=REFUSED)
async def reorder_queue(
    queue_id: str,
    body: QueueOrder,
    workspace: WorkspaceDep,
    session: SessionDep,
    runtime: RuntimeDep,
) -> list[QueuedPostPublic]:
    queue = await _queue(session, workspace.id, queue_id)
    try:
        await queues.reorder(session, queue, body.post_ids, now=runtime.now())
    except queues.QueueRefusal as exc:
        raise ApiError(409, "queue_order_refused", str(exc)) from exc
    return await _finish(session, runtime, workspace.id, queue_id)


@router.post("/{queue_id}/shuffle", response_model=list[QueuedPostPublic], responses=NOT_FOUND)
async def shuffle_queue(
    queue_id: str, workspace: WorkspaceDep, session: SessionDep, runtime: RuntimeDep
) -> list[QueuedPostPublic]:
    queue = await _queue(session, workspace.id, queue_id)
    await queues.shuffle(session, queue, now=runtime.now(), rng=random.SystemRandom())
    return await _finish(session, runtime, workspace.id, queue_id)


@router.post("/{queue_id}/add", response_model=list[QueuedPostPublic], responses=REFUSED)
async def add_to_queue(
    queue_id: str,
    body: QueueAdd,
    workspace: WorkspaceDep,
    session: SessionDep,
    runtime: RuntimeDep,
) -> list[QueuedPostPublic]:
    """An existing post that has not started goes to the end of the queue and takes the
    next free slot; with `evergreen_gap_hours` it comes back after each publish."""
    queue = await _queue(session, workspace.id, queue_id)
    view = await posts.get_post(session, workspace.id, body.post_id)
    if view is None:
        raise not_found("post", body.post_id)
    gap = timedelta(hours=body.evergreen_gap_hours) if body.evergreen_gap_hours else None
    try:
        await queues.add_post(
            session, queue, view.post, now=runtime.now(), evergreen_gap=gap, variants=body.variants
        )
    except queues.QueueRefusal as exc:
        raise ApiError(409, "queue_refused", str(exc)) from exc
    return await _finish(session, runtime, workspace.id, queue_id)


@router.delete(
    "/{queue_id}/posts/{post_id}", response_model=list[QueuedPostPublic], responses=NOT_FOUND
)
async def remove_from_queue(
    queue_id: str,
    post_id: str,
    workspace: WorkspaceDep,
    session: SessionDep,
    runtime: RuntimeDep,
) -> list[QueuedPostPublic]:
    """The post leaves the queue, keeping its current time; the later posts move up."""
    await _queue(session, workspace.id, queue_id)
    entry = await queues.entry_of(session, post_id)
    if entry is None or entry.queue_id != queue_id:
        raise not_found("post", post_id)
    await queues.remove_post(session, post_id, now=runtime.now())
    return await _finish(session, runtime, workspace.id, queue_id)


async def _finish(
    session: Any, runtime: RuntimeDep, workspace_id: str, queue_id: str
) -> list[QueuedPostPublic]:
    await _commit(session, runtime)
    session.expire_all()
    return await _posts(session, await _queue(session, workspace_id, queue_id), runtime.now())


# What /api/posts calls: "add to queue" on create, and an edit or cancel freeing a slot.


async def queue_for(
    session: Any, workspace_id: str, queue_id: str | None, timed: bool
) -> Queue | None:
    """The queue a new post goes to (None: not queued); a 422 when it cannot."""
    if queue_id is None:
        return None
    if timed:
        message = "scheduled_at: leave it out when queue_id is given (the queue picks the time)"
        raise ApiError(422, "invalid_request", message, [{"message": message}])
    queue = await queues.get_queue(session, workspace_id, queue_id)
    if queue is None:
        message = f"queue_id: no queue {queue_id} in this workspace"
        raise ApiError(422, "invalid_request", message, [{"message": message}])
    return queue


async def enqueue(session: Any, queue: Queue, post: Post, now: datetime) -> None:
    try:
        await queues.add_post(session, queue, post, now=now)
    except queues.QueueRefusal as exc:
        raise ApiError(422, "queue_refused", f"queue_id: {exc}", [{"message": str(exc)}]) from exc


async def after_edit(session: Any, post_id: str, *, rescheduled: bool, now: datetime) -> None:
    await queues.after_edit(session, post_id, rescheduled=rescheduled, now=now)


async def after_cancel(session: Any, post_id: str, now: datetime) -> None:
    await queues.remove_post(session, post_id, now=now)
