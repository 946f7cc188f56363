"""Mastodon's answers to `POST /api/v1/statuses`, each to its outcome."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import httpx
import pytest

from postpilot.core import outcomes
from postpilot.publishers import budgets
from postpilot.publishers.mastodon import MastodonPublisher
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

STATUSES = "/api/v1/statuses"
INSTANCE = "https://social.example"
RESET = NOW + timedelta(minutes=3)

ANSWERS: dict[str, tuple[Answer, Expected]] = {
    "posted": (
        response(200, {"id": "42", "url": "https://social.example/@someone/42"}),
        expect(outcomes.Published, platform_post_id="42", url="https://social.example/@someone/42"),
    ),
    "token rejected": (response(401, {"error": "The access token is invalid"}), by_status(401)),
    "rate limited until the reset it names": (
        response(429, {"error": "Too many requests"}, **{"x-ratelimit-reset": RESET.isoformat()}),
        expect(outcomes.RateLimited, until=RESET),
    ),
    "rate limited, no reset named": (
        response(429),
        expect(outcomes.RateLimited, until=NOW + timedelta(minutes=5)),
    ),
    "media not processed yet": (
        response(422, {"error": "Validation failed: media has not finished processing"}),
        expect(outcomes.Transient, retry_after_seconds=5.0),
    ),
    "refused as invalid": (
        response(422, {"error": "Validation failed: Text character limit exceeded"}),
        expect(outcomes.Permanent),
    ),
    "unavailable, retry after": (
        response(503, **{"retry-after": "20"}),
        expect(outcomes.Transient, retry_after_seconds=20.0),
    ),
    "server error after sending": (response(502), expect(outcomes.Ambiguous)),
    "never connected": (httpx.ConnectError("refused"), expect(outcomes.Transient)),
    "no answer after sending": (httpx.ReadTimeout("timed out"), expect(outcomes.Ambiguous)),
}


@pytest.mark.parametrize("case", ANSWERS)
async def test_each_answer_has_its_outcome(case: str) -> None:
    answer, expected = ANSWERS[case]
    platform = MockPlatform({STATUSES: answer})
    async with context(platform) as ctx:
        outcome = await MastodonPublisher().publish(
            publish_request(account("mastodon", {"access_token": "t"}, base_url=INSTANCE)), ctx
        )
    expected.check(outcome)
    sent = platform.requests[-1]
    assert sent.headers["Authorization"] == "Bearer t"
    assert sent.headers["Idempotency-Key"], "every attempt carries the delivery's key"


@pytest.mark.parametrize("status", ERROR_STATUSES)
async def test_every_error_status_has_an_outcome(status: int) -> None:
    async with context(MockPlatform({STATUSES: response(status)})) as ctx:
        outcome = await MastodonPublisher().publish(
            publish_request(account("mastodon", {"access_token": "t"}, base_url=INSTANCE)), ctx
        )
    by_status(status).check(outcome)


async def test_a_spent_budget_answers_without_sending() -> None:
    platform = MockPlatform()
    async with context(platform) as ctx:
        acct = account("mastodon", {"access_token": "t"}, base_url=INSTANCE)
        key = budgets.account_key("mastodon", acct.id)
        await ctx.budgets.spend(key, until=RESET, reason="test")
        outcome = await MastodonPublisher().publish(publish_request(acct), ctx)
    expect(outcomes.RateLimited, until=RESET).check(outcome)
    assert platform.requests == []


async def test_an_account_without_an_instance_is_refused() -> None:
    acct = replace(account("mastodon", {"access_token": "t"}, base_url=INSTANCE), base_url=None)
    outcome = await publish_through(MastodonPublisher(), publish_request(acct), MockPlatform())
    expect(outcomes.Permanent).check(outcome)


async def test_the_last_call_of_a_window_stops_the_next_publish_before_it_is_sent() -> None:
    limits = {"x-ratelimit-remaining": "0", "x-ratelimit-reset": RESET.isoformat()}
    platform = MockPlatform({STATUSES: response(200, {"id": "1"}, **limits)})
    async with context(platform) as ctx:
        acct = account("mastodon", {"access_token": "t"}, base_url=INSTANCE)
        first = await MastodonPublisher().publish(publish_request(acct), ctx)
        second = await MastodonPublisher().publish(publish_request(acct), ctx)
    expect(outcomes.Published).check(first)
    expect(outcomes.RateLimited, until=RESET).check(second)
    assert len(platform.requests) == 1
