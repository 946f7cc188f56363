"""Instagram content publishing: `POST /{ig-user-id}/media` (image_url, caption) creates a
container, `GET /{container}?fields=status_code`, `POST /{ig-user-id}/media_publish`; Instagram
Login refresh `GET /refresh_access_token?grant_type=ig_refresh_token`; throttle code 80002."""

from __future__ import annotations

from fastapi import APIRouter

from postpilot.sandbox.platforms._containers import Flavour, container_router
from postpilot.sandbox.state import SandboxState

FLAVOUR = Flavour(
    platform="instagram",
    create_path="media",
    publish_path="media_publish",
    status_field="status_code",
    text_field="caption",
    usage_type="instagram",
    throttle_code=80002,
    refresh_grant="ig_refresh_token",
    media_required=True,
)


def router(state: SandboxState) -> APIRouter:
    return container_router(state, FLAVOUR)
