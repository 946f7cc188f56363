"""The sandbox ASGI app: every platform's router plus a control API under /_sandbox."""

from __future__ import annotations

import os
from dataclasses import asdict, fields
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from postpilot.sandbox import images
from postpilot.sandbox.platforms import (
    _connect_controls,
    _oauth,
    bluesky,
    discord,
    facebook,
    instagram,
    linkedin,
    mastodon,
    matrix,
    slack,
    telegram,
    threads,
    x,
)
from postpilot.sandbox.state import FAULT_KINDS, Fault, SandboxState

# Platform requests `/_sandbox/requests` remembers (the oldest half is dropped past it): a
# benchmark sends millions, a test a few hundred.
REQUEST_LOG_CAP = 200_000

PLATFORM_ROUTERS = (
    mastodon.router,
    x.router,
    bluesky.router,
    facebook.router,
    instagram.router,
    threads.router,
    linkedin.router,
    telegram.router,
    discord.router,
    slack.router,
    matrix.router,
)


def create_app(sandbox_state: SandboxState | None = None) -> FastAPI:
    state = sandbox_state or SandboxState()
    app = FastAPI(title="postpilot sandbox", docs_url="/_sandbox/docs", openapi_url=None)
    app.state.sandbox = state
    app.state.oauth = oauth = _oauth.AuthorizationServer(state)
    for make_router in PLATFORM_ROUTERS:
        app.include_router(make_router(state))
    app.include_router(_connect_controls.router(state))

    class LogRequests:
        """Each platform request's status, in `/_sandbox/requests`. Plain ASGI: Starlette's
        BaseHTTPMiddleware adds a task and a stream to every request (the sandbox's CPU per
        request is part of every benchmark). The log keeps the latest REQUEST_LOG_CAP."""

        def __init__(self, app: ASGIApp) -> None:
            self.app = app

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            path: str = scope.get("path", "")
            platform = path.strip("/").split("/", 1)[0]
            if scope["type"] != "http" or not platform or platform == "_sandbox":
                await self.app(scope, receive, send)
                return

            who = path.encode()
            for name, value in scope["headers"]:
                if name == b"authorization":
                    who = value
                    break
            in_flight = state.in_flight
            concurrent = in_flight[who] = in_flight.get(who, 0) + 1

            async def logged(message: Message) -> None:
                if message["type"] == "http.response.start":
                    state.log(platform, scope["method"], path, message["status"], concurrent)
                    if len(state.requests) > REQUEST_LOG_CAP:  # trim by halves: O(1) amortised
                        del state.requests[: REQUEST_LOG_CAP // 2]
                await send(message)

            try:
                await self.app(scope, receive, logged)
            finally:
                if in_flight[who] == 1:
                    del in_flight[who]
                else:
                    in_flight[who] -= 1

    app.add_middleware(LogRequests)

    @app.post(_oauth.DECIDE_PATH)
    async def decide(request: Request) -> Response:
        """The consent page's Allow / Deny (platforms/_oauth.py)."""
        return await oauth.decide(request)

    @app.get("/_sandbox/health")
    async def health() -> dict[str, object]:
        return {"status": "ok", "pid": os.getpid()}

    @app.get("/_sandbox/records")
    async def records(platform: str | None = None) -> list[dict[str, Any]]:
        return state.snapshot(platform)

    @app.get("/_sandbox/waiting")
    async def waiting() -> dict[str, int]:
        return {"waiting": state.waiting}

    @app.get("/_sandbox/requests")
    async def requests(platform: str | None = None) -> list[dict[str, Any]]:
        return [asdict(r) for r in state.requests if platform in (None, r.platform)]

    @app.post("/_sandbox/reset")
    async def reset() -> dict[str, str]:
        state.reset()
        return {"status": "reset"}

    @app.get("/_sandbox/config")
    async def get_config() -> dict[str, Any]:
        return asdict(state.settings)

    @app.post("/_sandbox/config")
    async def configure(values: dict[str, Any]) -> dict[str, Any]:
        try:
            state.configure(values)
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from exc
        return asdict(state.settings)

    @app.post("/_sandbox/faults")
    async def add_fault(values: dict[str, Any]) -> dict[str, Any]:
        allowed = {f.name for f in fields(Fault)}
        if unknown := set(values) - allowed:
            raise HTTPException(
                422, f"unknown fault fields {sorted(unknown)}; use {sorted(allowed)}"
            )
        if values.get("kind") not in FAULT_KINDS:
            raise HTTPException(422, f"kind must be one of {list(FAULT_KINDS)}")
        fault = Fault(**values)
        state.faults.append(fault)
        return asdict(fault)

    @app.post("/_sandbox/tokens/revoke")
    async def revoke(values: dict[str, str]) -> dict[str, str]:
        state.revoked_tokens.add(values["token"])
        return {"status": "revoked"}

    @app.post("/_sandbox/tokens/issue")
    async def issue(values: dict[str, Any]) -> dict[str, Any]:
        """Tokens as the platform's grant would issue them: `platform`, `subject`, optional
        `expires_in` (negative: already expired), `refresh` (bool), `refresh_expires_in`."""
        return state.issue_tokens(
            str(values["platform"]),
            str(values.get("subject") or "sandbox-user"),
            expires_in=values.get("expires_in"),
            refresh=bool(values.get("refresh", True)),
            refresh_expires_in=values.get("refresh_expires_in"),
        )

    @app.post("/_sandbox/tokens/expire")
    async def expire(values: dict[str, str]) -> dict[str, str]:
        state.expire_token(values["token"])
        return {"status": "expired"}

    @app.get("/_sandbox/media/{name}")
    async def media(name: str) -> Response:
        """Media for posts: `*.png` is a small image (its colour derives from the name),
        `big-*.png` exceeds common limits, anything else is not an image."""
        content, content_type = images.sandbox_media(name)
        return Response(content, 200, media_type=content_type)

    @app.exception_handler(KeyError)
    async def missing_field(_request: Request, exc: KeyError) -> JSONResponse:
        return JSONResponse({"error": f"missing field {exc}"}, status_code=422)

    return app
