"""Mastodon's publishing contract: statuses, media, Idempotency-Key, X-RateLimit-* headers."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from postpilot.sandbox.platforms._kit import pause
from postpilot.sandbox.state import Fault, Record, SandboxState, now_iso

PLATFORM = "mastodon"
IDEMPOTENCY_SECONDS = 3600.0


def router(state: SandboxState) -> APIRouter:
    api = APIRouter(prefix=f"/{PLATFORM}")

    def token_of(request: Request) -> str | None:
        header = request.headers.get("authorization", "")
        token = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else ""
        return token or None

    async def guard(request: Request) -> tuple[str, dict[str, str]] | Response:
        """Latency, auth and the token's rate-limit window, shared by every endpoint."""
        await pause(state)
        token = token_of(request)
        if token is None or token in state.revoked_tokens:
            return JSONResponse({"error": "The access token is invalid"}, status_code=401)
        limit, remaining, reset, over = state.hit_rate_limit(PLATFORM, token)
        headers = {
            "X-RateLimit-Limit": str(limit),
            "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset": datetime.fromtimestamp(reset, UTC).isoformat(),
        }
        if over:
            return JSONResponse({"error": "Too many requests"}, status_code=429, headers=headers)
        return token, headers

    @api.post("/api/v2/media")
    async def upload_media(request: Request) -> Response:
        allowed = await guard(request)
        if isinstance(allowed, Response):
            return allowed
        _token, headers = allowed
        fault = state.take_fault(PLATFORM)
        if fault and fault.kind == "bad_media":
            return JSONResponse(
                {"error": "Validation failed: File content type is invalid, File is invalid"},
                status_code=422,
            )
        if fault:
            return await _generic_fault(fault, state)
        form = await request.form()
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            return JSONResponse({"error": "Validation failed: File can't be blank"}, 422)
        content = await upload.read()
        content_type = upload.content_type or ""
        if not content_type.startswith("image/") or not content:
            return JSONResponse(
                {"error": "Validation failed: File content type is invalid, File is invalid"},
                status_code=422,
            )
        media_id = state.next_id()
        attachment = {
            "id": media_id,
            "type": "image",
            "url": f"{request.base_url}{PLATFORM}/media/{media_id}",
            "description": form.get("description"),
            "size": len(content),
            "content_type": content_type,
        }
        state.media[media_id] = attachment
        return JSONResponse(attachment, headers=headers)

    @api.get("/api/v1/media/{media_id}")
    async def get_media(media_id: str, request: Request) -> Response:
        allowed = await guard(request)
        if isinstance(allowed, Response):
            return allowed
        _token, headers = allowed
        if media_id not in state.media:
            return JSONResponse({"error": "Record not found"}, status_code=404)
        return JSONResponse(state.media[media_id], headers=headers)

    @api.post("/api/v1/statuses")
    async def create_status(request: Request) -> Response:
        allowed = await guard(request)
        if isinstance(allowed, Response):
            return allowed
        token, headers = allowed
        body = await _body(request)
        key = request.headers.get("idempotency-key")
        async with state.lock:
            if key and (replay := _replay(state, token, key)) is not None:
                return JSONResponse(replay, headers=headers)
        fault = state.take_fault(PLATFORM)
        if fault and fault.kind not in ("timeout_after_commit",):
            if fault.kind == "bad_media":
                return JSONResponse({"error": "Validation failed: File is invalid"}, 422)
            if fault.kind == "duplicate":
                fault = None  # Mastodon does not reject repeated text
            else:
                return await _generic_fault(fault, state)
        text = str(body.get("status") or "")
        media_ids = [str(m) for m in body.get("media_ids") or []]
        if not text.strip() and not media_ids:
            return JSONResponse({"error": "Validation failed: Text can't be blank"}, 422)
        max_text = state.settings.max_text.get(PLATFORM, 500)
        if len(text) > max_text:
            return JSONResponse(
                {"error": f"Validation failed: Text character limit of {max_text} exceeded"}, 422
            )
        unknown = [m for m in media_ids if m not in state.media]
        if unknown:
            return JSONResponse({"error": "Validation failed: Media is invalid"}, 422)
        async with state.lock:
            if key and (replay := _replay(state, token, key)) is not None:
                return JSONResponse(replay, headers=headers)
            status_id = state.next_id()
            status = {
                "id": status_id,
                "uri": f"{request.base_url}{PLATFORM}/users/sandbox/statuses/{status_id}",
                "url": f"{request.base_url}{PLATFORM}/@sandbox/{status_id}",
                "content": f"<p>{text}</p>",
                "visibility": body.get("visibility", "public"),
                "created_at": now_iso(),
                "media_attachments": [state.media[m] for m in media_ids],
            }
            state.remember(
                Record(
                    platform=PLATFORM,
                    id=status_id,
                    account=token,
                    text=text,
                    media=[state.media[m] for m in media_ids],
                    idempotency_key=key,
                    received_at=status["created_at"],
                )
            )
            if key:
                state.idempotency[(PLATFORM, token, key)] = (time.time(), status)
        if fault and fault.kind == "timeout_after_commit":
            await asyncio.sleep(fault.hold_seconds)
        return JSONResponse(status, headers=headers)

    return api


def _replay(state: SandboxState, token: str, key: str) -> dict[str, Any] | None:
    stored = state.idempotency.get((PLATFORM, token, key))
    if stored and time.time() - stored[0] < IDEMPOTENCY_SECONDS:
        return stored[1]
    return None


async def _body(request: Request) -> dict[str, Any]:
    if request.headers.get("content-type", "").startswith("application/json"):
        data = await request.json()
        return data if isinstance(data, dict) else {}
    form = await request.form()
    return {
        "status": form.get("status"),
        "media_ids": form.getlist("media_ids[]"),
        "visibility": form.get("visibility") or "public",
    }


async def _generic_fault(fault: Fault, state: SandboxState) -> Response:
    if fault.kind == "rate_limit":
        reset = datetime.fromtimestamp(time.time() + fault.retry_after_seconds, UTC)
        return JSONResponse(
            {"error": "Too many requests"},
            status_code=429,
            headers={
                "X-RateLimit-Limit": str(state.settings.rate_limit),
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": reset.isoformat(),
            },
        )
    if fault.kind == "expired_token":
        return JSONResponse({"error": "The access token is invalid"}, status_code=401)
    if fault.kind == "unavailable":
        return JSONResponse({"error": "Service unavailable"}, status_code=503)
    if fault.kind == "timeout":
        await asyncio.sleep(fault.hold_seconds)
        return JSONResponse({"error": "too late"}, status_code=504)
    return JSONResponse({"error": "Internal server error"}, status_code=fault.status or 500)
