"""Two-step publishing through media containers (Instagram, Threads): create a container (the
platform downloads the image by URL), wait until it is FINISHED, then publish it.

Creating a container publishes nothing, so a failure before the publish call is always safe to
retry (an orphan container expires after 24 h). Only the publish call can leave the post in
doubt; the container id lives only in this process, so there is no honest way to check it
after a restart: these platforms are NONE.

Read-back: the account's media listing (`GET /{user-id}/media` on Instagram, `/threads` on
Threads) since the delivery was due, every page (up to listing.MAX_PAGES). Posts carry no
marker, so ours is the one post with exactly our text in that window (posts other deliveries
already hold are left out); two such posts, a cut listing or an error: we cannot tell. Meta
does not promise the listing is immediately consistent, so "not found" only leads to a retry
after the settle delay (RECONCILE_SETTLE_SECONDS).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import httpx

from postpilot.core import outcomes, readback
from postpilot.core.transitions import Recovery
from postpilot.publishers import budgets, chain, errors, flow, graph, listing, urls
from postpilot.publishers.base import (
    AccountContext,
    Lookup,
    PublishContext,
    PublishRequest,
    Refreshed,
    RefreshFailed,
    RefreshResult,
)
from postpilot.publishers.parts import Part, SentPart


@dataclass(frozen=True)
class Flavour:
    platform: str
    name: str  # as people write it
    default_base: str
    default_version: str
    user_option: str  # the account option that holds the user id
    create_path: str
    publish_path: str
    status_field: str
    text_field: str
    refresh_grant: str
    refresh_base: str


@dataclass(frozen=True)
class _Where:
    """Where an account's requests go, for one publish."""

    base: str
    user_id: str
    headers: dict[str, str]
    keys: tuple[str, str]


