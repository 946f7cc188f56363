"""Facebook Pages (Graph API): text to `POST /{page-id}/feed`, a photo to `POST /{page-id}/photos`
with `url=` (Meta downloads it; we check it first so a bad URL fails with a clear reason).

A Page token made from a long-lived user token does not expire. No idempotency and no refresh
grant: NONE.

Read-back: `GET /{page-id}/published_posts` since the delivery was due, every page (up to
listing.MAX_PAGES). Posts carry no marker, so ours is the one post with exactly our text in
that window (posts other deliveries already hold are left out); two such posts, a cut listing
or an error: we cannot tell. Meta does not promise the listing is immediately consistent, so
"not found" only leads to a retry after the settle delay (RECONCILE_SETTLE_SECONDS).
"""

from __future__ import annotations

from typing import ClassVar

from postpilot.core import outcomes, readback
from postpilot.core.transitions import Recovery
from postpilot.publishers import budgets, chain, flow, graph, listing, urls
from postpilot.publishers.base import (
    AccountContext,
    Lookup,
    PublishContext,
    PublishRequest,
    RefreshFailed,
    RefreshResult,
)
from postpilot.publishers.fields import AccountFields, credential, option
from postpilot.publishers.parts import Part, SentPart

DEFAULT_BASE = "https://graph.facebook.com"
DEFAULT_VERSION = "v21.0"
DUPLICATE_CODE = 506
EDGE = listing.Edge(text_field="message", time_field="created_time", url_field="permalink_url")


class FacebookPublisher(flow.StepwisePublisher):
    platform: ClassVar[str] = "facebook"
    max_in_flight_per_account: ClassVar[int] = 2
    recovery: ClassVar[Recovery] = Recovery.NONE
    can_refresh: ClassVar[bool] = False
    account_fields: ClassVar[AccountFields] = AccountFields(
        (
            credential("page_access_token", "A Page token (from a long-lived user token)."),
            credential("access_token", "The Page token, under the name other tools give it."),
            option("page_id", "The Page's id.", required=True),
            option("graph_version", f"Graph API version (default {DEFAULT_VERSION})."),
            option("app_id", "The Meta app's id: one rate budget for all its accounts."),
        ),
        credential_sets=(("page_access_token",), ("access_token",)),
    )

    async def _publish(self, request: PublishRequest, ctx: PublishContext) -> outcomes.Outcome:
        account = request.account
        token = account.credentials.get("page_access_token") or account.credentials.get(
            "access_token"
        )
        page_id = account.options.get("page_id")
        if not page_id:
            return outcomes.Permanent("facebook: the account has no page_id option")
        if not token:
            return outcomes.TokenExpired("facebook: the account has no Page access token")
        version = account.options.get("graph_version") or DEFAULT_VERSION
        root = f"{ctx.base_url(self.platform, account, DEFAULT_BASE)}/{urls.segment(version)}"
        keys = (
            budgets.account_key(self.platform, account.id),
            budgets.app_key(self.platform, str(account.options.get("app_id") or "app")),
        )
        await flow.check_budget(ctx, self.platform, keys)
        headers = {"Authorization": f"Bearer {token}"}
        page = f"{root}/{urls.segment(page_id)}"

        async def send(
            index: int, part: Part, before: tuple[SentPart, ...]
        ) -> SentPart | outcomes.Outcome:
            try:
                if before:  # the first comment, on the post
                    where = f"{root}/{urls.segment(before[0].platform_post_id)}/comments"
                    return await self._comment(where, headers, keys, index, part.text, ctx)
                return await self._post(request, page, headers, keys, ctx)
            except flow.Stop as stop:
                return stop.outcome

        return await chain.publish_parts(request, send)

    async def _post(
        self,
        request: PublishRequest,
        page: str,
        headers: dict[str, str],
        keys: tuple[str, str],
        ctx: PublishContext,
    ) -> SentPart | outcomes.Outcome:
        if request.media_urls:
            url = await flow.media_for_platform(ctx, request.media_urls[0])
            endpoint, data = "photos", {"url": url, "caption": request.text, "published": "true"}
        else:
            endpoint, data = "feed", {"message": request.text, "published": "true"}
        response = await flow.send(
            ctx,
            "POST",
            f"{page}/{endpoint}",
            what="facebook post",
            final=True,
            data=data,
            headers=headers,
        )
        await graph.note_usage(response, ctx, *keys)
        if response.status_code == 200:
            body = flow.body_of(response)
            post_id = str(body.get("post_id") or body["id"])
            return SentPart(0, post_id, url=f"https://www.facebook.com/{post_id}")
        if graph.error_of(response).get("code") == DUPLICATE_CODE:
            earlier = " (probably an earlier attempt of this post)" if request.attempt > 1 else ""
            return outcomes.Permanent(
                "facebook refused a duplicate of the Page's latest post"
                + earlier
                + "; check the Page, and change the text to post it again"
            )
        if request.media_urls and graph.error_of(response).get("code") in (100, 324):
            return outcomes.Permanent(
                f"facebook could not use the image {request.media_urls[0]}: "
                f"{graph.describe(response)}"
            )
        return await graph.failure(response, ctx, what="facebook post", keys=keys, final=True)

    async def _comment(
        self,
        where: str,
        headers: dict[str, str],
        keys: tuple[str, str],
        index: int,
        text: str,
        ctx: PublishContext,
    ) -> SentPart | outcomes.Outcome:
        """The first comment, as the Page: `POST /{post-id}/comments` with `message`. Nothing
        makes a repeat safe: the engine's journal and `unknown` keep it from going twice."""
        response = await flow.send(
            ctx,
            "POST",
            where,
            what="facebook comment",
            final=True,
            data={"message": text},
            headers=headers,
        )
        await graph.note_usage(response, ctx, *keys)
        if response.status_code == 200:
            return SentPart(index, str(flow.body_of(response)["id"]))
        return await graph.failure(response, ctx, what="facebook comment", keys=keys, final=True)

    async def find_published(self, lookup: Lookup, ctx: PublishContext) -> readback.ReadBack:
        account = lookup.request.account
        token = account.credentials.get("page_access_token") or account.credentials.get(
            "access_token"
        )
        page_id = account.options.get("page_id")
        if not token or not page_id:
            return readback.CannotTell("facebook: the account has no Page token or page_id")
        version = account.options.get("graph_version") or DEFAULT_VERSION
        base = (
            f"{ctx.base_url(self.platform, account, DEFAULT_BASE)}"
            f"/{urls.segment(version)}/{urls.segment(page_id)}"
        )
        found = await listing.read(
            ctx,
            f"{base}/published_posts",
            {"Authorization": f"Bearer {token}"},
            edge=EDGE,
            lookup=lookup,
            where=f"facebook Page {page_id} published posts",
        )
        if isinstance(found, readback.Found) and not found.url:
            return readback.Found(
                found.platform_post_id,
                f"https://www.facebook.com/{found.platform_post_id}",
                found.evidence,
            )
        return found

    async def refresh(self, account: AccountContext, ctx: PublishContext) -> RefreshResult:
        return RefreshFailed(
            "Facebook Page tokens cannot be refreshed; this one was invalidated (password "
            "change, lost Page role or removed app): reconnect the Page"
        )
