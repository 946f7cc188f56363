"""Telegram's answers to `sendMessage` / `sendPhoto`, each to its outcome. Telegram cannot
deduplicate, so anything that may have reached it is never a safe retry."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from postpilot.core import outcomes
from postpilot.publishers.base import AccountContext
from postpilot.publishers.telegram import TelegramPublisher
from tests.mock_platform import (
    ERROR_STATUSES,
    NOW,
    Answer,
    Expected,
    MockPlatform,
    by_status,
    context,
    expect,
    publish_through,
    response,
)
from tests.publishers.conftest import account, publish_request

SEND = "/sendMessage"
IMAGE = "https://media.example/a.png"


def refused(code: int, description: str, **parameters: int) -> httpx.Response:
    body = {"ok": False, "error_code": code, "description": description}
    return response(code, {**body, "parameters": parameters} if parameters else body)


ANSWERS: dict[str, tuple[Answer, Expected]] = {
    "sent": (
        response(200, {"ok": True, "result": {"message_id": 7, "chat": {"username": "news"}}}),
        expect(outcomes.Published, platform_post_id="7", url="https://t.me/news/7"),
    ),
    "sent to a chat without a public name": (
        response(200, {"ok": True, "result": {"message_id": 8, "chat": {"id": -100}}}),
        expect(outcomes.Published, platform_post_id="8", url=None),
    ),
    "bot token revoked": (refused(401, "Unauthorized"), by_status(401)),
    "flood control with retry_after": (
        refused(429, "Too Many Requests: retry after 7", retry_after=7),
        expect(outcomes.RateLimited, until=NOW + timedelta(seconds=7)),
    ),
    "flood control named only in the text": (
        refused(429, "Too Many Requests: retry after 12"),
        expect(outcomes.RateLimited, until=NOW + timedelta(seconds=12)),
    ),
    "flood control, no delay given": (
        refused(429, "Too Many Requests"),
        expect(outcomes.RateLimited, until=NOW + timedelta(seconds=30)),
    ),
    "the code in the body counts, not the HTTP status": (
        response(200, {"ok": False, "error_code": 401, "description": "Unauthorized"}),
        expect(outcomes.TokenExpired),
    ),
    "chat not found": (refused(400, "Bad Request: chat not found"), expect(outcomes.Permanent)),
    "bad gateway after sending": (response(502), expect(outcomes.Ambiguous)),
    "unavailable": (response(503), expect(outcomes.Transient)),
    "never connected": (httpx.ConnectError("refused"), expect(outcomes.Transient)),
    "no answer after sending": (httpx.ReadTimeout("slow"), expect(outcomes.Ambiguous)),
}


def bot() -> AccountContext:
    return account("telegram", {"bot_token": "123:abc"}, {"chat_id": "@news"})


@pytest.mark.parametrize("case", ANSWERS)
async def test_each_answer_has_its_outcome(case: str) -> None:
    answer, expected = ANSWERS[case]
    platform = MockPlatform({SEND: answer})
    outcome = await publish_through(TelegramPublisher(), publish_request(bot()), platform)
    expected.check(outcome)
    assert platform.requests[-1].url.path == "/bot123:abc/sendMessage"


@pytest.mark.parametrize("status", ERROR_STATUSES)
async def test_every_error_status_has_an_outcome(status: int) -> None:
    outcome = await publish_through(
        TelegramPublisher(), publish_request(bot()), MockPlatform({SEND: response(status)})
    )
    by_status(status).check(outcome)


async def test_a_flood_wait_spends_the_chat_budget() -> None:
    platform, acct = MockPlatform({SEND: refused(429, "Too Many Requests", retry_after=60)}), bot()
    async with context(platform) as ctx:
        await TelegramPublisher().publish(publish_request(acct), ctx)
        again = await TelegramPublisher().publish(publish_request(acct), ctx)
    expect(outcomes.RateLimited, until=NOW + timedelta(seconds=60)).check(again)
    assert len(platform.requests) == 1


@pytest.mark.parametrize(
    "description",
    ["Bad Request: wrong file identifier/HTTP URL specified", "Bad Request: IMAGE_PROCESS_FAILED"],
)
async def test_a_file_id_telegram_no_longer_knows_is_forgotten(description: str) -> None:
    acct = bot()
    async with context(MockPlatform({"/sendPhoto": refused(400, description)})) as ctx:
        await ctx.uploads.put("telegram", acct.id, IMAGE, "file-1", 3600)
        outcome = await TelegramPublisher().publish(publish_request(acct, media=(IMAGE,)), ctx)
        assert await ctx.uploads.get("telegram", acct.id, IMAGE) is None
    assert isinstance(outcome, outcomes.Permanent) and IMAGE in outcome.reason, outcome
