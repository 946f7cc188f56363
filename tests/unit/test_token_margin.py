"""When a token is renewed: a tenth of its lifetime before it expires, at most five minutes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from postpilot.publishers.base import AccountContext
from postpilot.scheduler import tokens

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def account(credentials: dict[str, Any], expires_in: timedelta | None) -> AccountContext:
    return AccountContext(
        id="a",
        platform="x",
        handle="@a",
        base_url=None,
        options={},
        credentials=credentials,
        token_expires_at=NOW + expires_in if expires_in is not None else None,
    )


def issued(ago: timedelta) -> dict[str, Any]:
    return tokens.stamped({"access_token": "t"}, NOW - ago)


@pytest.mark.parametrize(
    ("lifetime", "margin"),
    [
        (timedelta(minutes=5), timedelta(seconds=30)),
        (timedelta(seconds=20), timedelta(seconds=2)),
        (timedelta(hours=2), timedelta(minutes=5)),  # a tenth would be 12 min: capped
        (timedelta(days=60), timedelta(minutes=5)),
    ],
)
def test_margin_is_a_tenth_of_the_lifetime_capped_at_five_minutes(
    lifetime: timedelta, margin: timedelta
) -> None:
    credentials = issued(timedelta(0))
    assert tokens.margin(credentials, NOW + lifetime) == margin


def test_a_five_minute_token_is_not_renewed_on_every_pass() -> None:
    fresh = account(issued(timedelta(minutes=1)), expires_in=timedelta(minutes=4))
    assert not tokens.due(fresh, NOW)
    nearly_over = account(issued(timedelta(minutes=4, seconds=35)), timedelta(seconds=25))
    assert tokens.due(nearly_over, NOW)


def test_unknown_lifetime_uses_the_cap() -> None:
    person_connected = account({"access_token": "t"}, expires_in=timedelta(minutes=4))
    assert tokens.due(person_connected, NOW)
    assert not tokens.due(account({"access_token": "t"}, timedelta(minutes=6)), NOW)
    garbled = {"access_token": "t", tokens.ISSUED_AT: "yesterday"}
    assert tokens.margin(garbled, NOW) == tokens.MARGIN_CAP


def test_no_expiry_is_never_due() -> None:
    assert not tokens.due(account(issued(timedelta(hours=1)), expires_in=None), NOW)
