"""The publishing client's aiohttp transport against a real local server whose every answer the
test chooses (hold it, hang up, redirect, stream a big body): addresses are checked at the
socket and on every redirect hop, timeouts apply, errors say whether the request left, bodies
stream under the media fetcher's cap, nothing comes from the environment."""

from __future__ import annotations

import asyncio
import inspect
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import aiohttp.client_exceptions
import httpx
import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from postpilot.publishers.addresses import AddressPolicy
from postpilot.publishers.client import PublishingClient, parsed_url
from postpilot.publishers.errors import transport_outcome
from postpilot.publishers.media import MediaError, MediaFetcher
from postpilot.publishers.simple import ReadResponse
from postpilot.publishers.transport import NotPublicAddress
from postpilot.publishers.transport_aiohttp import (
    PublicOnlyAiohttpTransport,
    PublicOnlyResolver,
    httpx_error_class,
)
from postpilot.sandbox.images import png
from tests.waiting import wait_until

IMAGE = png(8, 8)
Answer = Callable[[asyncio.StreamWriter], Awaitable[None]]


def plain(status: int, body: bytes, *headers: str, content_type: str = "text/plain") -> bytes:
    head = [f"HTTP/1.1 {status} X", f"Content-Type: {content_type}", *headers]
    head.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


@dataclass
class Server:
    """HTTP/1.1 on 127.0.0.1: each request's path picks its answer; requests and connections
    are counted."""

    answers: dict[str, Answer]
    paths: list[str] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)
    connections: int = 0
    port: int = 0

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                lines = head.decode().split("\r\n")
                path = lines[0].split(" ")[1]
                fields = {
                    k.strip().lower(): v.strip()
                    for k, _, v in (line.partition(":") for line in lines[1:] if line)
                }
                body = await reader.readexactly(int(fields.get("content-length", "0")))
                self.paths.append(path)
                self.bodies.append(body)
                self.headers.append(fields)
                await self.answers.get(path, send(plain(404, b"none")))(writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


def send(raw: bytes) -> Answer:
    async def answer(writer: asyncio.StreamWriter) -> None:
        writer.write(raw)
        await writer.drain()

    return answer


async def hang_up(writer: asyncio.StreamWriter) -> None:
    writer.transport.abort()


def hold(released: asyncio.Event) -> Answer:
    async def answer(writer: asyncio.StreamWriter) -> None:
        await released.wait()

    return answer


async def chunked_image(writer: asyncio.StreamWriter) -> None:
    """300 KiB of "image" without a Content-Length, in 16 KiB chunks."""
    writer.write(
        b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    chunk = b"\0" * 16384
    for _ in range(20):
        writer.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        await writer.drain()
    writer.write(b"0\r\n\r\n")


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    released = asyncio.Event()
    state = Server({})
    state.answers = {
        "/ok": send(plain(200, b'{"ok": true}', content_type="application/json")),
        "/hang-up": hang_up,
        "/hold": hold(released),
        "/image.png": send(plain(200, IMAGE, content_type="image/png")),
        "/big.png": chunked_image,
        "/cookie": send(plain(200, b"", "Set-Cookie: session=tenant-a")),
    }
    listener = await asyncio.start_server(state.serve, "127.0.0.1", 0)
    state.port = listener.sockets[0].getsockname()[1]
    async with listener:
        yield state
        released.set()


# Each test runs through httpx's own client (every call through httpx's machinery down to the
# transport) and through the publishing client (its simple calls skip to `read_whole`).
CLIENTS: dict[str, type[httpx.AsyncClient]] = {
    "httpx": httpx.AsyncClient,
    "publishing": PublishingClient,
}


@pytest.fixture(params=sorted(CLIENTS))
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def client(
    kind: str, *allowed: str, timeout: float | httpx.Timeout = 5.0, connections: int = 10
) -> httpx.AsyncClient:
    transport = PublicOnlyAiohttpTransport(
        AddressPolicy.allowing(*allowed),
        limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
    )
    return CLIENTS[kind](transport=transport, timeout=timeout)


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "localhost", "2130706433", "0x7f.1", "[::ffff:127.0.0.1]", "127.1"],
)
async def test_private_addresses_are_refused_before_anything_is_sent(
    kind: str, server: Server, host: str
) -> None:
    async with client(kind) as http:
        with pytest.raises(NotPublicAddress, match="not a public address") as caught:
            await http.post(server.url("/ok", host), json={"secret": "tenant-token"})
    assert server.connections == 0
    outcome = transport_outcome(caught.value, "publish")
    assert type(outcome).__name__ == "Permanent"


