"""The publishing client's transport on aiohttp: publishers keep httpx's API, requests go out
through an aiohttp connection pool (several times less CPU per request than httpcore's at
high concurrency; see BENCHMARKS.md "client").

The address guarantees of `transport` hold here too. A name is resolved by `PublicOnlyResolver`,
which refuses it unless every address is public (or allowed) and hands aiohttp only the checked
addresses, so the socket opens to exactly them (aiohttp's DNS cache holds checked answers only).
aiohttp does not ask the resolver about IP literals, so the transport checks those itself before
sending. httpx follows redirects hop by hop through this transport: every hop is checked again.
TLS verifies the host name (or the `sni_hostname` extension's, for a pinned URL).

Errors are mapped here, not with httpx_aiohttp's table, because that one turns a server that
hung up after the request was sent into `ConnectTimeout` ("nothing sent") and a publisher would
send again. Here only failures before the request left are ConnectError/ConnectTimeout;
everything later is a read error or timeout (it may have reached the platform).

Timeouts: httpx's `connect` bounds the socket connect, `pool` + `connect` the wait for a
connection, `read` each read. aiohttp has no write timeout; request bodies are small and
already in memory, and every delivery has its own overall timeout."""

from __future__ import annotations

import contextlib
import functools
import socket
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import httpx
import yarl
from aiohttp.abc import AbstractResolver, ResolveResult

from postpilot.publishers.addresses import AddressPolicy, literal_address
from postpilot.publishers.transport import NotPublicAddress
from postpilot.publishers.urls import UNUSABLE_HOST

# What aiohttp would add on its own: httpx already sets what it means to send.
_NO_AUTO_HEADERS = ("Accept", "Accept-Encoding", "Content-Type", "User-Agent")


def unwanted_auto_headers(headers: list[tuple[str, str]], *, body: bool) -> tuple[str, ...] | None:
    """The headers aiohttp must not add to this request (those it does not carry; Content-Type
    only matters with a body), or None when there are none: aiohttp then skips its per-request
    bookkeeping of skipped headers, which costs more than the request's other header work."""
    present = {name.lower() for name, _ in headers}
    if not body:
        present.add("content-type")
    missing = tuple(name for name in _NO_AUTO_HEADERS if name.lower() not in present)
    return missing or None


class PublicOnlyResolver(AbstractResolver):
    """Resolves with aiohttp's default resolver and refuses a name unless every address it
    resolves to may be connected to; an allowed host name is resolved as is."""

    def __init__(self, policy: AddressPolicy, inner: AbstractResolver | None = None) -> None:
        self._policy = policy
        self._inner = inner or aiohttp.ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if host == UNUSABLE_HOST:
            raise NotPublicAddress(
                "the account's server URL is not a valid http(s) URL: edit the account"
            )
        answers = await self._inner.resolve(host, port, family)
        if self._policy.is_allowed_host(host, port):
            return answers
        for answer in answers:
            if not self._policy.may_connect(answer["host"], port):
                raise NotPublicAddress(
                    f"{host} ({answer['host']}) is not a public address; nothing was sent"
                )
        return answers

    async def close(self) -> None:
        await self._inner.close()


def check_literal(policy: AddressPolicy, url: httpx.URL) -> None:
    """Refuse a URL whose host is an address (in any spelling) the policy does not allow; names
    are left to the resolver."""
    refusal = literal_refusal(policy, url.host, url.port or (443 if url.scheme == "https" else 80))
    if refusal is not None:
        raise NotPublicAddress(refusal)


@functools.lru_cache(maxsize=4096)  # per request otherwise; a few hosts recur endlessly
def literal_refusal(policy: AddressPolicy, host: str, port: int) -> str | None:
    if host == UNUSABLE_HOST:
        return "the account's server URL is not a valid http(s) URL: edit the account"
    if policy.is_allowed_host(host, port):
        return None
    literal = literal_address(host)
    if literal is not None and not policy.may_connect(literal, port):
        return f"{host} is not a public address; nothing was sent"
    return None


def httpx_error_class(kind: type[BaseException]) -> type[httpx.TransportError] | None:
    """The httpx error for an aiohttp one, or None for anything else (a bug: raised as is).
    Only what fails before the request is written may say "connect"."""
    if issubclass(kind, aiohttp.ConnectionTimeoutError):
        return httpx.ConnectTimeout
    if issubclass(kind, aiohttp.ClientConnectorError):  # DNS, refused, TLS handshake
        return httpx.ConnectError
    if issubclass(kind, aiohttp.InvalidURL | aiohttp.NonHttpUrlClientError):
        return httpx.UnsupportedProtocol
    if issubclass(kind, TimeoutError):  # a socket read timeout, or any other after sending
        return httpx.ReadTimeout
    if issubclass(kind, aiohttp.ServerDisconnectedError | aiohttp.ClientResponseError):
        return httpx.RemoteProtocolError
    if issubclass(kind, aiohttp.ClientError):  # payload, reset, OS errors after connecting
        return httpx.ReadError
    return None


