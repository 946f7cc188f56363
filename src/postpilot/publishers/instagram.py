"""Instagram (Graph API content publishing): `POST /{ig-user-id}/media` with `image_url` and
`caption`, wait for `status_code` FINISHED, then `POST /{ig-user-id}/media_publish`. An image
is required. Instagram Login tokens (60 days) refresh with `ig_refresh_token`; Facebook Login
tokens cannot be refreshed.
"""

from __future__ import annotations

from typing import ClassVar

from postpilot.core import outcomes
from postpilot.publishers.base import PublishContext, PublishRequest
from postpilot.publishers.containers import ContainerPublisher, Flavour
from postpilot.publishers.fields import AccountFields, credential, option


class InstagramPublisher(ContainerPublisher):
    platform: ClassVar[str] = "instagram"
    max_in_flight_per_account: ClassVar[int] = 2
    flavour: ClassVar[Flavour] = Flavour(
        platform="instagram",
        name="Instagram",
        default_base="https://graph.instagram.com",
        default_version="v21.0",
        user_option="ig_user_id",
        create_path="media",
        publish_path="media_publish",
        status_field="status_code",
        text_field="caption",
        refresh_grant="ig_refresh_token",
        refresh_base="https://graph.instagram.com",
    )
    account_fields: ClassVar[AccountFields] = AccountFields(
        (
            credential(
                "access_token", "An Instagram Login or Facebook Login token.", required=True
            ),
            option("ig_user_id", "The professional account's id.", required=True),
            option("login", "instagram (the default) or facebook: which login made the token."),
            option("graph_version", "Graph API version (default v21.0)."),
            option("app_id", "The Meta app's id: one rate budget for all its accounts."),
        ),
    )

    async def _publish(self, request: PublishRequest, ctx: PublishContext) -> outcomes.Outcome:
        if not request.media_urls:
            return outcomes.Permanent("instagram: a post needs an image")
        return await super()._publish(request, ctx)
