"""Slack: `chat.postMessage` with a bot token; images as image blocks that Slack downloads
itself (the URL is checked first). Errors arrive as HTTP 200 `{"ok": false, "error": ...}`,
rate limits as HTTP 429 with Retry-After. With token rotation on, tokens last 12 h and refresh
through `oauth.v2.access` (the old refresh token is revoked).

No idempotency: NONE.

Read-back: every message carries the delivery id in its message metadata. `conversations.history`
(scope `channels:history`, `include_all_metadata`) from the moment the delivery was due is
strongly consistent and, read until `has_more` is false, complete: our marker there means
published; no marker and no message with our text means not published. A message with our
text but no marker (sent before markers, or by a person), a listing longer than MAX_PAGES, a
missing scope or any error: we cannot tell.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import httpx

from postpilot.core import outcomes, readback
from postpilot.core.transitions import Recovery
from postpilot.publishers import budgets, errors, flow
from postpilot.publishers.base import (
    AccountContext,
    Lookup,
    PublishContext,
    PublishRequest,
    RefreshFailed,
    RefreshResult,
)
from postpilot.publishers.fields import AccountFields, credential, option

DEFAULT_BASE = "https://slack.com"
TOKEN_ERRORS = frozenset(
    {"not_authed", "invalid_auth", "token_revoked", "token_expired", "account_inactive"}
)
RATE_ERRORS = frozenset({"ratelimited", "rate_limited"})
SERVER_ERRORS = frozenset({"internal_error", "fatal_error", "service_unavailable"})
MARKER_EVENT = "postpilot_delivery"  # message metadata event type carrying the delivery id
HISTORY_PAGE = 200
MAX_PAGES = 10


class SlackPublisher(flow.StepwisePublisher):
    platform: ClassVar[str] = "slack"
    max_in_flight_per_account: ClassVar[int] = 1
    recovery: ClassVar[Recovery] = Recovery.NONE
    can_refresh: ClassVar[bool] = True
    account_fields: ClassVar[AccountFields] = AccountFields(
        (
            credential("access_token", "A bot token with chat:write.", required=True),
            credential("refresh_token", "With token rotation: the refresh token."),
            credential("client_id", "With token rotation: the app's client id.", secret=False),
            credential("client_secret", "With token rotation: the app's client secret."),
            option("channel", "The channel's id.", required=True),
        ),
    )

    async def _publish(self, request: PublishRequest, ctx: PublishContext) -> outcomes.Outcome:
        account = request.account
        token, channel = account.credentials.get("access_token"), account.options.get("channel")
        if not channel:
            return outcomes.Permanent("slack: the account has no channel option")
        if not token:
            return outcomes.TokenExpired("slack: the account has no bot token")
        key = budgets.account_key(self.platform, f"{account.id}:{channel}")
        await flow.check_budget(ctx, self.platform, [key])
        body: dict[str, Any] = {"channel": channel, "text": request.text}
        body["metadata"] = {
            "event_type": MARKER_EVENT,
            "event_payload": {"delivery_id": request.delivery_id},
        }
        if request.media_urls:
            blocks: list[dict[str, Any]] = []
            if request.text.strip():
                blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": request.text}})
            for url in request.media_urls:
                image_url = await flow.media_for_platform(ctx, url)
                blocks.append({"type": "image", "image_url": image_url, "alt_text": "image"})
            body["blocks"] = blocks
        base = ctx.base_url(self.platform, account, DEFAULT_BASE)
        response = await flow.send(
            ctx,
            "POST",
            f"{base}/api/chat.postMessage",
            what="slack message",
            final=True,
            json=body,
            headers={"Authorization": f"Bearer {token}"},
        )
        answer = flow.body_of(response)
        if response.status_code == 200 and answer.get("ok"):
            return outcomes.Published(f"{answer['channel']}:{answer['ts']}", url=None)
        return await _failure(response, answer, request, ctx, key)

    async def find_published(self, lookup: Lookup, ctx: PublishContext) -> readback.ReadBack:
        account = lookup.request.account
        token, channel = account.credentials.get("access_token"), account.options.get("channel")
        if not token or not channel:
            return readback.CannotTell("slack: the account has no bot token or channel")
        base = ctx.base_url(self.platform, account, DEFAULT_BASE)
        params = {
            "channel": str(channel),
            "oldest": f"{lookup.since.timestamp():.6f}",
            "limit": str(HISTORY_PAGE),
            "include_all_metadata": "true",
        }
        where = f"slack channel {channel} history"
        candidates: list[readback.Candidate] = []
        for _ in range(MAX_PAGES):
            try:
                response = await ctx.http.get(
                    f"{base}/api/conversations.history",
                    params=params,
                    headers={"Authorization": f"Bearer {token}"},
                )
            except httpx.TransportError as exc:
                return readback.CannotTell(f"{where}: {type(exc).__name__}")
            answer = flow.body_of(response)
            if response.status_code != 200 or not answer.get("ok"):
                error = answer.get("error") or f"HTTP {response.status_code}"
                return readback.CannotTell(f"{where}: {error}")
            candidates.extend(_candidate(str(channel), m) for m in answer.get("messages") or [])
            cursor = (answer.get("response_metadata") or {}).get("next_cursor")
            if not answer.get("has_more"):
                listing = readback.Listing(tuple(candidates), complete=True, where=where)
                break
            if not cursor:
                return readback.CannotTell(f"{where}: more messages but no cursor")
            params["cursor"] = str(cursor)
        else:
            listing = readback.Listing(tuple(candidates), complete=False, where=where)
        return readback.decide(
            listing,
            text=lookup.request.text,
            since=lookup.since,
            marker=lookup.request.delivery_id,
            taken=lookup.taken,
        )

    async def refresh(self, account: AccountContext, ctx: PublishContext) -> RefreshResult:
        credentials = account.credentials
        needed = ("refresh_token", "client_id", "client_secret")
        if not all(credentials.get(name) for name in needed):
            return RefreshFailed(
                "Slack rejected the bot token and it has no refresh token (token rotation is "
                "off): reinstall the app in the workspace and reconnect"
            )
        base = ctx.base_url(self.platform, account, DEFAULT_BASE)
        try:
            response = await ctx.http.post(
                f"{base}/api/oauth.v2.access",
                data={"grant_type": "refresh_token", **{n: credentials[n] for n in needed}},
            )
        except httpx.TransportError as exc:
            return flow.refresh_unavailable("Slack", exc)
        body = flow.body_of(response)
        if response.status_code == 429 or response.status_code >= 500:
            return flow.refresh_unavailable("Slack", response)
        if not body.get("ok") or not body.get("access_token"):
            return RefreshFailed(
                f"Slack refused to refresh the token ({body.get('error', 'no answer')}): "
                "reinstall the app in the workspace and reconnect"
            )
        return flow.refreshed(credentials, body, ctx.now())


async def _failure(
    response: httpx.Response,
    answer: dict[str, Any],
    request: PublishRequest,
    ctx: PublishContext,
    key: str,
) -> outcomes.Outcome:
    error = str(answer.get("error") or f"HTTP {response.status_code}")
    message = f"slack chat.postMessage: {error}"
    if details := answer.get("errors"):
        message += f" ({'; '.join(str(d) for d in details)})"
    if error in TOKEN_ERRORS:
        return outcomes.TokenExpired(message)
    if response.status_code == 429 or error in RATE_ERRORS:
        seconds = errors.retry_after_seconds(response) or 1.0
        until = ctx.now() + timedelta(seconds=seconds)
        await ctx.budgets.spend(key, until=until, reason=message)
        return outcomes.RateLimited(until=until, reason=message)
    if response.status_code >= 500:
        return errors.server_error_outcome(response, "slack chat.postMessage")
    if error in SERVER_ERRORS:
        return outcomes.Ambiguous(message)
    if error == "invalid_blocks" and "image" in message and request.media_urls:
        return outcomes.Permanent(
            f"slack could not download the image {', '.join(request.media_urls)}: {message}"
        )
    return outcomes.Permanent(message)


def _candidate(channel: str, message: dict[str, Any]) -> readback.Candidate:
    """A history message, its id `channel:ts` as `publish` records it."""
    metadata = message.get("metadata") or {}
    payload = metadata.get("event_payload") or {}
    marker = payload.get("delivery_id") if metadata.get("event_type") == MARKER_EVENT else None
    ts = str(message.get("ts") or "")
    try:
        at: datetime | None = datetime.fromtimestamp(float(ts), UTC)
    except ValueError:
        at = None
    text = str(message.get("text") or "")
    text = text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    marker = str(marker) if marker else None
    return readback.Candidate(id=f"{channel}:{ts}", text=text, at=at, marker=marker)