class ContainerPublisher(flow.StepwisePublisher):
    flavour: ClassVar[Flavour]
    recovery: ClassVar[Recovery] = Recovery.NONE
    can_refresh: ClassVar[bool] = True

    def _base(self, ctx: PublishContext, account: AccountContext) -> str:
        version = account.options.get("graph_version") or self.flavour.default_version
        return (
            f"{ctx.base_url(self.flavour.platform, account, self.flavour.default_base)}"
            f"/{urls.segment(version)}"
        )

    def _container_fields(
        self, part: Part, reply_to: str | None, images: list[str]
    ) -> dict[str, Any]:
        """`images`: the part's media as the platform downloads them (public URLs)."""
        fields: dict[str, Any] = {self.flavour.text_field: part.text}
        if images:
            fields["image_url"] = images[0]
        return fields

    async def _publish(self, request: PublishRequest, ctx: PublishContext) -> outcomes.Outcome:
        f, account = self.flavour, request.account
        token = account.credentials.get("access_token")
        user_id = account.options.get(f.user_option)
        if not user_id:
            return outcomes.Permanent(f"{f.platform}: the account has no {f.user_option} option")
        if not token:
            return outcomes.TokenExpired(f"{f.platform}: the account has no access token")
        base, headers = self._base(ctx, account), {"Authorization": f"Bearer {token}"}
        keys = (
            budgets.account_key(f.platform, account.id),
            budgets.app_key(f.platform, str(account.options.get("app_id") or "app")),
        )
        await flow.check_budget(ctx, f.platform, keys)
        where = _Where(base, str(user_id), headers, keys)

        async def send(
            index: int, part: Part, before: tuple[SentPart, ...]
        ) -> SentPart | outcomes.Outcome:
            try:
                if before and not request.thread:  # the first comment, on the post
                    return await self._comment(where, index, part, before[0], ctx)
                reply_to = before[-1].platform_post_id if before else None
                return await self._post(where, index, part, reply_to, ctx)
            except flow.Stop as stop:
                return stop.outcome

        return await chain.publish_parts(request, send)

    async def _post(
        self, where: _Where, index: int, part: Part, reply_to: str | None, ctx: PublishContext
    ) -> SentPart | outcomes.Outcome:
        """One post (a reply when `reply_to` is given): a container, then its publication."""
        f, base, headers, keys = self.flavour, where.base, where.headers, where.keys
        images = [await flow.media_for_platform(ctx, url) for url in part.media_urls]
        what = f"{f.platform} container"
        response = await flow.send(
            ctx,
            "POST",
            f"{base}/{urls.segment(where.user_id)}/{f.create_path}",
            what=what,
            final=False,
            data=self._container_fields(part, reply_to, images),
            headers=headers,
        )
        await graph.note_usage(response, ctx, *keys)
        if response.status_code != 200:
            return await self._refused(response, part.media_urls, ctx, what, keys, final=False)
        container = str(flow.body_of(response)["id"])
        if part.media_urls:
            await graph.wait_for_container(
                ctx,
                f"{base}/{urls.segment(container)}",
                headers,
                field=f.status_field,
                what=what,
                keys=keys,
            )
        response = await flow.send(
            ctx,
            "POST",
            f"{base}/{urls.segment(where.user_id)}/{f.publish_path}",
            what=f"{f.platform} publish",
            final=True,
            data={"creation_id": container},
            headers=headers,
        )
        await graph.note_usage(response, ctx, *keys)
        if response.status_code == 200:
            return SentPart(index, str(flow.body_of(response)["id"]))
        what = f"{f.platform} publish"
        return await self._refused(response, part.media_urls, ctx, what, keys, True)

    async def _comment(
        self, where: _Where, index: int, part: Part, post: SentPart, ctx: PublishContext
    ) -> SentPart | outcomes.Outcome:
        """The first comment: `POST /{media-id}/comments` with `message`. No key makes it safe
        to repeat: the engine's journal and `unknown` keep it from being sent twice."""
        what = f"{self.flavour.platform} comment"
        response = await flow.send(
            ctx,
            "POST",
            f"{where.base}/{urls.segment(post.platform_post_id)}/comments",
            what=what,
            final=True,
            data={"message": part.text},
            headers=where.headers,
        )
        await graph.note_usage(response, ctx, *where.keys)
        if response.status_code == 200:
            return SentPart(index, str(flow.body_of(response)["id"]))
        return await graph.failure(response, ctx, what=what, keys=where.keys, final=True)

    async def _refused(
        self,
        response: httpx.Response,
        media_urls: tuple[str, ...],
        ctx: PublishContext,
        what: str,
        keys: tuple[str, str],
        final: bool,
    ) -> outcomes.Outcome:
        error = graph.error_of(response)
        if media_urls and error.get("error_subcode") in (2207052, 2207003, 2207004):
            return outcomes.Permanent(
                f"{self.flavour.platform} could not use the image {media_urls[0]}: "
                f"{graph.describe(response)}"
            )
        if error.get("code") == 9007:  # not ready yet
            return outcomes.Transient(f"{what}: {graph.describe(response)}", 30)
        return await graph.failure(response, ctx, what=what, keys=keys, final=final)

    async def find_published(self, lookup: Lookup, ctx: PublishContext) -> readback.ReadBack:
        f, account = self.flavour, lookup.request.account
        token = account.credentials.get("access_token")
        user_id = account.options.get(f.user_option)
        if not token or not user_id:
            return readback.CannotTell(f"{f.platform}: the account has no token or {f.user_option}")
        return await listing.read(
            ctx,
            f"{self._base(ctx, account)}/{urls.segment(user_id)}/{f.create_path}",
            {"Authorization": f"Bearer {token}"},
            edge=listing.Edge(f.text_field, time_field="timestamp", url_field="permalink"),
            lookup=lookup,
            where=f"{f.platform} account {user_id} posts",
        )

    async def refresh(self, account: AccountContext, ctx: PublishContext) -> RefreshResult:
        f = self.flavour
        token = account.credentials.get("access_token")
        if not token:
            return RefreshFailed(f"the {f.name} account has no token: reconnect it")
        if f.platform == "instagram" and account.options.get("login") == "facebook":
            return RefreshFailed(
                "this Instagram account is connected through Facebook Login, whose tokens "
                "cannot be refreshed: reconnect it"
            )
        base = ctx.base_url(f.platform, account, f.refresh_base)
        try:
            response = await ctx.http.get(
                f"{base}/refresh_access_token",
                params={"grant_type": f.refresh_grant, "access_token": token},
            )
        except httpx.TransportError as exc:
            return flow.refresh_unavailable(f.name, exc)
        body = flow.body_of(response)
        if response.status_code >= 500 or graph.error_of(response).get("is_transient"):
            return flow.refresh_unavailable(f.name, response)
        if response.status_code != 200 or not body.get("access_token"):
            detail = (
                graph.describe(response)
                if graph.error_of(response)
                else errors.error_text(response)
            )
            return RefreshFailed(
                f"{f.name} would not refresh the token ({detail}); a long-lived token must be "
                "refreshed before it expires: reconnect the account"
            )
        new = {**account.credentials, "access_token": body["access_token"]}
        return Refreshed(credentials=new, expires_at=flow.expiry(ctx.now(), body.get("expires_in")))
