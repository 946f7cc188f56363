"""Per-platform image limits, checked when media is uploaded to the library so a user hears about
them at once instead of at publish time. Pure. Numbers from ../shared/platforms.md; where the
platform does not document one, the comment says so and the value is the commonly quoted one."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

JPEG, PNG, GIF, WEBP = "image/jpeg", "image/png", "image/gif", "image/webp"
ALL_TYPES = frozenset({JPEG, PNG, GIF, WEBP})
MB = 1000 * 1000
MIB = 1024 * 1024
# How a post's media_urls name library media: "media:<id>" (read from storage, never fetched).
LIBRARY_PREFIX = "media:"


@dataclass(frozen=True, slots=True)
class ImageLimits:
    platform: str
    types: frozenset[str]
    max_bytes: int | None = None
    max_pixels: int | None = None  # width x height
    max_side_sum: int | None = None  # width + height (Telegram)
    min_ratio: float | None = None  # width / height
    max_ratio: float | None = None
    # The platform downloads the image from a public URL itself (it never takes our bytes), so
    # library media, which has no public URL, cannot go there.
    fetches_by_url: bool = False


IMAGE_LIMITS: dict[str, ImageLimits] = {
    limits.platform: limits
    for limits in (
        ImageLimits("x", ALL_TYPES, max_bytes=5 * MIB),
        ImageLimits("mastodon", ALL_TYPES, max_bytes=16 * MIB),  # per instance; the default
        ImageLimits("bluesky", frozenset({JPEG, PNG, WEBP}), max_bytes=1 * MB),
        # Meta documents no byte limit for Page photos: 10 MiB is the one commonly quoted.
        ImageLimits(
            "facebook", frozenset({JPEG, PNG, GIF}), max_bytes=10 * MIB, fetches_by_url=True
        ),
        ImageLimits(
            "instagram",
            frozenset({JPEG}),
            max_bytes=8 * MIB,
            min_ratio=4 / 5,
            max_ratio=1.91,
            fetches_by_url=True,
        ),
        ImageLimits("linkedin", frozenset({JPEG, PNG, GIF}), max_pixels=36_152_320),
        ImageLimits("threads", frozenset({JPEG, PNG}), max_bytes=8 * MIB, fetches_by_url=True),
        ImageLimits(
            "telegram",
            frozenset({JPEG, PNG, WEBP}),
            max_bytes=10 * MB,
            max_side_sum=10_000,
            max_ratio=20.0,
            min_ratio=1 / 20,
        ),
        ImageLimits("discord", ALL_TYPES, max_bytes=10 * MIB),  # the upload cap is unconfirmed
        ImageLimits("slack", frozenset({JPEG, PNG, GIF}), fetches_by_url=True),
        ImageLimits("matrix", ALL_TYPES, max_bytes=50 * MIB),  # Synapse's default upload cap
    )
}


@dataclass(frozen=True, slots=True)
class Target:
    """What the stored variant must be to suit every chosen platform at once."""

    types: frozenset[str]
    max_pixels: int | None
    max_side_sum: int | None


def target(platforms: Iterable[str]) -> Target:
    chosen = [IMAGE_LIMITS[p] for p in platforms]
    types = ALL_TYPES.intersection(*(limits.types for limits in chosen))
    return Target(
        types=frozenset(types),
        max_pixels=min((lim.max_pixels for lim in chosen if lim.max_pixels), default=None),
        max_side_sum=min((lim.max_side_sum for lim in chosen if lim.max_side_sum), default=None),
    )


def fits(width: int, height: int, goal: Target) -> tuple[int, int]:
    """The largest size with the same ratio, at most (width, height), within `goal`'s pixels."""
    scale = 1.0
    if goal.max_pixels and width * height > goal.max_pixels:
        scale = min(scale, (goal.max_pixels / (width * height)) ** 0.5)
    if goal.max_side_sum and width + height > goal.max_side_sum:
        scale = min(scale, goal.max_side_sum / (width + height))
    if scale >= 1.0:
        return width, height
    return max(1, int(width * scale)), max(1, int(height * scale))


def problems(
    platforms: Iterable[str], *, content_type: str, size: int, width: int, height: int
) -> list[str]:
    """Every way the image that would be sent breaks a chosen platform's limits."""
    found: list[str] = []
    ratio = width / height
    for platform in platforms:
        limits = IMAGE_LIMITS[platform]
        if content_type not in limits.types:
            found.append(f"{platform}: takes {', '.join(sorted(limits.types))}, not {content_type}")
        if limits.max_bytes is not None and size > limits.max_bytes:
            found.append(f"{platform}: the image is {size} bytes, the limit is {limits.max_bytes}")
        if limits.min_ratio is not None and ratio < limits.min_ratio - 0.005:
            found.append(
                f"{platform}: width/height is {ratio:.2f}, the least it takes is "
                f"{limits.min_ratio:.2f}"
            )
        if limits.max_ratio is not None and ratio > limits.max_ratio + 0.005:
            found.append(
                f"{platform}: width/height is {ratio:.2f}, the most it takes is "
                f"{limits.max_ratio:.2f}"
            )
    return found


def fetching_by_url(platforms: Iterable[str]) -> list[str]:
    """The platforms among these that only take an image by public URL."""
    return sorted(p for p in platforms if p in IMAGE_LIMITS and IMAGE_LIMITS[p].fetches_by_url)
