"""Facebook Pages: Facebook Login (see _meta.py), then each Page the user manages where they may
create content becomes an account holding its own Page token (read with the 60-day user token,
it does not expire). Verify reads the Page with its token.

No revoke on disconnect: Facebook's only revocation, `DELETE /{user-id}/permissions`, removes
the app from the person's whole account, so it would also cut every other Page (and Instagram
account) connected through the same login."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar
from urllib.parse import quote

from postpilot.connect.base import (
    ConnectContext,
    ConnectRefused,
    Grant,
    Identity,
    Target,
)
from postpilot.connect.platforms import _calls, _meta

NAME = "Facebook"
SCOPES = ("pages_show_list", "pages_manage_posts", "pages_read_engagement")
POSTING_TASK = "CREATE_CONTENT"


class FacebookConnector(_meta.FacebookLogin):
    platform: ClassVar[str] = "facebook"
    name: ClassVar[str] = NAME
    scopes: ClassVar[tuple[str, ...]] = SCOPES

    async def targets(
        self, ctx: ConnectContext, grant: Grant, inputs: Mapping[str, str]
    ) -> list[Target]:
        app = _calls.app_of(ctx, self.platform)
        pages = await _meta.pages(ctx, NAME, grant.access_token, "id,name,access_token,tasks")
        postable = [p for p in pages if POSTING_TASK in (p.get("tasks") or [])]
        if not postable:
            raise ConnectRefused(
                "this Facebook login manages no Page where it may create content: pick the "
                "Pages in Facebook's dialog, or ask a Page admin for the content task"
            )
        return [
            Target(
                platform_id=str(page["id"]),
                name=str(page.get("name") or page["id"]),
                handle=str(page.get("name") or page["id"]),
                credentials={"page_access_token": str(page["access_token"])},
                options={"page_id": str(page["id"]), "app_id": app.client_id},
            )
            for page in postable
            if page.get("access_token")
        ]

    async def verify(self, ctx: ConnectContext, target: Target) -> Identity:
        token = str(
            target.credentials.get("page_access_token") or target.credentials.get("access_token")
        )
        page_id = str(target.options.get("page_id") or target.platform_id)
        page = await _meta.get(ctx, NAME, token, f"/{quote(page_id, safe='')}", fields="id,name")
        if str(page.get("id")) != page_id:
            raise ConnectRefused(
                f"Facebook did not show the Page {page_id} to this token", "options.page_id"
            )
        return Identity(platform_id=page_id, handle=str(page.get("name") or page_id))


CONNECTOR = FacebookConnector()
