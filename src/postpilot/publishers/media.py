"""Fetch media given by URL, safely: only http(s) to public addresses (checked after DNS
resolution and again on every redirect), within size, type and time limits, once per URL.
Library media (`media:<id>`, see postpilot/media) is read from storage, never over HTTP."""

from __future__ import annotations

import asyncio
import socket
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx

from postpilot.core import media_limits
from postpilot.errors import PostpilotError
from postpilot.publishers.addresses import AddressPolicy, is_public_address
from postpilot.publishers.urls import UnusableUrl, check_media_url, parse_http_url

__all__ = ["MediaError", "MediaFetcher", "MediaFile", "check_url_shape", "is_public_address"]

ALLOWED_TYPES = {
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/gif": "gif",
    "image/webp": "webp",
}
MAX_REDIRECTS = 5
LIBRARY_PREFIX = media_limits.LIBRARY_PREFIX


def shown(url: str, limit: int = 300) -> str:
    """A URL as it may appear in an error: control characters escaped (a NUL cannot be stored in
    PostgreSQL text), and not endless."""
    text = "".join(
        ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in url
    )
    return text if len(text) <= limit else f"{text[:limit]}..."


class MediaError(PostpilotError):
    """A media URL that cannot be used; `reason` says why in words a person can act on."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"media {shown(url)}: {reason}")
        self.url = url
        self.reason = reason


class _LeaderGone(PostpilotError):
    """The download other callers were waiting for was cancelled: one of them starts over."""


@dataclass(frozen=True, slots=True)
class MediaFile:
    url: str
    content: bytes
    content_type: str
    # Alt text, for publishers whose platform takes it (library media only; a URL has none).
    description: str | None = None

    @property
    def filename(self) -> str:
        return f"media.{ALLOWED_TYPES.get(self.content_type, 'bin')}"


class LibraryReader(Protocol):
    """Reads library media's published variant from storage; None when it is gone."""

    async def read(self, media_id: str) -> MediaFile | None: ...


class LibraryLinks(Protocol):
    """Makes a signed, expiring public URL of library media (postpilot/media/links.py)."""

    def url(self, media_id: str, now: datetime) -> str: ...


def check_url_shape(url: str, policy: AddressPolicy | None = None) -> None:
    """The checks that need no network (when a post is created, too): an http(s) URL that
    parses, without credentials, not naming a private address literally."""
    try:
        check_media_url(url, policy or AddressPolicy())
    except UnusableUrl as exc:
        raise MediaError(url, str(exc)) from None


