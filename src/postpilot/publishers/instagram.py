"""Instagram (Graph API content publishing): `POST /{ig-user-id}/media` with `image_url` and
`caption`, wait for `status_code` FINISHED, then `POST /{ig-user-id}/media_publish`. An image
is required. Instagram Login tokens (60 days) refresh with `ig_refresh_token`; Facebook Login
tokens cannot be refreshed.

Credentials: `access_token`. Options: `ig_user_id`, `login` ("instagram", the default, or
"facebook"), `graph_version`.
"""

from __future__ import annotations

from typing import ClassVar

from postpilot.core import outcomes
from postpilot.publishers.base import PublishContext, PublishRequest
from postpilot.publishers.containers import ContainerPublisher, Flavour


class InstagramPublisher(ContainerPublisher):
    platform: ClassVar[str] = "instagram"
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

    async def _publish(self, request: PublishRequest, ctx: PublishContext) -> outcomes.Outcome:
        if not request.media_urls:
            return outcomes.Permanent("instagram: a post needs an image")
        return await super()._publish(request, ctx)
