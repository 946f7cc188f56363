"""The /api/v1 lists that answer differently from their /api aliases: one page envelope,
{"items", "next_cursor"}, with `limit`, `cursor` and filters (see api/pagination.py). Each list
is read in SQL past the last item shown (store/pages.py)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Query
from pydantic import AfterValidator
from sqlalchemy.ext.asyncio import AsyncSession

from postpilot.api import pagination
from postpilot.api.connecting import ServiceDep
from postpilot.api.deps import SessionDep, WorkspaceDep
from postpilot.api.errors import ApiError
from postpilot.api.fields import Moment
from postpilot.api.pagination import INVALID_CURSOR, Cursor, Limit, Page
from postpilot.api.queue_schemas import QueuePublic, RecurrencePublic
from postpilot.api.routes import accounts, connect, keys, platforms, posts, queues, recurrences
from postpilot.api.schemas import (
    AccountPublic,
    ApiKeyPublic,
    ConnectPlatformPublic,
    DeliveryPublic,
    PlatformPublic,
    PostPublic,
    WorkspaceActivity,
)
from postpilot.core.states import AccountStatus, DeliveryStatus, PostStatus
from postpilot.core.timezones import as_utc
from postpilot.publishers import catalog
from postpilot.store import pages
from postpilot.store.tables import ApiKey, Queue, Recurrence

T = TypeVar("T")

router = APIRouter(prefix="/api/v1", responses=INVALID_CURSOR)


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("give the offset too, e.g. 2027-03-28T09:00:00+01:00")
    return as_utc(value)


# A bound of a time range: ISO 8601 with its offset, as a moment is otherwise ambiguous.
Bound = Annotated[Moment, AfterValidator(_aware)]
FilterId = Annotated[str | None, Query(min_length=1, max_length=100)]
Platform = Annotated[str | None, Query(min_length=1, max_length=50)]


def _range(start: datetime | None, end: datetime | None, names: tuple[str, str]) -> pages.TimeRange:
    if start is not None and end is not None and start > end:
        message = f"must not be after {names[1]}"
        raise ApiError(
            422,
            "invalid_request",
            f"{names[0]}: {message}",
            [{"field": f"query.{names[0]}", "message": message}],
        )
    return pages.TimeRange(start, end)


def _known_platform(platform: str | None) -> str | None:
    if platform is not None and platform not in catalog.declarations():
        message = f"not a platform; one of {', '.join(sorted(catalog.declarations()))}"
        raise ApiError(
            422,
            "invalid_request",
            f"platform: {message}",
            [{"field": "query.platform", "message": message}],
        )
    return platform


def _by_moment(kind: str) -> Callable[[Any], str]:
    return lambda row: pagination.encode_moment(kind, row.created_at, row.id)


@router.get("/posts", response_model=Page[PostPublic], tags=["posts"])
async def list_posts(
    workspace: WorkspaceDep,
    session: SessionDep,
    limit: Limit = 50,
    cursor: Cursor = None,
    status: PostStatus | None = None,
    account_id: FilterId = None,
    source: Annotated[str | None, Query(min_length=1, max_length=32)] = None,
    scheduled_from: Bound | None = None,
    scheduled_to: Bound | None = None,
) -> Page[PostPublic]:
    """Oldest first (created_at, id). `scheduled_to` is exclusive."""
    views = await pages.page_posts(
        session,
        workspace.id,
        limit=limit + 1,
        after=pagination.decode_moment("posts", cursor),
        status=status,
        account_id=account_id,
        source=source,
        scheduled=_range(scheduled_from, scheduled_to, ("scheduled_from", "scheduled_to")),
    )
    return pagination.page(
        views,
        limit,
        item=posts.public,
        cursor=lambda v: pagination.encode_moment("posts", v.post.created_at, v.post.id),
    )


@router.get("/posts/{post_id}/activity", response_model=Page[WorkspaceActivity], tags=["posts"])
async def list_post_activity(
    post_id: str,
    workspace: WorkspaceDep,
    session: SessionDep,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[WorkspaceActivity]:
    """The post's entries, newest first."""
    await posts.view_of(session, workspace.id, post_id)  # 404 for another workspace's post
    return await _activity(session, workspace.id, limit, cursor, post_id=post_id)


@router.get("/deliveries", response_model=Page[DeliveryPublic], tags=["deliveries"])
async def list_deliveries(
    workspace: WorkspaceDep,
    session: SessionDep,
    limit: Limit = 50,
    cursor: Cursor = None,
    post_id: FilterId = None,
    account_id: FilterId = None,
    status: DeliveryStatus | None = None,
    scheduled_from: Bound | None = None,
    scheduled_to: Bound | None = None,
) -> Page[DeliveryPublic]:
    """Oldest first (created_at, id). `scheduled_to` is exclusive."""
    rows = await pages.page_deliveries(
        session,
        workspace.id,
        limit=limit + 1,
        after=pagination.decode_moment("deliveries", cursor),
        post_id=post_id,
        account_id=account_id,
        status=status,
        scheduled=_range(scheduled_from, scheduled_to, ("scheduled_from", "scheduled_to")),
    )
    return pagination.page(
        rows,
        limit,
        item=lambda r: posts.delivery_public(*r),
        cursor=lambda r: pagination.encode_moment("deliveries", r[0].created_at, r[0].id),
    )


