"""Instagram with Facebook Login: the professional accounts linked to the Pages the person
manages (`instagram_business_account` on `/me/accounts`), each an account publishing with its
Page's token through graph.facebook.com. Verify is `GET /{ig-user-id}` with that token.

Facebook Login tokens cannot be refreshed (the publisher says so and asks for a reconnect), and
there is no revoke that would not also cut the login's other accounts (see facebook.py)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import quote

from postpilot.connect.base import (
    ConnectContext,
    ConnectRefused,
    Grant,
    Identity,
    Target,
)
from postpilot.connect.platforms import _calls, _meta

NAME = "Instagram"
SCOPES = (
    "instagram_basic",
    "instagram_content_publish",
    "pages_show_list",
    "pages_read_engagement",
)


class InstagramConnector(_meta.FacebookLogin):
    platform: ClassVar[str] = "instagram"
    name: ClassVar[str] = NAME
    scopes: ClassVar[tuple[str, ...]] = SCOPES

    async def targets(
        self, ctx: ConnectContext, grant: Grant, inputs: Mapping[str, str]
    ) -> list[Target]:
        app = _calls.app_of(ctx, self.platform)
        pages = await _meta.pages(
            ctx, NAME, grant.access_token, "id,name,access_token,instagram_business_account"
        )
        found = []
        for page in pages:
            linked = page.get("instagram_business_account")
            if not isinstance(linked, dict) or not linked.get("id") or not page.get("access_token"):
                continue
            token = str(page["access_token"])
            profile = await _profile(ctx, token, str(linked["id"]))
            found.append(
                Target(
                    platform_id=str(profile["id"]),
                    name=str(profile.get("name") or profile.get("username") or profile["id"]),
                    handle=str(profile.get("username") or profile["id"]),
                    credentials={"access_token": token},
                    options={
                        "ig_user_id": str(profile["id"]),
                        "login": "facebook",
                        "app_id": app.client_id,
                    },
                    # Facebook Login tokens are used on graph.facebook.com, not graph.instagram.com
                    base_url=ctx.url(_meta.GRAPH_HOST, "").rstrip("/"),
                )
            )
        if not found:
            raise ConnectRefused(
                "none of the Pages of this Facebook login has an Instagram professional "
                "account linked: link one in the Page's settings, then connect again"
            )
        return found

    async def verify(self, ctx: ConnectContext, target: Target) -> Identity:
        ig_user_id = str(target.options.get("ig_user_id") or target.platform_id)
        profile = await _profile(ctx, str(target.credentials.get("access_token") or ""), ig_user_id)
        if str(profile["id"]) != ig_user_id:
            raise ConnectRefused(
                f"Instagram did not show the account {ig_user_id} to this token",
                "options.ig_user_id",
            )
        return Identity(platform_id=ig_user_id, handle=str(profile.get("username") or ig_user_id))


async def _profile(ctx: ConnectContext, token: str, ig_user_id: str) -> dict[str, Any]:
    profile = await _meta.get(
        ctx, NAME, token, f"/{quote(ig_user_id, safe='')}", fields="id,username,name"
    )
    if not profile.get("id"):
        raise ConnectRefused(f"Instagram did not show the account {ig_user_id}")
    return profile


CONNECTOR = InstagramConnector()
