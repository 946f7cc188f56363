"""Matrix against the sandbox: txnId idempotency, media upload and m.image events, refresh and
password login, M_LIMIT_EXCEEDED."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from postpilot.core import outcomes
from postpilot.publishers.base import AccountContext, PublishContext, Refreshed, RefreshFailed
from postpilot.publishers.matrix import MatrixPublisher
from postpilot.sandbox.client import SandboxClient
from tests.publishers.conftest import HOLD, account, publish_request

Ctx = Callable[[str], PublishContext]
ROOM = "!room:sandbox.test"


def user(sandbox: SandboxClient, **kwargs: float) -> AccountContext:
    tokens = sandbox.issue_token("matrix", "@bot:sandbox.test", **kwargs)
    credentials = {"access_token": tokens["access_token"], "refresh_token": tokens["refresh_token"]}
    return account("matrix", credentials, {"room_id": ROOM})


async def test_text_and_image_published(sandbox: SandboxClient, make_ctx: Ctx) -> None:
    publisher, ctx = MatrixPublisher(), make_ctx("matrix")
    image = sandbox.media_url("m.png")
    outcome = await publisher.publish(publish_request(user(sandbox), "hello room", (image,)), ctx)
    assert isinstance(outcome, outcomes.Published)
    text, picture = sandbox.records("matrix")
    assert outcome.platform_post_id == text["id"]
    assert outcome.url == f"https://matrix.to/#/{ROOM}/{text['id']}"
    assert text["text"] == "hello room" and text["extra"]["room_id"] == ROOM
    assert picture["extra"]["msgtype"] == "m.image"
    assert picture["media"][0]["content_type"] == "image/png"


async def test_same_txn_id_sends_nothing_new(sandbox: SandboxClient, make_ctx: Ctx) -> None:
    publisher, ctx, acct = MatrixPublisher(), make_ctx("matrix"), user(sandbox)
    sandbox.inject("timeout_after_commit", "matrix", hold_seconds=HOLD)
    first = publish_request(acct, "once")
    assert isinstance(await publisher.publish(first, ctx), outcomes.Ambiguous)
    retry = publish_request(acct, "once", key=first.idempotency_key, attempt=2)
    outcome = await publisher.publish(retry, ctx)
    [record] = sandbox.records("matrix")
    assert isinstance(outcome, outcomes.Published) and outcome.platform_post_id == record["id"]
    assert record["idempotency_key"] == first.idempotency_key


async def test_expired_token_is_refreshed_then_published(
    sandbox: SandboxClient, make_ctx: Ctx
) -> None:
    publisher, ctx, acct = MatrixPublisher(), make_ctx("matrix"), user(sandbox, expires_in=-1)
    outcome = await publisher.publish(publish_request(acct), ctx)
    assert isinstance(outcome, outcomes.TokenExpired) and "M_UNKNOWN_TOKEN" in outcome.reason
    refreshed = await publisher.refresh(acct, ctx)
    assert isinstance(refreshed, Refreshed) and refreshed.expires_at is not None
    fresh = account("matrix", refreshed.credentials, acct.options)
    assert isinstance(await publisher.publish(publish_request(fresh), ctx), outcomes.Published)

    # The rotated refresh token is dead; a stored password logs in again.
    with_password = account(
        "matrix", {**acct.credentials, "user": "bot", "password": "pw"}, acct.options
    )
    relogin = await publisher.refresh(with_password, ctx)
    assert isinstance(relogin, Refreshed) and relogin.credentials["device_id"].startswith("SANDBOX")
    failed = await publisher.refresh(acct, ctx)
    assert isinstance(failed, RefreshFailed) and "sign in again" in failed.reason


async def test_limit_exceeded_uses_retry_after_ms(sandbox: SandboxClient, make_ctx: Ctx) -> None:
    publisher, ctx = MatrixPublisher(), make_ctx("matrix")
    sandbox.inject("rate_limit", "matrix", retry_after_seconds=12.5)
    before = datetime.now(UTC).timestamp()
    outcome = await publisher.publish(publish_request(user(sandbox)), ctx)
    assert isinstance(outcome, outcomes.RateLimited) and "M_LIMIT_EXCEEDED" in outcome.reason
    assert before + 12 <= outcome.until.timestamp() <= before + 14


async def test_server_error_and_bad_media(sandbox: SandboxClient, make_ctx: Ctx) -> None:
    publisher, ctx, acct = MatrixPublisher(), make_ctx("matrix"), user(sandbox)
    sandbox.inject("server_error", "matrix")
    assert isinstance(await publisher.publish(publish_request(acct), ctx), outcomes.Ambiguous)
    url = sandbox.media_url("m.txt")
    outcome = await publisher.publish(publish_request(acct, "x", (url,)), ctx)
    assert isinstance(outcome, outcomes.Permanent) and url in outcome.reason
    assert sandbox.records("matrix") == []
