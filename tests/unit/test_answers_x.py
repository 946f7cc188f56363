"""X's answers to `POST /2/tweets`, each to its outcome; a duplicate means "already posted" only
after an attempt that may have gone through."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from postpilot.core import outcomes
from postpilot.publishers.x import XPublisher
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

TWEETS = "/2/tweets"
SOON, LATER = NOW + timedelta(minutes=4), NOW + timedelta(hours=5)
DUPLICATE = response(
    403, {"detail": "You are not allowed to create a Tweet with duplicate content."}
)
DUPLICATE_CODE = response(403, {"errors": [{"code": 187, "message": "Status is a duplicate."}]})

ANSWERS: dict[str, tuple[Answer, Expected]] = {
    "posted": (
        response(201, {"data": {"id": "99", "text": "hello"}}),
        expect(outcomes.Published, platform_post_id="99", url="https://x.com/sandbox/status/99"),
    ),
    "token rejected": (response(401, {"title": "Unauthorized"}), by_status(401)),
    "rate limited: the spent window that resets last": (
        response(
            429,
            **{
                "x-rate-limit-remaining": "0",
                "x-rate-limit-reset": str(int(SOON.timestamp())),
                "x-user-limit-24hour-remaining": "0",
                "x-user-limit-24hour-reset": str(int(LATER.timestamp())),
                "x-app-limit-24hour-remaining": "12",
                "x-app-limit-24hour-reset": str(int((LATER + timedelta(hours=1)).timestamp())),
            },
        ),
        expect(outcomes.RateLimited, until=LATER),
    ),
    "rate limited, no window named": (
        response(429),
        expect(outcomes.RateLimited, until=NOW + timedelta(minutes=15)),
    ),
    "duplicate on a first attempt": (DUPLICATE, expect(outcomes.Permanent)),
    "duplicate by code on a first attempt": (DUPLICATE_CODE, expect(outcomes.Permanent)),
    "forbidden": (response(403, {"detail": "You are not permitted"}), expect(outcomes.Permanent)),
    "media ids invalid, none reused": (
        response(400, {"errors": [{"message": "Your media IDs are invalid."}]}),
        expect(outcomes.Permanent),
    ),
    "unavailable": (response(503), expect(outcomes.Transient)),
    "server error after sending": (response(500), expect(outcomes.Ambiguous)),
    "never connected": (httpx.ConnectTimeout("slow"), expect(outcomes.Transient)),
    "no answer after sending": (httpx.RemoteProtocolError("gone"), expect(outcomes.Ambiguous)),
}


@pytest.mark.parametrize("case", ANSWERS)
async def test_each_answer_has_its_outcome(case: str) -> None:
    answer, expected = ANSWERS[case]
    async with context(MockPlatform({TWEETS: answer})) as ctx:
        outcome = await XPublisher().publish(
            publish_request(account("x", {"access_token": "t"})), ctx
        )
    expected.check(outcome)


@pytest.mark.parametrize("status", ERROR_STATUSES)
async def test_every_error_status_has_an_outcome(status: int) -> None:
    async with context(MockPlatform({TWEETS: response(status)})) as ctx:
        outcome = await XPublisher().publish(
            publish_request(account("x", {"access_token": "t"})), ctx
        )
    by_status(status).check(outcome)


@pytest.mark.parametrize("answer", [DUPLICATE, DUPLICATE_CODE], ids=["detail", "code 187"])
@pytest.mark.parametrize(
    ("attempt", "recovered"), [(2, False), (1, True)], ids=["retry", "taken over"]
)
async def test_a_duplicate_after_an_attempt_that_may_have_posted_is_already_posted(
    answer: httpx.Response, attempt: int, recovered: bool
) -> None:
    acct = account("x", {"access_token": "t"})
    async with context(MockPlatform({TWEETS: answer})) as ctx:
        outcome = await XPublisher().publish(
            publish_request(acct, attempt=attempt, recovered=recovered), ctx
        )
    expect(outcomes.Published, already_existed=True).check(outcome)


async def test_an_expired_reused_media_id_is_forgotten_and_uploaded_again_next_time() -> None:
    acct, image = account("x", {"access_token": "t"}), "https://media.example/a.png"
    invalid = response(400, {"errors": [{"message": "Your media IDs are invalid."}]})
    platform = MockPlatform({TWEETS: invalid})
    async with context(platform) as ctx:
        await ctx.uploads.put("x", acct.id, image, "media-1", 3600)
        outcome = await XPublisher().publish(publish_request(acct, media=(image,)), ctx)
        assert await ctx.uploads.get("x", acct.id, image) is None
    expect(outcomes.Transient, retry_after_seconds=0).check(outcome)
    assert [r.url.path for r in platform.requests] == [TWEETS], "the reused id, no upload"


async def test_no_access_token_needs_a_reconnect_without_sending() -> None:
    platform = MockPlatform()
    outcome = await publish_through(XPublisher(), publish_request(account("x", {})), platform)
    expect(outcomes.TokenExpired).check(outcome)
    assert platform.requests == []
