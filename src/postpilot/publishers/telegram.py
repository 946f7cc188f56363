"""Telegram Bot API: `sendMessage`, or `sendPhoto` with the image uploaded as multipart (its
file_id is then reused per bot and URL). Bot tokens never expire; a 401 means it was revoked.

No idempotency: NONE.

No read-back: the Bot API cannot list a chat's messages (`getUpdates` hands each update out
once, and not at all while a webhook is set), so a delivery in doubt waits for a person.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any, ClassVar

import httpx

from postpilot.core import outcomes
from postpilot.core.transitions import Recovery
from postpilot.publishers import budgets, errors, flow, urls
from postpilot.publishers.base import (
    AccountContext,
    PublishContext,
    PublishRequest,
    RefreshFailed,
    RefreshResult,
)
from postpilot.publishers.fields import AccountFields, credential, option

DEFAULT_BASE = "https://api.telegram.org"
FILE_ID_TTL_SECONDS = 30 * 86_400.0
_RETRY_AFTER = re.compile(r"retry after (\d+)")


class TelegramPublisher(flow.StepwisePublisher):
    platform: ClassVar[str] = "telegram"
    max_in_flight_per_account: ClassVar[int] = 1
    recovery: ClassVar[Recovery] = Recovery.NONE
    can_refresh: ClassVar[bool] = False
    account_fields: ClassVar[AccountFields] = AccountFields(
        (
            credential("bot_token", "The bot's token from @BotFather.", required=True),
            option("chat_id", 'The chat: a number or "@channelusername".', required=True),
            option("parse_mode", "MarkdownV2, HTML or Markdown (plain text without it)."),
        ),
    )

    async def _publish(self, request: PublishRequest, ctx: PublishContext) -> outcomes.Outcome:
        account = request.account
        token, chat_id = account.credentials.get("bot_token"), account.options.get("chat_id")
        if not chat_id:
            return outcomes.Permanent("telegram: the account has no chat_id option")
        if not token:
            return outcomes.TokenExpired("telegram: the account has no bot token")
        base = f"{ctx.base_url(self.platform, account, DEFAULT_BASE)}/bot{urls.segment(token)}"
        key = budgets.account_key(self.platform, f"{account.id}:{chat_id}")
        await flow.check_budget(ctx, self.platform, [key])
        fields: dict[str, Any] = {"chat_id": str(chat_id)}
        if mode := account.options.get("parse_mode"):
            fields["parse_mode"] = mode
        if not request.media_urls:
            fields["text"] = request.text
            return await self._send(f"{base}/sendMessage", request, ctx, key, data=fields)
        url = request.media_urls[0]
        fields["caption"] = request.text
        file_id = await ctx.uploads.get(self.platform, account.id, url)
        if isinstance(file_id, str):
            fields["photo"] = file_id
            return await self._send(f"{base}/sendPhoto", request, ctx, key, data=fields)
        media = await flow.fetch_media(ctx, url)
        return await self._send(
            f"{base}/sendPhoto",
            request,
            ctx,
            key,
            data=fields,
            files={"photo": (media.filename, media.content, media.content_type)},
        )

    async def _send(
        self,
        url: str,
        request: PublishRequest,
        ctx: PublishContext,
        key: str,
        **kwargs: Any,
    ) -> outcomes.Outcome:
        response = await flow.send(ctx, "POST", url, what="telegram message", final=True, **kwargs)
        body = flow.body_of(response)
        if response.status_code == 200 and body.get("ok"):
            message = body["result"]
            if photos := message.get("photo"):
                largest = max(photos, key=lambda p: p.get("width", 0) * p.get("height", 0))
                await ctx.uploads.put(
                    self.platform,
                    request.account.id,
                    request.media_urls[0],
                    largest["file_id"],
                    FILE_ID_TTL_SECONDS,
                )
            return outcomes.Published(str(message["message_id"]), url=_message_url(message))
        return await _failure(response, request, ctx, key)

    async def refresh(self, account: AccountContext, ctx: PublishContext) -> RefreshResult:
        return RefreshFailed(
            "Telegram bot tokens do not expire; this one was revoked or replaced in "
            "@BotFather: reconnect the bot with its current token"
        )


def _message_url(message: dict[str, Any]) -> str | None:
    chat = message.get("chat") or {}
    username = chat.get("username") or (
        str(chat.get("id"))[1:] if str(chat.get("id", "")).startswith("@") else None
    )
    return f"https://t.me/{username}/{message['message_id']}" if username else None


async def _failure(
    response: httpx.Response,
    request: PublishRequest,
    ctx: PublishContext,
    key: str,
) -> outcomes.Outcome:
    body = flow.body_of(response)
    description = str(body.get("description") or errors.error_text(response))
    message = f"telegram: {description}"
    code = int(body.get("error_code") or response.status_code)
    if code == 401:
        return outcomes.TokenExpired(f"telegram rejected the bot token ({description})")
    if code == 429:
        retry = (body.get("parameters") or {}).get("retry_after")
        if retry is None and (match := _RETRY_AFTER.search(description)):
            retry = int(match.group(1))
        until = ctx.now() + timedelta(seconds=float(retry or 30))
        await ctx.budgets.spend(key, until=until, reason=message)
        return outcomes.RateLimited(until=until, reason=message)
    if response.status_code >= 500:
        return errors.server_error_outcome(response, "telegram")
    if request.media_urls and any(
        hint in description for hint in ("HTTP URL", "file identifier", "IMAGE_PROCESS", "photo")
    ):
        # A file id Telegram no longer knows must not be offered again.
        await ctx.uploads.forget("telegram", request.account.id, request.media_urls[0])
        return outcomes.Permanent(
            f"telegram could not use the image {request.media_urls[0]}: {description}"
        )
    return outcomes.Permanent(message)
