"""Per-platform text and media limits, checked when a post is created or edited so a user hears
about them at once instead of at publish time. Pure."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


def count_characters(text: str) -> int:
    return len(text)


@dataclass(frozen=True, slots=True)
class PlatformLimits:
    platform: str
    max_text: int
    max_media: int
    text_required: bool = True
    media_required: bool = False
    counter: Callable[[str], int] = count_characters
    unit: str = "characters"

    def problems(self, text: str, media_count: int) -> list[str]:
        """Every way `text` with `media_count` images breaks this platform's limits."""
        found = []
        length = self.counter(text)
        if length > self.max_text:
            found.append(
                f"{self.platform}: text is {length} {self.unit}, the limit is {self.max_text}"
            )
        if (
            self.text_required
            and not text.strip()
            and not (media_count and not self.media_required)
        ):
            found.append(f"{self.platform}: text must not be empty")
        if media_count > self.max_media:
            found.append(
                f"{self.platform}: {media_count} images attached, the limit is {self.max_media}"
            )
        if self.media_required and media_count == 0:
            found.append(f"{self.platform}: at least one image is required")
        return found


LIMITS: dict[str, PlatformLimits] = {
    "mastodon": PlatformLimits("mastodon", max_text=500, max_media=4),
}


def limits_for(platform: str) -> PlatformLimits:
    return LIMITS[platform]
