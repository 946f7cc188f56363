"""Telegram: the person gives their bot's token (from @BotFather) and the chat to post to
(`@channelusername` or the numeric id). We ask Telegram who the bot is (getMe), resolve the chat
to its numeric id (getChat) and check the bot may post there (getChatMember): in a channel an
administrator with "Post messages", in a group any member not restricted from sending. The token
never expires; only @BotFather can revoke it, so there is nothing to revoke on disconnect."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, ClassVar

from postpilot.connect.base import (
    ConnectContext,
    ConnectRefused,
    Identity,
    Input,
    Method,
    Target,
)
from postpilot.connect.platforms._calls import call, json_object

API = "https://api.telegram.org"
TOKEN_SHAPE = re.compile(r"^\d{3,20}:[A-Za-z0-9_-]{20,100}$")
CHAT_SHAPE = re.compile(r"^(@[A-Za-z][A-Za-z0-9_]{3,31}|-?\d{1,20})$")
WHO = "Telegram"


class TelegramConnector:
    platform: ClassVar[str] = "telegram"
    methods: ClassVar[tuple[Method, ...]] = (Method.DIRECT,)
    start_inputs: ClassVar[tuple[Input, ...]] = ()
    direct_inputs: ClassVar[tuple[Input, ...]] = (
        Input("bot_token", "Your bot's token, as @BotFather gave it (123456:ABC...).", secret=True),
        Input("chat", 'The channel or group: "@channelusername" or its numeric id.'),
    )
    needs_app: ClassVar[bool] = False
    scopes: ClassVar[tuple[str, ...]] = ()

    async def sign_in(self, ctx: ConnectContext, inputs: Mapping[str, str]) -> list[Target]:
        token = (inputs.get("bot_token") or "").strip()
        chat = (inputs.get("chat") or "").strip()
        if not TOKEN_SHAPE.match(token):
            raise ConnectRefused(
                "This is not a bot token: @BotFather gives one like 123456789:AAE..., "
                "digits, a colon, then letters",
                "inputs.bot_token",
            )
        if not CHAT_SHAPE.match(chat):
            raise ConnectRefused(
                'Name the chat as "@channelusername" or by its numeric id (-100...)',
                "inputs.chat",
            )
        found = await self._check(ctx, token, chat, token_field="inputs.bot_token")
        return [found]

    async def verify(self, ctx: ConnectContext, target: Target) -> Identity:
        token = str(target.credentials.get("bot_token") or "")
        chat = str(target.options.get("chat_id") or target.platform_id)
        found = await self._check(ctx, token, chat, token_field="credentials.bot_token")
        return Identity(platform_id=found.platform_id, handle=found.handle)

    async def _check(self, ctx: ConnectContext, token: str, chat: str, token_field: str) -> Target:
        bot = await self._method(ctx, token, "getMe", {}, token_field)
        info = await self._method(ctx, token, "getChat", {"chat_id": chat}, "inputs.chat")
        chat_id = str(info.get("id") or "")
        kind = str(info.get("type") or "")
        if kind != "private":
            member = await self._method(
                ctx, token, "getChatMember", {"chat_id": chat_id, "user_id": bot.get("id")}, None
            )
            if problem := _cannot_post(kind, member):
                raise ConnectRefused(problem, "inputs.chat")
        username = info.get("username")
        title = str(info.get("title") or info.get("first_name") or username or chat_id)
        return Target(
            platform_id=chat_id,
            name=title,
            handle=f"@{username}" if username else title,
            credentials={"bot_token": token},
            options={"chat_id": chat_id},
        )

    async def _method(
        self,
        ctx: ConnectContext,
        token: str,
        method: str,
        params: dict[str, Any],
        field: str | None,
    ) -> dict[str, Any]:
        """One Bot API call; Telegram's own description when it says no (never the URL, which
        holds the token)."""
        response = await call(
            ctx, "POST", ctx.url(API, f"/bot{token}/{method}"), who=WHO, field=field, json=params
        )
        body = json_object(response)
        result = body.get("result")
        if body.get("ok") is True and isinstance(result, dict):
            return result
        description = str(body.get("description") or f"HTTP {response.status_code}")[:300]
        if response.status_code in (401, 404) and method == "getMe":
            raise ConnectRefused(
                f"Telegram does not know this bot token ({description}); copy it again from "
                "@BotFather",
                field,
            )
        if method == "getChat":
            raise ConnectRefused(
                f"Telegram cannot find this chat for the bot ({description}); check the name "
                "and that the bot was added to it",
                "inputs.chat",
            )
        raise ConnectRefused(f"Telegram refused {method}: {description}", field or "inputs.chat")


def _cannot_post(kind: str, member: Mapping[str, Any]) -> str | None:
    """Why the bot may not post in this chat, in Telegram's words, or None when it may."""
    status = str(member.get("status") or "unknown")
    if status == "creator":
        return None
    if kind == "channel":
        if status == "administrator" and member.get("can_post_messages"):
            return None
        if status == "administrator":
            return (
                "The bot is an administrator of the channel without the right to post "
                '(can_post_messages); turn on "Post messages" for it'
            )
        return (
            f"The bot is not an administrator of the channel (its status is {status!r}); "
            'make it an administrator with "Post messages"'
        )
    if status in ("administrator", "member"):
        return None
    if status == "restricted" and member.get("can_send_messages"):
        return None
    return f"The bot may not send messages in this group (its status is {status!r})"


CONNECTOR = TelegramConnector()
