"""The composer: write a post (one text, per-platform variants, media with alt text), see it
counted and previewed per platform, and schedule, publish or edit it. The page's script sends
the post to /api/v1/posts and /api/v1/media, so the API's checks are the only ones; the live
counters come from `counts` here, which uses core/limits.py, the definition the API checks
against."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from postpilot.core import limits, timezones
from postpilot.core.roles import Permission
from postpilot.core.states import AccountStatus, PostStatus
from postpilot.store import accounts, posts
from postpilot.store import media as store_media
from postpilot.store import queues as store_queues
from postpilot.store.web_sessions import SignedIn
from postpilot.web import auth
from postpilot.web.calendar import all_zones, viewer_zone
from postpilot.web.deps import Member
from postpilot.web.render import page

router = APIRouter(prefix="/compose", include_in_schema=False)

MAX_TEXT = 100_000  # far above any platform's limit: the count still says it is too long
Draft = Annotated[str, Field(max_length=MAX_TEXT)]


class AccountText(BaseModel):
    model_config = ConfigDict(extra="forbid")

    platform: Annotated[str, Field(max_length=50)]
    text: Draft


class CountRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: Draft = ""
    overrides: Annotated[
        dict[str, Annotated[str, Field(max_length=MAX_TEXT)]], Field(max_length=20)
    ] = Field(default_factory=dict)
    platforms: Annotated[list[str], Field(max_length=20)] = Field(default_factory=list)
    media_count: Annotated[int, Field(ge=0, le=10)] = 0
    # Per-account variants: account id -> its platform and text.
    accounts: Annotated[dict[str, AccountText], Field(max_length=100)] = Field(default_factory=dict)


def count_for(
    platform: str, text: str, media_count: int, max_text: dict[str, int]
) -> dict[str, Any]:
    """One platform's counter: its own way of counting, its limit for this post, what is wrong."""
    rules = limits.limits_for(platform, max_text=max_text)
    limit = rules.max_caption if media_count and rules.max_caption is not None else rules.max_text
    used = rules.counter(text)
    return {
        "platform": platform,
        "count": used,
        "limit": limit,
        "unit": rules.unit,
        "remaining": limit - used,
        "problems": rules.problems(text, media_count),
    }


@router.post("/counts")
async def counts(request: Request, signed: Member, body: CountRequest) -> JSONResponse:
    auth.require(signed, Permission.WRITE_POSTS)
    max_text = {"facebook": auth.runtime_of(request).settings.FACEBOOK_MAX_TEXT}
    found = [
        count_for(p, body.overrides.get(p) or body.text, body.media_count, max_text)
        for p in dict.fromkeys(body.platforms)
        if p in limits.LIMITS
    ]
    found += [
        {**count_for(v.platform, v.text, body.media_count, max_text), "account_id": account_id}
        for account_id, v in body.accounts.items()
        if v.platform in limits.LIMITS
    ]
    return JSONResponse({"counts": found}, headers={"Cache-Control": "no-store"})


async def _composer(request: Request, signed: SignedIn, post_id: str | None) -> Response:
    auth.require(signed, Permission.WRITE_POSTS)
    runtime = auth.runtime_of(request)
    zone = viewer_zone(request, None, signed.user.timezone)
    async with runtime.db.session() as session:
        known = await accounts.list_accounts(session, signed.workspace.id)
        queues = await store_queues.list_queues(session, signed.workspace.id)
        view = await posts.get_post(session, signed.workspace.id, post_id) if post_id else None
    if post_id and view is None:
        raise auth.Refused(404, "not_found", f"post {post_id} does not exist in this workspace")
    post: dict[str, Any] | None = None
    if view is not None:
        live = [a.id for d, a in view.deliveries if d.status != "cancelled"]
        local = timezones.in_zone(view.post.scheduled_at, view.post.timezone)
        post = {
            "id": view.post.id,
            "text": view.post.text,
            "overrides": dict(view.post.overrides),
            "account_overrides": dict(view.post.account_overrides or {}),
            "targets": live,
            "media_ids": [
                i for u in view.post.media_urls if (i := store_media.referenced_id(u)) is not None
            ],
            "local": local.strftime("%Y-%m-%dT%H:%M"),
            "timezone": view.post.timezone,
            "editable": view.status is PostStatus.SCHEDULED and view.post.cancelled_at is None,
            "status": view.status.value,
        }
        zone = view.post.timezone
    platforms = sorted({a.platform for a in known})
    return page(
        request,
        "composer.html",
        signed,
        title="Edit post" if post else "Compose",
        accounts=known,
        active=AccountStatus.ACTIVE.value,
        platforms=platforms,
        limits={p: limits.LIMITS[p] for p in platforms if p in limits.LIMITS},
        zones=sorted(all_zones() | {zone}),
        zone=zone,
        post=post,
        queues=queues,
    )


@router.get("")
async def compose(request: Request, signed: Member) -> Response:
    return await _composer(request, signed, None)


@router.get("/{post_id}")
async def edit(request: Request, signed: Member, post_id: str) -> Response:
    return await _composer(request, signed, post_id[:36])
