"""Threads: `POST /v1.0/{user-id}/threads` (media_type TEXT or IMAGE with image_url) creates a
container, `GET /v1.0/{container}?fields=status`, `POST /v1.0/{user-id}/threads_publish`;
refresh `GET /refresh_access_token?grant_type=th_refresh_token`. Throttling uses the Graph
envelope (unconfirmed for Threads) with code 4.

Connect: `GET /oauth/authorize` (the shared consent step), `POST /oauth/access_token` (a 1-hour
token and the user id), `GET /access_token?grant_type=th_exchange_token` (60 days),
`GET /v1.0/me` and `GET /v1.0/debug_token`. Error bodies use the Graph envelope (unconfirmed)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from postpilot.sandbox.platforms import _graph, _kit, _oauth
from postpilot.sandbox.platforms._containers import Flavour, container_router
from postpilot.sandbox.platforms._graph_login import CODE_REFUSALS, SHORT_LIVED_SECONDS
from postpilot.sandbox.state import SandboxState

FLAVOUR = Flavour(
    platform="threads",
    create_path="threads",
    publish_path="threads_publish",
    status_field="status",
    text_field="text",
    usage_type="threads",
    throttle_code=4,
    refresh_grant="th_refresh_token",
    media_required=False,
    replies=True,
)
PLATFORM = FLAVOUR.platform


def user_id(subject: str) -> str:
    return _graph.numeric_id("threads-user", subject)


def router(state: SandboxState) -> APIRouter:
    granted: dict[str, list[str]] = {}  # token -> the scopes its login granted
    state.on_reset.append(granted.clear)

    def connect_routes(api: APIRouter, graph: _graph.Graph) -> None:
        @api.get("/oauth/authorize")
        async def authorize(request: Request) -> Response:
            return _oauth.server(request).authorize(request, PLATFORM)

        @api.post("/oauth/access_token")
        async def access_token(request: Request) -> Response:
            values = await _kit.body(request)  # pz sends the fields in the query string
            client_id = str(values.get("client_id") or "")
            oauth = _oauth.server(request)
            if not client_id or not oauth.client_secret_ok(
                client_id, str(values.get("client_secret") or "")
            ):
                return _graph.error(state, "Error validating client secret.", 1)
            if values.get("grant_type") != "authorization_code":
                return _graph.error(state, "Unsupported grant_type", 100)
            outcome = oauth.redeem(
                PLATFORM,
                str(values.get("code") or ""),
                client_id=client_id,
                redirect_uri=str(values.get("redirect_uri") or ""),
                code_verifier=None,
            )
            if isinstance(outcome, _oauth.Refused):
                message, subcode = CODE_REFUSALS.get(
                    outcome.reason, ("Invalid verification code format.", None)
                )
                return _graph.error(state, message, 100, subcode)
            subject = outcome.code.subject
            declined = state.settings.connect_declined_scopes.get(PLATFORM, [])
            issued = state.issue_tokens(
                PLATFORM, subject, expires_in=SHORT_LIVED_SECONDS, refresh=False
            )
            granted[issued["access_token"]] = [
                s for s in outcome.code.scope.replace(",", " ").split() if s not in declined
            ]
            return JSONResponse(
                {"access_token": issued["access_token"], "user_id": user_id(subject)}
            )

        @api.get("/access_token")
        async def exchange(request: Request) -> Response:
            """`th_exchange_token`: a short-lived token for a 60-day one."""
            params = request.query_params
            short = str(params.get("access_token") or "")
            if params.get("grant_type") != "th_exchange_token" or not params.get("client_secret"):
                return _graph.error(state, "grant_type and client_secret are required", 100)
            status = state.check_token(PLATFORM, short)
            if status == "expired":
                return _graph.expired(state)
            if status != "ok":
                return _graph.error(
                    state, "Invalid OAuth access token - Cannot parse access token", 190
                )
            issued = state.issue_tokens(PLATFORM, state.subject_of(short), refresh=False)
            granted[issued["access_token"]] = granted.get(short, [])
            return JSONResponse(
                {
                    "access_token": issued["access_token"],
                    "token_type": "bearer",
                    "expires_in": issued["expires_in"],
                }
            )

        @api.get("/{version}/me")
        async def me(request: Request) -> Response:
            allowed = await graph.guard(request, None)
            if isinstance(allowed, Response):
                return allowed
            subject = allowed[0]
            profile = {
                "id": user_id(subject),
                "username": subject,
                "threads_profile_picture_url": None,
            }
            return JSONResponse(profile, headers=allowed[2])

        @api.get("/{version}/debug_token")
        async def debug_token(request: Request) -> Response:
            allowed = await graph.guard(request, None)
            if isinstance(allowed, Response):
                return allowed
            token = str(request.query_params.get("input_token") or "")
            known = state.tokens.get(token)
            data: dict[str, Any] = {"type": "USER", "application": "postpilot", "is_valid": False}
            if known is not None and state.check_token(PLATFORM, token) == "ok":
                data.update(
                    is_valid=True,
                    scopes=granted.get(token, []),
                    expires_at=int(known.expires_at or 0),
                    user_id=user_id(known.subject),
                )
            return JSONResponse({"data": data})

    return container_router(state, FLAVOUR, before=connect_routes)
