"""Uploaded-media ids, reused where the platform allows it (Bluesky blobs, X media ids until they
expire, LinkedIn image URNs, Matrix content URIs, Telegram file ids).

Keyed by (platform, account id, media URL): an id belongs to the account that uploaded it and
stays valid across token refreshes, so the credentials are not part of the key. The store is a
small async interface that publishers reach through `PublishContext.uploads`; `UploadCache` is
the in-process TTL default and a Redis-backed class can implement the same three methods.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any, Protocol

DEFAULT_TTL_SECONDS = 3600.0


class UploadStore(Protocol):
    async def get(self, platform: str, account_id: str, media_url: str) -> Any | None: ...

    async def put(
        self, platform: str, account_id: str, media_url: str, value: Any, ttl_seconds: float
    ) -> None: ...

    async def forget(self, platform: str, account_id: str, media_url: str) -> None: ...


class UploadCache:
    """In-process TTL cache with a size cap; counts hits and misses."""

    def __init__(self, *, max_entries: int = 10_000) -> None:
        self._entries: OrderedDict[tuple[str, str, str], tuple[float, Any]] = OrderedDict()
        self._max_entries = max_entries
        self.hits = 0
        self.misses = 0

    async def get(self, platform: str, account_id: str, media_url: str) -> Any | None:
        key = (platform, account_id, media_url)
        entry = self._entries.get(key)
        if entry is None or entry[0] <= time.monotonic():
            self._entries.pop(key, None)
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return entry[1]

    async def put(
        self,
        platform: str,
        account_id: str,
        media_url: str,
        value: Any,
        ttl_seconds: float = DEFAULT_TTL_SECONDS,
    ) -> None:
        if ttl_seconds <= 0:
            return
        key = (platform, account_id, media_url)
        self._entries[key] = (time.monotonic() + ttl_seconds, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)

    async def forget(self, platform: str, account_id: str, media_url: str) -> None:
        self._entries.pop((platform, account_id, media_url), None)