class MediaFetcher:
    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        max_bytes: int,
        policy: AddressPolicy | None = None,
        allowed_hosts: frozenset[str] = frozenset(),  # shorthand for `policy`
        timeout_seconds: float = 15.0,
        cache_ttl_seconds: float = 300.0,
        cache_max_bytes: int = 64 * 1024 * 1024,
        library: LibraryReader | None = None,
        links: LibraryLinks | None = None,
    ) -> None:
        self._http = http
        self._library = library
        self._links = links
        self._max_bytes = max_bytes
        self.policy = policy or AddressPolicy.allowing(*allowed_hosts)
        self._timeout = timeout_seconds
        self._ttl = cache_ttl_seconds
        self._cache_max_bytes = cache_max_bytes
        self._cache: OrderedDict[str, tuple[float, MediaFile]] = OrderedDict()
        self._cached_bytes = 0
        self._inflight: dict[str, asyncio.Future[MediaFile]] = {}
        self.hits = 0
        self.misses = 0

    def public_url(self, url: str, now: datetime) -> str:
        """The URL a platform that downloads media itself is given: library media get a signed
        link under PUBLIC_BASE_URL, valid for a while from `now`; other URLs stay as they are."""
        if not url.startswith(LIBRARY_PREFIX):
            return url
        if self._links is None:
            raise MediaError(url, "library media cannot be linked here (no public base URL)")
        return self._links.url(url.removeprefix(LIBRARY_PREFIX), now)

    async def fetch(self, url: str) -> MediaFile:
        """The media at `url`, downloaded at most once per TTL even when many deliveries of a
        batch ask for it at the same moment. Whatever goes wrong, every caller gets an answer:
        a `MediaError` (the same one for all of them), never a wait without end."""
        while True:
            cached = self._cache.get(url)
            if cached and cached[0] > time.monotonic():
                self.hits += 1
                self._cache.move_to_end(url)
                return cached[1]
            inflight = self._inflight.get(url)
            if inflight is None:
                return await self._lead(url)
            self.hits += 1
            try:
                return await asyncio.shield(inflight)
            except _LeaderGone:
                continue  # its download was cancelled, not failed: try it ourselves

    async def _lead(self, url: str) -> MediaFile:
        self.misses += 1
        future: asyncio.Future[MediaFile] = asyncio.get_running_loop().create_future()
        self._inflight[url] = future
        try:
            media = await asyncio.wait_for(self._download(url), self._timeout)
        except MediaError as error:
            _settle(future, error)
            raise
        except TimeoutError:
            slow = MediaError(url, f"download took longer than {self._timeout:g} s")
            _settle(future, slow)
            raise slow from None
        except Exception as exc:  # a URL httpx cannot take, or a bug: an answer all the same
            broken = MediaError(url, f"could not download it ({type(exc).__name__})")
            _settle(future, broken)
            raise broken from exc
        except BaseException:  # cancelled: the waiters must not wait for us
            _settle(future, _LeaderGone())
            raise
        finally:
            if self._inflight.get(url) is future:
                del self._inflight[url]
        future.set_result(media)
        self._remember(url, media)
        return media

    def _remember(self, url: str, media: MediaFile) -> None:
        size = len(media.content)
        if size > self._cache_max_bytes // 4:
            return
        self._cache[url] = (time.monotonic() + self._ttl, media)
        self._cached_bytes += size
        while self._cached_bytes > self._cache_max_bytes and self._cache:
            _, (_, evicted) = self._cache.popitem(last=False)
            self._cached_bytes -= len(evicted.content)

    async def _download(self, url: str) -> MediaFile:
        if url.startswith(LIBRARY_PREFIX):
            return await self._from_library(url)
        current = url
        for _ in range(MAX_REDIRECTS + 1):
            address = await self._check_destination(url, current)
            target, headers, extensions = pinned(current, address)
            try:
                async with self._http.stream(
                    "GET",
                    target,
                    headers=headers,
                    extensions=extensions,
                    follow_redirects=False,
                    timeout=self._timeout,
                ) as response:
                    if response.is_redirect:
                        location = response.headers.get("location")
                        if not location:
                            raise MediaError(url, "redirect without a Location header")
                        current = urljoin(current, location)
                        continue
                    if response.status_code != 200:
                        raise MediaError(url, f"the server answered HTTP {response.status_code}")
                    content_type = response.headers.get("content-type", "").split(";")[0].strip()
                    if content_type not in ALLOWED_TYPES:
                        raise MediaError(
                            url,
                            f"content type {content_type or 'missing'!s} is not an image "
                            f"({', '.join(ALLOWED_TYPES)})",
                        )
                    declared = int(response.headers.get("content-length") or 0)
                    if declared > self._max_bytes:
                        raise MediaError(url, self._too_big())
                    body = bytearray()
                    async for chunk in response.aiter_bytes():
                        body.extend(chunk)
                        if len(body) > self._max_bytes:
                            raise MediaError(url, self._too_big())
                    if not body:
                        raise MediaError(url, "the file is empty")
                    return MediaFile(url=url, content=bytes(body), content_type=content_type)
            except httpx.HTTPError as exc:
                raise MediaError(url, f"could not download it ({type(exc).__name__})") from exc
        raise MediaError(url, f"more than {MAX_REDIRECTS} redirects")

    async def _from_library(self, url: str) -> MediaFile:
        if self._library is None:
            raise MediaError(url, "library media cannot be read here (no media storage)")
        media = await self._library.read(url.removeprefix(LIBRARY_PREFIX))
        if media is None:
            raise MediaError(url, "the media was deleted from the library")
        return media

    def _too_big(self) -> str:
        return f"larger than the {self._max_bytes // 1024} KiB limit"

    async def _check_destination(self, original: str, url: str) -> str | None:
        """The public address to connect to (every address the name resolves to must be
        public), or None for an allow-listed host, which is fetched as named."""
        try:
            check_media_url(url, self.policy)
            parts = parse_http_url(url)
        except UnusableUrl as exc:
            raise MediaError(original, str(exc)) from None
        host, port = parts.host, parts.effective_port
        if self.policy.is_allowed_host(host, port):
            return None
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
        except (OSError, UnicodeError) as exc:
            raise MediaError(original, f"host {host} does not resolve") from exc
        addresses = [str(info[4][0]) for info in infos]
        for address in addresses:
            if not self.policy.may_connect(address, port):
                raise MediaError(
                    original,
                    f"{host} resolves to {address}, which is not a public address",
                )
        if not addresses:
            raise MediaError(original, f"host {host} does not resolve")
        return addresses[0]


def _settle(future: asyncio.Future[MediaFile], error: BaseException) -> None:
    if not future.done():
        future.set_exception(error)
        future.exception()  # mark retrieved: waiters re-raise it themselves


def pinned(url: str, address: str | None) -> tuple[str, dict[str, str], dict[str, Any]]:
    """Connect to the address that was checked, not to whatever the name resolves to a moment
    later (DNS rebinding): the URL names the IP, the Host header and TLS (SNI and certificate
    check) keep the original host name."""
    if address is None:
        return url, {}, {}
    parts = urlsplit(url)
    host = parts.hostname or ""
    literal = f"[{address}]" if ":" in address else address
    netloc = f"{literal}:{parts.port}" if parts.port else literal
    target = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
    host_header = f"{host}:{parts.port}" if parts.port else host
    extensions: dict[str, Any] = {"sni_hostname": host} if parts.scheme == "https" else {}
    return target, {"Host": host_header}, extensions
