"""Which publisher serves which platform."""

from __future__ import annotations

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
from postpilot.publishers.uploads import UploadCache
from postpilot.publishers.x import XPublisher

# Uploaded media ids, shared by every publisher of this process (keyed by platform and account).
UPLOADS = UploadCache()

PUBLISHERS: dict[str, Publisher] = {
    publisher.platform: publisher
    for publisher in (
        MastodonPublisher(),
        XPublisher(UPLOADS),
        BlueskyPublisher(UPLOADS),
        FacebookPublisher(),
        InstagramPublisher(),
        ThreadsPublisher(),
        LinkedInPublisher(UPLOADS),
        TelegramPublisher(UPLOADS),
        DiscordPublisher(),
        SlackPublisher(),
        MatrixPublisher(UPLOADS),
    )
}


def publisher_for(platform: str) -> Publisher:
    return PUBLISHERS[platform]


def supported_platforms() -> list[str]:
    return sorted(PUBLISHERS)
