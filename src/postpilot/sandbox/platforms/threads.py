"""Threads: `POST /v1.0/{user-id}/threads` (media_type TEXT or IMAGE with image_url) creates a
container, `GET /v1.0/{container}?fields=status`, `POST /v1.0/{user-id}/threads_publish`;
refresh `GET /refresh_access_token?grant_type=th_refresh_token`. Throttling uses the Graph
envelope (unconfirmed for Threads) with code 4."""

from __future__ import annotations

from fastapi import APIRouter

from postpilot.sandbox.platforms._containers import Flavour, container_router
from postpilot.sandbox.state import SandboxState

FLAVOUR = Flavour(
    platform="threads",
    create_path="threads",
    publish_path="threads_publish",
    status_field="status",
    text_field="text",
    usage_type="threads",
    throttle_code=4,
    refresh_grant="th_refresh_token",
    media_required=False,
)


def router(state: SandboxState) -> APIRouter:
    return container_router(state, FLAVOUR)