async def test_an_allowed_host_is_reached_and_connections_are_kept(
    kind: str, server: Server
) -> None:
    async with client(kind, f"127.0.0.1:{server.port}") as http:
        answers = await asyncio.gather(*(http.get(server.url("/ok")) for _ in range(30)))
        for _ in range(5):
            await http.get(server.url("/ok"))
    assert {a.status_code for a in answers} == {200} and answers[0].json() == {"ok": True}
    assert len(server.paths) == 35
    assert server.connections <= 10  # the pool's limit, and reused afterwards


async def test_every_redirect_hop_is_checked_again(kind: str, server: Server) -> None:
    """The first hop is allowed; the one it redirects to (another port, by name) is not."""
    server.answers["/away"] = send(plain(302, b"", "Location: http://localhost:1/admin"))
    server.answers["/here"] = send(plain(302, b"", "Location: /ok"))
    async with client(kind, f"127.0.0.1:{server.port}") as http:
        with pytest.raises(NotPublicAddress):
            await http.get(server.url("/away"), follow_redirects=True)
        followed = await http.get(server.url("/here"), follow_redirects=True)
    assert followed.status_code == 200 and server.paths == ["/away", "/here", "/ok"]


async def test_a_held_answer_ends_in_a_read_timeout_that_may_have_been_sent(
    kind: str,
    server: Server,
) -> None:
    async with client(kind, "127.0.0.1", timeout=0.3) as http:
        with pytest.raises(httpx.ReadTimeout) as caught:
            await http.post(server.url("/hold"), json={"status": "hi"})
    assert server.paths == ["/hold"]
    assert type(transport_outcome(caught.value, "publish")).__name__ == "Ambiguous"


async def test_a_server_that_hangs_up_after_the_request_is_not_called_unsent(
    kind: str,
    server: Server,
) -> None:
    """httpx_aiohttp's own table would say ConnectTimeout here, and a publisher would send the
    post again."""
    async with client(kind, "127.0.0.1") as http:
        with pytest.raises(httpx.TransportError) as caught:
            await http.post(server.url("/hang-up"), json={"status": "hi"})
    assert server.paths == ["/hang-up"]
    assert not isinstance(caught.value, httpx.ConnectError | httpx.ConnectTimeout)
    assert type(transport_outcome(caught.value, "publish")).__name__ == "Ambiguous"


async def test_a_refused_connection_is_a_connect_error(kind: str, server: Server) -> None:
    probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = probe.sockets[0].getsockname()[1]
    probe.close()
    await probe.wait_closed()
    async with client(kind, "127.0.0.1") as http:
        with pytest.raises(httpx.ConnectError) as caught:
            await http.get(f"http://127.0.0.1:{port}/")
    assert type(transport_outcome(caught.value, "publish")).__name__ == "Transient"


async def test_the_shortcut_puts_the_same_request_on_the_wire_as_httpx(server: Server) -> None:
    calls: list[tuple[str, dict[str, Any]]] = [
        ("POST", {"json": {"status": "héllo", "visibility": "public"}}),
        ("POST", {"data": {"chat_id": "-100", "text": "a&b", "disable_notification": True}}),
        ("PUT", {"content": b"\x89PNG", "headers": {"Content-Type": "image/png"}}),
        ("POST", {"content": b"no type said"}),  # and aiohttp adds none
        ("POST", {"headers": {"Authorization": "Bearer t", "User-Agent": "theirs"}}),
        ("GET", {}),
    ]
    for kind in sorted(CLIENTS):
        async with client(kind, "127.0.0.1") as http:
            http.headers["User-Agent"] = "postpilot/test"
            for method, call in calls:
                answer = await http.request(method, server.url("/ok"), **call)
                assert answer.json() == {"ok": True}
                assert isinstance(answer, ReadResponse) == (kind == "publishing")
    half = len(calls)
    assert "content-type" not in server.headers[3]
    assert server.bodies[:half] == server.bodies[half:]
    assert server.headers[:half] == server.headers[half:]


def test_every_aiohttp_client_error_maps_to_an_httpx_transport_error() -> None:
    classes = [
        cls
        for _, cls in inspect.getmembers(aiohttp.client_exceptions, inspect.isclass)
        if issubclass(cls, aiohttp.ClientError) and not cls.__name__.startswith("WS")
    ]
    assert len(classes) > 20
    before = aiohttp.ClientConnectorError | aiohttp.ConnectionTimeoutError
    for cls in classes:
        mapped = httpx_error_class(cls)
        assert mapped is not None and issubclass(mapped, httpx.TransportError), cls
        unsent = issubclass(mapped, httpx.ConnectError | httpx.ConnectTimeout)
        assert unsent == issubclass(cls, before), cls


