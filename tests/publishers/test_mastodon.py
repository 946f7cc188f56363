"""Mastodon's contract against the sandbox: statuses with media, the Idempotency-Key that makes
a retry after an unclear answer safe, X-RateLimit-* headers, revoked tokens, faults."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from postpilot.core import outcomes
from postpilot.publishers.base import AccountContext, PublishContext, RefreshFailed
from postpilot.publishers.mastodon import MastodonPublisher
from postpilot.sandbox.client import SandboxClient
from tests.publishers.conftest import HOLD, account, publish_request, unique

Ctx = Callable[[str], PublishContext]


def user(token: str = "mastodon-token") -> AccountContext:
    return account("mastodon", {"access_token": token}, {"visibility": "unlisted"})


async def test_text_and_image_published_with_the_delivery_key(
    sandbox: SandboxClient, make_ctx: Ctx
) -> None:
    publisher, ctx, acct = MastodonPublisher(), make_ctx("mastodon"), user()
    request = publish_request(acct, unique("with a picture"), (sandbox.media_url("m.png"),))
    outcome = await publisher.publish(request, ctx)
    assert isinstance(outcome, outcomes.Published), outcome
    assert outcome.url and outcome.url.endswith(f"/@sandbox/{outcome.platform_post_id}")
    (record,) = sandbox.records("mastodon")
    assert (record["id"], record["text"]) == (outcome.platform_post_id, request.text)
    assert record["idempotency_key"] == request.idempotency_key
    assert record["media"][0]["content_type"] == "image/png"


async def test_a_retry_after_an_unclear_answer_is_the_same_status(
    sandbox: SandboxClient, make_ctx: Ctx
) -> None:
    """The first attempt is stored but its answer never comes: the retry carries the same key,
    and Mastodon answers the stored status instead of posting again."""
    publisher, ctx, acct = MastodonPublisher(), make_ctx("mastodon"), user()
    first = publish_request(acct, unique("once"))
    sandbox.inject("timeout_after_commit", "mastodon", hold_seconds=HOLD)
    assert isinstance(await publisher.publish(first, ctx), outcomes.Ambiguous)
    again = publish_request(acct, first.text, key=first.idempotency_key, attempt=2)
    outcome = await publisher.publish(again, ctx)
    assert isinstance(outcome, outcomes.Published), outcome
    (record,) = sandbox.records("mastodon")
    assert record["id"] == outcome.platform_post_id


async def test_a_revoked_token_needs_a_reconnect(sandbox: SandboxClient, make_ctx: Ctx) -> None:
    sandbox.revoke("revoked-token")
    publisher, ctx = MastodonPublisher(), make_ctx("mastodon")
    outcome = await publisher.publish(publish_request(user("revoked-token")), ctx)
    assert isinstance(outcome, outcomes.TokenExpired), outcome
    refreshed = await publisher.refresh(user("revoked-token"), ctx)
    assert isinstance(refreshed, RefreshFailed)


async def test_a_rate_limit_waits_for_the_reset_it_names(
    sandbox: SandboxClient, make_ctx: Ctx
) -> None:
    publisher, ctx, acct = MastodonPublisher(), make_ctx("mastodon"), user()
    sandbox.inject("rate_limit", "mastodon", retry_after_seconds=120)
    before = datetime.now(UTC).timestamp()
    outcome = await publisher.publish(publish_request(acct), ctx)
    assert isinstance(outcome, outcomes.RateLimited), outcome
    assert before + 118 <= outcome.until.timestamp() <= before + 122
    held = await publisher.publish(publish_request(acct), ctx)
    assert isinstance(held, outcomes.RateLimited), "the spent window holds the next one back"
    assert sandbox.records("mastodon") == []


async def test_server_faults(sandbox: SandboxClient, make_ctx: Ctx) -> None:
    publisher, ctx, acct = MastodonPublisher(), make_ctx("mastodon"), user()
    sandbox.inject("unavailable", "mastodon")
    assert isinstance(await publisher.publish(publish_request(acct), ctx), outcomes.Transient)
    sandbox.inject("server_error", "mastodon")
    assert isinstance(await publisher.publish(publish_request(acct), ctx), outcomes.Ambiguous)
    sandbox.inject("timeout", "mastodon", hold_seconds=HOLD)
    assert isinstance(await publisher.publish(publish_request(acct), ctx), outcomes.Ambiguous)
    assert sandbox.records("mastodon") == []


async def test_what_mastodon_refuses_for_good(sandbox: SandboxClient, make_ctx: Ctx) -> None:
    publisher, ctx, acct = MastodonPublisher(), make_ctx("mastodon"), user()
    not_an_image = sandbox.media_url("m.txt")
    outcome = await publisher.publish(publish_request(acct, "c", (not_an_image,)), ctx)
    assert isinstance(outcome, outcomes.Permanent) and not_an_image in outcome.reason
    sandbox.inject("bad_media", "mastodon")
    outcome = await publisher.publish(
        publish_request(acct, "c", (sandbox.media_url("n.png"),)), ctx
    )
    assert isinstance(outcome, outcomes.Permanent) and "File is invalid" in outcome.reason
    outcome = await publisher.publish(publish_request(acct, "x" * 501), ctx)
    assert isinstance(outcome, outcomes.Permanent) and "character limit" in outcome.reason
    assert sandbox.records("mastodon") == []
