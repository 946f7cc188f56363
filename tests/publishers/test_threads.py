"""Threads' contract against the sandbox: TEXT and IMAGE containers, threads_publish,
th_refresh_token, throttling, failures."""

from __future__ import annotations

from collections.abc import Callable

from postpilot.core import outcomes
from postpilot.publishers.base import AccountContext, PublishContext, Refreshed
from postpilot.publishers.threads import ThreadsPublisher
from postpilot.sandbox.client import SandboxClient
from tests.publishers.conftest import HOLD, account, publish_request

Ctx = Callable[[str], PublishContext]


def threads_account(sandbox: SandboxClient, **kwargs: float) -> AccountContext:
    tokens = sandbox.issue_token("threads", "threads-owner", refresh=False, **kwargs)
    return account("threads", {"access_token": tokens["access_token"]}, {"threads_user_id": "me"})


async def test_text_and_image_published(sandbox: SandboxClient, make_ctx: Ctx) -> None:
    acct, ctx, publisher = threads_account(sandbox), make_ctx("threads"), ThreadsPublisher()
    text = await publisher.publish(publish_request(acct, "just words"), ctx)
    image = sandbox.media_url("t.png")
    photo = await publisher.publish(publish_request(acct, "with a picture", (image,)), ctx)
    assert isinstance(text, outcomes.Published) and isinstance(photo, outcomes.Published)
    first, second = sandbox.records("threads")
    assert (first["text"], first["media"]) == ("just words", [])
    assert second["media"][0]["url"] == image


async def test_expired_token_is_refreshed_then_published(
    sandbox: SandboxClient, make_ctx: Ctx
) -> None:
    acct, ctx, publisher = threads_account(sandbox), make_ctx("threads"), ThreadsPublisher()
    sandbox.expire_token(acct.credentials["access_token"])
    outcome = await publisher.publish(publish_request(acct), ctx)
    assert isinstance(outcome, outcomes.TokenExpired)
    # An expired long-lived token cannot be refreshed any more: the person must reconnect.
    failed = await publisher.refresh(acct, ctx)
    assert not isinstance(failed, Refreshed) and "reconnect" in failed.reason

    live = threads_account(sandbox)
    sandbox.inject("expired_token", "threads", step="upload")
    assert isinstance(await publisher.publish(publish_request(live), ctx), outcomes.TokenExpired)
    refreshed = await publisher.refresh(live, ctx)
    assert isinstance(refreshed, Refreshed)
    fresh = account("threads", refreshed.credentials, live.options)
    assert isinstance(await publisher.publish(publish_request(fresh), ctx), outcomes.Published)


async def test_rate_limit_server_error_timeout(sandbox: SandboxClient, make_ctx: Ctx) -> None:
    acct, ctx, publisher = threads_account(sandbox), make_ctx("threads"), ThreadsPublisher()
    sandbox.inject("rate_limit", "threads", retry_after_seconds=120)
    outcome = await publisher.publish(publish_request(acct), ctx)
    assert isinstance(outcome, outcomes.RateLimited)
    acct = threads_account(sandbox)
    sandbox.inject("unavailable", "threads", step="upload")
    assert isinstance(await publisher.publish(publish_request(acct), ctx), outcomes.Transient)
    sandbox.inject("timeout", "threads", step="publish", hold_seconds=HOLD)
    assert isinstance(await publisher.publish(publish_request(acct), ctx), outcomes.Ambiguous)
    assert sandbox.records("threads") == []


async def test_invalid_media_is_permanent(sandbox: SandboxClient, make_ctx: Ctx) -> None:
    acct = threads_account(sandbox)
    url = sandbox.media_url("page.html")
    outcome = await ThreadsPublisher().publish(
        publish_request(acct, "x", (url,)), make_ctx("threads")
    )
    assert isinstance(outcome, outcomes.Permanent)
    assert url in outcome.reason and "not an image" in outcome.reason
