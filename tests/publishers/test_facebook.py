"""Facebook Pages' contract against the sandbox: feed and photos by URL, code-190 tokens,
BUC throttling (80001) with the usage header, 506 duplicates, unreachable media."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from postpilot.core import outcomes
from postpilot.publishers.base import AccountContext, PublishContext, RefreshFailed
from postpilot.publishers.facebook import FacebookPublisher
from postpilot.sandbox.client import SandboxClient
from tests.publishers.conftest import HOLD, account, publish_request, unique

Ctx = Callable[[str], PublishContext]


def page(sandbox: SandboxClient, **kwargs: float) -> AccountContext:
    tokens = sandbox.issue_token("facebook", "page-owner", refresh=False, **kwargs)
    return account("facebook", {"page_access_token": tokens["access_token"]}, {"page_id": "1001"})


async def test_text_and_photo_published(sandbox: SandboxClient, make_ctx: Ctx) -> None:
    acct, ctx, publisher = page(sandbox), make_ctx("facebook"), FacebookPublisher()
    text = unique("hello page")
    outcome = await publisher.publish(publish_request(acct, text), ctx)
    assert isinstance(outcome, outcomes.Published)
    assert outcome.platform_post_id.startswith("1001_")
    assert outcome.url == f"https://www.facebook.com/{outcome.platform_post_id}"
    image = sandbox.media_url("fb.png")
    photo = await publisher.publish(publish_request(acct, unique(), (image,)), ctx)
    assert isinstance(photo, outcomes.Published)
    first, second = sandbox.records("facebook")
    assert first["text"] == text and first["media"] == []
    assert second["id"] == photo.platform_post_id
    assert second["media"][0]["url"] == image


async def test_expired_page_token_cannot_be_refreshed(
    sandbox: SandboxClient, make_ctx: Ctx
) -> None:
    acct, ctx, publisher = page(sandbox, expires_in=-1), make_ctx("facebook"), FacebookPublisher()
    outcome = await publisher.publish(publish_request(acct), ctx)
    assert isinstance(outcome, outcomes.TokenExpired)
    assert "190/463" in outcome.reason
    refreshed = await publisher.refresh(acct, ctx)
    assert isinstance(refreshed, RefreshFailed) and "reconnect the Page" in refreshed.reason


async def test_throttling_uses_the_usage_header(sandbox: SandboxClient, make_ctx: Ctx) -> None:
    acct, ctx, publisher = page(sandbox), make_ctx("facebook"), FacebookPublisher()
    sandbox.inject("rate_limit", "facebook", retry_after_seconds=600)
    before = datetime.now(UTC).timestamp()
    outcome = await publisher.publish(publish_request(acct, unique()), ctx)
    assert isinstance(outcome, outcomes.RateLimited)
    assert "80001" in outcome.reason
    # estimated_time_to_regain_access is in whole minutes: 11 for 600 s.
    assert before + 600 <= outcome.until.timestamp() <= before + 700
    sent = len(sandbox.requests("facebook"))
    again = await publisher.publish(publish_request(acct, unique()), ctx)
    assert isinstance(again, outcomes.RateLimited) and "budget" in again.reason
    assert len(sandbox.requests("facebook")) == sent


async def test_server_error_and_timeout_are_ambiguous(
    sandbox: SandboxClient, make_ctx: Ctx
) -> None:
    acct, ctx, publisher = page(sandbox), make_ctx("facebook"), FacebookPublisher()
    sandbox.inject("server_error", "facebook")
    assert isinstance(
        await publisher.publish(publish_request(acct, unique()), ctx), outcomes.Ambiguous
    )
    sandbox.inject("timeout", "facebook", hold_seconds=HOLD)
    assert isinstance(
        await publisher.publish(publish_request(acct, unique()), ctx), outcomes.Ambiguous
    )
    assert sandbox.records("facebook") == []


async def test_duplicate_is_a_clear_failure(sandbox: SandboxClient, make_ctx: Ctx) -> None:
    acct, ctx, publisher = page(sandbox), make_ctx("facebook"), FacebookPublisher()
    text = unique("twice")
    assert isinstance(await publisher.publish(publish_request(acct, text), ctx), outcomes.Published)
    outcome = await publisher.publish(publish_request(acct, text, attempt=2), ctx)
    assert isinstance(outcome, outcomes.Permanent)
    assert "duplicate" in outcome.reason and "earlier attempt" in outcome.reason


async def test_invalid_media_is_permanent(sandbox: SandboxClient, make_ctx: Ctx) -> None:
    acct, ctx, publisher = page(sandbox), make_ctx("facebook"), FacebookPublisher()
    url = sandbox.media_url("photo.txt")
    outcome = await publisher.publish(publish_request(acct, unique(), (url,)), ctx)
    assert isinstance(outcome, outcomes.Permanent)
    assert url in outcome.reason and "not an image" in outcome.reason
    sandbox.inject("bad_media", "facebook")
    outcome = await publisher.publish(
        publish_request(acct, unique(), (sandbox.media_url("ok.png"),)), ctx
    )
    assert isinstance(outcome, outcomes.Permanent)
    assert "Missing or invalid image file" in outcome.reason
    assert sandbox.records("facebook") == []
