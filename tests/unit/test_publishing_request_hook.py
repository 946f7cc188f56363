"""The journal learns a delivery may have reached the platform right before the request that
publishes, and not before the requests that cannot (login, upload, container)."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx

from postpilot.publishers import flow
from postpilot.publishers.base import PublishContext
from postpilot.publishers.budgets import RateBudgets
from postpilot.publishers.media import MediaFetcher


async def test_the_hook_runs_before_the_publishing_request_only() -> None:
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(f"request {request.url.path}")
        return httpx.Response(200, json={})

    async def hook() -> None:
        seen.append("journaled")

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http:
        ctx = PublishContext(
            http=http,
            media=MediaFetcher(http, max_bytes=1024),
            now=lambda: datetime.now(UTC),
            budgets=RateBudgets(),
        )
        token = flow.before_publishing_request.set(hook)
        try:
            await flow.send(ctx, "POST", "https://api.example/upload", what="upload", final=False)
            await flow.send(ctx, "POST", "https://api.example/post", what="post", final=True)
        finally:
            flow.before_publishing_request.reset(token)
        await flow.send(ctx, "POST", "https://api.example/later", what="post", final=True)
    assert seen == ["request /upload", "journaled", "request /post", "request /later"]
