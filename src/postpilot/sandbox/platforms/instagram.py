"""Instagram content publishing: `POST /{ig-user-id}/media` (image_url, caption) creates a
container, `GET /{container}?fields=status_code`, `POST /{ig-user-id}/media_publish`; Instagram
Login refresh `GET /refresh_access_token?grant_type=ig_refresh_token`; throttle code 80002.
Connect: Facebook Login under /instagram (_graph_login.py), then `GET /{ig-user-id}`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from postpilot.sandbox.platforms._containers import Flavour, container_router
from postpilot.sandbox.platforms._graph import Graph
from postpilot.sandbox.platforms._graph_login import MetaLogin
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
    comments=True,
)


def router(state: SandboxState) -> APIRouter:
    logins: list[MetaLogin] = []

    def before(api: APIRouter, graph: Graph) -> None:
        logins.append(login := MetaLogin(graph))
        login.routes(api)

    def profiles(subject: str, ig_user_id: str) -> dict[str, Any] | None:
        return logins[0].instagram_account(subject, ig_user_id)

    return container_router(state, FLAVOUR, before=before, profiles=profiles)