@router.get("/accounts", response_model=Page[AccountPublic], tags=["accounts"])
async def list_accounts(
    workspace: WorkspaceDep,
    session: SessionDep,
    limit: Limit = 50,
    cursor: Cursor = None,
    platform: Platform = None,
    status: AccountStatus | None = None,
) -> Page[AccountPublic]:
    """Connected accounts, oldest first (created_at, id)."""
    rows = await pages.page_accounts(
        session,
        workspace.id,
        limit=limit + 1,
        after=pagination.decode_moment("accounts", cursor),
        platform=_known_platform(platform),
        status=status,
    )
    return pagination.page(rows, limit, item=accounts.public, cursor=_by_moment("accounts"))


@router.get("/activity", response_model=Page[WorkspaceActivity], tags=["activity"])
async def list_activity(
    workspace: WorkspaceDep,
    session: SessionDep,
    limit: Limit = 50,
    cursor: Cursor = None,
    post_id: FilterId = None,
    account_id: FilterId = None,
    kind: Annotated[str | None, Query(min_length=1, max_length=32)] = None,
    at_from: Bound | None = None,
    at_to: Bound | None = None,
) -> Page[WorkspaceActivity]:
    """Newest first. `account_id` keeps the entries of that account's deliveries; `kind` is an
    entry's `event`; `at_to` is exclusive."""
    return await _activity(
        session,
        workspace.id,
        limit,
        cursor,
        post_id=post_id,
        account_id=account_id,
        kind=kind,
        at=_range(at_from, at_to, ("at_from", "at_to")),
    )


async def _activity(
    session: Any, workspace_id: str, limit: int, cursor: str | None, **filters: Any
) -> Page[WorkspaceActivity]:
    rows = await pages.page_activity(
        session,
        workspace_id,
        limit=limit + 1,
        before=pagination.decode_id("activity", cursor),
        **filters,
    )
    return pagination.page(
        rows,
        limit,
        item=lambda a: WorkspaceActivity(
            id=a.id,
            at=as_utc(a.at),
            event=a.event,
            detail=a.detail,
            actor=a.actor,
            post_id=a.post_id,
            delivery_id=a.delivery_id,
            pass_id=a.pass_id,
        ),
        cursor=lambda a: pagination.encode("activity", (a.id,)),
    )


@router.get("/keys", response_model=Page[ApiKeyPublic], tags=["keys"])
async def list_keys(
    workspace: WorkspaceDep, session: SessionDep, limit: Limit = 50, cursor: Cursor = None
) -> Page[ApiKeyPublic]:
    """Oldest first (created_at, id), revoked keys too."""
    listed = await _oldest_first(session, ApiKey, workspace.id, "keys", limit, cursor)
    return Page[ApiKeyPublic](
        items=[keys.public(k) for k in listed.items], next_cursor=listed.next_cursor
    )


@router.get("/queues", response_model=Page[QueuePublic], tags=["queues"])
async def list_queues(
    workspace: WorkspaceDep, session: SessionDep, limit: Limit = 50, cursor: Cursor = None
) -> Page[QueuePublic]:
    """Oldest first (created_at, id)."""
    listed = await _oldest_first(session, Queue, workspace.id, "queues", limit, cursor)
    return Page[QueuePublic](
        items=[queues.public(q) for q in listed.items], next_cursor=listed.next_cursor
    )


@router.get("/recurrences", response_model=Page[RecurrencePublic], tags=["recurrences"])
async def list_recurrences(
    workspace: WorkspaceDep, session: SessionDep, limit: Limit = 50, cursor: Cursor = None
) -> Page[RecurrencePublic]:
    """Oldest first (created_at, id)."""
    listed = await _oldest_first(session, Recurrence, workspace.id, "recurrences", limit, cursor)
    shown = [await recurrences.public(session, r) for r in listed.items]  # its next occurrences
    return Page[RecurrencePublic](items=shown, next_cursor=listed.next_cursor)


async def _oldest_first(
    session: AsyncSession,
    model: type[pages.Owned],
    workspace_id: str,
    kind: str,
    limit: int,
    cursor: str | None,
) -> Page[pages.Owned]:
    """One page of a workspace's rows of `model`, oldest first (created_at, id)."""
    after = pagination.decode_moment(kind, cursor)
    rows = await pages.page_owned(session, model, workspace_id, limit=limit + 1, after=after)
    return pagination.page(rows, limit, item=lambda r: r, cursor=_by_moment(kind))


def _named(
    kind: str, items: Sequence[T], name: Callable[[T], str], limit: int, cursor: str | None
) -> Page[T]:
    """A fixed list (the platforms), by name."""
    after = None
    if cursor is not None:
        match pagination.decode(kind, cursor):
            case [str(last)]:
                after = last
            case _:
                raise pagination.refused()
    rest = [i for i in sorted(items, key=name) if after is None or name(i) > after]
    return pagination.page(
        rest[: limit + 1],
        limit,
        item=lambda i: i,
        cursor=lambda i: pagination.encode(kind, (name(i),)),
    )


@router.get(
    "/platforms",
    response_model=Page[PlatformPublic],
    tags=["platforms"],
    dependencies=platforms.router.dependencies,
)
async def list_platforms(limit: Limit = 50, cursor: Cursor = None) -> Page[PlatformPublic]:
    """Each supported platform's account fields, by name."""
    listed = [platforms.public(p, d) for p, d in catalog.declarations().items()]
    return _named("platforms", listed, lambda p: p.platform, limit, cursor)


@router.get("/connect", response_model=Page[ConnectPlatformPublic], tags=["connect"])
async def list_connectable(
    _workspace: WorkspaceDep, service: ServiceDep, limit: Limit = 50, cursor: Cursor = None
) -> Page[ConnectPlatformPublic]:
    """Every platform that can be connected, by name."""
    listed = await connect.list_platforms(_workspace, service)
    return _named("connect", listed, lambda p: p.platform, limit, cursor)
