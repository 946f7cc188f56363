"""Per-platform text and media limits, checked when a post is created or edited so a user hears
about them at once instead of at publish time. Pure."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

import regex  # type: ignore[import-untyped]

# A URL as X counts it (always 23, whatever its length). twitter-text also finds bare domains;
# we count those that start with a scheme or "www.", which is what people paste.
_URL = re.compile(r"(?:https?://|www\.)[^\s<>\"]+", re.IGNORECASE)
_GRAPHEME = regex.compile(r"\X")
_EMOJI = regex.compile(r"\p{Extended_Pictographic}|\p{Regional_Indicator}|\u20e3")
# twitter-text v3: these code point ranges weigh 1, everything else 2.
_X_LIGHT_RANGES = ((0, 4351), (8192, 8205), (8208, 8223), (8242, 8247))
X_URL_WEIGHT = 23


def count_characters(text: str) -> int:
    return len(text)


def graphemes(text: str) -> list[str]:
    """User-perceived characters (extended grapheme clusters)."""
    return list(_GRAPHEME.findall(text))


def count_graphemes(text: str) -> int:
    return len(graphemes(text))


def count_utf8_bytes(text: str) -> int:
    return len(text.encode("utf-8"))


def is_emoji(cluster: str) -> bool:
    return _EMOJI.search(cluster) is not None


def count_x_weighted(text: str) -> int:
    """X's weighted length: NFC, each URL 23, each emoji 2, CJK and most non-Latin 2, else 1."""
    text = unicodedata.normalize("NFC", text)
    total = 0
    position = 0
    for match in _URL.finditer(text):
        total += _x_weight(text[position : match.start()]) + X_URL_WEIGHT
        position = match.end()
    return total + _x_weight(text[position:])


def _x_weight(text: str) -> int:
    total = 0
    for cluster in graphemes(text):
        if is_emoji(cluster):
            total += 2
            continue
        for char in cluster:
            code = ord(char)
            light = any(start <= code <= end for start, end in _X_LIGHT_RANGES)
            total += 1 if light else 2
    return total


def count_threads(text: str) -> int:
    """Threads counts characters, but an emoji as its UTF-8 bytes."""
    return sum(
        len(cluster.encode("utf-8")) if is_emoji(cluster) else len(cluster)
        for cluster in graphemes(text)
    )


@dataclass(frozen=True, slots=True)
class PlatformLimits:
    platform: str
    max_text: int
    max_media: int
    text_required: bool = True
    media_required: bool = False
    counter: Callable[[str], int] = count_characters
    unit: str = "characters"
    # A second limit on the same text (Bluesky: 300 graphemes *and* 3000 bytes).
    max_bytes: int | None = None
    # A shorter limit when media is attached (Telegram: a caption is 1024, a message 4096).
    max_caption: int | None = None

    def problems(self, text: str, media_count: int) -> list[str]:
        """Every way `text` with `media_count` images breaks this platform's limits."""
        found = []
        length = self.counter(text)
        if media_count and self.max_caption is not None and length > self.max_caption:
            found.append(
                f"{self.platform}: text with an image is a caption of {length} {self.unit}, "
                f"the limit is {self.max_caption}"
            )
        elif length > self.max_text:
            found.append(
                f"{self.platform}: text is {length} {self.unit}, the limit is {self.max_text}"
            )
        if self.max_bytes is not None and (size := count_utf8_bytes(text)) > self.max_bytes:
            found.append(
                f"{self.platform}: text is {size} bytes in UTF-8, the limit is {self.max_bytes}"
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


FACEBOOK_DEFAULT_MAX_TEXT = 63_206  # commonly quoted; Meta does not document it

LIMITS: dict[str, PlatformLimits] = {
    limit.platform: limit
    for limit in (
        PlatformLimits("mastodon", max_text=500, max_media=4),
        PlatformLimits(
            "x", max_text=280, max_media=4, counter=count_x_weighted, unit="weighted characters"
        ),
        PlatformLimits(
            "bluesky",
            max_text=300,
            max_media=4,
            counter=count_graphemes,
            unit="graphemes",
            max_bytes=3000,
        ),
        PlatformLimits("facebook", max_text=FACEBOOK_DEFAULT_MAX_TEXT, max_media=1),
        PlatformLimits(
            "instagram", max_text=2200, max_media=1, text_required=False, media_required=True
        ),
        PlatformLimits("linkedin", max_text=3000, max_media=1),
        PlatformLimits("threads", max_text=500, max_media=1, counter=count_threads),
        PlatformLimits("telegram", max_text=4096, max_media=1, max_caption=1024),
        PlatformLimits("discord", max_text=2000, max_media=4),
        PlatformLimits("slack", max_text=40_000, max_media=4),
        # Matrix events may be 65,536 bytes in all; leave room for the event's envelope.
        PlatformLimits(
            "matrix", max_text=60_000, max_media=4, counter=count_utf8_bytes, unit="bytes"
        ),
    )
}


def limits_for(platform: str, *, max_text: Mapping[str, int] | None = None) -> PlatformLimits:
    """The platform's limits; `max_text` overrides text limits from settings (Facebook's is a
    setting because Meta does not document it)."""
    limits = LIMITS[platform]
    if max_text and platform in max_text:
        limits = replace(limits, max_text=max_text[platform])
    return limits
