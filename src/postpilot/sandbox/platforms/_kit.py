"""What the platform routers share: latency, bearer tokens, scripted faults answered in each
platform's own words, request bodies, and fetching media a platform would download by URL."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
from fastapi import Request
from fastapi.responses import Response
from starlette.datastructures import UploadFile

from postpilot.sandbox import images
from postpilot.sandbox.state import Fault, SandboxState

MEDIA_PATH = "/_sandbox/media/"


async def pause(state: SandboxState) -> None:
    """The configured latency; tests see how many requests are held in it (`/_sandbox/waiting`)."""
    if state.settings.latency_ms:
        state.waiting += 1
        try:
            await asyncio.sleep(state.settings.latency_ms / 1000)
        finally:
            state.waiting -= 1


def bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return None


@dataclass(frozen=True)
class Answers:
    """How one platform words each scripted fault."""

    rate_limited: Callable[[Fault], Response]
    expired: Callable[[], Response]
    bad_media: Callable[[], Response]
    duplicate: Callable[[], Response]
    error: Callable[[int], Response]  # a 5xx with the platform's body


async def answer_fault(fault: Fault | None, answers: Answers) -> Response | None:
    """The response a scripted fault gives, or None to go on (no fault, or a fault that acts
    after the post is stored: `timeout_after_commit`, see `hold_after_commit`)."""
    if fault is None or fault.kind == "timeout_after_commit":
        return None
    match fault.kind:
        case "rate_limit":
            return answers.rate_limited(fault)
        case "expired_token":
            return answers.expired()
        case "bad_media":
            return answers.bad_media()
        case "duplicate":
            return answers.duplicate()
        case "unavailable":
            return answers.error(fault.status or 503)
        case "timeout":
            await asyncio.sleep(fault.hold_seconds)
            return answers.error(504)
    return answers.error(fault.status or 500)


async def hold_after_commit(fault: Fault | None) -> None:
    if fault is not None and fault.kind == "timeout_after_commit":
        await asyncio.sleep(fault.hold_seconds)


async def body(request: Request) -> dict[str, Any]:
    """A JSON object, a form or the query string, whichever the request used."""
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("application/json"):
        data = await request.json()
        return data if isinstance(data, dict) else {}
    values: dict[str, Any] = dict(request.query_params)
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form()
        for key, value in form.multi_items():
            values[key] = value
    return values


async def upload_of(value: Any) -> tuple[bytes, str] | None:
    """The bytes and content type of a multipart file field."""
    if isinstance(value, UploadFile):
        return await value.read(), value.content_type or ""
    return None


async def download(url: str) -> tuple[bytes, str] | None:
    """Fetch media the way a platform's crawler would: the sandbox's own media in-process,
    anything else over HTTP. None when it cannot be had or is not an image."""
    parts = urlsplit(url)
    if parts.path.startswith(MEDIA_PATH):
        content, content_type = images.sandbox_media(parts.path.removeprefix(MEDIA_PATH))
    else:
        try:
            # Patient, unlike a real crawler: on a loaded test machine the server being crawled
            # (often in the test's own process) can take seconds to answer.
            async with httpx.AsyncClient(timeout=30) as client:
                response = await client.get(url)
        except (httpx.HTTPError, ValueError):
            return None
        if response.status_code != 200:
            return None
        content = response.content
        content_type = response.headers.get("content-type", "").split(";")[0]
    if not content_type.startswith("image/") or not content:
        return None
    return content, content_type


def media_entry(media_id: str, content: bytes, content_type: str, **extra: Any) -> dict[str, Any]:
    return {"id": media_id, "size": len(content), "content_type": content_type, **extra}


def json_field(value: Any) -> Any:
    """A form field that carries JSON (Discord's `payload_json`, Slack's `blocks`)."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value
