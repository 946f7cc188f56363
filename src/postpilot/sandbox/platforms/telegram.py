"""Telegram Bot API: `/bot{token}/sendMessage` and `/sendPhoto` (file_id, URL or multipart),
`{"ok":false,"error_code","description","parameters":{"retry_after"}}` errors, no headers."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from postpilot.sandbox.platforms import _kit
from postpilot.sandbox.state import Fault, Record, SandboxState

PLATFORM = "telegram"
CAPTION_LIMIT = 1024


def _error(code: int, description: str, **parameters: Any) -> Response:
    body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
    if parameters:
        body["parameters"] = parameters
    return JSONResponse(body, status_code=code)


def _throttled(seconds: float) -> Response:
    seconds = max(1, int(seconds))
    return _error(429, f"Too Many Requests: retry after {seconds}", retry_after=seconds)


def router(state: SandboxState) -> APIRouter:
    api = APIRouter(prefix=f"/{PLATFORM}")

    def throttled(fault: Fault) -> Response:
        return _throttled(fault.retry_after_seconds)

    answers = _kit.Answers(
        rate_limited=throttled,
        expired=lambda: _error(401, "Unauthorized"),
        bad_media=lambda: _error(400, "Bad Request: wrong file identifier/HTTP URL specified"),
        duplicate=lambda: _error(400, "Bad Request: message is not modified"),
        error=lambda status: _error(status, "Internal Server Error"),
    )

    async def send(token: str, request: Request, photo: bool) -> Response:
        await _kit.pause(state)
        if ":" not in token:
            return _error(404, "Not Found")
        if state.check_token(PLATFORM, token) != "ok":
            return _error(401, "Unauthorized")
        values = await _kit.body(request)
        chat_id = str(values.get("chat_id") or "")
        _limit, _remaining, reset, over = state.hit_rate_limit(PLATFORM, f"{token}:{chat_id}")
        if over:
            return _throttled(reset - time.time())
        fault = state.take_fault(PLATFORM, "publish")
        if (answer := await _kit.answer_fault(fault, answers)) is not None:
            return answer
        if not chat_id:
            return _error(400, "Bad Request: chat not found")
        text = str(values.get("caption" if photo else "text") or "")
        media = []
        if photo:
            if len(text) > CAPTION_LIMIT:
                return _error(400, "Bad Request: message caption is too long")
            entry = await _photo(state, values.get("photo"))
            if isinstance(entry, Response):
                return entry
            media.append(entry)
        elif not text.strip():
            return _error(400, "Bad Request: message text is empty")
        elif len(text) > state.settings.max_text.get(PLATFORM, 4096):
            return _error(400, state.settings.telegram_too_long)
        message_id = int(state.next_id()) % 1_000_000_000
        state.remember(
            Record(
                platform=PLATFORM,
                id=str(message_id),
                account=chat_id,
                text=text,
                media=media,
                idempotency_key=None,
                received_at=datetime.now(UTC).isoformat(),
            )
        )
        await _kit.hold_after_commit(fault)
        message: dict[str, Any] = {
            "message_id": message_id,
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "channel" if chat_id.startswith("@") else "group"},
        }
        if photo:
            message["photo"] = [
                {
                    "file_id": media[0]["id"],
                    "file_unique_id": media[0]["id"][-8:],
                    "width": 8,
                    "height": 8,
                }
            ]
            message["caption"] = text
        else:
            message["text"] = text
        return JSONResponse({"ok": True, "result": message})

    @api.post("/bot{token}/sendMessage")
    async def send_message(token: str, request: Request) -> Response:
        return await send(token, request, photo=False)

    @api.post("/bot{token}/sendPhoto")
    async def send_photo(token: str, request: Request) -> Response:
        return await send(token, request, photo=True)

    return api


async def _photo(state: SandboxState, value: Any) -> dict[str, Any] | Response:
    upload = await _kit.upload_of(value)
    if upload is None and isinstance(value, str) and value.startswith(("http://", "https://")):
        upload = await _kit.download(value)
        if upload is None:
            return _error(400, "Bad Request: failed to get HTTP URL content")
    if upload is None:
        known = state.media.get(f"telegram:{value}")
        if known is None:
            return _error(400, "Bad Request: wrong file identifier/HTTP URL specified")
        return known
    if not upload[1].startswith("image/") or not upload[0]:
        return _error(400, "Bad Request: IMAGE_PROCESS_FAILED")
    file_id = f"AgAC{state.next_id()}"
    entry = _kit.media_entry(file_id, *upload)
    state.media[f"telegram:{file_id}"] = entry
    return entry