@contextlib.contextmanager
def httpx_errors() -> Iterator[None]:
    try:
        yield
    except NotPublicAddress:
        raise
    except Exception as exc:
        mapped = httpx_error_class(type(exc))
        if mapped is None:
            raise
        raise mapped(safe_message(exc)) from exc


def safe_message(exc: Exception) -> str:
    """What went wrong without the URL: aiohttp puts the full URL in some messages, and a URL
    may carry a token in its path (Telegram, Discord)."""
    if isinstance(exc, aiohttp.ClientConnectorError):
        with contextlib.suppress(AttributeError):
            reason = exc.os_error.strerror or type(exc.os_error).__name__
            return f"cannot connect to {exc.host}:{exc.port}: {reason}"
    return type(exc).__name__


@dataclass(frozen=True, slots=True)
class Answer:
    """A response read whole: what `read_whole` returns."""

    status: int
    raw_headers: tuple[tuple[bytes, bytes], ...]
    content: bytes
    extensions: dict[str, Any]


def wire_url(url: httpx.URL) -> yarl.URL:
    return yarl.URL(str(url), encoded=True)  # as httpx encoded it


@functools.lru_cache(maxsize=64)  # the same few timeouts on every request
def client_timeout(
    connect: float | None, pool: float | None, read: float | None
) -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(
        total=None,
        sock_connect=connect,
        connect=None if connect is None or pool is None else connect + pool,
        sock_read=read,
    )


def _extensions(response: aiohttp.ClientResponse) -> dict[str, Any]:
    extensions: dict[str, Any] = {"http_version": b"HTTP/1.1"}
    if response.reason:
        extensions["reason_phrase"] = response.reason.encode()
    return extensions


class _Body(httpx.AsyncByteStream):
    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with httpx_errors():
            async for chunk in self._response.content.iter_any():
                yield chunk

    async def aclose(self) -> None:
        self._response.release()  # keeps the connection only when the body was read whole


class PublicOnlyAiohttpTransport(httpx.AsyncBaseTransport):
    """An httpx transport over one aiohttp session, opened on first use (aiohttp binds it to the
    running event loop) and closed by `aclose`."""

    def __init__(
        self,
        policy: AddressPolicy,
        *,
        limits: httpx.Limits,
        dns_cache_seconds: float = 10.0,
    ) -> None:
        self._policy = policy
        self._limits = limits
        self._dns_cache_seconds = dns_cache_seconds
        self._ssl = httpx.create_ssl_context(trust_env=False)
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=self._limits.max_connections or 0,
            limit_per_host=0,
            keepalive_timeout=self._limits.keepalive_expiry or 0,
            ssl=self._ssl,
            resolver=PublicOnlyResolver(self._policy),
            ttl_dns_cache=int(self._dns_cache_seconds),
        )
        return aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),  # none kept here (nor by PublishingClient)
            auto_decompress=False,  # httpx decodes
            trust_env=False,  # no environment proxies, no .netrc
            timeout=aiohttp.ClientTimeout(total=None),
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        headers = [  # httpx's raw headers: decoding them through `multi_items` costs more
            (k.decode("latin-1"), v.decode("latin-1"))
            for k, v in request.headers.raw
            if k.lower() != b"transfer-encoding"
        ]
        response = await self._send(
            request.method,
            request.url,
            wire_url(request.url),
            headers,
            await request.aread(),
            request.extensions.get("timeout", {}),
            server_hostname=request.extensions.get("sni_hostname"),
        )
        return httpx.Response(
            status_code=response.status,
            headers=response.raw_headers,
            stream=_Body(response),
            request=request,
            extensions=_extensions(response),
        )

    async def read_whole(
        self,
        method: str,
        url: httpx.URL,
        wire: yarl.URL,
        headers: list[tuple[str, str]],
        body: bytes | None,
        timeouts: Mapping[str, float | None],
    ) -> Answer:
        """One request without httpx's request and streaming machinery (the publishing client's
        common calls): the same checks, timeouts and error mapping as `handle_async_request`,
        the body read whole, the connection back in the pool."""
        response = await self._send(method, url, wire, headers, body, timeouts)
        with httpx_errors():
            try:
                content = await response.read()
            finally:
                response.release()
        return Answer(response.status, response.raw_headers, content, _extensions(response))

    async def _send(
        self,
        method: str,
        url: httpx.URL,
        wire: yarl.URL,
        headers: list[tuple[str, str]],
        body: bytes | None,
        timeouts: Mapping[str, float | None],
        *,
        server_hostname: str | None = None,
    ) -> aiohttp.ClientResponse:
        check_literal(self._policy, url)
        if self._session is None:
            self._session = self._open()
        with httpx_errors():
            return await self._session.request(
                method,
                wire,
                headers=headers,
                data=body or None,
                skip_auto_headers=unwanted_auto_headers(headers, body=bool(body)),
                allow_redirects=False,  # httpx follows them, each hop through here
                server_hostname=server_hostname,
                timeout=client_timeout(
                    timeouts.get("connect"), timeouts.get("pool"), timeouts.get("read")
                ),
            )

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()
