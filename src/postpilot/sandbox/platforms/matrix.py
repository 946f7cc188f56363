"""Matrix client-server API: login (with refresh tokens), refresh, media upload, and
`PUT /rooms/{roomId}/send/m.room.message/{txnId}` (idempotent per user and txnId);
`M_UNKNOWN_TOKEN` with `soft_logout`, `M_LIMIT_EXCEEDED` with `retry_after_ms`; and connecting:
well-known discovery, versions, password login against the `matrix_users` setting, whoami,
joined rooms, power levels and names (the `matrix_rooms` setting), join, logout."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from postpilot.sandbox.platforms import _kit
from postpilot.sandbox.state import Fault, Record, SandboxState

PLATFORM = "matrix"
CLIENT = "/_matrix/client/v3"


def _error(errcode: str, error: str, status: int, **extra: Any) -> Response:
    headers = {}
    if "retry_after_ms" in extra:
        headers["Retry-After"] = str(max(1, int(extra["retry_after_ms"] / 1000 + 0.999)))
    return JSONResponse({"errcode": errcode, "error": error, **extra}, status, headers=headers)


def _limited(seconds: float) -> Response:
    return _error("M_LIMIT_EXCEEDED", "Too Many Requests", 429, retry_after_ms=int(seconds * 1000))


def _expired() -> Response:
    return _error("M_UNKNOWN_TOKEN", "Access token has expired", 401, soft_logout=True)


def router(state: SandboxState) -> APIRouter:
    api = APIRouter(prefix=f"/{PLATFORM}")
    sent: dict[tuple[str, str, str], str] = {}  # (user, room, txnId) -> event id

    def limited(fault: Fault) -> Response:
        return _limited(fault.retry_after_seconds)

    answers = _kit.Answers(
        rate_limited=limited,
        expired=_expired,
        bad_media=lambda: _error("M_UNKNOWN", "Cannot process the uploaded file", 400),
        duplicate=lambda: _error("M_UNKNOWN", "Duplicate", 400),
        error=lambda status: _error("M_UNKNOWN", "Internal server error", status),
    )

    def tokens_body(issued: dict[str, Any]) -> dict[str, Any]:
        body = {
            "access_token": issued["access_token"],
            "refresh_token": issued.get("refresh_token"),
        }
        if issued.get("expires_in"):
            body["expires_in_ms"] = int(issued["expires_in"]) * 1000
        return body

    async def guard(request: Request, step: str | None) -> tuple[str, Fault | None] | Response:
        await _kit.pause(state)
        token = _kit.bearer(request) or request.query_params.get("access_token")
        status = state.check_token(PLATFORM, token)
        if status == "expired":
            return _expired()
        if status != "ok" or token is None:
            return _error("M_UNKNOWN_TOKEN", "Invalid access token passed.", 401, soft_logout=False)
        user = state.subject_of(token, default="@sandbox:sandbox.test")
        _limit, _remaining, reset, over = state.hit_rate_limit(PLATFORM, user)
        if over:
            return _limited(reset - time.time())
        fault = state.take_fault(PLATFORM, step) if step else None
        if (answer := await _kit.answer_fault(fault, answers)) is not None:
            return answer
        return user, fault

    @api.post(f"{CLIENT}/login")
    async def login(request: Request) -> Response:
        await _kit.pause(state)
        body = await _kit.body(request)
        user = str((body.get("identifier") or {}).get("user") or body.get("user") or "")
        localpart = user.removeprefix("@").split(":", 1)[0]
        known = state.settings.matrix_users.get(localpart)
        if (
            body.get("type") != "m.login.password"
            or not user
            or body.get("password") in (None, "", "wrong-password")
            or (known is not None and body.get("password") != known)
        ):
            return _error("M_FORBIDDEN", "Invalid username or password", 403)
        user_id = user if user.startswith("@") else f"@{user}:sandbox.test"
        issued = state.issue_tokens(PLATFORM, user_id, refresh=bool(body.get("refresh_token")))
        device = str(body.get("device_id") or "") or (
            "SANDBOX" + hashlib.sha256(user_id.encode()).hexdigest()[:6].upper()
        )
        return JSONResponse({"user_id": user_id, "device_id": device, **tokens_body(issued)})

    @api.post(f"{CLIENT}/refresh")
    async def refresh(request: Request) -> Response:
        await _kit.pause(state)
        fault = state.take_fault(PLATFORM, "refresh")
        if (answer := await _kit.answer_fault(fault, answers)) is not None:
            return answer
        body = await _kit.body(request)
        token = str(body.get("refresh_token") or "")
        issued = state.refresh_grant(PLATFORM, token, rotate=True)
        if issued is None and token in state.spent_tokens:
            status = state.settings.matrix_spent_refresh_status
            return _error("M_UNKNOWN_TOKEN", "refresh token isn't valid anymore", status)
        if issued is None:
            return _error("M_UNKNOWN_TOKEN", "Unknown refresh token", 401, soft_logout=False)
        return JSONResponse(tokens_body(issued))

    @api.post("/_matrix/media/v3/upload")
    async def upload(request: Request) -> Response:
        allowed = await guard(request, "upload")
        if isinstance(allowed, Response):
            return allowed
        content = await request.body()
        content_type = request.headers.get("content-type", "")
        if not content:
            return _error("M_BAD_JSON", "Empty upload", 400)
        media_id = state.next_id()
        uri = f"mxc://sandbox.test/{media_id}"
        state.media[f"matrix:{uri}"] = _kit.media_entry(media_id, content, content_type, uri=uri)
        return JSONResponse({"content_uri": uri})

    @api.put(CLIENT + "/rooms/{room_id}/send/{event_type}/{txn_id}")
    async def send(room_id: str, event_type: str, txn_id: str, request: Request) -> Response:
        allowed = await guard(request, None)
        if isinstance(allowed, Response):
            return allowed
        user, _ = allowed
        async with state.lock:
            if (event_id := sent.get((user, room_id, txn_id))) is not None:
                return JSONResponse({"event_id": event_id})  # the same txnId: no new event
        fault = state.take_fault(PLATFORM, "publish")
        if (answer := await _kit.answer_fault(fault, answers)) is not None:
            return answer
        content = await _kit.body(request)
        media = []
        if content.get("msgtype") == "m.image":
            stored = state.media.get(f"matrix:{content.get('url')}")
            if stored is None:
                return _error("M_UNKNOWN", "Unknown media", 400)
            media.append(stored)
        elif not str(content.get("body") or "").strip():
            return _error("M_BAD_JSON", "body is required", 400)
        async with state.lock:
            if (event_id := sent.get((user, room_id, txn_id))) is not None:
                return JSONResponse({"event_id": event_id})
            event_id = f"${state.next_id()}:sandbox.test"
            sent[(user, room_id, txn_id)] = event_id
            state.remember(
                Record(
                    platform=PLATFORM,
                    id=event_id,
                    account=user,
                    text=str(content.get("body") or ""),
                    media=media,
                    idempotency_key=txn_id,
                    received_at=datetime.now(UTC).isoformat(),
                    extra={
                        "room_id": room_id,
                        "event_type": event_type,
                        "msgtype": content.get("msgtype"),
                    },
                )
            )
        await _kit.hold_after_commit(fault)
        return JSONResponse({"event_id": event_id})

    _connect_routes(api, state, guard)
    return api


Guard = Callable[[Request, str | None], Awaitable[tuple[str, Fault | None] | Response]]


def _connect_routes(api: APIRouter, state: SandboxState, guard: Guard) -> None:
    def rooms() -> dict[str, dict[str, Any]]:
        return state.settings.matrix_rooms

    def room_of(room: str) -> str | None:
        if room in rooms():
            return room
        return next((r for r, v in rooms().items() if v.get("alias") == room), None)

    @api.get("/.well-known/matrix/client")
    async def well_known(request: Request) -> Response:
        base = f"{str(request.base_url).rstrip('/')}/{PLATFORM}"
        return JSONResponse({"m.homeserver": {"base_url": base}})

    @api.get("/_matrix/client/versions")
    async def versions() -> Response:
        return JSONResponse({"versions": ["v1.11", "v1.12", "v1.13"], "unstable_features": {}})

    @api.get(f"{CLIENT}/account/whoami")
    async def whoami(request: Request) -> Response:
        allowed = await guard(request, None)
        if isinstance(allowed, Response):
            return allowed
        user, _ = allowed
        return JSONResponse({"user_id": user, "is_guest": False})

    @api.get(f"{CLIENT}/joined_rooms")
    async def joined_rooms(request: Request) -> Response:
        allowed = await guard(request, None)
        if isinstance(allowed, Response):
            return allowed
        user, _ = allowed
        joined = [r for r, v in rooms().items() if user in v.get("joined", [])]
        return JSONResponse({"joined_rooms": joined})

    @api.get(CLIENT + "/rooms/{room_id}/state/{event_type}/")
    @api.get(CLIENT + "/rooms/{room_id}/state/{event_type}")
    async def room_state(room_id: str, event_type: str, request: Request) -> Response:
        allowed = await guard(request, None)
        if isinstance(allowed, Response):
            return allowed
        user, _ = allowed
        room = rooms().get(room_id)
        if room is None or user not in room.get("joined", []):
            return _error("M_FORBIDDEN", f"User {user} not in room {room_id}", 403)
        if event_type == "m.room.power_levels":
            return JSONResponse(
                {
                    "users": room.get("users", {}),
                    "users_default": 0,
                    "events": {"m.room.message": room.get("send_level", 0)},
                    "events_default": 0,
                    "state_default": 50,
                }
            )
        if event_type == "m.room.name" and room.get("name"):
            return JSONResponse({"name": room["name"]})
        return _error("M_NOT_FOUND", "Event not found.", 404)

    @api.post(CLIENT + "/join/{room}")
    async def join(room: str, request: Request) -> Response:
        allowed = await guard(request, None)
        if isinstance(allowed, Response):
            return allowed
        user, _ = allowed
        room_id = room_of(room)
        if room_id is None:
            return _error(
                "M_NOT_FOUND",
                "Room alias not found" if room.startswith("#") else "No known servers",
                404,
            )
        found = rooms()[room_id]
        joined, invited = found.setdefault("joined", []), found.setdefault("invited", [])
        if user not in joined and user not in invited and not found.get("public"):
            return _error("M_FORBIDDEN", "You are not invited to this room.", 403)
        if user not in joined:
            joined.append(user)
        if user in invited:
            invited.remove(user)
        return JSONResponse({"room_id": room_id})

    @api.post(f"{CLIENT}/logout")
    async def logout(request: Request) -> Response:
        allowed = await guard(request, None)
        if isinstance(allowed, Response):
            return allowed
        token = _kit.bearer(request) or ""
        # The device's refresh token goes with its access token.
        state.revoked_tokens.update(
            t for t, known in state.tokens.items() if t == token or known.pair == token
        )
        state.revoked_tokens.add(token)
        return JSONResponse({})
