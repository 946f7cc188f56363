"""Telegram Bot API: `/bot{token}/sendMessage` and `/sendPhoto` (file_id, URL or multipart),
`{"ok":false,"error_code","description","parameters":{"retry_after"}}` errors, no headers; and
what connecting a bot checks: getMe, getChat, getChatMember (chats per the `telegram_chats`
setting)."""

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

    async def bot_of(token: str) -> dict[str, Any] | Response:
        await _kit.pause(state)
        bot_id = token.split(":", 1)[0]
        if not bot_id.isdigit():
            return _error(404, "Not Found")
        if state.check_token(PLATFORM, token) != "ok":
            return _error(401, "Unauthorized")
        return {
            "id": int(bot_id),
            "is_bot": True,
            "first_name": "Sandbox bot",
            "username": f"sandbox_{bot_id}_bot",
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }

    def chat_of(values: dict[str, Any]) -> dict[str, Any] | None:
        wanted = str(values.get("chat_id") or "")
        for key, chat in state.settings.telegram_chats.items():
            if wanted in (key, str(chat.get("id"))):
                username = key.removeprefix("@") if key.startswith("@") else None
                return {**chat, "username": username}
        return None

    @api.api_route("/bot{token}/getMe", methods=["GET", "POST"])
    async def get_me(token: str) -> Response:
        bot = await bot_of(token)
        return bot if isinstance(bot, Response) else JSONResponse({"ok": True, "result": bot})

    @api.api_route("/bot{token}/getChat", methods=["GET", "POST"])
    async def get_chat(token: str, request: Request) -> Response:
        bot = await bot_of(token)
        if isinstance(bot, Response):
            return bot
        chat = chat_of(await _kit.body(request))
        if chat is None or chat.get("bot_status") == "kicked":
            return _error(400, "Bad Request: chat not found")
        result = {"id": chat["id"], "type": chat.get("type", "channel"), "title": chat.get("title")}
        if chat["username"]:
            result["username"] = chat["username"]
        return JSONResponse({"ok": True, "result": result})

    @api.api_route("/bot{token}/getChatMember", methods=["GET", "POST"])
    async def get_chat_member(token: str, request: Request) -> Response:
        bot = await bot_of(token)
        if isinstance(bot, Response):
            return bot
        values = await _kit.body(request)
        chat = chat_of(values)
        if chat is None:
            return _error(400, "Bad Request: chat not found")
        kind, status = chat.get("type", "channel"), chat.get("bot_status", "member")
        if str(values.get("user_id")) != str(bot["id"]):
            return _error(400, "Bad Request: member not found")
        if status == "left":
            return _error(403, f"Forbidden: bot is not a member of the {kind} chat")
        if status == "kicked":
            return _error(403, f"Forbidden: bot was kicked from the {kind} chat")
        member: dict[str, Any] = {"user": bot, "status": status}
        if status == "administrator":
            member["can_post_messages"] = bool(chat.get("can_post_messages"))
            member["can_be_edited"] = False
        if status == "restricted":
            member["can_send_messages"] = bool(chat.get("can_send_messages"))
        return JSONResponse({"ok": True, "result": member})

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
