"""One error shape for every 4xx/5xx: {"error": {"code", "message", "details"}}."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request, routing
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from postpilot.errors import PostpilotError


class ErrorDetail(BaseModel):
    model_config = ConfigDict(extra="allow")

    field: str | None = Field(default=None, description="Where: `text`, `query.offset`, ...")
    message: str


class ErrorInfo(BaseModel):
    code: str = Field(description="Stable, machine-readable: `invalid_request`, `not_found`, ...")
    message: str = Field(description="What went wrong and what to do, for a person.")
    details: list[ErrorDetail]


class ErrorBody(BaseModel):
    """The body of every error response."""

    error: ErrorInfo


class ApiError(PostpilotError):
    def __init__(
        self, status: int, code: str, message: str, details: list[dict[str, Any]] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details or []


def not_found(what: str, ident: str) -> ApiError:
    return ApiError(404, "not_found", f"{what} {ident} does not exist in this workspace")


def body(code: str, message: str, details: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or []}}


def response(
    status: int,
    code: str,
    message: str,
    details: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(body(code, message, details), status_code=status, headers=headers)


def invalid(details: list[dict[str, Any]]) -> JSONResponse:
    """422 naming each field: `details` holds {"field", "message"} items."""
    message = "; ".join(f"{d['field']}: {d['message']}" for d in details)
    return response(422, "invalid_request", message or "the request is not valid", details)


def _field(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body",)]
    return ".".join(parts) or "body"


_HTTP_CODES = {
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
}


def allowed_methods(request: Request) -> str:
    """Every method some route takes at this path: Starlette names only the first route's. A
    path some route names literally (/api/posts/import) is that route's, not a post id's."""
    path = request.scope["path"]
    literal: set[str] = set()
    methods: set[str] = set()
    for route in routing.iter_route_contexts(request.app.routes):
        regex = getattr(route, "path_regex", None)
        if regex is not None and regex.match(path):
            methods |= set(route.methods or ())
            if not getattr(route, "param_convertors", None):
                literal |= set(route.methods or ())
    return ", ".join(sorted(literal or methods))


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return response(exc.status, exc.code, exc.message, exc.details)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return invalid(
            [
                {
                    "field": _field(tuple(e["loc"])),
                    "message": str(e["msg"]).removeprefix("Value error, "),
                }
                for e in exc.errors()
            ]
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = dict(getattr(exc, "headers", None) or {})
        if exc.status_code == 405:
            headers["Allow"] = allowed_methods(request)
        return response(
            exc.status_code,
            _HTTP_CODES.get(exc.status_code, "http_error"),
            str(exc.detail),
            headers=headers,
        )

    @app.exception_handler(Exception)
    async def server_error(_request: Request, _exc: Exception) -> JSONResponse:
        # No detail for the client (an error's text may carry data); Starlette re-raises after
        # this answer, so the traceback reaches the server's log.
        return response(
            500, "internal_error", "an unexpected error occurred; it was logged on the server"
        )
