"""The API's front door: a body larger than the limit is refused (413) as it streams in, and text
the databases cannot store is refused (422) wherever it is (path, query, headers, JSON body)
before any route, dependency or database sees it.

Our own ASGI middleware rather than FastAPI's `max_body_size`: that one answers in plain text
and replaces any answer once the declared length is too large, so the error shape would be lost.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from postpilot.api import errors, text
from postpilot.errors import PostpilotError


class BodyTooLarge(PostpilotError):
    """The request body is larger than the limit."""


class RequestGuard:
    def __init__(
        self, app: ASGIApp, *, max_body_bytes: int, uploads: Mapping[str, int] | None = None
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        # Paths that take a multipart file upload: their own size limit, and no JSON checks
        # (the route checks the file's bytes itself).
        self.uploads = dict(uploads or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        found = url_problems(scope)
        if found:
            await errors.invalid(found)(scope, receive, send)
            return
        upload = self._upload_limit(scope)
        limit = upload or self.max_body_bytes
        try:
            raw = await read_body(scope, receive, limit)
        except BodyTooLarge:
            await errors.response(
                413,
                "body_too_large",
                f"the request body is larger than {limit} bytes",
            )(scope, receive, send)
            return
        if raw is None:  # the client went away
            return
        found = [] if upload else body_problems(raw, Headers(scope=scope).get("content-type", ""))
        if found:
            await errors.invalid(found)(scope, receive, send)
            return
        await self.app(scope, replay(raw, receive), send)

    def _upload_limit(self, scope: Scope) -> int | None:
        content_type = Headers(scope=scope).get("content-type", "")
        # A CSV import's body is a file too: text/csv, not JSON.
        if not content_type.startswith(("multipart/form-data", "text/csv", "application/csv")):
            return None
        return self.uploads.get(str(scope.get("path", "")).rstrip("/"))


def url_problems(scope: Scope) -> list[dict[str, str]]:
    found: list[dict[str, str]] = []
    for path in (scope.get("path", ""), scope.get("raw_path", b"").decode("latin-1")):
        if problem := text.text_problem(path):
            found.append({"field": "path", "message": problem})
            break
    query = scope.get("query_string", b"").decode("latin-1")
    for name, value in parse_qsl(query, keep_blank_values=True):
        found += text.problems(value, f"query.{name}")
        if problem := text.text_problem(name):
            found.append({"field": "query", "message": f"a parameter name {problem}"})
    for name, value in Headers(scope=scope).items():
        if problem := text.text_problem(value):
            found.append({"field": f"header.{name}", "message": problem})
    return found[: text.MAX_PROBLEMS]


async def read_body(scope: Scope, receive: Receive, limit: int) -> bytes | None:
    """The whole body, refusing it as soon as the declared or the received length passes
    `limit` (chunked bodies and bodies longer than their Content-Length included)."""
    declared = Headers(scope=scope).get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def body_problems(raw: bytes, content_type: str = "") -> list[dict[str, str]]:
    """Every API route takes JSON or nothing, so any body must be JSON we can store; the web
    app's forms are URL-encoded, checked field by field like a query."""
    if not raw.strip():
        return []
    if content_type.startswith("application/x-www-form-urlencoded"):
        found: list[dict[str, str]] = []
        for name, value in parse_qsl(raw.decode("latin-1"), keep_blank_values=True):
            found += text.problems(value, f"form.{name}")
        return found[: text.MAX_PROBLEMS]
    try:
        document: Any = text.parse(raw)
    except text.BadJson as exc:
        return [{"field": "body", "message": str(exc)}]
    return text.problems(document)


def replay(raw: bytes, receive: Receive) -> Receive:
    """A `receive` that hands the app the body already read, then waits as the server's does."""
    pending = True

    async def again() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": raw, "more_body": False}
        return await receive()

    return again
