"""Bluesky's answers to `createRecord`, each to its outcome. The record key is the delivery's,
so whenever a send may have gone through, `getRecord` tells whether it did."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from postpilot.core import outcomes
from postpilot.publishers import bluesky
from postpilot.publishers.base import AccountContext
from postpilot.publishers.bluesky import BlueskyPublisher
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

CREATE, GET = "/com.atproto.repo.createRecord", "/com.atproto.repo.getRecord"
FOUND, ABSENT = response(200, {"uri": "at://..."}), response(400, {"error": "RecordNotFound"})
RESET = NOW + timedelta(minutes=2)


def session() -> AccountContext:
    return account("bluesky", {"did": "did:plc:me", "access_jwt": "jwt"})


def published(existed: bool) -> Expected:
    return expect(outcomes.Published, already_existed=existed)


# name: (createRecord's answer, getRecord's answer, outcome)
ANSWERS: dict[str, tuple[Answer, httpx.Response, Expected]] = {
    "created": (response(200, {"uri": "at://x", "cid": "c"}), ABSENT, published(False)),
    "session refused": (response(401), ABSENT, expect(outcomes.TokenExpired)),
    **{
        f"token error {name}": (
            response(400, {"error": name}),
            ABSENT,
            expect(outcomes.TokenExpired),
        )
        for name in bluesky.TOKEN_ERRORS
    },
    "rate limited until ratelimit-reset": (
        response(429, **{"ratelimit-reset": str(int(RESET.timestamp()))}),
        ABSENT,
        expect(outcomes.RateLimited, until=RESET),
    ),
    "rate limited, Retry-After": (
        response(429, **{"retry-after": "40"}),
        ABSENT,
        expect(outcomes.RateLimited, until=NOW + timedelta(seconds=40)),
    ),
    "rate limited, no reset named": (
        response(429),
        ABSENT,
        expect(outcomes.RateLimited, until=NOW + timedelta(minutes=5)),
    ),
    "a blob it no longer has": (
        response(400, {"error": "InvalidRequest", "message": "Could not find blob"}),
        ABSENT,
        expect(outcomes.Transient, retry_after_seconds=0),
    ),
    "invalid record": (
        response(400, {"error": "InvalidRequest"}),
        ABSENT,
        expect(outcomes.Permanent),
    ),
    "server error, record absent": (response(500), ABSENT, expect(outcomes.Ambiguous)),
    "server error, record there": (response(500), FOUND, published(True)),
    "unavailable, record absent": (response(503), ABSENT, expect(outcomes.Transient)),
    "no answer, record absent": (httpx.ReadTimeout("slow"), ABSENT, expect(outcomes.Ambiguous)),
    "no answer, record there": (httpx.ReadTimeout("slow"), FOUND, published(True)),
    "never connected": (httpx.ConnectError("refused"), ABSENT, expect(outcomes.Transient)),
}


@pytest.mark.parametrize("case", ANSWERS)
async def test_each_answer_has_its_outcome(case: str) -> None:
    created, looked_up, expected = ANSWERS[case]
    outcome = await publish_through(
        BlueskyPublisher(),
        publish_request(session()),
        MockPlatform({CREATE: created, GET: looked_up}),
    )
    expected.check(outcome)


@pytest.mark.parametrize("status", ERROR_STATUSES)
async def test_every_error_status_has_an_outcome(status: int) -> None:
    outcome = await publish_through(
        BlueskyPublisher(),
        publish_request(session()),
        MockPlatform({CREATE: response(status), GET: ABSENT}),
    )
    by_status(status).check(outcome)


async def test_a_retry_finds_its_record_and_does_not_create_it_again() -> None:
    platform = MockPlatform({GET: FOUND})
    outcome = await publish_through(
        BlueskyPublisher(), publish_request(session(), attempt=2), platform
    )
    published(True).check(outcome)
    assert [r.url.path.rsplit("/", 1)[1] for r in platform.requests] == [GET.lstrip("/")]


async def test_no_session_needs_a_reconnect_without_sending() -> None:
    platform = MockPlatform()
    outcome = await publish_through(
        BlueskyPublisher(), publish_request(account("bluesky", {})), platform
    )
    expect(outcomes.TokenExpired).check(outcome)
    assert platform.requests == []
