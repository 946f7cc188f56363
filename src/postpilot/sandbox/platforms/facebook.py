"""Facebook Pages (Graph API): `POST /{version}/{page-id}/feed` and `/{page-id}/photos` (Meta
fetches `url`), code-190 token errors, BUC usage headers and code 80001, 506 on duplicate text.
Connect: Facebook Login (_graph_login.py) and `GET /{page-id}` with the Page token."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from postpilot.sandbox.platforms import _graph, _graph_login, _kit, _listing, _replies
from postpilot.sandbox.state import Record, SandboxState

PLATFORM = "facebook"


def router(state: SandboxState) -> APIRouter:
    api = APIRouter(prefix=f"/{PLATFORM}")
    last_message: dict[str, str] = {}  # page id -> its latest post's text
    state.on_reset.append(last_message.clear)

    def bad_media() -> Response:
        code = state.settings.facebook_unreachable_media_code
        return _graph.error(state, f"(#{code}) Missing or invalid image file", code)

    def duplicate() -> Response:
        return _graph.error(state, "Duplicate status message", 506)

    graph = _graph.Graph(state, PLATFORM, "pages", 80001, bad_media, duplicate)
    login = _graph_login.MetaLogin(graph)
    login.routes(api)  # first: its /{version}/me... win over the paths below

    async def publish(request: Request, page_id: str, photo: bool) -> Response:
        allowed = await graph.guard(request, "publish")
        if isinstance(allowed, Response):
            return allowed
        subject, values, headers, fault = allowed
        message = str(values.get("message") or values.get("caption") or "")
        media = []
        if photo:
            downloaded = await _kit.download(str(values.get("url") or ""))
            if downloaded is None:
                return bad_media()
            media.append(_kit.media_entry(state.next_id(), *downloaded, url=values.get("url")))
        elif not message.strip() and not values.get("link"):
            return _graph.error(state, "(#100) Missing message or attachment", 100)
        if len(message) > state.settings.max_text.get(PLATFORM, 63_206):
            return _graph.error(state, "(#100) The message is too long", 100)
        async with state.lock:
            if message and last_message.get(page_id) == message:
                return duplicate()
            post_id = f"{page_id}_{state.next_id()}"
            last_message[page_id] = message
            state.remember(
                Record(
                    platform=PLATFORM,
                    id=post_id,
                    account=page_id,
                    text=message,
                    media=media,
                    idempotency_key=None,
                    received_at=datetime.now(UTC).isoformat(),
                    extra={"token_subject": subject},
                )
            )
        await _kit.hold_after_commit(fault)
        body = {"id": media[0]["id"], "post_id": post_id} if photo else {"id": post_id}
        return JSONResponse(body, headers=headers)

    @api.get("/{version}/{page_id}/published_posts")
    async def published_posts(page_id: str, request: Request) -> Response:
        allowed = await graph.guard(request, "read")
        if isinstance(allowed, Response):
            return allowed
        _subject, values, headers, _fault = allowed
        records = [
            r
            for r in state.records
            if r.platform == PLATFORM and r.account == page_id and "comment_on" not in r.extra
        ]
        return _listing.page(
            request,
            values,
            records,
            fields={
                "id": lambda r: r.id,
                "message": lambda r: r.text,
                "created_time": _listing.graph_time,
                "permalink_url": lambda r: f"https://www.facebook.com/{r.id}",
            },
            headers=headers,
        )

    @api.get("/{version}/{page_id}")
    async def page(page_id: str, request: Request) -> Response:
        """A Page read with its Page token (or a token of a user who manages it)."""
        found = await login.caller(request)
        if isinstance(found, Response):
            return found
        subject, issued = found
        page = login.page(subject, page_id)
        if page is None or (issued is not None and issued.page_id not in (None, page_id)):
            return _graph.error(
                state,
                f"Unsupported get request. Object with ID '{page_id}' does not exist, cannot be "
                "loaded due to missing permissions, or does not support this operation.",
                100,
                33,
            )
        return JSONResponse({"id": page_id, "name": page["name"], "tasks": page["tasks"]})

    @api.post("/{version}/{page_id}/feed")
    async def feed(page_id: str, request: Request) -> Response:
        return await publish(request, page_id, photo=False)

    @api.post("/{version}/{page_id}/photos")
    async def photos(page_id: str, request: Request) -> Response:
        return await publish(request, page_id, photo=True)

    @api.post("/{version}/{post_id}/comments")
    async def comment(post_id: str, request: Request) -> Response:
        """A comment on a Page post, as the Page: `message`; answers `{"id"}`."""
        allowed = await graph.guard(request, "comment")
        if isinstance(allowed, Response):
            return allowed
        subject, values, headers, fault = allowed
        message = str(values.get("message") or "")
        if not message.strip():
            return _graph.error(state, "(#100) Missing message or attachment", 100)
        async with state.lock:
            post = _replies.find(state, PLATFORM, post_id)
            if post is None or "comment_on" in post.extra:
                return _graph.error(
                    state,
                    f"Unsupported post request. Object with ID '{post_id}' does not exist",
                    100,
                    33,
                )
            comment_id = f"{post_id.rsplit('_', 1)[-1]}_{state.next_id()}"
            state.remember(
                Record(
                    platform=PLATFORM,
                    id=comment_id,
                    account=post.account,
                    text=message,
                    media=[],
                    idempotency_key=None,
                    received_at=datetime.now(UTC).isoformat(),
                    extra={"comment_on": post_id, "token_subject": subject},
                )
            )
        await _kit.hold_after_commit(fault)
        return JSONResponse({"id": comment_id}, headers=headers)

    return api
