"""Which publisher serves which platform."""

from __future__ import annotations

from postpilot.publishers.base import Publisher
from postpilot.publishers.mastodon import MastodonPublisher

PUBLISHERS: dict[str, Publisher] = {
    publisher.platform: publisher for publisher in (MastodonPublisher(),)
}


def publisher_for(platform: str) -> Publisher:
    return PUBLISHERS[platform]


def supported_platforms() -> list[str]:
    return sorted(PUBLISHERS)
