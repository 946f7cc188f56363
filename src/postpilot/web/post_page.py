"""A post's page: each target's state, platform link, attempts and reason, and the activity
timeline; retrying a failed delivery and settling an `unknown` one go through
/api/v1/deliveries/{id}/resolve (from the page's script), so the API decides what is allowed."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from postpilot.core import timezones
from postpilot.core.roles import Permission, allows
from postpilot.core.states import DeliveryStatus, PostStatus
from postpilot.store import media as store_media
from postpilot.store import posts
from postpilot.web import auth
from postpilot.web.calendar import viewer_zone
from postpilot.web.deps import Member
from postpilot.web.render import page

router = APIRouter(prefix="/posts", include_in_schema=False)

# While any of these hold, the page refreshes its state by itself (a worker is at it).
UNSETTLED = frozenset({PostStatus.SCHEDULED, PostStatus.PUBLISHING})


@router.get("/{post_id}")
async def post_page(request: Request, signed: Member, post_id: str) -> Response:
    auth.require(signed, Permission.READ)
    runtime = auth.runtime_of(request)
    async with runtime.db.session() as session:
        view = await posts.get_post(session, signed.workspace.id, post_id[:36])
        if view is None:
            raise auth.Refused(404, "not_found", f"post {post_id} does not exist in this workspace")
        activity = await posts.post_activity(session, view.post.id)
        ids = [i for u in view.post.media_urls if (i := store_media.referenced_id(u)) is not None]
        found = await store_media.by_ids(session, signed.workspace.id, ids)
    zone = viewer_zone(request, None, signed.user.timezone)
    status = view.status
    return page(
        request,
        "post.html",
        signed,
        title="Post",
        post=view.post,
        post_status=status.value,
        live=status in UNSETTLED and view.post.cancelled_at is None,
        deliveries=view.deliveries,
        activity=activity,
        media=[(i, found[i].alt_text if i in found else None) for i in ids],
        local=timezones.in_zone(view.post.scheduled_at, zone),
        post_local=timezones.in_zone(view.post.scheduled_at, view.post.timezone),
        zone=zone,
        in_zone=lambda moment: timezones.in_zone(moment, zone),
        can_act=allows(signed.role, Permission.WRITE_POSTS),
        editable=status is PostStatus.SCHEDULED and view.post.cancelled_at is None,
        unknown=DeliveryStatus.UNKNOWN.value,
        failed=DeliveryStatus.FAILED.value,
    )
