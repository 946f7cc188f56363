"""Every publisher says how many sends to one account may be in flight at once, and the
platforms that take about one message a second per chat, channel or room take one at a time."""

from __future__ import annotations

import pytest

from postpilot.publishers.base import DEFAULT_IN_FLIGHT_PER_ACCOUNT, in_flight_per_account
from postpilot.publishers.registry import PUBLISHERS

ONE_AT_A_TIME = ("telegram", "slack", "discord", "matrix")


@pytest.mark.parametrize("platform", sorted(PUBLISHERS))
def test_every_publisher_declares_its_cap(platform: str) -> None:
    publisher = PUBLISHERS[platform]
    assert "max_in_flight_per_account" in vars(type(publisher)) or any(
        "max_in_flight_per_account" in vars(base) for base in type(publisher).__mro__[1:-1]
    )
    assert in_flight_per_account(publisher) == publisher.max_in_flight_per_account >= 1


@pytest.mark.parametrize("platform", ONE_AT_A_TIME)
def test_chats_channels_and_rooms_take_one_send_at_a_time(platform: str) -> None:
    assert in_flight_per_account(PUBLISHERS[platform]) == 1


def test_a_platform_without_a_publisher_gets_the_default() -> None:
    assert in_flight_per_account(None) == DEFAULT_IN_FLIGHT_PER_ACCOUNT == 1
