"""Threads: `POST /v1.0/{user-id}/threads` (media_type TEXT, or IMAGE with `image_url`), wait for
an image container's `status` FINISHED, then `POST /v1.0/{user-id}/threads_publish`. Long-lived
tokens (60 days) refresh with `th_refresh_token`.
"""

from __future__ import annotations

from typing import Any, ClassVar

from postpilot.publishers.containers import ContainerPublisher, Flavour
from postpilot.publishers.fields import AccountFields, credential, option
from postpilot.publishers.parts import Part


class ThreadsPublisher(ContainerPublisher):
    platform: ClassVar[str] = "threads"
    max_in_flight_per_account: ClassVar[int] = 2
    flavour: ClassVar[Flavour] = Flavour(
        platform="threads",
        name="Threads",
        default_base="https://graph.threads.net",
        default_version="v1.0",
        user_option="threads_user_id",
        create_path="threads",
        publish_path="threads_publish",
        status_field="status",
        text_field="text",
        refresh_grant="th_refresh_token",
        refresh_base="https://graph.threads.net",
    )
    account_fields: ClassVar[AccountFields] = AccountFields(
        (
            credential("access_token", "A long-lived Threads token.", required=True),
            option("threads_user_id", 'The Threads user\'s id ("me" works too).', required=True),
            option("graph_version", "Graph API version (default v1.0)."),
            option("app_id", "The Meta app's id: one rate budget for all its accounts."),
        ),
    )

    def _container_fields(
        self, part: Part, reply_to: str | None, images: list[str]
    ) -> dict[str, Any]:
        fields = super()._container_fields(part, reply_to, images)
        fields["media_type"] = "IMAGE" if images else "TEXT"
        if reply_to is not None:
            fields["reply_to_id"] = reply_to  # a thread's later part replies to the one before
        return fields
