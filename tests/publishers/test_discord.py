"""Discord webhooks against the sandbox: wait=true, files[n] uploads, bucket headers, 429 with
retry_after, deleted webhooks."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from postpilot.core import outcomes
from postpilot.publishers.base import AccountContext, PublishContext, RefreshFailed
from postpilot.publishers.discord import DiscordPublisher, webhook_parts
from postpilot.sandbox.client import SandboxClient
from tests.publishers.conftest import HOLD, account, publish_request

Ctx = Callable[[str], PublishContext]


def hook(token: str = "hook-token") -> AccountContext:
    url = f"https://discord.com/api/webhooks/111222333/{token}"
    return account("discord", {"webhook_url": url}, {"guild_id": "42"})


def test_webhook_parts() -> None:
    assert webhook_parts({"webhook_url": "https://discord.com/api/webhooks/1/abc"}) == ("1", "abc")
    assert webhook_parts({"webhook_id": "2", "webhook_token": "t"}) == ("2", "t")
    assert webhook_parts({"webhook_url": "https://example.com/"}) is None


async def test_text_and_images_published(sandbox: SandboxClient, make_ctx: Ctx) -> None:
    publisher, ctx = DiscordPublisher(), make_ctx("discord")
    images = (sandbox.media_url("d1.png"), sandbox.media_url("d2.png"))
    outcome = await publisher.publish(publish_request(hook(), "hello server", images), ctx)
    assert isinstance(outcome, outcomes.Published)
    assert (
        outcome.url
        == f"https://discord.com/channels/42/200000000000000001/{outcome.platform_post_id}"
    )
    [record] = sandbox.records("discord")
    assert record["text"] == "hello server" and record["account"] == "111222333"
    assert [m["filename"] for m in record["media"]] == ["image0.png", "image1.png"]


async def test_bucket_headers_stop_before_the_limit(sandbox: SandboxClient, make_ctx: Ctx) -> None:
    sandbox.configure(rate_limits={"discord": [1, 60]})
    publisher, ctx = DiscordPublisher(), make_ctx("discord")
    assert isinstance(await publisher.publish(publish_request(hook()), ctx), outcomes.Published)
    outcome = await publisher.publish(publish_request(hook()), ctx)
    assert isinstance(outcome, outcomes.RateLimited) and "budget" in outcome.reason
    assert len(sandbox.requests("discord")) == 1


async def test_429_reschedules_after_retry_after(sandbox: SandboxClient, make_ctx: Ctx) -> None:
    publisher, ctx = DiscordPublisher(), make_ctx("discord")
    sandbox.inject("rate_limit", "discord", retry_after_seconds=64.57)
    before = datetime.now(UTC).timestamp()
    outcome = await publisher.publish(publish_request(hook()), ctx)
    assert isinstance(outcome, outcomes.RateLimited)
    assert before + 64 <= outcome.until.timestamp() <= before + 66


async def test_deleted_webhook_needs_a_new_one(sandbox: SandboxClient, make_ctx: Ctx) -> None:
    sandbox.revoke("gone-token")
    publisher, ctx = DiscordPublisher(), make_ctx("discord")
    outcome = await publisher.publish(publish_request(hook("gone-token")), ctx)
    assert isinstance(outcome, outcomes.TokenExpired) and "Unknown Webhook" in outcome.reason
    refreshed = await publisher.refresh(hook("gone-token"), ctx)
    assert isinstance(refreshed, RefreshFailed) and "new webhook" in refreshed.reason


async def test_server_error_timeout_and_bad_media(sandbox: SandboxClient, make_ctx: Ctx) -> None:
    publisher, ctx = DiscordPublisher(), make_ctx("discord")
    sandbox.inject("unavailable", "discord")
    assert isinstance(await publisher.publish(publish_request(hook()), ctx), outcomes.Transient)
    sandbox.inject("timeout", "discord", hold_seconds=HOLD)
    assert isinstance(await publisher.publish(publish_request(hook()), ctx), outcomes.Ambiguous)
    url = "http://127.0.0.1:9/nothing.png"
    outcome = await publisher.publish(publish_request(hook(), "x", (url,)), ctx)
    assert isinstance(outcome, outcomes.Permanent) and url in outcome.reason
    assert sandbox.records("discord") == []