async def test_the_media_fetcher_streams_through_it_under_its_cap(
    kind: str, server: Server
) -> None:
    async with client(kind, "127.0.0.1") as http:
        fetcher = MediaFetcher(http, max_bytes=100 * 1024, allowed_hosts=frozenset({"127.0.0.1"}))
        media = await fetcher.fetch(server.url("/image.png"))
        with pytest.raises(MediaError, match="larger than the 100 KiB limit"):
            await fetcher.fetch(server.url("/big.png"))
        public = MediaFetcher(http, max_bytes=100 * 1024)
        with pytest.raises(MediaError, match="not a public address"):
            await public.fetch(server.url("/image.png", "localhost"))
    assert media.content == IMAGE
    assert server.paths == ["/image.png", "/big.png"]


async def test_no_cookie_and_no_environment_proxy_is_used(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("ALL_PROXY", "http://127.0.0.1:9")
    transport = PublicOnlyAiohttpTransport(
        AddressPolicy.allowing("127.0.0.1"), limits=httpx.Limits(max_connections=4)
    )
    async with PublishingClient(transport=transport) as http:
        await http.get(server.url("/cookie"))  # one account's answer sets a cookie...
        await http.get(server.url("/ok"), headers={"User-Agent": "postpilot/test"})
    await wait_until(lambda: len(server.headers) == 2, timeout=5)
    assert "cookie" not in server.headers[1]
    assert server.headers[1]["user-agent"] == "postpilot/test"
    assert "content-type" not in server.headers[1]  # nothing aiohttp would add on its own


def test_the_publishing_client_parses_a_url_once_and_takes_no_cookies() -> None:
    http = PublishingClient()
    url = "https://example.social/api/v1/statuses"
    first = http.build_request("POST", url, json={"status": "one"})
    hits = parsed_url.cache_info().hits
    second = http.build_request("POST", url, json={"status": "two"})
    assert parsed_url.cache_info().hits == hits + 1, "parsed once, then taken as parsed"
    assert first.url == second.url == httpx.URL(url) and first.content != second.content
    http.cookies.set("session", "account-a")  # httpx's own API: still nothing kept
    assert not http.cookies and "cookie" not in http.build_request("GET", url).headers
    with pytest.raises(ValueError, match="keeps no cookies"):
        PublishingClient(cookies={"session": "x"})


class ScriptedResolver(AbstractResolver):
    """What a DNS server answers, decided by the test (a rebinding one answers differently)."""

    def __init__(self, *answers: list[str]) -> None:
        self.answers = list(answers)

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            ResolveResult(hostname=host, host=address, port=port, family=family, proto=0, flags=0)
            for address in self.answers.pop(0)
        ]

    async def close(self) -> None:
        pass


async def test_a_name_is_refused_if_any_address_is_private_and_only_checked_ones_are_used() -> None:
    dns = ScriptedResolver(["93.184.215.14", "10.0.0.5"], ["93.184.215.14"], ["127.0.0.1"])
    resolver = PublicOnlyResolver(AddressPolicy(), dns)
    with pytest.raises(NotPublicAddress, match=r"10\.0\.0\.5"):
        await resolver.resolve("mixed.example", 443)
    answer = await resolver.resolve("cdn.example", 443)
    assert [a["host"] for a in answer] == ["93.184.215.14"]  # what aiohttp connects to
    with pytest.raises(NotPublicAddress, match=r"rebound\.example"):
        await resolver.resolve("rebound.example", 443)


async def test_errors_do_not_carry_the_url_and_its_token(kind: str, server: Server) -> None:
    server.answers["/bot123:SECRET/sendMessage"] = send(b"NOT HTTP AT ALL\r\n\r\n")
    async with client(kind, "127.0.0.1") as http:
        with pytest.raises(httpx.TransportError) as garbled:
            await http.post(server.url("/bot123:SECRET/sendMessage"), json={"text": "hi"})
        with pytest.raises(httpx.ConnectError) as refused:
            await http.get("http://127.0.0.1:1/bot123:SECRET/getMe")
    assert isinstance(garbled.value, httpx.RemoteProtocolError)
    for error in (garbled.value, refused.value):
        assert "SECRET" not in str(error) and "bot123" not in str(error), error
    assert "127.0.0.1:1" in str(refused.value)


async def test_waiting_for_a_connection_past_the_pool_timeout_is_a_connect_timeout(
    kind: str,
    server: Server,
) -> None:
    """One connection, held by a slow answer: the next request waits for it no longer than
    httpx's pool (+ connect) timeout, and was never sent."""
    timeout = httpx.Timeout(5.0, pool=0.2, connect=0.1)
    async with client(kind, "127.0.0.1", timeout=timeout, connections=1) as http:
        held = asyncio.create_task(http.get(server.url("/hold")))
        await wait_until(lambda: server.paths == ["/hold"], timeout=5)
        with pytest.raises(httpx.ConnectTimeout) as caught:
            await http.post(server.url("/ok"), json={"status": "hi"})
        held.cancel()
    assert server.paths == ["/hold"]
    assert type(transport_outcome(caught.value, "publish")).__name__ == "Transient"
