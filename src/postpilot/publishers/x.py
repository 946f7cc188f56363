"""X API v2: `POST /2/tweets`, images via `POST /2/media/upload` (ids reused until they expire),
OAuth 2.0 refresh at `/2/oauth2/token`.

X has no idempotency key; it refuses recently repeated text with a 403, which after an attempt
that may have gone through means "already posted" (VERIFIABLE).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, ClassVar

import httpx

from postpilot.core import outcomes
from postpilot.core.transitions import Recovery
from postpilot.publishers import budgets, chain, errors, flow
from postpilot.publishers.base import (
    AccountContext,
    PublishContext,
    PublishRequest,
    RefreshFailed,
    RefreshResult,
)
from postpilot.publishers.fields import AccountFields, credential, option
from postpilot.publishers.parts import Part, SentPart

DEFAULT_BASE = "https://api.x.com"
MEDIA_ID_MARGIN_SECONDS = 600.0  # stop reusing a media id this long before X forgets it
DUPLICATE_CODE = 187
REPLY_NOT_VISIBLE_CODE = 385


class XPublisher(flow.StepwisePublisher):
    platform: ClassVar[str] = "x"
    max_in_flight_per_account: ClassVar[int] = 4
    recovery: ClassVar[Recovery] = Recovery.VERIFIABLE
    can_refresh: ClassVar[bool] = True
    account_fields: ClassVar[AccountFields] = AccountFields(
        (
            credential("access_token", "OAuth 2.0 user access token.", required=True),
            credential("refresh_token", "OAuth 2.0 refresh token (needs offline.access)."),
            credential("client_id", "The app's OAuth 2.0 client id, to refresh.", secret=False),
            credential("client_secret", "The app's client secret (confidential clients only)."),
            option("client_id", "The app's client id, when not among the credentials."),
        ),
    )

    async def _publish(self, request: PublishRequest, ctx: PublishContext) -> outcomes.Outcome:
        account = request.account
        token = account.credentials.get("access_token")
        if not token:
            return outcomes.TokenExpired("x: the account has no access token")
        base = ctx.base_url(self.platform, account, DEFAULT_BASE)
        headers = {"Authorization": f"Bearer {token}"}
        keys = _budget_keys(account)
        await flow.check_budget(ctx, self.platform, keys)

        async def send(
            index: int, part: Part, before: tuple[SentPart, ...]
        ) -> SentPart | outcomes.Outcome:
            try:
                return await self._tweet(request, index, part, before, base, headers, keys, ctx)
            except flow.Stop as stop:
                return stop.outcome

        return await chain.publish_parts(request, send)

    async def _tweet(
        self,
        request: PublishRequest,
        index: int,
        part: Part,
        before: tuple[SentPart, ...],
        base: str,
        headers: dict[str, str],
        keys: list[str],
        ctx: PublishContext,
    ) -> SentPart | outcomes.Outcome:
        """One part: the post, or a reply to the part before it. X has no idempotency key, so
        a part whose request may have gone out is never sent again blindly (the engine's
        journal and `unknown` see to it)."""
        account = request.account
        media_ids, cached = [], False
        for url in part.media_urls:
            media_id, from_cache = await self._media_id(base, url, headers, account, ctx)
            media_ids.append(media_id)
            cached = cached or from_cache
        payload: dict[str, Any] = {"text": part.text}
        if media_ids:
            payload["media"] = {"media_ids": media_ids}
        if before:
            payload["reply"] = {"in_reply_to_tweet_id": before[-1].platform_post_id}
        response = await flow.send(
            ctx,
            "POST",
            f"{base}/2/tweets",
            what="x post",
            final=True,
            json=payload,
            headers=headers,
        )
        await _note_budget(response, ctx, keys)
        if response.status_code in (200, 201):
            tweet_id = str(flow.body_of(response)["data"]["id"])
            return SentPart(index, tweet_id, url=_tweet_url(account, tweet_id))
        message = f"x post: {_error_text(response)}"
        if response.status_code == 400 and "media ids are invalid" in message.lower() and cached:
            for url in part.media_urls:
                await ctx.uploads.forget(self.platform, account.id, url)
            return outcomes.Transient(f"{message} (a reused media id expired; uploading again)", 0)
        if response.status_code == 403 and before and _is_hidden_parent(response):
            # Seen right after the parent was created: nothing was posted, try again soon.
            return outcomes.Transient(f"{message} (replying to part {index})", 30.0)
        if response.status_code == 403 and _is_duplicate(response):
            if chain.has_parts(request) and (request.recovered or request.attempt > 1):
                # Sent by an earlier attempt, but X does not say under which id: nothing can
                # reply to it, and sending it again is what X just refused.
                return outcomes.Permanent(
                    "x says an earlier attempt already posted this part, without its id: the "
                    "rest of the thread cannot reply to it; post the rest by hand"
                )
            if request.recovered or request.attempt > 1:
                # An earlier attempt of this delivery reached X: the duplicate is our post.
                return SentPart(index, "", existed=True)
            return outcomes.Permanent(
                "x refused the post as a duplicate of a recent post with the same text; "
                "change the text to post it again"
            )
        return await _failure(response, ctx, keys, message)

    async def _media_id(
        self,
        base: str,
        url: str,
        headers: dict[str, str],
        account: AccountContext,
        ctx: PublishContext,
    ) -> tuple[str, bool]:
        cached = await ctx.uploads.get(self.platform, account.id, url)
        if isinstance(cached, str):
            return cached, True
        media = await flow.fetch_media(ctx, url)
        response = await flow.send(
            ctx,
            "POST",
            f"{base}/2/media/upload",
            what="x media upload",
            final=False,
            files={"media": (media.filename, media.content, media.content_type)},
            data={"media_category": "tweet_image"},
            headers=headers,
        )
        if response.status_code not in (200, 201):
            message = f"x media upload of {url}: {_error_text(response)}"
            if response.status_code == 400:
                raise flow.Stop(outcomes.Permanent(message))
            raise flow.Stop(await _failure(response, ctx, _budget_keys(account), message))
        data = flow.body_of(response).get("data") or {}
        media_id = str(data["id"])
        ttl = float(data.get("expires_after_secs") or 0) - MEDIA_ID_MARGIN_SECONDS
        await ctx.uploads.put(self.platform, account.id, url, media_id, ttl)
        return media_id, False

    async def refresh(self, account: AccountContext, ctx: PublishContext) -> RefreshResult:
        credentials = account.credentials
        refresh_token = credentials.get("refresh_token")
        if not refresh_token:
            return RefreshFailed(
                "X gave this account no refresh token (the app must request offline.access): "
                "reconnect the account"
            )
        client_id = credentials.get("client_id") or account.options.get("client_id") or ""
        secret = credentials.get("client_secret")
        base = ctx.base_url(self.platform, account, DEFAULT_BASE)
        try:
            response = await ctx.http.post(
                f"{base}/2/oauth2/token",
                data={
                    "grant_type": "refresh_token",
                    "refresh_token": refresh_token,
                    "client_id": client_id,
                },
                auth=httpx.BasicAuth(client_id, str(secret))
                if secret
                else httpx.USE_CLIENT_DEFAULT,
            )
        except httpx.TransportError as exc:
            return flow.refresh_unavailable("X", exc)
        if response.status_code == 429 or response.status_code >= 500:
            return flow.refresh_unavailable("X", response)
        body = flow.body_of(response)
        if response.status_code != 200 or not body.get("access_token"):
            return RefreshFailed(
                f"X refused to refresh the token ({errors.error_text(response)}): "
                "reconnect the account"
            )
        return flow.refreshed(credentials, body, ctx.now())


def _budget_keys(account: AccountContext) -> list[str]:
    app = str(account.credentials.get("client_id") or account.options.get("client_id") or "app")
    return [budgets.account_key("x", account.id), budgets.app_key("x", app)]


def _tweet_url(account: AccountContext, tweet_id: str) -> str | None:
    handle = account.handle.lstrip("@")
    return f"https://x.com/{handle}/status/{tweet_id}" if handle else None


def _is_duplicate(response: httpx.Response) -> bool:
    body = flow.body_of(response)
    if "duplicate" in str(body.get("detail", "")).lower():
        return True
    return any(
        isinstance(e, dict) and e.get("code") == DUPLICATE_CODE for e in body.get("errors") or []
    )


def _is_hidden_parent(response: httpx.Response) -> bool:
    """X's "reply to a Tweet that is deleted or not visible to you" (code 385)."""
    body = flow.body_of(response)
    return any(
        isinstance(e, dict) and e.get("code") == REPLY_NOT_VISIBLE_CODE
        for e in body.get("errors") or []
    ) or "not visible to you" in str(body.get("detail", ""))


