"""The media fetcher reads `media:<id>` from the library's storage, never over HTTP, and says
clearly when it cannot."""

from __future__ import annotations

import httpx
import pytest

from postpilot.publishers.media import MediaError, MediaFetcher, MediaFile


class Library:
    def __init__(self) -> None:
        self.files = {"abc": MediaFile("media:abc", b"\x89PNG...", "image/png")}
        self.reads = 0

    async def read(self, media_id: str) -> MediaFile | None:
        self.reads += 1
        return self.files.get(media_id)


def refuse(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"no HTTP request for library media: {request.url}")


async def test_library_media_comes_from_storage_once_per_ttl() -> None:
    library = Library()
    async with httpx.AsyncClient(transport=httpx.MockTransport(refuse)) as http:
        fetcher = MediaFetcher(http, max_bytes=1024, library=library)
        first = await fetcher.fetch("media:abc")
        again = await fetcher.fetch("media:abc")
    assert first.content == again.content == b"\x89PNG..."
    assert first.content_type == "image/png" and library.reads == 1


async def test_gone_or_unreadable_library_media_is_a_clear_error() -> None:
    async with httpx.AsyncClient(transport=httpx.MockTransport(refuse)) as http:
        with pytest.raises(MediaError, match="deleted from the library"):
            await MediaFetcher(http, max_bytes=1024, library=Library()).fetch("media:gone")
        with pytest.raises(MediaError, match="no media storage"):
            await MediaFetcher(http, max_bytes=1024).fetch("media:abc")
