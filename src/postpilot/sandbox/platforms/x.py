"""X API v2: `POST /2/tweets`, `POST /2/media/upload`, `POST /2/oauth2/token`; x-rate-limit-*
headers (epoch seconds), 401 problem+json, 403 on duplicate text.

Connect: `GET /i/oauth2/authorize` (the shared consent step; PKCE required), the code grant at
`/2/oauth2/token` (Basic auth or `client_id`; a refresh token only with `offline.access`),
`GET /2/users/me`, `POST /2/oauth2/revoke`."""

from __future__ import annotations

import base64
import hashlib
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote_plus

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from postpilot.sandbox.platforms import _kit, _oauth, _replies
from postpilot.sandbox.state import Fault, Record, SandboxState

PLATFORM = "x"
MEDIA_TTL_SECONDS = 86_400
DUPLICATE = {
    "detail": "You are not allowed to create a Tweet with duplicate content.",
    "type": "about:blank",
    "title": "Forbidden",
    "status": 403,
}
# X's answer to a reply whose parent it does not show (code 385; seen right after the parent
# was created too, so clients retry it).
REPLY_NOT_FOUND = {
    "errors": [
        {
            "code": 385,
            "message": "You attempted to reply to a Tweet that is deleted or not visible to you.",
        }
    ],
    "title": "Forbidden",
    "detail": "You attempted to reply to a Tweet that is deleted or not visible to you.",
    "type": "about:blank",
    "status": 403,
}
UNAUTHORIZED = {
    "title": "Unauthorized",
    "type": "about:blank",
    "status": 401,
    "detail": "Unauthorized",
}
BAD_MEDIA = {
    "errors": [{"parameters": {"media.media_ids": []}, "message": "Your media IDs are invalid."}],
    "title": "Invalid Request",
    "detail": "One or more parameters to your request was invalid.",
    "type": "https://api.twitter.com/2/problems/invalid-request",
}


