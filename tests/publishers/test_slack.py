"""Slack's contract against the sandbox: chat.postMessage with image blocks, token rotation,
429 Retry-After, ok:false errors."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from postpilot.core import outcomes
from postpilot.publishers.base import AccountContext, PublishContext, Refreshed, RefreshFailed
from postpilot.publishers.slack import SlackPublisher
from postpilot.sandbox.client import SandboxClient
from tests.publishers.conftest import HOLD, account, publish_request

Ctx = Callable[[str], PublishContext]


def workspace(sandbox: SandboxClient, **kwargs: float) -> AccountContext:
    tokens = sandbox.issue_token("slack", "T123", **kwargs)
    credentials = {
        "access_token": tokens["access_token"],
        "refresh_token": tokens["refresh_token"],
        "client_id": "app",
        "client_secret": "secret",
    }
    return account("slack", credentials, {"channel": "C1H9RESGL"})


async def test_text_and_image_published(sandbox: SandboxClient, make_ctx: Ctx) -> None:
    publisher, ctx = SlackPublisher(), make_ctx("slack")
    image = sandbox.media_url("s.png")
    outcome = await publisher.publish(publish_request(workspace(sandbox), "hi team", (image,)), ctx)
    assert isinstance(outcome, outcomes.Published)
    [record] = sandbox.records("slack")
    assert outcome.platform_post_id == f"C1H9RESGL:{record['id']}"
    assert record["text"] == "hi team" and record["media"][0]["url"] == image


async def test_expired_rotating_token_is_refreshed_then_published(
    sandbox: SandboxClient, make_ctx: Ctx
) -> None:
    acct, publisher, ctx = workspace(sandbox, expires_in=-1), SlackPublisher(), make_ctx("slack")
    outcome = await publisher.publish(publish_request(acct), ctx)
    assert isinstance(outcome, outcomes.TokenExpired) and "token_expired" in outcome.reason
    refreshed = await publisher.refresh(acct, ctx)
    assert isinstance(refreshed, Refreshed)
    assert refreshed.credentials["refresh_token"] not in ("", acct.credentials["refresh_token"])
    assert refreshed.expires_at is not None
    fresh = account("slack", refreshed.credentials, acct.options)
    assert isinstance(await publisher.publish(publish_request(fresh), ctx), outcomes.Published)
    # The old refresh token was revoked by the rotation.
    again = await publisher.refresh(acct, ctx)
    assert isinstance(again, RefreshFailed) and "invalid_refresh_token" in again.reason


async def test_429_reschedules_after_retry_after(sandbox: SandboxClient, make_ctx: Ctx) -> None:
    publisher, ctx = SlackPublisher(), make_ctx("slack")
    sandbox.inject("rate_limit", "slack", retry_after_seconds=30)
    before = datetime.now(UTC).timestamp()
    outcome = await publisher.publish(publish_request(workspace(sandbox)), ctx)
    assert isinstance(outcome, outcomes.RateLimited) and "ratelimited" in outcome.reason
    assert before + 29 <= outcome.until.timestamp() <= before + 32


async def test_server_error_timeout_and_bad_media(sandbox: SandboxClient, make_ctx: Ctx) -> None:
    publisher, ctx, acct = SlackPublisher(), make_ctx("slack"), workspace(sandbox)
    sandbox.inject("server_error", "slack")
    assert isinstance(await publisher.publish(publish_request(acct), ctx), outcomes.Ambiguous)
    sandbox.inject("timeout", "slack", hold_seconds=HOLD)
    assert isinstance(await publisher.publish(publish_request(acct), ctx), outcomes.Ambiguous)
    sandbox.inject("bad_media", "slack")
    image = sandbox.media_url("s.png")
    outcome = await publisher.publish(publish_request(acct, "x", (image,)), ctx)
    assert isinstance(outcome, outcomes.Permanent)
    assert image in outcome.reason and "downloading image failed" in outcome.reason
    assert sandbox.records("slack") == []
