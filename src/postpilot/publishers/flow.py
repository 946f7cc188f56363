"""Pieces every publisher's flow shares: stop early with an outcome, fetch media, consult the
rate budget, send a request and classify a transport failure by whether it could have published.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx

from postpilot.core import outcomes
from postpilot.errors import PostpilotError
from postpilot.publishers import errors
from postpilot.publishers.base import PublishContext, PublishRequest, Refreshed, RefreshFailed
from postpilot.publishers.media import MediaError, MediaFile
from postpilot.publishers.transport import NotPublicAddress


class Stop(PostpilotError):
    """Ends a publish (or refresh) early with the outcome it carries."""

    def __init__(self, outcome: outcomes.Outcome) -> None:
        super().__init__(repr(outcome))
        self.outcome = outcome


async def fetch_media(ctx: PublishContext, url: str) -> MediaFile:
    """The checked bytes of `url`; an unusable URL stops the publish for good."""
    try:
        return await ctx.media.fetch(url)
    except MediaError as exc:
        raise Stop(outcomes.Permanent(str(exc))) from exc


async def media_for_platform(ctx: PublishContext, url: str) -> str:
    """`url` as a platform that downloads media itself is given it, once it is known to be
    usable: library media become a signed, expiring link under PUBLIC_BASE_URL."""
    await fetch_media(ctx, url)  # a URL the platform could not use fails here, clearly
    try:
        return ctx.media.public_url(url, ctx.now())
    except MediaError as exc:
        raise Stop(outcomes.Permanent(str(exc))) from exc


async def check_budget(ctx: PublishContext, platform: str, keys: Iterable[str]) -> None:
    """Stop with `RateLimited` when a budget is spent, without sending anything."""
    spent = await ctx.budgets.blocked_until(keys, ctx.now())
    if spent is not None:
        why = f" ({spent.reason})" if spent.reason else ""
        raise Stop(
            outcomes.RateLimited(
                until=spent.reset_at,
                reason=f"{platform}: rate-limit budget spent until "
                f"{spent.reset_at.isoformat()}{why}",
            )
        )


# Set by the scheduler around one delivery: awaited right before its publishing request, so the
# pass's journal knows exactly which deliveries may have reached the platform.
before_publishing_request: ContextVar[Callable[[], Awaitable[None]] | None] = ContextVar(
    "before_publishing_request", default=None
)


async def send(
    ctx: PublishContext, method: str, url: str, *, what: str, final: bool, **kwargs: Any
) -> httpx.Response:
    """One request. A transport failure of the `final` request (the one that publishes) may
    have published; any earlier one (upload, container, login) cannot have."""
    if final and (hook := before_publishing_request.get()) is not None:
        await hook()
    try:
        return await ctx.http.request(method, url, **kwargs)
    except httpx.TransportError as exc:
        if final:
            raise Stop(errors.transport_outcome(exc, what)) from exc
        raise Stop(errors.unsent_outcome(exc, what)) from exc


def body_of(response: httpx.Response) -> dict[str, Any]:
    """The JSON object a response carries, or {} when it carries none."""
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def expiry(now: datetime, expires_in: object) -> datetime | None:
    """`expires_in` seconds from now, when the platform sent a usable number."""
    if isinstance(expires_in, int | float) and not isinstance(expires_in, bool) and expires_in > 0:
        return now + timedelta(seconds=float(expires_in))
    return None


def keep_refresh_token(old: dict[str, Any], new_token: object, key: str = "refresh_token") -> Any:
    """The platform's new refresh token, or the one we had when it sent none."""
    return new_token if isinstance(new_token, str) and new_token else old.get(key)


@dataclass(frozen=True, slots=True)
class RefreshUnavailable(RefreshFailed):
    """The refresh could not be tried (network error, 5xx, rate limit): the token may still be
    fine, so the account does not need reconnecting; try again later."""

    retry_after_seconds: float | None = None


def refresh_unavailable(
    platform: str, exc_or_response: Exception | httpx.Response
) -> RefreshFailed:
    if isinstance(exc_or_response, httpx.Response):
        what = f"HTTP {exc_or_response.status_code}"
        retry = errors.retry_after_seconds(exc_or_response)
    elif isinstance(exc_or_response, NotPublicAddress):  # the reason, not just its type
        what, retry = exc_or_response.reason, None
    else:
        what, retry = type(exc_or_response).__name__, None
    return RefreshUnavailable(
        f"could not reach {platform} to refresh the token ({what}); it will be tried again",
        retry_after_seconds=retry,
    )


def refreshed(credentials: dict[str, Any], body: dict[str, Any], now: datetime) -> Refreshed:
    """The stored credentials with a token grant's new pair; the old refresh token is kept when
    the platform sent none, so a refresh can never leave the account without one."""
    return Refreshed(
        credentials={
            **credentials,
            "access_token": body["access_token"],
            "refresh_token": keep_refresh_token(credentials, body.get("refresh_token")),
        },
        expires_at=expiry(now, body.get("expires_in")),
    )


class StepwisePublisher:
    """The shape of a publisher whose flow has several requests: any step may end it early by
    raising `Stop(outcome)`, and `publish` turns that into the outcome it carries."""

    async def publish(self, request: PublishRequest, ctx: PublishContext) -> outcomes.Outcome:
        try:
            return await self._publish(request, ctx)
        except Stop as stop:
            return stop.outcome

    async def _publish(self, request: PublishRequest, ctx: PublishContext) -> outcomes.Outcome:
        raise NotImplementedError
