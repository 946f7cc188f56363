"""X's contract against the sandbox: media upload and reuse, refresh, x-rate-limit-* budgets,
and the duplicate 403 read as "already posted" after an ambiguous attempt."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from postpilot.core import outcomes
from postpilot.publishers.base import AccountContext, PublishContext, Refreshed, RefreshFailed
from postpilot.publishers.x import XPublisher
from postpilot.sandbox.client import SandboxClient
from tests.publishers.conftest import HOLD, account, publish_request, unique

Ctx = Callable[[str], PublishContext]


def x_account(sandbox: SandboxClient, **kwargs: float) -> tuple[dict[str, Any], AccountContext]:
    tokens = sandbox.issue_token("x", "alice", **kwargs)
    credentials = {
        "access_token": tokens["access_token"],
        "refresh_token": tokens["refresh_token"],
        "client_id": "postpilot-app",
    }
    return tokens, account("x", credentials, handle="alice")


async def test_text_and_image_published(sandbox: SandboxClient, make_ctx: Ctx) -> None:
    _, acct = x_account(sandbox)
    text = unique("hello x")
    outcome = await XPublisher().publish(
        publish_request(acct, text, (sandbox.media_url("a.png"),)), make_ctx("x")
    )
    assert isinstance(outcome, outcomes.Published)
    assert outcome.url == f"https://x.com/alice/status/{outcome.platform_post_id}"
    [record] = sandbox.records("x")
    assert record["id"] == outcome.platform_post_id
    assert record["text"] == text
    assert record["account"] == "alice"
    assert record["media"][0]["content_type"] == "image/png"


async def test_media_id_is_reused_for_the_same_account(
    sandbox: SandboxClient, make_ctx: Ctx
) -> None:
    _, acct = x_account(sandbox)
    publisher, ctx, image = XPublisher(), make_ctx("x"), sandbox.media_url("b.png")
    for _ in range(2):
        outcome = await publisher.publish(publish_request(acct, unique(), (image,)), ctx)
        assert isinstance(outcome, outcomes.Published)
    uploads = [r for r in sandbox.requests("x") if r["path"].endswith("/media/upload")]
    assert len(uploads) == 1
    first, second = sandbox.records("x")
    assert first["media"][0]["id"] == second["media"][0]["id"]


async def test_expired_token_is_refreshed_then_published(
    sandbox: SandboxClient, make_ctx: Ctx
) -> None:
    tokens, acct = x_account(sandbox, expires_in=-1)
    publisher, ctx = XPublisher(), make_ctx("x")
    outcome = await publisher.publish(publish_request(acct, unique()), ctx)
    assert isinstance(outcome, outcomes.TokenExpired)

    refreshed = await publisher.refresh(acct, ctx)
    assert isinstance(refreshed, Refreshed)
    assert refreshed.credentials["access_token"] != tokens["access_token"]
    assert refreshed.credentials["refresh_token"] not in ("", tokens["refresh_token"])
    assert refreshed.credentials["client_id"] == "postpilot-app"
    assert refreshed.expires_at is not None and refreshed.expires_at > datetime.now(UTC)

    fresh = account("x", refreshed.credentials, handle="alice")
    outcome = await publisher.publish(publish_request(fresh, unique()), ctx)
    assert isinstance(outcome, outcomes.Published)

    # The old refresh token was rotated away: using it again fails with a reason to act on.
    again = await publisher.refresh(acct, ctx)
    assert isinstance(again, RefreshFailed)
    assert "reconnect" in again.reason


async def test_refresh_keeps_the_refresh_token_when_x_sends_none(
    sandbox: SandboxClient, make_ctx: Ctx
) -> None:
    sandbox.configure(x_refresh_rotates=False)
    tokens, acct = x_account(sandbox)
    refreshed = await XPublisher().refresh(acct, make_ctx("x"))
    assert isinstance(refreshed, Refreshed)
    assert refreshed.credentials["refresh_token"] == tokens["refresh_token"]


async def test_rate_limit_reschedules_at_the_reset_and_spends_the_budget(
    sandbox: SandboxClient, make_ctx: Ctx
) -> None:
    _, acct = x_account(sandbox)
    sandbox.inject("rate_limit", "x", retry_after_seconds=120)
    publisher, ctx = XPublisher(), make_ctx("x")
    before = datetime.now(UTC).timestamp()
    outcome = await publisher.publish(publish_request(acct, unique()), ctx)
    assert isinstance(outcome, outcomes.RateLimited)
    assert before + 100 < outcome.until.timestamp() < before + 140
    sent = len(sandbox.requests("x"))

    # The budget is spent: the next delivery waits without sending anything.
    outcome = await publisher.publish(publish_request(acct, unique()), ctx)
    assert isinstance(outcome, outcomes.RateLimited)
    assert "budget" in outcome.reason
    assert len(sandbox.requests("x")) == sent


async def test_remaining_zero_header_stops_before_the_limit(
    sandbox: SandboxClient, make_ctx: Ctx
) -> None:
    sandbox.configure(rate_limits={"x": [1, 600]})
    _, acct = x_account(sandbox)
    publisher, ctx = XPublisher(), make_ctx("x")
    assert isinstance(
        await publisher.publish(publish_request(acct, unique()), ctx), outcomes.Published
    )
    outcome = await publisher.publish(publish_request(acct, unique()), ctx)
    assert isinstance(outcome, outcomes.RateLimited)
    assert len(sandbox.requests("x")) == 1  # the second was never sent


async def test_server_error_and_unavailable(sandbox: SandboxClient, make_ctx: Ctx) -> None:
    _, acct = x_account(sandbox)
    publisher, ctx = XPublisher(), make_ctx("x")
    sandbox.inject("server_error", "x")
    assert isinstance(
        await publisher.publish(publish_request(acct, unique()), ctx), outcomes.Ambiguous
    )
    sandbox.inject("unavailable", "x")
    assert isinstance(
        await publisher.publish(publish_request(acct, unique()), ctx), outcomes.Transient
    )
    assert sandbox.records("x") == []


async def test_timeout_then_duplicate_403_reads_as_already_posted(
    sandbox: SandboxClient, make_ctx: Ctx
) -> None:
    _, acct = x_account(sandbox)
    publisher, ctx = XPublisher(), make_ctx("x")
    text = unique("only once")
    sandbox.inject("timeout_after_commit", "x", hold_seconds=HOLD)
    first = publish_request(acct, text)
    outcome = await publisher.publish(first, ctx)
    assert isinstance(outcome, outcomes.Ambiguous)

    retry = publish_request(acct, text, key=first.idempotency_key, attempt=2)
    outcome = await publisher.publish(retry, ctx)
    assert isinstance(outcome, outcomes.Published)
    assert outcome.already_existed
    assert len(sandbox.records("x")) == 1


async def test_duplicate_on_a_first_attempt_is_a_clear_failure(
    sandbox: SandboxClient, make_ctx: Ctx
) -> None:
    _, acct = x_account(sandbox)
    publisher, ctx = XPublisher(), make_ctx("x")
    text = unique("same words")
    assert isinstance(await publisher.publish(publish_request(acct, text), ctx), outcomes.Published)
    outcome = await publisher.publish(publish_request(acct, text), ctx)
    assert isinstance(outcome, outcomes.Permanent)
    assert "duplicate" in outcome.reason


async def test_invalid_media_is_permanent_with_its_reason(
    sandbox: SandboxClient, make_ctx: Ctx
) -> None:
    _, acct = x_account(sandbox)
    url = sandbox.media_url("notes.txt")
    outcome = await XPublisher().publish(publish_request(acct, unique(), (url,)), make_ctx("x"))
    assert isinstance(outcome, outcomes.Permanent)
    assert url in outcome.reason and "not an image" in outcome.reason
    assert sandbox.records("x") == []


async def test_platform_media_error_is_permanent(sandbox: SandboxClient, make_ctx: Ctx) -> None:
    _, acct = x_account(sandbox)
    sandbox.inject("bad_media", "x", step="publish")
    outcome = await XPublisher().publish(
        publish_request(acct, unique(), (sandbox.media_url("c.png"),)), make_ctx("x")
    )
    assert isinstance(outcome, outcomes.Permanent)
    assert "media IDs are invalid" in outcome.reason
