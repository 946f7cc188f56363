"""API versions, in one place: every route is served under /api/v1; today's /api paths stay as
aliases for one release, marked deprecated in the OpenAPI document and answering
`Deprecation: true` with a `Link` to their successor.

The routers keep declaring /api paths; `mount` copies each route to /api/v1, unless a v1
router answers that path and method itself (the lists, whose v1 answer is one page envelope
while the alias keeps its old shape for the clients of today).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, FastAPI, routing
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LEGACY = "/api/"
V1 = "/api/v1/"
# Registered at the platforms by operators: it keeps working, and is not deprecated.
KEPT = frozenset({"/api/connect/callback"})
_PATH_CHARS = "/:@!$&'()*+,;="

# What an APIRoute was declared with, to declare it again at another path.
_COPIED = (
    "response_model",
    "status_code",
    "tags",
    "dependencies",
    "summary",
    "description",
    "response_description",
    "responses",
    "name",
    "methods",
    "operation_id",
    "response_model_include",
    "response_model_exclude",
    "response_model_by_alias",
    "response_model_exclude_unset",
    "response_model_exclude_defaults",
    "response_model_exclude_none",
    "include_in_schema",
    "response_class",
    "callbacks",
    "openapi_extra",
    "generate_unique_id_function",
)


def successor(path: str) -> str | None:
    """The /api/v1 path that replaces a deprecated /api one (None: not deprecated)."""
    if not path.startswith(LEGACY) or path.startswith(V1) or path.rstrip("/") in KEPT:
        return None
    return V1 + path[len(LEGACY) :]


def mount(app: FastAPI, legacy: Iterable[APIRouter], v1: Iterable[APIRouter]) -> None:
    v1 = list(v1)
    answered = {
        (route.path, method)
        for router in v1
        for route in router.routes
        if isinstance(route, routing.APIRoute)
        for method in route.methods or ()
    }
    for router in v1:
        app.include_router(router)
    for router in legacy:
        app.include_router(_copies(router, answered))
        app.include_router(_aliases(router))
    app.add_middleware(DeprecationHeaders)


def _copies(router: APIRouter, answered: set[tuple[str, str]]) -> APIRouter:
    copies = APIRouter()
    for route in router.routes:
        if not isinstance(route, routing.APIRoute):
            continue
        path = successor(route.path) or _v1_of_kept(route.path)
        if path is None:
            continue  # not under /api (e.g. /metrics): one path only
        methods = {m for m in route.methods or () if (path, m) not in answered}
        if methods:
            copies.add_api_route(path, route.endpoint, **_declared(route, methods=methods))
    return copies


def _aliases(router: APIRouter) -> APIRouter:
    aliases = APIRouter()
    for route in router.routes:
        if isinstance(route, routing.APIRoute):
            deprecated = route.deprecated or successor(route.path) is not None
            aliases.add_api_route(
                route.path, route.endpoint, **_declared(route, deprecated=deprecated)
            )
        else:
            aliases.routes.append(route)
    return aliases


def _v1_of_kept(path: str) -> str | None:
    return V1 + path[len(LEGACY) :] if path in KEPT else None


def _declared(route: routing.APIRoute, **changes: Any) -> dict[str, Any]:
    declared = {name: getattr(route, name) for name in _COPIED}
    declared["deprecated"] = route.deprecated
    return declared | changes


class DeprecationHeaders:
    """Adds `Deprecation` and `Link` to every answer of a deprecated path, errors included."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = str(scope.get("path", "")) if scope["type"] == "http" else ""
        following = successor(path)
        if following is None:
            await self.app(scope, receive, send)
            return

        async def send_marked(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["Deprecation"] = "true"
                # Quoted: the path arrives decoded, and must not end the header or the URL.
                headers["Link"] = f'<{quote(following, safe=_PATH_CHARS)}>; rel="successor-version"'
            await send(message)

        await self.app(scope, receive, send_marked)
