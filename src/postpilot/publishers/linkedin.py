"""LinkedIn Posts API: `POST /rest/posts` (201, the URN in `x-restli-id`), an image through
`/rest/images?action=initializeUpload` and a PUT of its bytes (image URNs reused per account),
refresh at `/oauth/v2/accessToken` for partner apps.

VERIFIABLE: a repeat is refused with 422 DUPLICATE_POST naming the existing post.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

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
from postpilot.publishers.parts import Part, SentPart

DEFAULT_BASE = "https://api.linkedin.com"
DEFAULT_OAUTH_BASE = "https://www.linkedin.com"
DEFAULT_VERSION = "202410"
IMAGE_TTL_SECONDS = 7 * 86_400.0
_DUPLICATE_OF = re.compile(r"duplicate of (urn:li:[A-Za-z]+:[\w-]+)")
# "little text format": these characters must be escaped or the text is cut.
_RESERVED = re.compile(r"([\\|{}@\[\]()<>*_~])")


def escape_commentary(text: str) -> str:
    return _RESERVED.sub(r"\\\1", text)


def next_utc_midnight(now: datetime) -> datetime:
    """LinkedIn's daily quotas reset at 00:00 UTC."""
    day = now.astimezone(UTC).date() + timedelta(days=1)
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


class LinkedInPublisher(flow.StepwisePublisher):
    platform: ClassVar[str] = "linkedin"
    max_in_flight_per_account: ClassVar[int] = 2
    recovery: ClassVar[Recovery] = Recovery.VERIFIABLE
    can_refresh: ClassVar[bool] = True
    account_fields: ClassVar[AccountFields] = AccountFields(
        (
            credential("access_token", "A member or organization access token.", required=True),
            credential("refresh_token", "Refresh token (approved partner apps only)."),
            credential("client_id", "The app's client id, to refresh.", secret=False),
            credential("client_secret", "The app's client secret, to refresh."),
            option(
                "author_urn",
                "urn:li:person:... or urn:li:organization:... the posts are by.",
                required=True,
            ),
            option("linkedin_version", f"LinkedIn-Version (default {DEFAULT_VERSION})."),
            option("visibility", "PUBLIC (the default) or CONNECTIONS."),
        ),
    )

    async def _publish(self, request: PublishRequest, ctx: PublishContext) -> outcomes.Outcome:
        account = request.account
        token, author = account.credentials.get("access_token"), account.options.get("author_urn")
        if not author:
            return outcomes.Permanent("linkedin: the account has no author_urn option")
        if not token:
            return outcomes.TokenExpired("linkedin: the account has no access token")
        base = ctx.base_url(self.platform, account, DEFAULT_BASE)
        headers = {
            "Authorization": f"Bearer {token}",
            "LinkedIn-Version": str(account.options.get("linkedin_version") or DEFAULT_VERSION),
            "X-Restli-Protocol-Version": "2.0.0",
        }
        key = budgets.account_key(self.platform, account.id)
        await flow.check_budget(ctx, self.platform, [key])

        async def send(
            index: int, part: Part, before: tuple[SentPart, ...]
        ) -> SentPart | outcomes.Outcome:
            try:
                if before:  # the first comment, on the post
                    return await self._comment(
                        base, headers, author, key, (index, part), before[0], ctx
                    )
                return await self._post(request, base, headers, author, ctx)
            except flow.Stop as stop:
                return stop.outcome

        return await chain.publish_parts(request, send)

    async def _post(
        self,
        request: PublishRequest,
        base: str,
        headers: dict[str, str],
        author: str,
        ctx: PublishContext,
    ) -> SentPart | outcomes.Outcome:
        account = request.account
        key = budgets.account_key(self.platform, account.id)
        body: dict[str, Any] = {
            "author": author,
            "commentary": escape_commentary(request.text),
            "visibility": account.options.get("visibility", "PUBLIC"),
            "distribution": {
                "feedDistribution": "MAIN_FEED",
                "targetEntities": [],
                "thirdPartyDistributionChannels": [],
            },
            "lifecycleState": "PUBLISHED",
            "isReshareDisabledByAuthor": False,
        }
        if request.media_urls:
            image = await self._image(base, request.media_urls[0], author, headers, account, ctx)
            body["content"] = {"media": {"id": image, "altText": ""}}
        response = await flow.send(
            ctx,
            "POST",
            f"{base}/rest/posts",
            what="linkedin post",
            final=True,
            json=body,
            headers=headers,
        )
        if response.status_code == 201:
            urn = response.headers.get("x-restli-id") or response.headers.get("x-linkedin-id", "")
            return SentPart(0, urn, url=_post_url(urn))
        message = f"linkedin post: {errors.error_text(response)}"
        if response.status_code == 422 and (match := _DUPLICATE_OF.search(response.text)):
            urn = match.group(1)
            if request.recovered or request.attempt > 1:
                # The duplicate answer names the post: a first comment can still go on it.
                return SentPart(0, urn, url=_post_url(urn), existed=True)
            return outcomes.Permanent(
                f"linkedin refused the post as a duplicate of {urn}; change the text to post it "
                "again"
            )
        if response.status_code == 400 and "image" in message.lower() and request.media_urls:
            await ctx.uploads.forget(self.platform, account.id, request.media_urls[0])
        return await _failure(response, ctx, key, message)

    async def _comment(
        self,
        base: str,
        headers: dict[str, str],
        author: str,
        key: str,
        numbered: tuple[int, Part],
        post: SentPart,
        ctx: PublishContext,
    ) -> SentPart | outcomes.Outcome:
        """The first comment, by the post's author: `POST /rest/socialActions/{urn}/comments`.
        No key or duplicate answer guards it: the engine never repeats it blindly."""
        index, part = numbered
        response = await flow.send(
            ctx,
            "POST",
            f"{base}/rest/socialActions/{urls.segment(post.platform_post_id)}/comments",
            what="linkedin comment",
            final=True,
            json={
                "actor": author,
                "object": post.platform_post_id,
                "message": {"text": part.text},
            },
            headers=headers,
        )
        if response.status_code in (200, 201):
            body = flow.body_of(response)
            urn = response.headers.get("x-restli-id") or str(body.get("$URN") or body.get("id"))
            return SentPart(index, urn)
        message = f"linkedin comment: {errors.error_text(response)}"
        return await _failure(response, ctx, key, message)

    async def _image(
        self,
        base: str,
        url: str,
        author: str,
        headers: dict[str, str],
        account: AccountContext,
        ctx: PublishContext,
    ) -> str:
        cached = await ctx.uploads.get(self.platform, account.id, url)
        if isinstance(cached, str):
            return cached
        media = await flow.fetch_media(ctx, url)
        key = budgets.account_key(self.platform, account.id)
        response = await flow.send(
            ctx,
            "POST",
            f"{base}/rest/images",
            what="linkedin image",
            final=False,
            params={"action": "initializeUpload"},
            json={"initializeUploadRequest": {"owner": author}},
            headers=headers,
        )
        if response.status_code != 200:
            raise flow.Stop(
                await _failure(
                    response, ctx, key, f"linkedin image of {url}: {errors.error_text(response)}"
                )
            )
        value = flow.body_of(response).get("value") or flow.body_of(response)
        upload = await flow.send(
            ctx,
            "PUT",
            str(value["uploadUrl"]),
            what="linkedin image upload",
            final=False,
            content=media.content,
            headers={"Authorization": headers["Authorization"], "Content-Type": media.content_type},
        )
        if upload.status_code not in (200, 201):
            message = f"linkedin image upload of {url}: {errors.error_text(upload)}"
            if upload.status_code == 400:
                raise flow.Stop(outcomes.Permanent(message))
            raise flow.Stop(await _failure(upload, ctx, key, message))
        image = str(value["image"])
        await ctx.uploads.put(self.platform, account.id, url, image, IMAGE_TTL_SECONDS)
        return image

    async def refresh(self, account: AccountContext, ctx: PublishContext) -> RefreshResult:
        credentials = account.credentials
        needed = ("refresh_token", "client_id", "client_secret")
        if not all(credentials.get(name) for name in needed):
            return RefreshFailed(
                "LinkedIn access tokens last 60 days and this app cannot refresh them "
                "(refresh tokens are for approved partners): reconnect the account"
            )
        base = ctx.base_urls.get(self.platform) or DEFAULT_OAUTH_BASE
        try:
            response = await ctx.http.post(
                f"{base.rstrip('/')}/oauth/v2/accessToken",
                data={"grant_type": "refresh_token", **{n: credentials[n] for n in needed}},
            )
        except httpx.TransportError as exc:
            return flow.refresh_unavailable("LinkedIn", exc)
        if response.status_code == 429 or response.status_code >= 500:
            return flow.refresh_unavailable("LinkedIn", response)
        body = flow.body_of(response)
        if response.status_code != 200 or not body.get("access_token"):
            return RefreshFailed(
                f"LinkedIn refused to refresh the token ({errors.error_text(response)}): "
                "reconnect the account"
            )
        return flow.refreshed(credentials, body, ctx.now())


def _post_url(urn: str) -> str:
    return f"https://www.linkedin.com/feed/update/{urn}/"


async def _failure(
    response: httpx.Response, ctx: PublishContext, key: str, message: str
) -> outcomes.Outcome:
    code = response.status_code
    if code == 401:
        return outcomes.TokenExpired(f"linkedin rejected the access token ({message})")
    if code == 429:
        # No headers: LinkedIn's quotas are daily and reset at midnight UTC.
        until = next_utc_midnight(ctx.now())
        await ctx.budgets.spend(key, until=until, reason=message)
        return outcomes.RateLimited(until=until, reason=message)
    if code >= 500:
        return errors.server_error_outcome(response, "linkedin")
    return outcomes.Permanent(message)
