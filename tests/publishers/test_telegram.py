"""Telegram's contract against the sandbox: sendMessage, sendPhoto upload then file_id reuse,
retry_after, revoked tokens, media errors."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from postpilot.core import outcomes
from postpilot.publishers.base import AccountContext, PublishContext, RefreshFailed
from postpilot.publishers.telegram import TelegramPublisher
from postpilot.sandbox.client import SandboxClient
from tests.publishers.conftest import HOLD, account, publish_request

Ctx = Callable[[str], PublishContext]
TOKEN = "123456:ABC-sandbox"


def bot(token: str = TOKEN, chat: str = "@postpilot") -> AccountContext:
    return account("telegram", {"bot_token": token}, {"chat_id": chat})


async def test_text_and_photo_published_and_file_id_reused(
    sandbox: SandboxClient, make_ctx: Ctx
) -> None:
    acct, ctx, publisher = bot(), make_ctx("telegram"), TelegramPublisher()
    text = await publisher.publish(publish_request(acct, "hello channel"), ctx)
    assert isinstance(text, outcomes.Published)
    assert text.url == f"https://t.me/postpilot/{text.platform_post_id}"
    image = sandbox.media_url("tg.png")
    for _ in range(2):
        photo = await publisher.publish(publish_request(acct, "a caption", (image,)), ctx)
        assert isinstance(photo, outcomes.Published)
    first, second, third = sandbox.records("telegram")
    assert (first["text"], first["account"]) == ("hello channel", "@postpilot")
    assert second["media"][0]["content_type"] == "image/png"
    assert third["media"][0]["id"] == second["media"][0]["id"]  # sent again by file_id


async def test_revoked_token_cannot_be_refreshed(sandbox: SandboxClient, make_ctx: Ctx) -> None:
    sandbox.revoke("999:revoked")
    publisher, ctx = TelegramPublisher(), make_ctx("telegram")
    outcome = await publisher.publish(publish_request(bot("999:revoked")), ctx)
    assert isinstance(outcome, outcomes.TokenExpired)
    refreshed = await publisher.refresh(bot("999:revoked"), ctx)
    assert isinstance(refreshed, RefreshFailed) and "BotFather" in refreshed.reason


async def test_retry_after_reschedules(sandbox: SandboxClient, make_ctx: Ctx) -> None:
    publisher, ctx = TelegramPublisher(), make_ctx("telegram")
    sandbox.inject("rate_limit", "telegram", retry_after_seconds=35)
    before = datetime.now(UTC).timestamp()
    outcome = await publisher.publish(publish_request(bot()), ctx)
    assert isinstance(outcome, outcomes.RateLimited)
    assert before + 34 <= outcome.until.timestamp() <= before + 37
    assert "retry after 35" in outcome.reason


async def test_server_error_and_timeout(sandbox: SandboxClient, make_ctx: Ctx) -> None:
    publisher, ctx = TelegramPublisher(), make_ctx("telegram")
    sandbox.inject("server_error", "telegram")
    assert isinstance(await publisher.publish(publish_request(bot()), ctx), outcomes.Ambiguous)
    sandbox.inject("timeout", "telegram", hold_seconds=HOLD)
    assert isinstance(await publisher.publish(publish_request(bot()), ctx), outcomes.Ambiguous)
    assert sandbox.records("telegram") == []


async def test_invalid_media(sandbox: SandboxClient, make_ctx: Ctx) -> None:
    publisher, ctx = TelegramPublisher(), make_ctx("telegram")
    url = sandbox.media_url("tg.txt")
    outcome = await publisher.publish(publish_request(bot(), "c", (url,)), ctx)
    assert isinstance(outcome, outcomes.Permanent) and url in outcome.reason
    sandbox.inject("bad_media", "telegram")
    image = sandbox.media_url("tg2.png")
    outcome = await publisher.publish(publish_request(bot(), "c", (image,)), ctx)
    assert isinstance(outcome, outcomes.Permanent)
    assert image in outcome.reason and "wrong file identifier" in outcome.reason
