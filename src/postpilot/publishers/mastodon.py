"""Mastodon: `POST /api/v1/statuses` with an Idempotency-Key, media via `POST /api/v2/media`."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import ClassVar

import httpx

from postpilot.core import outcomes
from postpilot.core.transitions import Recovery
from postpilot.publishers import budgets, chain, errors, flow, urls
from postpilot.publishers.base import (
    AccountContext,
    PublishContext,
    PublishRequest,
    RefreshFailed,
    RefreshResult,
)
from postpilot.publishers.fields import AccountFields, credential, option
from postpilot.publishers.media import MediaError
from postpilot.publishers.parts import Part, SentPart

MEDIA_POLL_ATTEMPTS = 10
MEDIA_POLL_SECONDS = 0.5


class MastodonPublisher:
    platform: ClassVar[str] = "mastodon"
    max_in_flight_per_account: ClassVar[int] = 4
    recovery: ClassVar[Recovery] = Recovery.IDEMPOTENT
    can_refresh: ClassVar[bool] = False
    account_fields: ClassVar[AccountFields] = AccountFields(
        (
            credential(
                "access_token",
                "An application's token with the write:statuses and write:media scopes.",
                required=True,
            ),
            option("visibility", "public (the default), unlisted, private or direct."),
        ),
        base_url="The instance, e.g. https://mastodon.social.",
        needs_base_url=True,
    )

    async def publish(self, request: PublishRequest, ctx: PublishContext) -> outcomes.Outcome:
        base = ctx.base_url(self.platform, request.account, default="")
        if not base:
            return outcomes.Permanent("mastodon: the account has no instance URL (base_url)")
        headers = {"Authorization": f"Bearer {request.account.credentials.get('access_token', '')}"}
        key = budgets.account_key(self.platform, request.account.id)
        spent = await ctx.budgets.blocked_until([key], ctx.now())
        if spent is not None:
            return outcomes.RateLimited(
                until=spent.reset_at,
                reason=f"mastodon: rate-limit budget spent until {spent.reset_at.isoformat()}",
            )

        async def send(
            index: int, part: Part, before: tuple[SentPart, ...]
        ) -> SentPart | outcomes.Outcome:
            # Each part replies to the one before it, under a key of its own, so a retry
            # of a part the instance already took returns that status again.
            reply_to = before[-1].platform_post_id if before else None
            return await self._status(base, headers, request, part, reply_to, index, ctx)

        return await chain.publish_parts(request, send)

    async def _status(
        self,
        base: str,
        headers: dict[str, str],
        request: PublishRequest,
        part: Part,
        reply_to: str | None,
        index: int,
        ctx: PublishContext,
    ) -> SentPart | outcomes.Outcome:
        account_key = budgets.account_key(self.platform, request.account.id)
        try:
            media_ids = [await self._upload(base, url, headers, ctx) for url in part.media_urls]
            body: dict[str, object] = {
                "status": part.text,
                "media_ids": media_ids,
                "visibility": request.account.options.get("visibility", "public"),
            }
            if reply_to is not None:
                body["in_reply_to_id"] = reply_to
            response = await ctx.http.post(
                f"{base}/api/v1/statuses",
                json=body,
                headers={**headers, "Idempotency-Key": chain.part_key(request, index)},
            )
        except flow.Stop as stop:
            return stop.outcome
        except httpx.TransportError as exc:
            return errors.transport_outcome(exc, "mastodon status")
        await ctx.budgets.update(
            account_key,
            remaining=budgets.parse_int(response.headers.get("x-ratelimit-remaining")),
            reset_at=errors.reset_from_iso(response.headers.get("x-ratelimit-reset"), ctx.now()),
            reason="mastodon limit",
        )
        if response.status_code == 200:
            status = response.json()
            return SentPart(index, platform_post_id=str(status["id"]), url=status.get("url"))
        return self._failure(response, ctx, "status")

    async def refresh(self, account: AccountContext, ctx: PublishContext) -> RefreshResult:
        return RefreshFailed("Mastodon access tokens do not expire and cannot be refreshed")

    async def _upload(
        self, base: str, url: str, headers: dict[str, str], ctx: PublishContext
    ) -> str:
        try:
            media = await ctx.media.fetch(url)
        except MediaError as exc:
            raise flow.Stop(outcomes.Permanent(str(exc))) from exc
        try:
            response = await ctx.http.post(
                f"{base}/api/v2/media",
                files={"file": (media.filename, media.content, media.content_type)},
                data={"description": media.description} if media.description else None,
                headers=headers,
            )
            if response.status_code not in (200, 202):
                raise flow.Stop(self._failure(response, ctx, "media upload"))
            attachment = response.json()
            media_id = str(attachment["id"])
            if response.status_code == 202 or attachment.get("url") is None:
                await self._wait_processed(base, media_id, headers, ctx)
            return media_id
        except httpx.TransportError as exc:
            # The status was not sent yet, so nothing can have been published: retry is safe.
            raise flow.Stop(errors.unsent_outcome(exc, "mastodon media upload")) from exc

    async def _wait_processed(
        self, base: str, media_id: str, headers: dict[str, str], ctx: PublishContext
    ) -> None:
        for _ in range(MEDIA_POLL_ATTEMPTS):
            response = await ctx.http.get(
                f"{base}/api/v1/media/{urls.segment(media_id)}", headers=headers
            )
            if response.status_code == 200:
                return
            if response.status_code != 206:
                raise flow.Stop(self._failure(response, ctx, "media processing"))
            await asyncio.sleep(MEDIA_POLL_SECONDS)
        raise flow.Stop(outcomes.Transient("mastodon: media still processing", 30.0))

    def _failure(
        self, response: httpx.Response, ctx: PublishContext, what: str
    ) -> outcomes.Outcome:
        message = f"mastodon {what}: {errors.error_text(response)}"
        code = response.status_code
        if code == 401:
            # The step does not matter to a person fixing a token: keep the message stable.
            return outcomes.TokenExpired(
                f"mastodon rejected the access token: {errors.error_text(response)}"
            )
        if code == 429:
            fallback = ctx.now() + timedelta(minutes=5)
            until = errors.reset_from_iso(response.headers.get("x-ratelimit-reset"), fallback)
            return outcomes.RateLimited(until=until, reason=message)
        if code == 422 and "not finished processing" in message:
            return outcomes.Transient(message, retry_after_seconds=5.0)
        if code >= 500:
            return errors.server_error_outcome(response, f"mastodon {what}")
        return outcomes.Permanent(message)