def router(state: SandboxState) -> APIRouter:
    api = APIRouter(prefix=f"/{PLATFORM}")
    recent: dict[tuple[str, str], float] = {}  # (subject, text) -> when posted
    state.on_reset.append(recent.clear)

    def problem(
        body: dict[str, Any], status: int, headers: dict[str, str] | None = None
    ) -> Response:
        return JSONResponse(
            body, status_code=status, headers=headers, media_type="application/problem+json"
        )

    def rate_limited(reset: float, limit: int) -> Response:
        headers = {
            "x-rate-limit-limit": str(limit),
            "x-rate-limit-remaining": "0",
            "x-rate-limit-reset": str(int(reset)),
        }
        if state.settings.x_rate_limit_body == "problem":
            body = {
                "title": "Too Many Requests",
                "detail": "Too Many Requests",
                "type": "about:blank",
                "status": 429,
            }
            return problem(body, 429, headers)
        return JSONResponse(
            {"errors": [{"code": 88, "message": "Rate limit exceeded"}]}, 429, headers=headers
        )

    answers = _kit.Answers(
        rate_limited=lambda f: rate_limited(time.time() + f.retry_after_seconds, 100),
        expired=lambda: problem(UNAUTHORIZED, 401),
        bad_media=lambda: problem(BAD_MEDIA, 400),
        duplicate=lambda: problem(DUPLICATE, 403),
        error=lambda status: problem(
            {
                "title": "Service Unavailable" if status == 503 else "Internal Error",
                "status": status,
            },
            status,
        ),
    )

    async def guard(
        request: Request, step: str
    ) -> tuple[str, dict[str, str], Fault | None] | Response:
        await _kit.pause(state)
        token = _kit.bearer(request)
        if state.check_token(PLATFORM, token) != "ok":
            return problem(UNAUTHORIZED, 401)
        assert token is not None
        subject = state.subject_of(token)
        limit, remaining, reset, over = state.hit_rate_limit(PLATFORM, subject)
        _, app_remaining, app_reset, _ = state.hit_rate_limit(PLATFORM, "app")
        headers = {
            "x-rate-limit-limit": str(limit),
            "x-rate-limit-remaining": str(remaining),
            "x-rate-limit-reset": str(int(reset)),
            "x-app-limit-24hour-limit": str(limit),
            "x-app-limit-24hour-remaining": str(app_remaining),
            "x-app-limit-24hour-reset": str(int(app_reset)),
        }
        if over:
            return rate_limited(reset, limit)
        fault = state.take_fault(PLATFORM, step)
        if (answer := await _kit.answer_fault(fault, answers)) is not None:
            return answer
        return subject, headers, fault

    @api.post("/2/media/upload")
    async def upload(request: Request) -> Response:
        allowed = await guard(request, "upload")
        if isinstance(allowed, Response):
            return allowed
        _subject, headers, _fault = allowed
        form = await request.form()
        upload = await _kit.upload_of(form.get("media"))
        if upload is None or not upload[1].startswith("image/") or not upload[0]:
            return problem(
                {
                    "errors": [{"message": "InvalidMedia: the file is not a supported image"}],
                    "title": "Invalid Request",
                    "type": "about:blank",
                    "status": 400,
                },
                400,
            )
        media_id = state.next_id()
        state.media[f"x:{media_id}"] = _kit.media_entry(
            media_id, *upload, expires=time.time() + MEDIA_TTL_SECONDS
        )
        data = {
            "id": media_id,
            "media_key": f"3_{media_id}",
            "size": len(upload[0]),
            "expires_after_secs": MEDIA_TTL_SECONDS,
        }
        return JSONResponse({"data": data}, headers=headers)

    @api.post("/2/tweets")
    async def create_tweet(request: Request) -> Response:
        body = await _kit.body(request)  # first: a reply takes the faults of step "reply"
        reply = body.get("reply") if isinstance(body.get("reply"), dict) else None
        reply_to = str(reply.get("in_reply_to_tweet_id") or "") if reply else ""
        allowed = await guard(request, "reply" if reply_to else "publish")
        if isinstance(allowed, Response):
            return allowed
        subject, headers, fault = allowed
        if reply_to and _replies.find(state, PLATFORM, reply_to) is None:
            # What X answers for a reply to a post that does not exist (or was deleted).
            return problem(REPLY_NOT_FOUND, 403, headers)
        text = str(body.get("text") or "")
        media_ids = [str(m) for m in (body.get("media") or {}).get("media_ids") or []]
        media = [state.media.get(f"x:{m}") for m in media_ids]
        if any(m is None or m["expires"] < time.time() for m in media):
            return problem(BAD_MEDIA, 400, headers)
        if not text.strip() and not media:
            return problem(
                {"title": "Invalid Request", "detail": "text or media is required", "status": 400},
                400,
                headers,
            )
        async with state.lock:
            posted = recent.get((subject, text))
            if text and posted and time.time() - posted < state.settings.x_duplicate_window_seconds:
                return problem(DUPLICATE, 403, headers)
            tweet_id = state.next_id()
            recent[(subject, text)] = time.time()
            state.remember(
                Record(
                    platform=PLATFORM,
                    id=tweet_id,
                    account=subject,
                    text=text,
                    media=[m for m in media if m],
                    idempotency_key=None,
                    received_at=datetime.now(UTC).isoformat(),
                    extra={"in_reply_to_tweet_id": reply_to} if reply_to else {},
                )
            )
        await _kit.hold_after_commit(fault)
        data = {"id": tweet_id, "text": text, "edit_history_tweet_ids": [tweet_id]}
        return JSONResponse({"data": data}, status_code=201, headers=headers)

    @api.get("/i/oauth2/authorize")
    async def authorize(request: Request) -> Response:
        """The consent page; X's OAuth 2.0 flow requires PKCE."""
        if not request.query_params.get("code_challenge"):
            return HTMLResponse("<h1>Invalid request</h1><p>code_challenge is required.</p>", 400)
        return _oauth.server(request).authorize(request, PLATFORM)

    @api.post("/2/oauth2/token")
    async def token(request: Request) -> Response:
        await _kit.pause(state)
        body = await _kit.body(request)
        fault = state.take_fault(PLATFORM, "refresh")
        if (answer := await _kit.answer_fault(fault, answers)) is not None:
            return answer
        client = _client_of(request, body)
        if client is None:
            return JSONResponse(
                {
                    "error": "invalid_request",
                    "error_description": "Missing required parameter [client_id].",
                },
                400,
            )
        client_id, secret = client
        oauth = _oauth.server(request)
        if not oauth.client_secret_ok(client_id, secret):
            return JSONResponse(
                {
                    "error": "unauthorized_client",
                    "error_description": "Missing valid authorization header",
                },
                401,
            )
        if body.get("grant_type") == "authorization_code":
            return redeem(oauth, body, client_id)
        if body.get("grant_type") != "refresh_token":
            return invalid("Value passed for the grant_type was invalid.")
        issued = state.refresh_grant(
            PLATFORM, str(body.get("refresh_token") or ""), rotate=state.settings.x_refresh_rotates
        )
        if issued is None:
            return invalid("Value passed for the token was invalid.")
        return granted(issued, "tweet.read tweet.write users.read media.write offline.access")

    def redeem(oauth: _oauth.AuthorizationServer, body: dict[str, Any], client_id: str) -> Response:
        outcome = oauth.redeem(
            PLATFORM,
            str(body.get("code") or ""),
            client_id=client_id,
            redirect_uri=str(body.get("redirect_uri") or ""),
            code_verifier=str(body.get("code_verifier") or "") or None,
        )
        if isinstance(outcome, _oauth.Refused):
            what = "code verifier" if outcome.reason == "pkce" else "authorization code"
            return invalid(f"Value passed for the {what} was invalid.")
        declined = state.settings.connect_declined_scopes.get(PLATFORM, [])
        scopes = [s for s in outcome.code.scope.split() if s not in declined]
        issued = state.issue_tokens(
            PLATFORM, outcome.code.subject, refresh="offline.access" in scopes
        )
        return granted(issued, " ".join(scopes))

    def granted(issued: dict[str, Any], scope: str) -> Response:
        reply = {
            "token_type": "bearer",
            "expires_in": issued["expires_in"],
            "access_token": issued["access_token"],
            "scope": scope,
        }
        if issued.get("refresh_token"):
            reply["refresh_token"] = issued["refresh_token"]
        return JSONResponse(reply)

    @api.get("/2/users/me")
    async def users_me(request: Request) -> Response:
        token = _kit.bearer(request)
        if state.check_token(PLATFORM, token) != "ok" or token is None:
            return problem(UNAUTHORIZED, 401)
        subject = state.subject_of(token)
        return JSONResponse(
            {"data": {"id": user_id(subject), "name": subject.title(), "username": subject}}
        )

    @api.post("/2/oauth2/revoke")
    async def revoke(request: Request) -> Response:
        body = await _kit.body(request)
        client = _client_of(request, body)
        if client is None or not _oauth.server(request).client_secret_ok(*client):
            return JSONResponse(
                {
                    "error": "unauthorized_client",
                    "error_description": "Missing valid authorization header",
                },
                401,
            )
        token = str(body.get("token") or "")
        known = state.tokens.get(token)
        state.revoked_tokens.add(token)
        if known is not None and known.pair:  # a refresh token ends its grant's access token
            state.revoked_tokens.add(known.pair)
        return JSONResponse({"revoked": True})

    return api


def invalid(description: str) -> Response:
    return JSONResponse({"error": "invalid_request", "error_description": description}, 400)


def user_id(subject: str) -> str:
    """The subject's X user id: numeric and stable, as X's are."""
    return str(int.from_bytes(hashlib.sha256(f"x:{subject}".encode()).digest()[:7], "big"))


def _client_of(request: Request, body: dict[str, Any]) -> tuple[str, str | None] | None:
    """The client id and secret: Basic auth (confidential clients) or `client_id` (public)."""
    header = request.headers.get("authorization", "")
    if header.lower().startswith("basic "):
        try:
            client_id, _, secret = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return None
        return (unquote_plus(client_id), unquote_plus(secret)) if client_id else None
    client_id = str(body.get("client_id") or "")
    return (client_id, None) if client_id else None
