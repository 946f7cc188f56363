"""Which publisher serves which platform.

Publishers are stateless: everything that outlives one call (uploads, budgets, the HTTP client)
travels in the `PublishContext` each call receives, so one read-only table serves every runtime
of the process."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from postpilot.publishers.base import Publisher
from postpilot.publishers.bluesky import BlueskyPublisher
from postpilot.publishers.discord import DiscordPublisher
from postpilot.publishers.facebook import FacebookPublisher
from postpilot.publishers.instagram import InstagramPublisher
from postpilot.publishers.linkedin import LinkedInPublisher
from postpilot.publishers.mastodon import MastodonPublisher
from postpilot.publishers.matrix import MatrixPublisher
from postpilot.publishers.slack import SlackPublisher
from postpilot.publishers.telegram import TelegramPublisher
from postpilot.publishers.threads import ThreadsPublisher
from postpilot.publishers.x import XPublisher

PUBLISHERS: Mapping[str, Publisher] = MappingProxyType(
    {
        publisher.platform: publisher
        for publisher in (
            MastodonPublisher(),
            XPublisher(),
            BlueskyPublisher(),
            FacebookPublisher(),
            InstagramPublisher(),
            ThreadsPublisher(),
            LinkedInPublisher(),
            TelegramPublisher(),
            DiscordPublisher(),
            SlackPublisher(),
            MatrixPublisher(),
        )
    }
)


def supported_platforms() -> list[str]:
    return sorted(PUBLISHERS)
