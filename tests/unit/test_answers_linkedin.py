"""LinkedIn's answers to `POST /rest/posts`, each to its outcome; a duplicate names the post it
repeats, which is ours after an attempt that may have gone through."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from postpilot.core import outcomes
from postpilot.publishers.base import AccountContext
from postpilot.publishers.linkedin import LinkedInPublisher
from tests.mock_platform import (
    ERROR_STATUSES,
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

POSTS = "/rest/posts"
URN = "urn:li:share:7001"
DUPLICATE = response(422, {"message": f"Content is a duplicate of {URN}", "status": 422})
MIDNIGHT_UTC = datetime(2036, 6, 2, tzinfo=UTC)  # the day after the mock clock's

ANSWERS: dict[str, tuple[Answer, Expected]] = {
    "posted": (
        httpx.Response(201, headers={"x-restli-id": URN}),
        expect(
            outcomes.Published,
            platform_post_id=URN,
            url=f"https://www.linkedin.com/feed/update/{URN}/",
        ),
    ),
    "duplicate on a first attempt": (DUPLICATE, expect(outcomes.Permanent)),
    "token rejected": (response(401, {"message": "Invalid access token"}), by_status(401)),
    "daily quota spent: until midnight UTC": (
        response(429),
        expect(outcomes.RateLimited, until=MIDNIGHT_UTC),
    ),
    "unprocessable, not a duplicate": (
        response(422, {"message": "commentary too long"}),
        expect(outcomes.Permanent),
    ),
    "unavailable": (response(503), expect(outcomes.Transient)),
    "gateway timeout after sending": (response(504), expect(outcomes.Ambiguous)),
    "never connected": (httpx.ConnectError("refused"), expect(outcomes.Transient)),
    "no answer after sending": (httpx.WriteTimeout("slow"), expect(outcomes.Ambiguous)),
}


@pytest.mark.parametrize("case", ANSWERS)
async def test_each_answer_has_its_outcome(case: str) -> None:
    answer, expected = ANSWERS[case]
    platform = MockPlatform({POSTS: answer})
    outcome = await publish_through(LinkedInPublisher(), publish_request(_member()), platform)
    expected.check(outcome)
    assert platform.requests[-1].headers["LinkedIn-Version"]


@pytest.mark.parametrize("status", ERROR_STATUSES)
async def test_every_error_status_has_an_outcome(status: int) -> None:
    outcome = await publish_through(
        LinkedInPublisher(), publish_request(_member()), MockPlatform({POSTS: response(status)})
    )
    by_status(status).check(outcome)


@pytest.mark.parametrize(
    ("attempt", "recovered"), [(2, False), (1, True)], ids=["retry", "taken over"]
)
async def test_a_duplicate_after_an_attempt_that_may_have_posted_is_that_post(
    attempt: int, recovered: bool
) -> None:
    async with context(MockPlatform({POSTS: DUPLICATE})) as ctx:
        outcome = await LinkedInPublisher().publish(
            publish_request(_member(), attempt=attempt, recovered=recovered), ctx
        )
    expect(outcomes.Published, platform_post_id=URN, already_existed=True).check(outcome)


async def test_a_rate_limit_spends_the_account_budget_until_midnight() -> None:
    platform, acct = MockPlatform({POSTS: response(429)}), _member()
    async with context(platform) as ctx:
        await LinkedInPublisher().publish(publish_request(acct), ctx)
        again = await LinkedInPublisher().publish(publish_request(acct), ctx)
    expect(outcomes.RateLimited, until=MIDNIGHT_UTC).check(again)
    assert len(platform.requests) == 1, "the second one was not sent"


def _member() -> AccountContext:
    return account("linkedin", {"access_token": "t"}, {"author_urn": "urn:li:person:1"})
