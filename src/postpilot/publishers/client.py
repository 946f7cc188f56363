"""The publishing client: httpx's `AsyncClient` as every publisher uses it, minus per-request work
that this one shared client never needs (measured in BENCHMARKS.md, "CPU per delivery"):

- a URL string is parsed once, not on every request: httpx's parser checks each character in
  Python, and a publisher sends to the same few URLs endlessly (an instance's statuses, a
  chat's sendMessage). Parsed URLs are immutable, so sharing one between requests is safe.
- no cookie jar: the client is shared by every account of every workspace, so a cookie one
  platform sets for one account must never ride along on another's request; keeping none also
  saves building urllib's request and header objects for every response.
"""

from __future__ import annotations

import functools
import http.cookiejar
from typing import Any

import httpx

# Distinct URL strings kept parsed; one-off URLs (a Matrix transaction id) simply cycle out.
PARSED_URLS = 2048


@functools.lru_cache(maxsize=PARSED_URLS)
def parsed_url(url: str) -> httpx.URL:
    return httpx.URL(url)


class _EmptyJar(http.cookiejar.CookieJar):
    def set_cookie(self, cookie: http.cookiejar.Cookie) -> None:
        return None


class _NoCookies(httpx.Cookies):
    """Empty, and stays so: nothing is taken from responses, set by hand or added to requests."""

    def __init__(self) -> None:
        super().__init__(_EmptyJar())

    def extract_cookies(self, response: httpx.Response) -> None:
        return None

    def set_cookie_header(self, request: httpx.Request) -> None:
        return None


class PublishingClient(httpx.AsyncClient):
    def __init__(self, **options: Any) -> None:
        if options.get("cookies"):
            raise ValueError("the publishing client keeps no cookies")
        super().__init__(**options)

    @property
    def cookies(self) -> httpx.Cookies:
        return _NO_COOKIES

    @cookies.setter
    def cookies(self, _cookies: Any) -> None:
        return None  # httpx's constructor sets an empty jar; nothing else may

    def build_request(self, method: str, url: httpx.URL | str, **options: Any) -> httpx.Request:
        return super().build_request(
            method, parsed_url(url) if isinstance(url, str) else url, **options
        )


_NO_COOKIES = _NoCookies()
