"""Discord's webhook and Matrix's room answers, each to its outcome."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from postpilot.core import outcomes
from postpilot.publishers.base import AccountContext, Publisher
from postpilot.publishers.discord import DiscordPublisher
from postpilot.publishers.matrix import MatrixPublisher
from tests.mock_platform import (
    ERROR_STATUSES,
    NOW,
    Answer,
    Expected,
    MockPlatform,
    by_status,
    expect,
    publish_through,
    response,
)
from tests.publishers.conftest import account, publish_request

WEBHOOK = "/api/webhooks/111/secret"
ROOM = "/send/m.room.message/key"


def webhook() -> AccountContext:
    return account("discord", {"webhook_id": "111", "webhook_token": "secret"})


def room() -> AccountContext:
    return account("matrix", {"access_token": "syt"}, {"room_id": "!room:example.org"})


DISCORD: dict[str, tuple[Answer, Expected]] = {
    "sent": (response(200, {"id": "555", "channel_id": "9"}), expect(outcomes.Published)),
    **{
        f"webhook gone: {status}/{code}": (
            response(status, {"message": "Unknown Webhook", "code": code}),
            expect(outcomes.TokenExpired),
        )
        for status in (401, 404)
        for code in (10015, 50027)
    },
    "not found, another code": (
        response(404, {"message": "Unknown Channel", "code": 10003}),
        expect(outcomes.Permanent),
    ),
    "rate limited: retry_after in the body": (
        response(429, {"message": "You are being rate limited.", "retry_after": 2.5}),
        expect(outcomes.RateLimited, until=NOW + timedelta(seconds=2.5)),
    ),
    "rate limited: reset in a header": (
        response(429, **{"x-ratelimit-reset-after": "7"}),
        expect(outcomes.RateLimited, until=NOW + timedelta(seconds=7)),
    ),
    "rate limited, no delay given": (
        response(429),
        expect(outcomes.RateLimited, until=NOW + timedelta(seconds=5)),
    ),
    "unavailable": (response(503), expect(outcomes.Transient)),
    "server error after sending": (response(500), expect(outcomes.Ambiguous)),
    "never connected": (httpx.ConnectError("refused"), expect(outcomes.Transient)),
    "no answer after sending": (httpx.ReadTimeout("slow"), expect(outcomes.Ambiguous)),
}

MATRIX: dict[str, tuple[Answer, Expected]] = {
    "sent": (
        response(200, {"event_id": "$ev"}),
        expect(outcomes.Published, platform_post_id="$ev"),
    ),
    "token refused": (response(401, {"errcode": "M_UNKNOWN_TOKEN"}), expect(outcomes.TokenExpired)),
    "token refused by errcode alone": (
        response(403, {"errcode": "M_UNKNOWN_TOKEN", "soft_logout": True}),
        expect(outcomes.TokenExpired),
    ),
    "limit exceeded: retry_after_ms": (
        response(429, {"errcode": "M_LIMIT_EXCEEDED", "retry_after_ms": 1500}),
        expect(outcomes.RateLimited, until=NOW + timedelta(seconds=1.5)),
    ),
    "limit exceeded by errcode, Retry-After": (
        response(400, {"errcode": "M_LIMIT_EXCEEDED"}, **{"retry-after": "9"}),
        expect(outcomes.RateLimited, until=NOW + timedelta(seconds=9)),
    ),
    "limit exceeded, no delay given": (
        response(429),
        expect(outcomes.RateLimited, until=NOW + timedelta(seconds=5)),
    ),
    "forbidden in the room": (
        response(403, {"errcode": "M_FORBIDDEN"}),
        expect(outcomes.Permanent),
    ),
    "unavailable": (response(503), expect(outcomes.Transient)),
    "bad gateway after sending": (response(502), expect(outcomes.Ambiguous)),
    "never connected": (httpx.ConnectError("refused"), expect(outcomes.Transient)),
    "no answer after sending": (httpx.ReadTimeout("slow"), expect(outcomes.Ambiguous)),
}

PLATFORMS: dict[str, tuple[Publisher, AccountContext, str]] = {
    "discord": (DiscordPublisher(), webhook(), WEBHOOK),
    "matrix": (MatrixPublisher(), room(), ROOM),
}
CASES = [
    pytest.param(platform, case, id=f"{platform}: {case}")
    for platform, table in (("discord", DISCORD), ("matrix", MATRIX))
    for case in table
]


@pytest.mark.parametrize(("platform", "case"), CASES)
async def test_each_answer_has_its_outcome(platform: str, case: str) -> None:
    answer, expected = (DISCORD if platform == "discord" else MATRIX)[case]
    publisher, acct, path = PLATFORMS[platform]
    outcome = await publish_through(
        publisher, publish_request(acct, key="key"), MockPlatform({path: answer})
    )
    expected.check(outcome)


@pytest.mark.parametrize("platform", PLATFORMS)
@pytest.mark.parametrize("status", ERROR_STATUSES)
async def test_every_error_status_has_an_outcome(platform: str, status: int) -> None:
    publisher, acct, path = PLATFORMS[platform]
    outcome = await publish_through(
        publisher, publish_request(acct, key="key"), MockPlatform({path: response(status)})
    )
    # Discord's webhook is gone only when its code says so: a bare 401 is a refusal.
    gone_needs_code = platform == "discord" and status == 401
    (expect(outcomes.Permanent) if gone_needs_code else by_status(status)).check(outcome)
