"""LinkedIn's contract against the sandbox: image upload and URN reuse, 201 with x-restli-id,
refresh, 429 until midnight UTC, 422 DUPLICATE_POST read as success on a retry."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from postpilot.core import outcomes
from postpilot.publishers.base import AccountContext, PublishContext, Refreshed, RefreshFailed
from postpilot.publishers.linkedin import LinkedInPublisher, escape_commentary, next_utc_midnight
from postpilot.sandbox.client import SandboxClient
from tests.publishers.conftest import HOLD, account, publish_request, unique

Ctx = Callable[[str], PublishContext]
AUTHOR = "urn:li:person:abc123"


def member(sandbox: SandboxClient, **kwargs: float) -> AccountContext:
    tokens = sandbox.issue_token("linkedin", "member", **kwargs)
    credentials = {
        "access_token": tokens["access_token"],
        "refresh_token": tokens["refresh_token"],
        "client_id": "app",
        "client_secret": "secret",
    }
    return account("linkedin", credentials, {"author_urn": AUTHOR})


def test_little_text_format_is_escaped() -> None:
    assert escape_commentary("a (b) @c #d *e*") == r"a \(b\) \@c #d \*e\*"


def test_midnight_utc() -> None:
    assert next_utc_midnight(datetime(2026, 3, 1, 23, 59, tzinfo=UTC)) == datetime(
        2026, 3, 2, tzinfo=UTC
    )


async def test_text_and_image_published(sandbox: SandboxClient, make_ctx: Ctx) -> None:
    acct, ctx, publisher = member(sandbox), make_ctx("linkedin"), LinkedInPublisher()
    image = sandbox.media_url("li.png")
    text = unique("hello linkedin")
    outcome = await publisher.publish(publish_request(acct, text, (image,)), ctx)
    assert isinstance(outcome, outcomes.Published)
    assert outcome.platform_post_id.startswith("urn:li:share:")
    assert outcome.url == f"https://www.linkedin.com/feed/update/{outcome.platform_post_id}/"
    again = await publisher.publish(publish_request(acct, unique(), (image,)), ctx)
    assert isinstance(again, outcomes.Published)
    first, second = sandbox.records("linkedin")
    assert first["text"] == text and first["account"] == AUTHOR
    assert first["media"][0]["content_type"] == "image/png"
    assert first["media"][0]["id"] == second["media"][0]["id"]  # the image URN was reused


async def test_expired_token_is_refreshed_then_published(
    sandbox: SandboxClient, make_ctx: Ctx
) -> None:
    acct, ctx, publisher = member(sandbox, expires_in=-1), make_ctx("linkedin"), LinkedInPublisher()
    outcome = await publisher.publish(publish_request(acct, unique()), ctx)
    assert isinstance(outcome, outcomes.TokenExpired)
    refreshed = await publisher.refresh(acct, ctx)
    assert isinstance(refreshed, Refreshed)
    # LinkedIn keeps the refresh token (its 365-day clock runs on).
    assert refreshed.credentials["refresh_token"] == acct.credentials["refresh_token"]
    fresh = account("linkedin", refreshed.credentials, acct.options)
    assert isinstance(
        await publisher.publish(publish_request(fresh, unique()), ctx), outcomes.Published
    )
    no_partner = account("linkedin", {"access_token": "x"}, acct.options)
    failed = await publisher.refresh(no_partner, ctx)
    assert isinstance(failed, RefreshFailed) and "reconnect" in failed.reason


async def test_rate_limit_waits_until_midnight_utc(sandbox: SandboxClient, make_ctx: Ctx) -> None:
    acct, ctx, publisher = member(sandbox), make_ctx("linkedin"), LinkedInPublisher()
    sandbox.inject("rate_limit", "linkedin")
    outcome = await publisher.publish(publish_request(acct, unique()), ctx)
    assert isinstance(outcome, outcomes.RateLimited)
    assert outcome.until == next_utc_midnight(datetime.now(UTC))
    sent = len(sandbox.requests("linkedin"))
    again = await publisher.publish(publish_request(acct, unique()), ctx)
    assert isinstance(again, outcomes.RateLimited) and len(sandbox.requests("linkedin")) == sent


async def test_timeout_then_duplicate_422_is_success(sandbox: SandboxClient, make_ctx: Ctx) -> None:
    acct, ctx, publisher = member(sandbox), make_ctx("linkedin"), LinkedInPublisher()
    text = unique("once")
    sandbox.inject("timeout_after_commit", "linkedin", hold_seconds=HOLD)
    first = publish_request(acct, text)
    assert isinstance(await publisher.publish(first, ctx), outcomes.Ambiguous)
    retry = publish_request(acct, text, key=first.idempotency_key, attempt=2)
    outcome = await publisher.publish(retry, ctx)
    [record] = sandbox.records("linkedin")
    assert outcome == outcomes.Published(
        record["id"],
        url=f"https://www.linkedin.com/feed/update/{record['id']}/",
        already_existed=True,
    )
    fresh_attempt = await publisher.publish(publish_request(acct, text), ctx)
    assert isinstance(fresh_attempt, outcomes.Permanent) and record["id"] in fresh_attempt.reason


async def test_server_error_and_invalid_media(sandbox: SandboxClient, make_ctx: Ctx) -> None:
    acct, ctx, publisher = member(sandbox), make_ctx("linkedin"), LinkedInPublisher()
    sandbox.inject("server_error", "linkedin", step="publish")
    assert isinstance(
        await publisher.publish(publish_request(acct, unique()), ctx), outcomes.Ambiguous
    )
    sandbox.inject("unavailable", "linkedin", step="upload")
    image = (sandbox.media_url("li.png"),)
    assert isinstance(
        await publisher.publish(publish_request(acct, unique(), image), ctx), outcomes.Transient
    )
    url = sandbox.media_url("li.txt")
    outcome = await publisher.publish(publish_request(acct, unique(), (url,)), ctx)
    assert isinstance(outcome, outcomes.Permanent) and url in outcome.reason
    assert sandbox.records("linkedin") == []
