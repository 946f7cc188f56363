"""Threads: `POST /v1.0/{user-id}/threads` (media_type TEXT, or IMAGE with `image_url`), wait for
an image container's `status` FINISHED, then `POST /v1.0/{user-id}/threads_publish`. Long-lived
tokens (60 days) refresh with `th_refresh_token`.

Credentials: `access_token`. Options: `threads_user_id` ("me" works too), `graph_version`.
"""

from __future__ import annotations

from typing import Any, ClassVar

from postpilot.publishers.base import PublishRequest
from postpilot.publishers.containers import ContainerPublisher, Flavour


class ThreadsPublisher(ContainerPublisher):
    platform: ClassVar[str] = "threads"
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

    def _container_fields(self, request: PublishRequest) -> dict[str, Any]:
        fields = super()._container_fields(request)
        fields["media_type"] = "IMAGE" if request.media_urls else "TEXT"
        return fields
