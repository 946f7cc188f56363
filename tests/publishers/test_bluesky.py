"""Bluesky's contract against the sandbox: blobs, record keys derived from the delivery,
refreshSession with rotation, createSession fallback, ratelimit-* headers."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from postpilot.core import outcomes
from postpilot.publishers.base import AccountContext, PublishContext, Refreshed, RefreshFailed
from postpilot.publishers.bluesky import BlueskyPublisher, jwt_expiry, link_facets, record_key
from postpilot.sandbox.client import SandboxClient
from tests.publishers.conftest import HOLD, account, publish_request, unique

Ctx = Callable[[str], PublishContext]
DID = "did:plc:alice"


def bsky_account(sandbox: SandboxClient, **kwargs: Any) -> tuple[dict[str, Any], AccountContext]:
    tokens = sandbox.issue_token("bluesky", DID, **kwargs)
    credentials = {
        "did": DID,
        "access_jwt": tokens["access_token"],
        "refresh_jwt": tokens["refresh_token"],
    }
    return tokens, account("bluesky", credentials, handle="alice.test")


def test_record_key_is_a_stable_tid() -> None:
    at = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    key = record_key("delivery-1", at)
    assert key == record_key("delivery-1", at)
    assert key != record_key("delivery-2", at)
    assert len(key) == 13 and key[0] in "234567abcdefghij"
    assert record_key("a", datetime(2026, 5, 1, 12, 1, tzinfo=UTC)) > record_key("a", at)


def test_link_facets_use_byte_offsets() -> None:
    [facet] = link_facets("héllo https://example.com/x.")
    assert facet["index"] == {"byteStart": 7, "byteEnd": 28}
    assert facet["features"][0]["uri"] == "https://example.com/x"


async def test_text_and_image_published(sandbox: SandboxClient, make_ctx: Ctx) -> None:
    _, acct = bsky_account(sandbox)
    request = publish_request(acct, "see https://example.com", (sandbox.media_url("a.png"),))
    outcome = await BlueskyPublisher().publish(request, make_ctx("bluesky"))
    rkey = record_key(request.idempotency_key, request.scheduled_at)
    assert outcome == outcomes.Published(
        platform_post_id=f"at://{DID}/app.bsky.feed.post/{rkey}",
        url=f"https://bsky.app/profile/alice.test/post/{rkey}",
    )
    [record] = sandbox.records("bluesky")
    assert record["id"] == rkey
    assert record["text"] == "see https://example.com"
    assert record["media"][0]["content_type"] == "image/png"


async def test_same_delivery_twice_creates_one_record(
    sandbox: SandboxClient, make_ctx: Ctx
) -> None:
    _, acct = bsky_account(sandbox)
    publisher, ctx = BlueskyPublisher(), make_ctx("bluesky")
    first = publish_request(acct, unique(), (sandbox.media_url("a.png"),))
    assert isinstance(await publisher.publish(first, ctx), outcomes.Published)
    # A first attempt that never heard back: the PDS answers 500 for the existing rkey and
    # getRecord shows it is there.
    outcome = await publisher.publish(first, ctx)
    assert isinstance(outcome, outcomes.Published) and outcome.already_existed
    # A later attempt checks first and sends nothing.
    retry = publish_request(
        acct,
        first.text,
        first.media_urls,
        key=first.idempotency_key,
        attempt=2,
        scheduled_at=first.scheduled_at,
    )
    outcome = await publisher.publish(retry, ctx)
    assert isinstance(outcome, outcomes.Published) and outcome.already_existed
    assert len(sandbox.records("bluesky")) == 1
    uploads = [r for r in sandbox.requests("bluesky") if r["path"].endswith("uploadBlob")]
    assert len(uploads) == 1  # the blob was reused


async def test_timeout_after_commit_is_published_via_get_record(
    sandbox: SandboxClient, make_ctx: Ctx
) -> None:
    _, acct = bsky_account(sandbox)
    sandbox.inject("timeout_after_commit", "bluesky", hold_seconds=HOLD)
    outcome = await BlueskyPublisher().publish(publish_request(acct), make_ctx("bluesky"))
    assert isinstance(outcome, outcomes.Published) and outcome.already_existed
    assert len(sandbox.records("bluesky")) == 1


async def test_timeout_before_commit_is_ambiguous(sandbox: SandboxClient, make_ctx: Ctx) -> None:
    _, acct = bsky_account(sandbox)
    sandbox.inject("timeout", "bluesky", hold_seconds=HOLD)
    outcome = await BlueskyPublisher().publish(publish_request(acct), make_ctx("bluesky"))
    assert isinstance(outcome, outcomes.Ambiguous)
    sandbox.inject("server_error", "bluesky")
    outcome = await BlueskyPublisher().publish(publish_request(acct), make_ctx("bluesky"))
    assert isinstance(outcome, outcomes.Ambiguous)
    assert sandbox.records("bluesky") == []


async def test_expired_token_is_refreshed_then_published(
    sandbox: SandboxClient, make_ctx: Ctx
) -> None:
    tokens, acct = bsky_account(sandbox, expires_in=-1)
    publisher, ctx = BlueskyPublisher(), make_ctx("bluesky")
    outcome = await publisher.publish(publish_request(acct), ctx)
    assert isinstance(outcome, outcomes.TokenExpired)
    assert "ExpiredToken" in outcome.reason

    refreshed = await publisher.refresh(acct, ctx)
    assert isinstance(refreshed, Refreshed)
    assert refreshed.credentials["refresh_jwt"] not in ("", tokens["refresh_token"])
    assert refreshed.expires_at == jwt_expiry(refreshed.credentials["access_jwt"])
    assert refreshed.expires_at is not None and refreshed.expires_at > datetime.now(UTC)
    fresh = account("bluesky", refreshed.credentials, handle="alice.test")
    assert isinstance(await publisher.publish(publish_request(fresh), ctx), outcomes.Published)

    # The old refresh token was rotated: without an app password, the person must reconnect.
    failed = await publisher.refresh(acct, ctx)
    assert isinstance(failed, RefreshFailed)
    assert "revoked" in failed.reason and "app password" in failed.reason


async def test_dead_refresh_token_falls_back_to_the_app_password(
    sandbox: SandboxClient, make_ctx: Ctx
) -> None:
    tokens, acct = bsky_account(sandbox)
    sandbox.revoke(tokens["refresh_token"])
    creds = {**acct.credentials, "identifier": "alice.test", "password": "app-pass"}
    refreshed = await BlueskyPublisher().refresh(account("bluesky", creds), make_ctx("bluesky"))
    assert isinstance(refreshed, Refreshed)
    assert refreshed.credentials["password"] == "app-pass"
    assert refreshed.credentials["access_jwt"] != tokens["access_token"]

    wrong = {**creds, "password": "wrong-password"}
    failed = await BlueskyPublisher().refresh(account("bluesky", wrong), make_ctx("bluesky"))
    assert isinstance(failed, RefreshFailed)
    assert "app password" in failed.reason


async def test_rate_limit_reschedules_at_the_reset(sandbox: SandboxClient, make_ctx: Ctx) -> None:
    _, acct = bsky_account(sandbox)
    sandbox.inject("rate_limit", "bluesky", retry_after_seconds=90)
    publisher, ctx = BlueskyPublisher(), make_ctx("bluesky")
    before = datetime.now(UTC).timestamp()
    outcome = await publisher.publish(publish_request(acct), ctx)
    assert isinstance(outcome, outcomes.RateLimited)
    assert before + 80 < outcome.until.timestamp() < before + 100
    sent = len(sandbox.requests("bluesky"))
    again = await publisher.publish(publish_request(acct), ctx)
    assert isinstance(again, outcomes.RateLimited) and "budget" in again.reason
    assert len(sandbox.requests("bluesky")) == sent


async def test_invalid_media_is_permanent(sandbox: SandboxClient, make_ctx: Ctx) -> None:
    _, acct = bsky_account(sandbox)
    url = "http://127.0.0.1:9/missing.png"  # nothing listens on the discard port
    outcome = await BlueskyPublisher().publish(
        publish_request(acct, "x", (url,)), make_ctx("bluesky")
    )
    assert isinstance(outcome, outcomes.Permanent)
    assert url in outcome.reason and "could not download" in outcome.reason
    assert sandbox.records("bluesky") == []
