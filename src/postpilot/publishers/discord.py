"""Discord webhooks: `POST /api/webhooks/{id}/{token}?wait=true` (so the message id comes back),
images uploaded as `files[n]` with `payload_json`. The secret is the webhook URL; nothing to
refresh. Buckets are per webhook: X-RateLimit-Remaining / -Reset-After feed the budget.

No idempotency for webhooks: NONE.

Read-back only with a bot token (credential `bot_token`, the bot a member of the webhook's
channel, option `channel_id`): a webhook can fetch one of its messages only by the id the
answer carried. `GET /api/v10/channels/{channel_id}/messages?after=<id of the window start>`
(ids are snowflakes, so they order by time), paged forward until a page comes back short
(complete) or MAX_PAGES were read (cut). Webhook messages carry no marker: ours is the one
message our webhook (`webhook_id`) sent with exactly our text since the delivery was due; two
such messages, a cut listing or any error: we cannot tell. Without a bot token: a person.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import urlsplit

import httpx

from postpilot.core import outcomes, readback
from postpilot.core.transitions import Recovery
from postpilot.publishers import budgets, errors, flow, urls
from postpilot.publishers.base import (
    AccountContext,
    Lookup,
    PublishContext,
    PublishRequest,
    RefreshFailed,
    RefreshResult,
)
from postpilot.publishers.fields import AccountFields, credential, option

DEFAULT_BASE = "https://discord.com"
GONE_CODES = (10015, 50027)  # Unknown Webhook, Invalid Webhook Token
DISCORD_EPOCH_MS = 1_420_070_400_000  # snowflakes count milliseconds from 2015
PAGE = 100
MAX_PAGES = 10


def webhook_parts(credentials: dict[str, Any]) -> tuple[str, str] | None:
    """(id, token) from `webhook_id` + `webhook_token` or from a pasted webhook URL."""
    if credentials.get("webhook_id") and credentials.get("webhook_token"):
        return str(credentials["webhook_id"]), str(credentials["webhook_token"])
    parts = urlsplit(str(credentials.get("webhook_url") or "")).path.strip("/").split("/")
    if "webhooks" in parts and len(parts) >= parts.index("webhooks") + 3:
        at = parts.index("webhooks")
        return parts[at + 1], parts[at + 2]
    return None


class DiscordPublisher(flow.StepwisePublisher):
    platform: ClassVar[str] = "discord"
    max_in_flight_per_account: ClassVar[int] = 1
    recovery: ClassVar[Recovery] = Recovery.NONE
    can_refresh: ClassVar[bool] = False
    account_fields: ClassVar[AccountFields] = AccountFields(
        (
            credential("webhook_url", "The webhook's URL (.../api/webhooks/<id>/<token>)."),
            credential("webhook_id", "The webhook's id, with webhook_token.", secret=False),
            credential("webhook_token", "The webhook's token, with webhook_id."),
            credential("bot_token", "A bot in the channel, to read it back (with channel_id)."),
            option("username", "The name the messages are posted under."),
            option("guild_id", "The server's id, to link to the messages."),
            option("channel_id", "The webhook's channel: links, and read-back with bot_token."),
        ),
        credential_sets=(("webhook_url",), ("webhook_id", "webhook_token")),
    )

    async def _publish(self, request: PublishRequest, ctx: PublishContext) -> outcomes.Outcome:
        account = request.account
        webhook = webhook_parts(account.credentials)
        if webhook is None:
            return outcomes.Permanent("discord: the account has no webhook URL")
        webhook_id, token = webhook
        key = budgets.account_key(self.platform, webhook_id)
        await flow.check_budget(ctx, self.platform, [key])
        payload: dict[str, Any] = {"content": request.text, "allowed_mentions": {"parse": []}}
        if username := account.options.get("username"):
            payload["username"] = username
        files = {}
        for index, url in enumerate(request.media_urls):
            media = await flow.fetch_media(ctx, url)
            name = f"image{index}.{media.filename.rsplit('.', 1)[-1]}"
            files[f"files[{index}]"] = (name, media.content, media.content_type)
        payload["attachments"] = [{"id": i, "filename": f[0]} for i, f in enumerate(files.values())]
        base = ctx.base_url(self.platform, account, DEFAULT_BASE)
        kwargs: dict[str, Any] = (
            {"data": {"payload_json": json.dumps(payload)}, "files": files}
            if files
            else {"json": payload}
        )
        response = await flow.send(
            ctx,
            "POST",
            f"{base}/api/webhooks/{urls.segment(webhook_id)}/{urls.segment(token)}",
            what="discord webhook",
            final=True,
            params={"wait": "true"},
            **kwargs,
        )
        await _note_budget(response, ctx, key)
        if response.status_code == 200:
            message = flow.body_of(response)
            return outcomes.Published(str(message["id"]), url=_message_url(account, message))
        return await _failure(response, ctx, key)

    async def find_published(self, lookup: Lookup, ctx: PublishContext) -> readback.ReadBack:
        account = lookup.request.account
        bot, channel = account.credentials.get("bot_token"), account.options.get("channel_id")
        webhook = webhook_parts(account.credentials)
        if not bot or not channel or webhook is None:
            return readback.CannotTell(
                "discord: reading a channel back needs a bot token and the channel_id option"
            )
        where = f"discord channel {channel}"
        url = f"{ctx.base_url(self.platform, account, DEFAULT_BASE)}/api/v10/channels/{channel}"
        after = snowflake(lookup.since)
        candidates: list[readback.Candidate] = []
        complete = False
        for _ in range(MAX_PAGES):
            try:
                response = await ctx.http.get(
                    f"{url}/messages",
                    params={"after": str(after), "limit": str(PAGE)},
                    headers={"Authorization": f"Bot {bot}"},
                )
            except httpx.TransportError as exc:
                return readback.CannotTell(f"{where}: {type(exc).__name__}")
            page = _messages(response)
            if page is None:
                return readback.CannotTell(f"{where}: {errors.error_text(response)}")
            ours = [m for m in page if str(m.get("webhook_id")) == webhook[0]]
            candidates.extend(_candidate(m, account) for m in ours)
            if len(page) < PAGE:
                complete = True
                break
            after = max(int(m["id"]) for m in page)
        listing = readback.Listing(tuple(candidates), complete=complete, where=where)
        return readback.decide(
            listing, text=lookup.request.text, since=lookup.since, taken=lookup.taken
        )

    async def refresh(self, account: AccountContext, ctx: PublishContext) -> RefreshResult:
        return RefreshFailed(
            "the Discord webhook was deleted or its token reset: create a new webhook in the "
            "channel's settings and reconnect it"
        )


def snowflake(at: datetime) -> int:
    """The smallest Discord id of a message sent at `at`."""
    return max(0, int(at.timestamp() * 1000) - DISCORD_EPOCH_MS) << 22


def _messages(response: httpx.Response) -> list[dict[str, Any]] | None:
    """A page of channel messages, each with a numeric id; None for any other answer."""
    if response.status_code != 200:
        return None
    try:
        page = response.json()
    except ValueError:
        return None
    if not isinstance(page, list) or not all(
        isinstance(m, dict) and str(m.get("id", "")).isdigit() for m in page
    ):
        return None
    return page


def _candidate(message: dict[str, Any], account: AccountContext) -> readback.Candidate:
    try:
        at: datetime | None = datetime.fromisoformat(str(message.get("timestamp")))
    except ValueError:
        at = None
    return readback.Candidate(
        id=str(message.get("id")),
        text=str(message.get("content") or ""),
        at=at,
        url=_message_url(account, message),
    )


def _message_url(account: AccountContext, message: dict[str, Any]) -> str | None:
    guild = account.options.get("guild_id")
    channel = message.get("channel_id") or account.options.get("channel_id")
    if guild and channel:
        return f"https://discord.com/channels/{guild}/{channel}/{message['id']}"
    return None


def _seconds(response: httpx.Response) -> float | None:
    body = flow.body_of(response)
    for value in (body.get("retry_after"), response.headers.get("x-ratelimit-reset-after")):
        try:
            if value is not None:
                return float(value)
        except (TypeError, ValueError):
            continue
    return errors.retry_after_seconds(response)


async def _note_budget(response: httpx.Response, ctx: PublishContext, key: str) -> None:
    reset_after = response.headers.get("x-ratelimit-reset-after")
    if reset_after is None:
        return
    await ctx.budgets.update(
        key,
        remaining=budgets.parse_int(response.headers.get("x-ratelimit-remaining")),
        reset_at=ctx.now() + timedelta(seconds=float(reset_after)),
        reason=f"discord bucket {response.headers.get('x-ratelimit-bucket', '')}".strip(),
    )


async def _failure(response: httpx.Response, ctx: PublishContext, key: str) -> outcomes.Outcome:
    body = flow.body_of(response)
    message = f"discord: {body.get('message') or errors.error_text(response)}"
    if code := body.get("code"):
        message += f" (code {code})"
    if response.status_code in (401, 404) and body.get("code") in GONE_CODES:
        return outcomes.TokenExpired(message)
    if response.status_code == 429:
        until = ctx.now() + timedelta(seconds=_seconds(response) or 5.0)
        await ctx.budgets.spend(key, until=until, reason=message)
        return outcomes.RateLimited(until=until, reason=message)
    if response.status_code >= 500:
        return errors.server_error_outcome(response, "discord")
    return outcomes.Permanent(message)
