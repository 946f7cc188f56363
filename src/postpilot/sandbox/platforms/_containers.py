"""Two-step publishing through media containers (Instagram, Threads): create a container (Meta
downloads the media by URL), poll its status, then publish it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from postpilot.sandbox.platforms import _graph, _kit, _listing, _replies
from postpilot.sandbox.state import Record, SandboxState


@dataclass(frozen=True)
class Flavour:
    platform: str
    create_path: str  # "media" or "threads"
    publish_path: str  # "media_publish" or "threads_publish"
    status_field: str  # "status_code" or "status"
    text_field: str  # "caption" or "text"
    usage_type: str
    throttle_code: int
    refresh_grant: str  # "ig_refresh_token" or "th_refresh_token"
    media_required: bool
    # Threads: a container may reply to a published post (`reply_to_id`); Instagram: a
    # published post takes comments (`POST /{media-id}/comments` with `message`).
    replies: bool = False
    comments: bool = False


# (subject, object id) -> the object as `GET /{version}/{id}` shows it, or None
Profiles = Callable[[str, str], dict[str, Any] | None]


def container_router(
    state: SandboxState,
    flavour: Flavour,
    *,
    before: Callable[[APIRouter, _graph.Graph], None] | None = None,
    profiles: Profiles | None = None,
) -> APIRouter:
    """The container endpoints; `before` adds the platform's own routes first (they win over
    `/{version}/{id}`), and `profiles` answers that path for ids that are not containers (the
    accounts a login reads back)."""
    api = APIRouter(prefix=f"/{flavour.platform}")
    containers: dict[str, dict[str, Any]] = {}

    def bad_media() -> Response:
        return _graph.error(
            state,
            "Media download has failed. The media URI doesn't meet our requirements.",
            9004,
            2207052,
        )

    def duplicate() -> Response:  # no duplicate detection on these platforms
        return _graph.error(state, "An unknown error occurred", 1, 2207001, transient=True)

    graph = _graph.Graph(
        state, flavour.platform, flavour.usage_type, flavour.throttle_code, bad_media, duplicate
    )
    if before is not None:
        before(api, graph)

    @api.post(f"/{{version}}/{{user_id}}/{flavour.create_path}")
    async def create_container(user_id: str, request: Request) -> Response:
        allowed = await graph.guard(request, "upload")
        if isinstance(allowed, Response):
            return allowed
        _subject, values, headers, _fault = allowed
        text = str(values.get(flavour.text_field) or "")
        image_url = values.get("image_url")
        media = []
        if image_url:
            downloaded = await _kit.download(str(image_url))
            if downloaded is None:
                return bad_media()
            media.append(_kit.media_entry(state.next_id(), *downloaded, url=image_url))
        elif flavour.media_required or values.get("media_type") not in (None, "TEXT"):
            return _graph.error(state, "(#100) The parameter image_url is required", 100)
        if len(text) > state.settings.max_text.get(flavour.platform, 500):
            return _graph.error(state, "The caption is too long", 36004, 2207010)
        reply_to = str(values.get("reply_to_id") or "") if flavour.replies else ""
        if reply_to and _published(reply_to) is None:
            return _graph.error(state, "Invalid parameter: reply_to_id", 100)
        container_id = state.next_id()
        containers[container_id] = {
            "owner": user_id,
            "text": text,
            "media": media,
            "status": "FINISHED",
            "polls_left": state.settings.container_polls_in_progress,
            "reply_to": reply_to,
        }
        return JSONResponse({"id": container_id}, headers=headers)

    @api.get(f"/{{version}}/{{user_id}}/{flavour.create_path}")
    async def posts(user_id: str, request: Request) -> Response:
        """The account's published posts (not its containers)."""
        allowed = await graph.guard(request, "read")
        if isinstance(allowed, Response):
            return allowed
        _subject, values, headers, _fault = allowed
        records = [
            r
            for r in state.records
            if r.platform == flavour.platform
            and r.account == user_id
            and "comment_on" not in r.extra
        ]
        return _listing.page(
            request,
            values,
            records,
            fields={
                "id": lambda r: r.id,
                flavour.text_field: lambda r: r.text,
                "timestamp": _listing.graph_time,
                "permalink": lambda r: f"https://www.{flavour.platform}.com/p/{r.id}/",
            },
            headers=headers,
        )

    @api.get("/{version}/{container_id}")
    async def container_status(container_id: str, request: Request) -> Response:
        allowed = await graph.guard(request, None)
        if isinstance(allowed, Response):
            return allowed
        container = containers.get(container_id)
        profile = profiles(allowed[0], container_id) if container is None and profiles else None
        if profile is not None:
            return JSONResponse(profile, headers=allowed[2])
        if container is None:
            return _graph.error(state, "Unsupported get request.", 100, 33)
        status = container["status"]
        if container["polls_left"] > 0 and status == "FINISHED":
            container["polls_left"] -= 1
            status = "IN_PROGRESS"
        return JSONResponse({flavour.status_field: status, "id": container_id}, headers=allowed[2])

    @api.post(f"/{{version}}/{{user_id}}/{flavour.publish_path}")
    async def publish(user_id: str, request: Request) -> Response:
        asked = containers.get(str((await _kit.body(request)).get("creation_id") or ""))
        # A reply (a thread's later part) takes the faults scripted for step "reply".
        step = "reply" if asked is not None and asked["reply_to"] else "publish"
        allowed = await graph.guard(request, step)
        if isinstance(allowed, Response):
            return allowed
        subject, values, headers, fault = allowed
        container_id = str(values.get("creation_id") or "")
        async with state.lock:
            container = containers.get(container_id)
            if container is None or container["owner"] != user_id:
                return _graph.error(state, "Invalid parameter: creation_id", 100)
            if container["polls_left"] > 0:
                return _graph.error(state, "Media ID is not available", 9007, 2207027)
            if container["status"] == "PUBLISHED":
                return _graph.error(state, "The media has already been published", 100, 2207006)
            media_id = state.next_id()
            container["status"] = "PUBLISHED"
            state.remember(
                Record(
                    platform=flavour.platform,
                    id=media_id,
                    account=user_id,
                    text=container["text"],
                    media=container["media"],
                    idempotency_key=None,
                    received_at=datetime.now(UTC).isoformat(),
                    extra={
                        "container_id": container_id,
                        "token_subject": subject,
                        **({"reply_to_id": container["reply_to"]} if container["reply_to"] else {}),
                    },
                )
            )
        await _kit.hold_after_commit(fault)
        return JSONResponse({"id": media_id}, headers=headers)

    def _published(media_id: str) -> Record | None:
        found = _replies.find(state, flavour.platform, media_id)
        return found if found is not None and "comment_on" not in found.extra else None

    if flavour.comments:

        @api.post("/{version}/{media_id}/comments")
        async def comment(media_id: str, request: Request) -> Response:
            allowed = await graph.guard(request, "comment")
            if isinstance(allowed, Response):
                return allowed
            subject, values, headers, fault = allowed
            message = str(values.get("message") or "")
            if not message.strip():
                return _graph.error(state, "(#100) The parameter message is required", 100)
            async with state.lock:
                if _published(media_id) is None:
                    return _graph.error(state, "Unsupported post request.", 100, 33)
                comment_id = state.next_id()
                state.remember(
                    Record(
                        platform=flavour.platform,
                        id=comment_id,
                        account=subject,
                        text=message,
                        media=[],
                        idempotency_key=None,
                        received_at=datetime.now(UTC).isoformat(),
                        extra={"comment_on": media_id},
                    )
                )
            await _kit.hold_after_commit(fault)
            return JSONResponse({"id": comment_id}, headers=headers)

    @api.get("/refresh_access_token")
    async def refresh(request: Request) -> Response:
        await _kit.pause(state)
        fault = state.take_fault(flavour.platform, "refresh")
        if (answer := await _kit.answer_fault(fault, graph.answers)) is not None:
            return answer
        return graph.refresh(request, flavour.refresh_grant)

    return api
