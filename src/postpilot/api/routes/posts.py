"""/api/posts: schedule, list, edit, cancel posts and read their activity."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query
from fastapi.responses import JSONResponse

from postpilot.api import moments, threads
from postpilot.api.deps import ActorDep, RuntimeDep, SessionDep, WorkspaceDep
from postpilot.api.errors import ApiError, not_found
from postpilot.api.fields import Moment
from postpilot.api.routes import queues as queue_routes
from postpilot.api.schemas import (
    AccountVariant,
    ActivityPublic,
    CancelResult,
    DeliveryPublic,
    PostCreate,
    PostPage,
    PostPublic,
    PostUpdate,
)
from postpilot.core import media_limits, variants
from postpilot.core.limits import LIMITS, limits_for
from postpilot.core.states import AccountStatus, DeliveryStatus, PostStatus
from postpilot.core.timezones import Dst, as_utc, in_zone
from postpilot.media import links
from postpilot.publishers.addresses import AddressPolicy
from postpilot.publishers.media import MediaError, check_url_shape
from postpilot.publishers.registry import supported_platforms
from postpilot.scheduler.runtime import Runtime
from postpilot.store import accounts, idempotency, posts
from postpilot.store import media as store_media
from postpilot.store.tables import Account, MediaItem

router = APIRouter(prefix="/api/posts", tags=["posts"])

PAST_TOLERANCE = timedelta(minutes=5)

IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        pattern=r"^[\x21-\x7e]+$",
        description="Any unique string (a UUID): retrying with it within 24 hours answers "
        "what the first request did, without creating another post.",
    ),
]


def public(view: posts.PostView) -> PostPublic:
    post = view.post
    return PostPublic(
        id=post.id,
        status=view.status.value,
        text=post.text,
        media_urls=plain_urls(post.media_urls),
        media_ids=library_ids(post.media_urls),
        overrides=dict(post.overrides),
        account_overrides={
            account_id: AccountVariant.model_validate(variant)
            for account_id, variant in (post.account_overrides or {}).items()
        },
        thread=threads.public_thread(post.thread),
        first_comment=post.first_comment,
        scheduled_at=as_utc(post.scheduled_at),
        scheduled_at_local=in_zone(post.scheduled_at, post.timezone),
        timezone=post.timezone,
        targets=[delivery_public(d, a) for d, a in view.deliveries],
        created_at=as_utc(post.created_at),
        updated_at=as_utc(post.updated_at),
        cancelled_at=as_utc(post.cancelled_at) if post.cancelled_at else None,
    )


def delivery_public(delivery: Any, account: Account) -> DeliveryPublic:
    pending = delivery.status == DeliveryStatus.SCHEDULED.value
    return DeliveryPublic(
        id=delivery.id,
        post_id=delivery.post_id,
        account_id=delivery.account_id,
        platform=delivery.platform,
        handle=account.handle,
        status=delivery.status,
        attempts=delivery.attempts,
        next_attempt_at=as_utc(delivery.due_at) if pending else None,
        platform_post_id=delivery.platform_post_id,
        platform_url=delivery.platform_url,
        last_error=delivery.last_error,
        published_at=as_utc(delivery.published_at) if delivery.published_at else None,
    )


def plain_urls(stored: list[str]) -> list[str]:
    return [url for url in stored if store_media.referenced_id(url) is None]


def library_ids(stored: list[str]) -> list[str]:
    return [i for url in stored if (i := store_media.referenced_id(url)) is not None]


async def checked_library(
    session: Any, runtime: Runtime, workspace_id: str, ids: list[str], targets: list[Account]
) -> list[MediaItem]:
    """The library media `ids` name, checked against the targets' platforms: what was checked
    at upload was for the platforms chosen then, and a platform that downloads the image from
    a link under PUBLIC_BASE_URL must be able to reach it."""
    found = await store_media.by_ids(session, workspace_id, ids)
    missing = [i for i in ids if i not in found]
    if missing:
        raise _invalid(
            [f"media_ids: no media {i} in this workspace" for i in missing], "media_not_found"
        )
    items = [found[i] for i in ids]
    platforms = sorted({a.platform for a in targets} & set(media_limits.IMAGE_LIMITS))
    problems = unlinkable(runtime, platforms) if items else []
    for item in items:
        problems += [
            f"media_ids: {item.id}: {problem}"
            for problem in media_limits.problems(
                platforms,
                content_type=item.variant_content_type,
                size=item.variant_size_bytes,
                width=item.variant_width,
                height=item.variant_height,
            )
        ]
    if problems:
        raise _invalid(problems, "content_not_allowed")
    return items


def unlinkable(runtime: Runtime, platforms: list[str]) -> list[str]:
    """Why the platforms among these that download library media from a signed link under
    PUBLIC_BASE_URL (media/links.py) could not: it names a loopback, private or local host.
    The sandbox runs beside us and reaches it."""
    base = runtime.settings.PUBLIC_BASE_URL
    reason = links.unreachable_reason(base)
    if reason is None:
        return []
    return [
        f"media_ids: {platform}: downloads library media from PUBLIC_BASE_URL ({base}), which "
        f"it cannot reach ({reason}); set PUBLIC_BASE_URL to this server's public origin, or "
        "give the image in media_urls"
        for platform in media_limits.fetching_by_url(platforms)
        if platform not in runtime.publish.base_urls
    ]


def _invalid(problems: list[str], code: str = "invalid_request") -> ApiError:
    return ApiError(422, code, "; ".join(problems), [{"message": p} for p in problems])


async def resolve_targets(session: Any, workspace_id: str, ids: list[str]) -> list[Account]:
    found = await accounts.accounts_by_ids(session, workspace_id, ids)
    missing = [i for i in ids if i not in found]
    if missing:
        raise _invalid([f"targets: no account {i} in this workspace" for i in missing])
    inactive = [a for a in found.values() if a.status != AccountStatus.ACTIVE]
    if inactive:
        raise _invalid(
            [f"targets: account {a.handle} on {a.platform} is {a.status}" for a in inactive],
            "account_not_active",
        )
    return [found[i] for i in ids]


def check_content(
    text: str,
    media_urls: list[str],
    overrides: dict[str, str],
    targets: list[Account],
    max_text: dict[str, int],
    addresses: AddressPolicy,
    library_count: int = 0,
) -> None:
    problems = []
    platforms = {a.platform for a in targets}
    for platform in overrides:
        if platform not in supported_platforms():
            problems.append(f"overrides: {platform!r} is not a supported platform")
        elif platform not in platforms:
            problems.append(f"overrides: no target account is on {platform}")
    for url in media_urls:
        try:
            check_url_shape(url, addresses)
        except MediaError as exc:
            problems.append(f"media_urls: {exc}")
    for platform in sorted(platforms):
        if platform in LIMITS:
            limits = limits_for(platform, max_text=max_text)
            problems.extend(
                limits.problems(overrides.get(platform, text), len(media_urls) + library_count)
            )
    if problems:
        raise _invalid(problems, "content_not_allowed")


def post_max_text(runtime: Runtime) -> dict[str, int]:
    return {"facebook": runtime.settings.FACEBOOK_MAX_TEXT}


def _when(value: datetime | None, timezone: str, now: datetime, dst: Dst | None) -> datetime:
    if value is None:
        return now
    moment = moments.scheduled_utc(value, timezone, dst)
    if moment < now - PAST_TOLERANCE:
        raise _invalid(
            [
                f"scheduled_at: {moment.isoformat()} is in the past; give a future time "
                "or omit scheduled_at to publish now"
            ]
        )
    return moment


async def checked(
    session: Any, runtime: Runtime, workspace_id: str, body: PostCreate, now: datetime
) -> tuple[list[Account], datetime]:
    """What creating a post checks before writing (targets, content and each account variant
    within their platforms' limits, library media, the time): its targets and UTC time, or an
    ApiError. The CSV import checks each row with it too."""
    targets = await resolve_targets(session, workspace_id, body.targets)
    check_content(
        body.text,
        body.media_urls,
        body.overrides,
        targets,
        post_max_text(runtime),
        runtime.publish.addresses,
        len(body.media_ids),
    )
    _check_variants(
        body.account_overrides, targets, len(body.media_urls) + len(body.media_ids), runtime
    )
    await checked_library(session, runtime, workspace_id, body.media_ids, targets)
    await _variant_library(session, runtime, workspace_id, body.account_overrides, targets)
    max_text, addresses = post_max_text(runtime), runtime.publish.addresses
    if found := threads.problems(body.thread, body.first_comment, targets, max_text, addresses):
        raise threads.invalid(found)
    for number, part in enumerate(body.thread):
        try:
            await checked_library(
                session, runtime, workspace_id, part.media_ids, threads.taking_threads(targets)
            )
        except ApiError as exc:
            raise threads.named(exc, f"thread[{number}]") from exc
    return targets, _when(body.scheduled_at, body.timezone, now, body.dst)


def _check_variants(
    account_variants: dict[str, AccountVariant],
    targets: list[Account],
    media_count: int,
    runtime: Runtime,
) -> None:
    """Each account variant is for a target and within its platform's limits (a 422 names the
    account)."""
    by_id = {a.id: a for a in targets}
    problems = []
    for account_id, variant in account_variants.items():
        account = by_id.get(account_id)
        if account is None:
            problems.append(f"account_overrides: account {account_id} is not a target")
            continue
        if account.platform not in LIMITS:
            continue
        limits = limits_for(account.platform, max_text=post_max_text(runtime))
        count = media_count if variant.media_ids is None else len(variant.media_ids)
        problems += [
            f"account_overrides.{account_id} ({account.handle} on {account.platform}): {p}"
            for p in limits.problems(variant.text, count)
        ]
    if problems:
        raise _invalid(problems, "content_not_allowed")


async def _variant_library(
    session: Any,
    runtime: Runtime,
    workspace_id: str,
    account_variants: dict[str, AccountVariant],
    targets: list[Account],
) -> None:
    by_id = {a.id: a for a in targets}
    for account_id, variant in account_variants.items():
        if variant.media_ids is None or account_id not in by_id:
            continue
        try:
            await checked_library(
                session, runtime, workspace_id, variant.media_ids, [by_id[account_id]]
            )
        except ApiError as exc:
            raise ApiError(
                exc.status,
                exc.code,
                f"account_overrides.{account_id}: {exc.message}",
                [
                    {"message": f"account_overrides.{account_id}: {d['message']}"}
                    for d in exc.details
                ],
            ) from exc


def stored_variants(account_variants: dict[str, AccountVariant]) -> dict[str, dict[str, Any]]:
    """Account variants as a post keeps them (core/variants.py reads them back)."""
    return {
        account_id: variants.AccountVariant(
            variant.text, None if variant.media_ids is None else tuple(variant.media_ids)
        ).stored()
        for account_id, variant in account_variants.items()
    }


def linked_media(media_ids: list[str], account_variants: dict[str, AccountVariant]) -> list[str]:
    """The library media a post needs kept: its own, then those only its variants use."""
    extra = variants.library_ids(stored_variants(account_variants))
    return media_ids + [i for i in extra if i not in media_ids]


@router.post(
    "",
    status_code=201,
    response_model=PostPublic,
    responses={
        409: {"description": "A request with the same Idempotency-Key is still being answered."}
    },
)
async def create_post(
    body: PostCreate,
    workspace: WorkspaceDep,
    actor: ActorDep,
    session: SessionDep,
    runtime: RuntimeDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> PostPublic | JSONResponse:
    """With an `Idempotency-Key`, a retry of the same request within 24 hours answers what the
    first one did and creates nothing; the same key with another body is refused (422)."""
    now, workspace_id = runtime.now(), workspace.id
    # A retry gets the first answer before validation: its time may be past by now.
    if idempotency_key and (
        replay := await _replay(session, workspace_id, idempotency_key, body, now, reserve=False)
    ):
        return replay
    targets, scheduled_at = await checked(session, runtime, workspace_id, body, now)
    queue = await queue_routes.queue_for(
        session, workspace_id, body.queue_id, body.scheduled_at is not None
    )
    # Reserved last, so no lock is held while validating; a refused request keeps its key free.
    if idempotency_key and (
        replay := await _replay(session, workspace_id, idempotency_key, body, now, reserve=True)
    ):
        return replay
    post = await posts.create_post(
        session,
        workspace_id=workspace_id,
        text_=body.text,
        media_urls=body.media_urls + [store_media.reference(i) for i in body.media_ids],
        overrides=body.overrides,
        scheduled_at=scheduled_at,
        timezone=body.timezone,
        accounts=targets,
        now=now,
        actor=actor,
        account_overrides=stored_variants(body.account_overrides),
    )
    post.thread, post.first_comment = threads.stored_thread(body.thread), body.first_comment
    own_media = list(dict.fromkeys(body.media_ids + threads.media_ids(body.thread)))
    await store_media.link_post(
        session, post.id, linked_media(own_media, body.account_overrides), now
    )
    if queue is not None:
        await queue_routes.enqueue(session, queue, post, now)
    view = await posts.get_post(session, workspace_id, post.id)
    assert view is not None
    answer = public(view)
    if idempotency_key is not None:
        await idempotency.finish(
            session,
            workspace_id=workspace_id,
            key=idempotency_key,
            post_id=post.id,
            status_code=201,
            body=answer.model_dump(mode="json"),
        )
    await session.commit()
    runtime.wakeup.set()
    return answer


async def _replay(
    session: Any, workspace_id: str, key: str, body: PostCreate, now: datetime, *, reserve: bool
) -> JSONResponse | None:
    """The first answer given for this key, or None to go ahead. `reserve` inserts the key (the
    unique constraint decides between concurrent duplicates); otherwise it is only looked up."""
    step = idempotency.begin if reserve else idempotency.find
    try:
        replay = await step(
            session,
            workspace_id=workspace_id,
            key=key,
            request=body.model_dump(mode="json"),
            now=now,
        )
    except idempotency.KeyReused as exc:
        raise ApiError(422, "idempotency_key_reused", str(exc)) from exc
    except idempotency.KeyConflict as exc:
        raise ApiError(409, "idempotency_key_in_use", str(exc)) from exc
    if replay is None:
        return None
    return JSONResponse(
        replay.body, status_code=replay.status_code, headers={"Idempotent-Replayed": "true"}
    )


@router.get("", response_model=PostPage)
async def list_posts(
    workspace: WorkspaceDep,
    session: SessionDep,
    status: PostStatus | None = None,
    account_id: Annotated[str | None, Query(max_length=100)] = None,
    platform: Annotated[str | None, Query(max_length=50)] = None,
    scheduled_from: Moment | None = None,
    scheduled_to: Moment | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> PostPage:
    views, total = await posts.list_posts(
        session,
        workspace.id,
        status=status,
        account_id=account_id,
        platform=platform,
        scheduled_from=as_utc(scheduled_from) if scheduled_from else None,
        scheduled_to=as_utc(scheduled_to) if scheduled_to else None,
        limit=limit,
        offset=offset,
    )
    return PostPage(items=[public(v) for v in views], total=total, limit=limit, offset=offset)


async def view_of(session: Any, workspace_id: str, post_id: str) -> posts.PostView:
    view = await posts.get_post(session, workspace_id, post_id)
    if view is None:
        raise not_found("post", post_id)
    return view


@router.get("/{post_id}", response_model=PostPublic)
async def get_post(post_id: str, workspace: WorkspaceDep, session: SessionDep) -> PostPublic:
    return await threads.with_parts(session, public(await view_of(session, workspace.id, post_id)))


@router.patch(
    "/{post_id}",
    response_model=PostPublic,
    responses={409: {"description": "The post was cancelled, or is already being published."}},
)
async def update_post(
    post_id: str,
    body: PostUpdate,
    workspace: WorkspaceDep,
    actor: ActorDep,
    session: SessionDep,
    runtime: RuntimeDep,
) -> PostPublic:
    view = await view_of(session, workspace.id, post_id)
    if view.post.cancelled_at is not None:
        raise ApiError(409, "post_cancelled", "the post was cancelled: create a new one")
    post, now = view.post, runtime.now()
    fields = body.model_dump(exclude_unset=True, exclude_none=True)
    # A cancelled delivery (its account was deleted) stays as history, not as a target.
    live = [a.id for d, a in view.deliveries if d.status != DeliveryStatus.CANCELLED.value]
    target_ids = fields.pop("targets", live)
    current = set(live)
    targets = await resolve_targets(session, workspace.id, target_ids)
    timezone = fields.get("timezone", post.timezone)
    changes: dict[str, Any] = {
        name: fields[name] for name in ("text", "overrides") if name in fields
    }
    urls = fields.get("media_urls", plain_urls(post.media_urls))
    media_ids = fields.get("media_ids", library_ids(post.media_urls))
    if "media_urls" in fields or "media_ids" in fields:
        changes["media_urls"] = urls + [store_media.reference(i) for i in media_ids]
    if "timezone" in fields:
        changes["timezone"] = timezone
    if "scheduled_at" in fields:
        changes["scheduled_at"] = _when(fields["scheduled_at"], timezone, now, body.dst)
    check_content(
        changes.get("text", post.text),
        urls,
        changes.get("overrides", dict(post.overrides)),
        targets,
        post_max_text(runtime),
        runtime.publish.addresses,
        len(media_ids),
    )
    account_variants = (
        body.account_overrides
        if body.account_overrides is not None
        else {
            account_id: AccountVariant.model_validate(variant)
            for account_id, variant in (post.account_overrides or {}).items()
        }
    )
    if body.account_overrides is not None:
        changes["account_overrides"] = stored_variants(body.account_overrides)
    _check_variants(account_variants, targets, len(urls) + len(media_ids), runtime)
    await checked_library(session, runtime, workspace.id, media_ids, targets)
    await _variant_library(session, runtime, workspace.id, account_variants, targets)
    try:
        await posts.update_post(
            session,
            view,
            changes=changes,
            add_accounts=[a for a in targets if a.id not in current],
            remove_account_ids=current - set(target_ids),
            now=now,
            actor=actor,
        )
    except posts.NotEditable as exc:
        raise ApiError(409, "not_editable", str(exc)) from exc
    # Given a time of its own, a queued post leaves its queue and frees its slot.
    await queue_routes.after_edit(session, post_id, rescheduled="scheduled_at" in changes, now=now)
    if "media_urls" in changes or "account_overrides" in changes:
        await store_media.link_post(
            session, post_id, linked_media(media_ids, account_variants), now
        )
    workspace_id = workspace.id
    await session.commit()
    runtime.wakeup.set()
    session.expire_all()  # re-read the deliveries as the database now has them
    return public(await view_of(session, workspace_id, post_id))


@router.post("/{post_id}/cancel", response_model=CancelResult)
async def cancel_post(
    post_id: str,
    workspace: WorkspaceDep,
    actor: ActorDep,
    session: SessionDep,
    runtime: RuntimeDep,
) -> CancelResult:
    view = await view_of(session, workspace.id, post_id)
    in_flight = await posts.cancel_post(session, view, now=runtime.now(), actor=actor)
    await queue_routes.after_cancel(session, post_id, runtime.now())  # frees its slot
    workspace_id = workspace.id
    await session.commit()
    session.expire_all()
    view = await view_of(session, workspace_id, post_id)
    return CancelResult(post=public(view), still_publishing=in_flight)


@router.get("/{post_id}/activity", response_model=list[ActivityPublic])
async def post_activity(
    post_id: str, workspace: WorkspaceDep, session: SessionDep
) -> list[ActivityPublic]:
    await view_of(session, workspace.id, post_id)
    return [
        ActivityPublic(
            id=a.id,
            at=as_utc(a.at),
            event=a.event,
            detail=a.detail,
            actor=a.actor,
            delivery_id=a.delivery_id,
            pass_id=a.pass_id,
        )
        for a in await posts.post_activity(session, post_id)
    ]
