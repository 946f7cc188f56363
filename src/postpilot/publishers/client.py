"""The publishing client: httpx's `AsyncClient` as every publisher uses it, minus per-request work
that this one shared client never needs (measured in BENCHMARKS.md, "CPU per delivery"):

- a URL string is parsed once, not on every request: httpx's parser checks each character in
  Python, and a publisher sends to the same few URLs endlessly (an instance's statuses, a
  chat's sendMessage). Parsed URLs are immutable, so sharing one between requests is safe.
- no cookie jar: the client is shared by every account of every workspace, so a cookie one
  platform sets for one account must never ride along on another's request; keeping none also
  saves building urllib's request and header objects for every response.
- the publishers' common calls (a string URL, a JSON, form or bytes body, plain headers, no
  redirects followed) skip httpx's request, auth, redirect and streaming machinery: the body and
  headers are encoded as httpx encodes them (`simple`), the aiohttp transport sends them with
  the same address checks, timeouts and error mapping, and the answer is an `httpx.Response`
  read whole. Anything else (files, query params, auth, redirects, streaming) goes through httpx.
"""

from __future__ import annotations

import functools
import http.cookiejar
import time
from typing import Any

import httpx

from postpilot.publishers import simple
from postpilot.publishers.transport_aiohttp import PublicOnlyAiohttpTransport, wire_url

# Distinct URL strings kept parsed; one-off URLs (a Matrix transaction id) simply cycle out.
PARSED_URLS = 2048


@functools.lru_cache(maxsize=PARSED_URLS)
def parsed_url(url: str) -> httpx.URL:
    return httpx.URL(url)


@functools.lru_cache(maxsize=PARSED_URLS)
def _target(url: str) -> simple.Target:
    parsed = parsed_url(url)
    return simple.Target(parsed, wire_url(parsed), parsed.netloc.decode("ascii"))


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
        transport = options.get("transport")
        plain = not any(
            options.get(name)
            for name in (
                "auth",
                "base_url",
                "default_encoding",
                "event_hooks",
                "follow_redirects",
                "mounts",
                "params",
            )
        )
        # The shortcut needs the aiohttp transport and a client that adds nothing per request.
        self._direct = (
            transport if plain and isinstance(transport, PublicOnlyAiohttpTransport) else None
        )
        self._timeouts = self.timeout.as_dict()  # httpx's constructor set it without the setter

    @property
    def timeout(self) -> httpx.Timeout:
        return self._timeout

    @timeout.setter
    def timeout(self, timeout: Any) -> None:
        self._timeout = httpx.Timeout(timeout)
        self._timeouts = self._timeout.as_dict()  # what the shortcut hands the transport

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

    async def request(  # httpx's own parameters, taken as they come
        self,
        method: str,
        url: httpx.URL | str,
        *,
        content: Any = None,
        data: Any = None,
        files: Any = None,
        json: Any = None,
        params: Any = None,
        headers: Any = None,
        cookies: Any = None,
        auth: Any = httpx.USE_CLIENT_DEFAULT,
        follow_redirects: Any = httpx.USE_CLIENT_DEFAULT,
        timeout: Any = httpx.USE_CLIENT_DEFAULT,
        extensions: Any = None,
    ) -> httpx.Response:
        direct = self._direct
        if (
            direct is not None
            and isinstance(url, str)
            and files is None
            and params is None
            and cookies is None
            and extensions is None
            and auth is httpx.USE_CLIENT_DEFAULT
            and follow_redirects in (httpx.USE_CLIENT_DEFAULT, False)
            and (encoded := simple.encode(content=content, data=data, json=json, headers=headers))
        ):
            return await self._send_simple(direct, method, url, encoded, timeout)
        return await super().request(
            method,
            url,
            content=content,
            data=data,
            files=files,
            json=json,
            params=params,
            headers=headers,
            cookies=cookies,
            auth=auth,
            follow_redirects=follow_redirects,
            timeout=timeout,
            extensions=extensions,
        )

    async def _send_simple(
        self,
        transport: PublicOnlyAiohttpTransport,
        method: str,
        url: str,
        encoded: simple.Encoded,
        timeout: Any,
    ) -> httpx.Response:
        target = _target(url)
        sent_headers = simple.merged_headers(method, self.headers, encoded, target.host_header)
        timeouts = (
            self._timeouts
            if timeout is httpx.USE_CLIENT_DEFAULT
            else httpx.Timeout(timeout).as_dict()
        )
        started = time.perf_counter()
        answer = await transport.read_whole(
            method, target.url, target.wire, sent_headers, encoded.body, timeouts
        )
        return simple.read_response(
            answer, method, target.url, sent_headers, time.perf_counter() - started
        )


_NO_COOKIES = _NoCookies()
