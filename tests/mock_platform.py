"""A platform that answers what the test says, over `httpx.MockTransport`: the publisher builds
and sends its real requests, nothing leaves the process, and the clock stands still."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from postpilot.core import outcomes
from postpilot.publishers.base import PublishContext, Publisher, PublishRequest
from postpilot.publishers.media import MediaFetcher

# Ahead of the real clock: budgets ignore resets that have already passed.
NOW = datetime(2036, 6, 1, 12, 0, tzinfo=UTC)

# What the platform does with a request: answer it, or fail below HTTP (the exception is raised
# by the transport, as httpx would: ConnectError, ReadTimeout...).
Answer = httpx.Response | httpx.TransportError


@dataclass
class MockPlatform:
    """Answers requests whose path ends with a key of `answers`; anything else is a 404."""

    answers: dict[str, Answer] = field(default_factory=dict)
    requests: list[httpx.Request] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        for suffix, answer in self.answers.items():
            if request.url.path.endswith(suffix):
                if isinstance(answer, httpx.TransportError):
                    raise type(answer)(str(answer), request=request)
                return answer
        return httpx.Response(404, json={"error": f"no answer for {request.url.path}"})


@contextlib.asynccontextmanager
async def context(
    platform: Callable[[httpx.Request], httpx.Response],
) -> AsyncIterator[PublishContext]:
    """A publish context whose every request goes to `platform`, at `NOW`."""
    async with httpx.AsyncClient(transport=httpx.MockTransport(platform)) as http:
        yield PublishContext(http=http, media=MediaFetcher(http, max_bytes=1024), now=lambda: NOW)


async def publish_through(
    publisher: Publisher,
    request: PublishRequest,
    platform: Callable[[httpx.Request], httpx.Response],
) -> outcomes.Outcome:
    """The outcome of one publish whose every request goes to `platform`."""
    async with context(platform) as ctx:
        return await publisher.publish(request, ctx)


def response(status: int, body: Any = None, **headers: str) -> httpx.Response:
    """An answer with a JSON body (`{}` when none is given) and the given headers."""
    return httpx.Response(status, json={} if body is None else body, headers=headers)


@dataclass(frozen=True)
class Expected:
    """An outcome's type and the fields that matter (reasons are for people: not compared)."""

    kind: type[outcomes.Outcome]
    fields: dict[str, Any] = field(default_factory=dict)

    def check(self, outcome: outcomes.Outcome) -> None:
        assert isinstance(outcome, self.kind), outcome
        for name, value in self.fields.items():
            assert getattr(outcome, name) == value, (name, outcome)


def expect(kind: type[outcomes.Outcome], **fields: Any) -> Expected:
    return Expected(kind, fields)


def by_status(status: int) -> Expected:
    """What a bare HTTP status means on platforms without their own error codes: a rejected
    token, a rate limit, a server that refused the request (503, safe to retry), a server that
    may have acted on it (other 5xx), or a refusal retrying will not fix (other 4xx)."""
    if status == 401:
        return expect(outcomes.TokenExpired)
    if status == 429:
        return expect(outcomes.RateLimited)
    if status == 503:
        return expect(outcomes.Transient)
    if status >= 500:
        return expect(outcomes.Ambiguous)
    return expect(outcomes.Permanent)


ERROR_STATUSES = [*range(400, 419), *range(421, 432), 451, *range(500, 512)]
