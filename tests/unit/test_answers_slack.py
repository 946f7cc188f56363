"""Slack's answers to `chat.postMessage`, each to its outcome: Slack says most of them in the
body (`{"ok": false, "error": ...}`) with a 200."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from postpilot.core import outcomes
from postpilot.publishers import slack
from postpilot.publishers.base import AccountContext
from postpilot.publishers.slack import SlackPublisher
from postpilot.sandbox.images import png
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

POST = "/api/chat.postMessage"


def said(error: str, status: int = 200, **headers: str) -> httpx.Response:
    return response(status, {"ok": False, "error": error}, **headers)


ANSWERS: dict[str, tuple[Answer, Expected]] = {
    "posted": (
        response(200, {"ok": True, "channel": "C1", "ts": "1700000000.000100"}),
        expect(outcomes.Published, platform_post_id="C1:1700000000.000100"),
    ),
    **{
        f"token refused: {error}": (said(error), expect(outcomes.TokenExpired))
        for error in sorted(slack.TOKEN_ERRORS)
    },
    **{
        f"rate limited: {error}": (
            said(error),
            expect(outcomes.RateLimited, until=NOW + timedelta(seconds=1)),
        )
        for error in sorted(slack.RATE_ERRORS)
    },
    "429 with Retry-After": (
        said("ratelimited", 429, **{"retry-after": "30"}),
        expect(outcomes.RateLimited, until=NOW + timedelta(seconds=30)),
    ),
    **{
        f"server trouble: {error}": (said(error), expect(outcomes.Ambiguous))
        for error in sorted(slack.SERVER_ERRORS)
    },
    "channel not found": (said("channel_not_found"), expect(outcomes.Permanent)),
    "blocks refused, no image": (said("invalid_blocks"), expect(outcomes.Permanent)),
    "unavailable": (response(503), expect(outcomes.Transient)),
    "server error after sending": (response(500), expect(outcomes.Ambiguous)),
    "never connected": (httpx.ConnectError("refused"), expect(outcomes.Transient)),
    "no answer after sending": (httpx.ReadTimeout("slow"), expect(outcomes.Ambiguous)),
}


def bot() -> AccountContext:
    return account("slack", {"access_token": "xoxb-1"}, {"channel": "C1"})


@pytest.mark.parametrize("case", ANSWERS)
async def test_each_answer_has_its_outcome(case: str) -> None:
    answer, expected = ANSWERS[case]
    platform = MockPlatform({POST: answer})
    outcome = await publish_through(SlackPublisher(), publish_request(bot()), platform)
    expected.check(outcome)
    assert platform.requests[-1].headers["Authorization"] == "Bearer xoxb-1"


@pytest.mark.parametrize("status", ERROR_STATUSES)
async def test_every_error_status_has_an_outcome(status: int) -> None:
    outcome = await publish_through(
        SlackPublisher(), publish_request(bot()), MockPlatform({POST: response(status)})
    )
    # Slack names a refused token in the body (above); a bare 401 is not one of its answers.
    (expect(outcomes.Permanent) if status == 401 else by_status(status)).check(outcome)


async def test_an_image_slack_could_not_fetch_is_named() -> None:
    image = "http://93.184.216.34/a.png"  # a public address: no name to resolve
    platform = MockPlatform(
        {
            "/a.png": httpx.Response(200, content=png(), headers={"content-type": "image/png"}),
            POST: response(200, {"ok": False, "error": "invalid_blocks", "errors": ["image"]}),
        }
    )
    outcome = await publish_through(
        SlackPublisher(), publish_request(bot(), media=(image,)), platform
    )
    assert isinstance(outcome, outcomes.Permanent), outcome
    assert outcome.reason.startswith(f"slack could not download the image {image}"), outcome
    assert [r.url.path for r in platform.requests] == ["/a.png", POST]


async def test_each_message_carries_its_delivery_id_for_the_read_back() -> None:
    platform = MockPlatform({POST: response(200, {"ok": True, "channel": "C1", "ts": "1.0"})})
    sent = publish_request(bot())
    async with context(platform) as ctx:
        await SlackPublisher().publish(sent, ctx)
    metadata = platform.requests[0].read()
    assert sent.delivery_id.encode() in metadata and slack.MARKER_EVENT.encode() in metadata
