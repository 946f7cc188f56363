"""Meta's Graph API errors (Facebook Pages, Instagram, Threads), each to its outcome: by code
and subcode, by the usage headers, and by whether the request was the one that publishes
(an unclear failure of that one may have published; of an earlier one, it cannot have)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import httpx
import pytest

from postpilot.core import outcomes
from postpilot.publishers import graph
from postpilot.publishers.base import AccountContext
from postpilot.publishers.facebook import FacebookPublisher
from postpilot.sandbox.images import png
from tests.mock_platform import NOW, Expected, MockPlatform, context, expect, publish_through
from tests.publishers.conftest import account, publish_request

KEYS = ("facebook:account:acct-facebook", "facebook:app:app")
FEED = "/feed"


def graph_error(
    status: int, code: int | None = None, subcode: int | None = None, **extra: Any
) -> httpx.Response:
    error: dict[str, Any] = {"message": "refused", "type": "OAuthException", **extra}
    if code is not None:
        error["code"] = code
    if subcode is not None:
        error["error_subcode"] = subcode
    return httpx.Response(status, json={"error": error})


def with_usage(answer: httpx.Response, **headers: Any) -> httpx.Response:
    encoded = {name.replace("_", "-"): json.dumps(value) for name, value in headers.items()}
    return httpx.Response(answer.status_code, content=answer.content, headers=encoded)


def limited(**after: float) -> Expected:
    return expect(outcomes.RateLimited, until=NOW + timedelta(**after))


AMBIGUOUS, TRANSIENT = expect(outcomes.Ambiguous), expect(outcomes.Transient)
PERMANENT, TOKEN = expect(outcomes.Permanent), expect(outcomes.TokenExpired)
# name: (answer, outcome of the publishing request, outcome of an earlier request)
TABLE: dict[str, tuple[httpx.Response, Expected, Expected]] = {
    **{
        f"token code {code}": (
            graph_error(400, code),
            TOKEN,
            TOKEN,
        )
        for code in sorted(graph.TOKEN_CODES)
    },
    "401 without a code": (
        httpx.Response(401, json={}),
        TOKEN,
        TOKEN,
    ),
    **{
        f"throttle code {code}": (graph_error(400, code), limited(minutes=15), limited(minutes=15))
        for code in sorted(graph.THROTTLE_CODES)
    },
    "throttled with the app at 100 %: until the app's hour ends": (
        with_usage(graph_error(400, 4), x_app_usage={"call_count": 100}),
        limited(hours=1),
        limited(hours=1),
    ),
    "throttled with the Page's time to regain access": (
        with_usage(
            graph_error(400, 80001),
            x_business_use_case_usage={
                "123": [{"type": "pages", "call_count": 100, "estimated_time_to_regain_access": 30}]
            },
        ),
        limited(minutes=30),
        limited(minutes=30),
    ),
    "Instagram's posts-per-day cap (9/2207042)": (
        graph_error(400, 9, 2207042),
        limited(hours=1),
        limited(hours=1),
    ),
    "another code 9": (
        graph_error(400, 9, 1),
        PERMANENT,
        PERMANENT,
    ),
    "blocked by policy (368)": (
        graph_error(400, graph.POLICY_BLOCK),
        limited(hours=24),
        limited(hours=24),
    ),
    "server error": (graph_error(500, 1), AMBIGUOUS, TRANSIENT),
    "server error without a Graph body": (
        httpx.Response(502, text="bad gateway"),
        AMBIGUOUS,
        TRANSIENT,
    ),
    "is_transient": (graph_error(400, 100, is_transient=True), AMBIGUOUS, TRANSIENT),
    **{
        f"transient code {code}": (graph_error(400, code), AMBIGUOUS, TRANSIENT)
        for code in (1, 2, -1, -2)
    },
    "code 24: try again in a minute": (
        graph_error(400, 24),
        AMBIGUOUS,
        expect(outcomes.Transient, retry_after_seconds=60),
    ),
    "invalid parameter": (
        graph_error(400, 100),
        PERMANENT,
        PERMANENT,
    ),
    "permission missing": (
        graph_error(403, 200),
        PERMANENT,
        PERMANENT,
    ),
    "not JSON at all": (
        httpx.Response(400, text="nope"),
        PERMANENT,
        PERMANENT,
    ),
}
# Code 4 is also a throttle code: the spam block's subcode must be read first.
SPAM_BLOCK = graph_error(400, 4, 2207051)


def page() -> AccountContext:
    return account("facebook", {"page_access_token": "p"}, {"page_id": "123", "app_id": "app"})


@pytest.mark.parametrize("case", TABLE)
async def test_the_publishing_request(case: str) -> None:
    answer, expected, _ = TABLE[case]
    outcome = await publish_through(
        FacebookPublisher(), publish_request(page()), MockPlatform({FEED: answer})
    )
    expected.check(outcome)


@pytest.mark.parametrize("case", TABLE)
async def test_an_earlier_request(case: str) -> None:
    answer, _, expected = TABLE[case]
    async with context(MockPlatform()) as ctx:
        outcome = await graph.failure(answer, ctx, what="container", keys=KEYS, final=False)
    expected.check(outcome)


@pytest.mark.parametrize("answer", [SPAM_BLOCK])
async def test_a_spam_block_may_have_posted(answer: httpx.Response) -> None:
    async with context(MockPlatform()) as ctx:
        outcome = await graph.failure(answer, ctx, what="instagram", keys=KEYS, final=True)
    expect(outcomes.Ambiguous).check(outcome)


async def test_a_rate_limit_spends_the_account_budget() -> None:
    platform, acct = MockPlatform({FEED: graph_error(400, 32)}), page()
    async with context(platform) as ctx:
        await FacebookPublisher().publish(publish_request(acct), ctx)
        again = await FacebookPublisher().publish(publish_request(acct), ctx)
    limited(minutes=15).check(again)
    assert len(platform.requests) == 1


async def test_app_usage_at_100_percent_holds_every_account_of_the_app() -> None:
    full = with_usage(httpx.Response(200, json={"id": "123_1"}), x_app_usage={"call_count": 100})
    platform = MockPlatform({FEED: full})
    other = account("facebook", {"page_access_token": "q"}, {"page_id": "456", "app_id": "app"})
    async with context(platform) as ctx:
        first = await FacebookPublisher().publish(publish_request(page()), ctx)
        held = await FacebookPublisher().publish(publish_request(other), ctx)
    expect(outcomes.Published, platform_post_id="123_1").check(first)
    limited(hours=1).check(held)
    assert len(platform.requests) == 1


@pytest.mark.parametrize(
    ("answer", "media"),
    [(graph_error(400, 506), ()), (graph_error(400, 100), ("http://93.184.216.34/a.png",))],
    ids=["duplicate of the latest post", "image refused"],
)
async def test_facebook_names_what_a_person_must_change(
    answer: httpx.Response, media: tuple[str, ...]
) -> None:
    image = httpx.Response(200, content=png(), headers={"content-type": "image/png"})
    outcome = await publish_through(
        FacebookPublisher(),
        publish_request(page(), media=media),
        MockPlatform({FEED: answer, "/photos": answer, "/a.png": image}),
    )
    assert isinstance(outcome, outcomes.Permanent), outcome
    assert "duplicate" in outcome.reason or "could not use the image" in outcome.reason
