"""Every status an operation can answer is in the OpenAPI document, errors with their one shape.

Three sources, so that no route lists them by hand:
- `DEFAULT_RESPONSES`, given to the app: what the front door and the error handlers can answer
  on any operation (413, 422, 500);
- what an operation's dependencies and path imply (`derived`): a workspace key (401), the
  operator secret (401, 503), an id in the path (404);
- what a route declares itself (`responses={409: {"description": ...}}`), given the error shape
  here when it names no model.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from fastapi import FastAPI, routing
from fastapi.dependencies.models import Dependant

from postpilot.api import deps, errors
from postpilot.api.routes import performance

ERROR_REF = {"$ref": "#/components/schemas/ErrorBody"}

DEFAULT_RESPONSES: dict[int | str, dict[str, Any]] = {
    413: {"model": errors.ErrorBody, "description": "The body is larger than API_MAX_BODY_BYTES."},
    422: {
        "model": errors.ErrorBody,
        "description": "A field, parameter or the body is not valid (each one is named); "
        "nothing was changed.",
    },
    500: {"model": errors.ErrorBody, "description": "An unexpected error; nothing is disclosed."},
}

_UNAUTHORIZED = (401, "The API key is missing, not valid or revoked.")
_FORBIDDEN = (
    403,
    "A signed-in user's role does not allow this, or their session's X-CSRF-Token is missing.",
)
_OPERATOR = {
    401: "Needs `Authorization: Bearer <CRON_SECRET>`.",
    503: "CRON_SECRET is not set: operator endpoints are off.",
}
# A dependency named here adds these answers to every operation that uses it.
_BY_DEPENDENCY: dict[Callable[..., Any], dict[int, str]] = {
    deps.current_workspace: dict([_UNAUTHORIZED, _FORBIDDEN]),
    deps.require_cron_secret: _OPERATOR,
    performance.require_operator: _OPERATOR,
}


def install(app: FastAPI) -> None:
    generate = app.openapi
    completed: list[int] = []  # FastAPI regenerates its document when routes change

    def openapi() -> dict[str, Any]:
        document = generate()
        if completed != [id(document)]:
            complete(document, list(routing.iter_route_contexts(app.routes)))
            completed[:] = [id(document)]
        return document

    app.openapi = openapi  # type: ignore[method-assign]


def complete(document: dict[str, Any], routes: list[routing.RouteContext]) -> None:
    for route in routes:
        if not isinstance(route.original_route, routing.APIRoute) or not route.include_in_schema:
            continue
        extra = derived(route)
        for method in route.methods or ():
            operation = document["paths"][route.path_format][method.lower()]
            answers = operation.setdefault("responses", {})
            for status, description in extra.items():
                answers.setdefault(str(status), {"description": description})
            for status, answer in answers.items():
                if status[0] in "45" and "content" not in answer:
                    answer["content"] = {"application/json": {"schema": ERROR_REF}}


def derived(route: routing.RouteContext) -> dict[int, str]:
    found: dict[int, str] = {}
    for call in _calls(route.dependant):
        found.update(_BY_DEPENDENCY.get(call, {}))
    if route.dependant.path_params:
        found[404] = "Nothing with this id in the workspace."
    return found


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    stack = [dependant]
    while stack:
        current = stack.pop()
        if current.call is not None:
            yield current.call
        stack.extend(current.dependencies)
