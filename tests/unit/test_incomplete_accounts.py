"""An account missing what a platform needs is refused before anything is sent: a missing
target (channel, chat, author) fails the post, a missing token asks for a reconnect."""

from __future__ import annotations

import pytest

from postpilot.core import outcomes
from postpilot.publishers.linkedin import LinkedInPublisher
from postpilot.publishers.slack import SlackPublisher
from postpilot.publishers.telegram import TelegramPublisher
from tests.mock_platform import MockPlatform, expect, publish_through
from tests.publishers.conftest import account, publish_request

INCOMPLETE = {
    "slack, no channel": (SlackPublisher(), {"access_token": "xoxb-1"}, {}, outcomes.Permanent),
    "slack, no token": (SlackPublisher(), {}, {"channel": "C1"}, outcomes.TokenExpired),
    "telegram, no chat": (TelegramPublisher(), {"bot_token": "123:abc"}, {}, outcomes.Permanent),
    "telegram, no token": (TelegramPublisher(), {}, {"chat_id": "@news"}, outcomes.TokenExpired),
    "linkedin, no author": (LinkedInPublisher(), {"access_token": "t"}, {}, outcomes.Permanent),
    "linkedin, no token": (
        LinkedInPublisher(),
        {},
        {"author_urn": "urn:li:person:1"},
        outcomes.TokenExpired,
    ),
}


@pytest.mark.parametrize("case", INCOMPLETE)
async def test_an_incomplete_account_is_refused_without_sending(case: str) -> None:
    publisher, credentials, options, kind = INCOMPLETE[case]
    platform = MockPlatform()
    request = publish_request(account(publisher.platform, credentials, options))
    outcome = await publish_through(publisher, request, platform)
    expect(kind).check(outcome)
    assert platform.requests == []
