"""Request and response bodies of /api/media."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field, field_validator

from postpilot.api.fields import Name, Url
from postpilot.api.schemas import Strict
from postpilot.publishers.registry import supported_platforms

MAX_ALT_TEXT = 1500  # Mastodon's limit; the other platforms that take alt text allow as much
AltText = Annotated[str, Field(max_length=MAX_ALT_TEXT)]
PLATFORMS_HELP = (
    "The platforms this media is meant for: it is checked against their limits (type, size, "
    "ratio) now, and the published variant is made to suit all of them."
)


def check_platforms(value: list[str]) -> list[str]:
    unknown = [p for p in value if p not in supported_platforms()]
    if unknown:
        raise ValueError(
            f"{', '.join(map(repr, unknown))} not supported: "
            f"one of {', '.join(supported_platforms())}"
        )
    return sorted(set(value))


class MediaFromUrl(Strict):
    url: Url = Field(description="A public http(s) URL of a JPEG, PNG, GIF or WebP image.")
    alt_text: AltText | None = None
    platforms: Annotated[list[Name], Field(max_length=20)] = Field(
        default_factory=list, description=PLATFORMS_HELP
    )
    filename: Annotated[str, Field(min_length=1, max_length=255)] | None = None

    @field_validator("platforms")
    @classmethod
    def _platforms(cls, value: list[str]) -> list[str]:
        return check_platforms(value)


class MediaUpdate(Strict):
    alt_text: AltText | None = Field(description="The new alt text; null removes it.")


class MediaVariant(BaseModel):
    """What publishers send: the upload itself when it suited every chosen platform, else a
    normalised copy (turned upright, without EXIF, scaled down, converted)."""

    content_type: str
    size_bytes: int
    width: int
    height: int


class MediaPublic(BaseModel):
    id: str
    filename: str
    content_type: str
    size_bytes: int
    width: int
    height: int
    sha256: str
    alt_text: str | None
    platforms: list[str]
    variant: MediaVariant
    content_url: str
    thumbnail_url: str
    created_at: datetime
    last_used_at: datetime


class MediaPage(BaseModel):
    items: list[MediaPublic]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last page."
    )
