"""Instagram's contract against the sandbox: container, status polling, media_publish,
ig_refresh_token, 80002 throttling, media download failures."""

from __future__ import annotations

from collections.abc import Callable

from postpilot.core import outcomes
from postpilot.publishers.base import AccountContext, PublishContext, Refreshed, RefreshFailed
from postpilot.publishers.instagram import InstagramPublisher
from postpilot.sandbox.client import SandboxClient
from tests.publishers.conftest import HOLD, account, publish_request

Ctx = Callable[[str], PublishContext]


def ig(sandbox: SandboxClient, login: str = "instagram", **kwargs: float) -> AccountContext:
    tokens = sandbox.issue_token("instagram", "ig-owner", refresh=False, **kwargs)
    return account(
        "instagram",
        {"access_token": tokens["access_token"]},
        {"ig_user_id": "17841400000000001", "login": login},
    )


async def test_image_published_after_the_container_is_ready(
    sandbox: SandboxClient, make_ctx: Ctx
) -> None:
    sandbox.configure(container_polls_in_progress=2)
    acct, ctx = ig(sandbox), make_ctx("instagram")
    image = sandbox.media_url("ig.png")
    outcome = await InstagramPublisher().publish(publish_request(acct, "caption", (image,)), ctx)
    assert isinstance(outcome, outcomes.Published)
    [record] = sandbox.records("instagram")
    assert record["id"] == outcome.platform_post_id
    assert record["text"] == "caption" and record["media"][0]["url"] == image
    polls = [r for r in sandbox.requests("instagram") if r["method"] == "GET"]
    assert len(polls) == 3  # IN_PROGRESS twice, then FINISHED


async def test_text_only_is_refused_before_any_call(sandbox: SandboxClient, make_ctx: Ctx) -> None:
    outcome = await InstagramPublisher().publish(
        publish_request(ig(sandbox)), make_ctx("instagram")
    )
    assert outcome == outcomes.Permanent("instagram: a post needs an image")
    assert sandbox.requests("instagram") == []


async def test_expired_token_is_refreshed_then_published(
    sandbox: SandboxClient, make_ctx: Ctx
) -> None:
    acct, ctx, publisher = ig(sandbox), make_ctx("instagram"), InstagramPublisher()
    sandbox.inject("expired_token", "instagram", step="upload")
    image = (sandbox.media_url("ig.png"),)
    outcome = await publisher.publish(publish_request(acct, "c", image), ctx)
    assert isinstance(outcome, outcomes.TokenExpired)
    refreshed = await publisher.refresh(acct, ctx)
    assert isinstance(refreshed, Refreshed)
    assert refreshed.credentials["access_token"] != acct.credentials["access_token"]
    assert refreshed.expires_at is not None
    fresh = account("instagram", refreshed.credentials, acct.options)
    assert isinstance(
        await publisher.publish(publish_request(fresh, "c", image), ctx), outcomes.Published
    )


async def test_dead_or_facebook_login_tokens_need_reconnecting(
    sandbox: SandboxClient, make_ctx: Ctx
) -> None:
    ctx, publisher = make_ctx("instagram"), InstagramPublisher()
    dead = await publisher.refresh(ig(sandbox, expires_in=-1), ctx)
    assert isinstance(dead, RefreshFailed) and "reconnect" in dead.reason
    facebook = await publisher.refresh(ig(sandbox, login="facebook"), ctx)
    assert isinstance(facebook, RefreshFailed) and "Facebook Login" in facebook.reason


async def test_throttled_and_failures(sandbox: SandboxClient, make_ctx: Ctx) -> None:
    acct, ctx, publisher = ig(sandbox), make_ctx("instagram"), InstagramPublisher()
    image = (sandbox.media_url("ig.png"),)
    sandbox.inject("rate_limit", "instagram", retry_after_seconds=300)
    outcome = await publisher.publish(publish_request(acct, "c", image), ctx)
    assert isinstance(outcome, outcomes.RateLimited) and "80002" in outcome.reason

    acct = ig(sandbox)
    sandbox.inject("server_error", "instagram", step="upload")  # container: nothing public yet
    assert isinstance(
        await publisher.publish(publish_request(acct, "c", image), ctx), outcomes.Transient
    )
    sandbox.inject("server_error", "instagram", step="publish")
    assert isinstance(
        await publisher.publish(publish_request(acct, "c", image), ctx), outcomes.Ambiguous
    )
    sandbox.inject("timeout", "instagram", step="publish", hold_seconds=HOLD)
    assert isinstance(
        await publisher.publish(publish_request(acct, "c", image), ctx), outcomes.Ambiguous
    )
    assert sandbox.records("instagram") == []


async def test_media_the_platform_cannot_download_is_permanent(
    sandbox: SandboxClient, make_ctx: Ctx
) -> None:
    acct, ctx = ig(sandbox), make_ctx("instagram")
    sandbox.inject("bad_media", "instagram", step="upload")
    url = sandbox.media_url("ig.png")
    outcome = await InstagramPublisher().publish(publish_request(acct, "c", (url,)), ctx)
    assert isinstance(outcome, outcomes.Permanent)
    assert url in outcome.reason and "2207052" in outcome.reason
