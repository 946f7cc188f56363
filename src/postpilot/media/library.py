"""The media library's operations on bytes: check an upload against the platforms it is meant
for, make the variant that is published and a thumbnail, keep them in storage, and read a
variant back for the publishers (`publishers.media.LibraryReader`)."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from postpilot.core import media_limits
from postpilot.errors import PostpilotError
from postpilot.media import images
from postpilot.media.storage import LocalMediaStorage, MediaStorage
from postpilot.publishers.media import MediaFile
from postpilot.settings import Settings

ORIGINAL, VARIANT, THUMBNAIL = "original", "variant", "thumbnail"
# Kept beside the bytes so the publish path reads everything from storage, not the database.
ALT_TEXT = "alt_text"


class MediaRefused(PostpilotError):
    """An upload the library does not take; `code` is the API's error code, `problems` each
    reason (naming the platform and its limit where one is the cause)."""

    def __init__(self, code: str, problems: Sequence[str]) -> None:
        super().__init__("; ".join(problems))
        self.code = code
        self.problems = list(problems)


@dataclass(frozen=True, slots=True)
class Prepared:
    original: bytes
    info: images.ImageInfo
    variant: images.Encoded  # what publishers send: the original when it suits as it is
    thumbnail: images.Encoded
    sha256: str


def key(media_id: str, name: str) -> str:
    return f"{media_id}/{name}"


def _prepare(data: bytes, platforms: Sequence[str], max_pixels: int) -> Prepared:
    try:
        info = images.inspect(data, max_pixels=max_pixels)
    except images.NotAnImage as exc:
        raise MediaRefused("media_not_image", [str(exc)]) from exc
    except images.TooManyPixels as exc:
        raise MediaRefused("media_too_large", [str(exc)]) from exc
    goal = media_limits.target(platforms)
    try:
        encoded = images.normalise(data, info, goal, max_pixels=max_pixels)
    except images.CannotNormalise as exc:
        raise MediaRefused("media_not_allowed", [str(exc)]) from exc
    variant = encoded or images.Encoded(data, info.content_type, info.width, info.height)
    problems = media_limits.problems(
        platforms,
        content_type=variant.content_type,
        size=len(variant.content),
        width=variant.width,
        height=variant.height,
    )
    if problems:
        raise MediaRefused("media_not_allowed", problems)
    return Prepared(
        original=data,
        info=info,
        variant=variant,
        thumbnail=images.thumbnail(data, max_pixels=max_pixels),
        sha256=hashlib.sha256(data).hexdigest(),
    )


async def prepare(data: bytes, *, platforms: Sequence[str], max_pixels: int) -> Prepared:
    """Checked, normalised and thumbnailed, off the event loop (decoding is CPU work)."""
    return await asyncio.to_thread(_prepare, data, platforms, max_pixels)


async def save(storage: MediaStorage, media_id: str, prepared: Prepared) -> None:
    await storage.put(key(media_id, ORIGINAL), prepared.original)
    await storage.put(key(media_id, VARIANT), prepared.variant.content)
    await storage.put(key(media_id, THUMBNAIL), prepared.thumbnail.content)


async def save_alt_text(storage: MediaStorage, media_id: str, alt_text: str | None) -> None:
    if alt_text:
        await storage.put(key(media_id, ALT_TEXT), alt_text.encode())
    else:
        await storage.delete(key(media_id, ALT_TEXT))


async def discard(storage: MediaStorage, media_id: str) -> None:
    for name in (ALT_TEXT, THUMBNAIL, VARIANT, ORIGINAL):
        await storage.delete(key(media_id, name))


class LibraryReader:
    """Library media as the media fetcher reads it: the published variant, from storage."""

    def __init__(self, storage: MediaStorage) -> None:
        self._storage = storage

    async def read(self, media_id: str) -> MediaFile | None:
        content = await self._storage.get(key(media_id, VARIANT))
        if content is None:
            return None
        content_type = images.sniff(content) or "application/octet-stream"
        alt_text = await self._storage.get(key(media_id, ALT_TEXT))
        return MediaFile(
            url=f"{media_limits.LIBRARY_PREFIX}{media_id}",
            content=content,
            content_type=content_type,
            description=alt_text.decode() if alt_text else None,
        )


def media_directory(settings: Settings) -> Path:
    """Every API process and worker of one database must share it."""
    if settings.MEDIA_DIR:
        return Path(settings.MEDIA_DIR)
    url = make_url(settings.DATABASE_URL)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        database = Path(str(url.database)).resolve()
        return database.with_name(database.name + ".media")
    data_home = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    where = hashlib.sha256(
        url.set(password=None).render_as_string(hide_password=False).encode()
    ).hexdigest()[:16]
    return data_home / "postpilot" / "media" / where


def open_storage(settings: Settings) -> MediaStorage:
    return LocalMediaStorage(media_directory(settings))
