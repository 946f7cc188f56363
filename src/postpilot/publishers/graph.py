"""Meta's Graph API conventions, shared by Facebook Pages, Instagram and Threads: the error
envelope `{"error": {"message", "type", "code", "error_subcode", "is_transient"}}`, the usage
headers `X-App-Usage` and `X-Business-Use-Case-Usage`, and media containers."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta
from typing import Any

import httpx

from postpilot.core import outcomes
from postpilot.publishers import errors, flow
from postpilot.publishers.base import PublishContext

TOKEN_CODES = frozenset({190, 102})
# 4 app, 17 user, 32 Pages call with a user token, 613 custom, 80001/80002 Page/Instagram BUC,
# 341 app limit; 9 with subcode 2207042 is Instagram's posts-per-day cap.
THROTTLE_CODES = frozenset({4, 17, 32, 341, 613, 80001, 80002, 80006})
POLICY_BLOCK = 368
TRANSIENT_CODES = frozenset({1, 2, -1, -2, 24})
CONTAINER_POLLS = 10
CONTAINER_POLL_SECONDS = 0.5


def error_of(response: httpx.Response) -> dict[str, Any]:
    error = flow.body_of(response).get("error")
    return error if isinstance(error, dict) else {}


def describe(response: httpx.Response) -> str:
    error = error_of(response)
    if not error:
        return errors.error_text(response)
    codes = f"code {error.get('code')}" + (
        f"/{error['error_subcode']}" if error.get("error_subcode") else ""
    )
    text = error.get("error_user_msg") or error.get("message") or "no message"
    return f"{text} ({codes})"


def _usage_percent(entry: dict[str, Any]) -> float:
    values = [entry.get(k) for k in ("call_count", "total_time", "total_cputime")]
    return max((float(v) for v in values if isinstance(v, int | float)), default=0.0)


def usage(response: httpx.Response, now: datetime) -> tuple[datetime | None, datetime | None]:
    """When the app (X-App-Usage) and the Page/account (X-Business-Use-Case-Usage) may call
    again, if either is at 100 %; None for a budget with room left."""
    app_until = business_until = None
    try:
        app = json.loads(response.headers.get("x-app-usage") or "{}")
        business = json.loads(response.headers.get("x-business-use-case-usage") or "{}")
    except ValueError:
        return None, None
    if isinstance(app, dict) and _usage_percent(app) >= 100:
        app_until = now + timedelta(hours=1)  # a rolling hour; Meta gives no reset time
    if isinstance(business, dict):
        for entries in business.values():
            for entry in entries if isinstance(entries, list) else []:
                minutes = float(entry.get("estimated_time_to_regain_access") or 0)
                if minutes > 0 or _usage_percent(entry) >= 100:
                    until = now + timedelta(minutes=max(minutes, 1.0))
                    business_until = max(business_until or until, until)
    return app_until, business_until


async def note_usage(
    response: httpx.Response, ctx: PublishContext, account_key: str, app_key: str
) -> tuple[datetime | None, datetime | None]:
    app_until, business_until = usage(response, ctx.now())
    if app_until:
        await ctx.budgets.spend(app_key, until=app_until, reason="app usage at 100%")
    if business_until:
        await ctx.budgets.spend(account_key, until=business_until, reason="usage at 100%")
    return app_until, business_until


async def failure(
    response: httpx.Response,
    ctx: PublishContext,
    *,
    what: str,
    keys: tuple[str, str],
    final: bool,
) -> outcomes.Outcome:
    """Classify a Graph API error. `final`: this request publishes (so an unclear failure may
    have published); otherwise nothing is public yet and a retry is safe."""
    error = error_of(response)
    code, subcode = error.get("code"), error.get("error_subcode")
    message = f"{what}: {describe(response)}"
    app_until, business_until = await note_usage(response, ctx, *keys)
    if code in TOKEN_CODES or response.status_code == 401:
        return outcomes.TokenExpired(f"the token was rejected ({message})")
    if code == 4 and subcode == 2207051:  # spam block, not a throttle: it may still have posted
        return outcomes.Ambiguous(message)
    if code in THROTTLE_CODES or (code == 9 and subcode == 2207042):
        fallback = ctx.now() + (timedelta(hours=1) if code == 9 else timedelta(minutes=15))
        known = [d for d in (app_until, business_until) if d is not None]
        until = max(known) if known else fallback
        await ctx.budgets.spend(keys[0], until=until, reason=message)
        return outcomes.RateLimited(until=until, reason=message)
    if code == POLICY_BLOCK:
        until = ctx.now() + timedelta(hours=24)
        await ctx.budgets.spend(keys[0], until=until, reason=message)
        return outcomes.RateLimited(until=until, reason=f"blocked by Meta for now: {message}")
    if response.status_code >= 500 or error.get("is_transient") or code in TRANSIENT_CODES:
        if final:
            return outcomes.Ambiguous(message)
        return outcomes.Transient(message, retry_after_seconds=60 if code == 24 else None)
    return outcomes.Permanent(message)


async def wait_for_container(
    ctx: PublishContext,
    url: str,
    headers: dict[str, str],
    *,
    field: str,
    what: str,
    keys: tuple[str, str],
) -> None:
    """Poll a media container until it is FINISHED; stop with the right outcome otherwise."""
    for _ in range(CONTAINER_POLLS):
        response = await flow.send(
            ctx, "GET", url, what=what, final=False, params={"fields": field}, headers=headers
        )
        if response.status_code != 200:
            raise flow.Stop(await failure(response, ctx, what=what, keys=keys, final=False))
        body = flow.body_of(response)
        status = str(body.get(field) or "")
        if status in ("FINISHED", "PUBLISHED"):
            return
        if status == "ERROR":
            detail = body.get("error_message") or "the platform could not process the media"
            raise flow.Stop(outcomes.Permanent(f"{what}: {detail}"))
        if status == "EXPIRED":
            raise flow.Stop(outcomes.Transient(f"{what}: the media container expired"))
        await asyncio.sleep(CONTAINER_POLL_SECONDS)
    raise flow.Stop(outcomes.Transient(f"{what}: media still processing", retry_after_seconds=60))