def _error_text(response: httpx.Response) -> str:
    body = flow.body_of(response)
    for item in body.get("errors") or []:
        if isinstance(item, dict) and item.get("message"):
            return str(item["message"])[:300]
    return errors.error_text(response)


def _limits(response: httpx.Response, prefix: str) -> tuple[int | None, datetime | None]:
    remaining = budgets.parse_int(response.headers.get(f"{prefix}-remaining"))
    return remaining, errors.epoch_or_none(response.headers.get(f"{prefix}-reset"))


async def _note_budget(response: httpx.Response, ctx: PublishContext, keys: list[str]) -> None:
    """The per-user window and the per-user day both bound the account; the app's day the app."""
    known: list[tuple[int, datetime]] = []
    for prefix in ("x-rate-limit", "x-user-limit-24hour"):
        remaining, reset = _limits(response, prefix)
        if remaining is not None and reset is not None:
            known.append((remaining, reset))
    if known:
        remaining, reset = min(known, key=lambda pair: (pair[0], -pair[1].timestamp()))
        await ctx.budgets.update(
            keys[0], remaining=remaining, reset_at=reset, reason="x user limit"
        )
    remaining, reset = _limits(response, "x-app-limit-24hour")
    await ctx.budgets.update(keys[1], remaining=remaining, reset_at=reset, reason="x app limit")


async def _failure(
    response: httpx.Response, ctx: PublishContext, keys: list[str], message: str
) -> outcomes.Outcome:
    code = response.status_code
    if code == 401:
        return outcomes.TokenExpired(f"x rejected the access token ({message})")
    if code == 429:
        fallback = ctx.now() + timedelta(minutes=15)
        resets = [
            errors.reset_from_epoch(response.headers.get(f"{prefix}-reset"), fallback)
            for prefix in ("x-rate-limit", "x-user-limit-24hour", "x-app-limit-24hour")
            if response.headers.get(f"{prefix}-remaining") == "0"
        ]
        until = max(resets) if resets else fallback
        await ctx.budgets.spend(keys[0], until=until, reason=message)
        return outcomes.RateLimited(until=until, reason=message)
    if code >= 500:
        return errors.server_error_outcome(response, "x")
    return outcomes.Permanent(message)
