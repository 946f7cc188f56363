"""The media fetcher against a real local HTTP server: what it refuses and why, in words a person
can act on."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from postpilot.publishers.media import MediaError, MediaFetcher, is_public_address, pinned
from postpilot.sandbox.images import png
from tests.waiting import wait_until

IMAGE = png(8, 8)


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        port = self.server.server_address[1]
        routes = {
            "/ok.png": (200, "image/png", IMAGE, {}),
            "/big.png": (200, "image/png", b"\x89PNG" + b"\0" * 200_000, {}),
            "/page": (200, "text/html", b"<html>not an image</html>", {}),
            "/missing.png": (404, "text/plain", b"gone", {}),
            "/to-loopback": (
                302,
                "text/plain",
                b"",
                {"Location": f"http://127.0.0.1:{port}/ok.png"},
            ),
            "/to-ok": (302, "text/plain", b"", {"Location": "/ok.png"}),
            "/loop": (302, "text/plain", b"", {"Location": "/loop"}),
        }
        status, content_type, body, headers = routes.get(self.path, (404, "text/plain", b"", {}))
        # Counted before answering: once the client has the answer, the hit is in the list.
        self.server.hits.append(self.path)  # type: ignore[attr-defined]
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[ThreadingHTTPServer]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.hits = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5) as client:
        yield client


def url(server: ThreadingHTTPServer, path: str, host: str = "127.0.0.1") -> str:
    return f"http://{host}:{server.server_address[1]}{path}"


def fetcher(http: httpx.AsyncClient, *allowed: str, max_bytes: int = 64 * 1024) -> MediaFetcher:
    return MediaFetcher(http, max_bytes=max_bytes, allowed_hosts=frozenset(allowed))


async def refused(fetch: MediaFetcher, address: str) -> MediaError:
    with pytest.raises(MediaError) as caught:
        await fetch.fetch(address)
    assert caught.value.url == address
    assert address in str(caught.value)
    return caught.value


async def test_allow_list_lets_the_sandbox_through(
    server: ThreadingHTTPServer, http: httpx.AsyncClient
) -> None:
    media = await fetcher(http, "127.0.0.1").fetch(url(server, "/ok.png"))
    assert media.content == IMAGE and media.content_type == "image/png"
    assert media.filename == "media.png"
    port = server.server_address[1]
    by_port = await fetcher(http, f"127.0.0.1:{port}").fetch(url(server, "/ok.png"))
    assert by_port.content == IMAGE


async def test_loopback_and_private_addresses_are_refused(
    server: ThreadingHTTPServer, http: httpx.AsyncClient
) -> None:
    before = len(server.hits)  # type: ignore[attr-defined]
    error = await refused(fetcher(http), url(server, "/ok.png"))
    assert "127.0.0.1" in error.reason and "not a public address" in error.reason
    error = await refused(fetcher(http), url(server, "/ok.png", host="localhost"))
    assert "not a public address" in error.reason
    for private in ("http://10.0.0.8/a.png", "http://169.254.169.254/latest/meta-data"):
        error = await refused(fetcher(http), private)
        assert "not a public address" in error.reason
    assert len(server.hits) == before  # type: ignore[attr-defined]  # nothing was requested


async def test_redirect_to_loopback_is_refused(
    server: ThreadingHTTPServer, http: httpx.AsyncClient
) -> None:
    """The first hop is allowed (by name); where it redirects is checked again."""
    fetch = fetcher(http, "localhost")
    error = await refused(fetch, url(server, "/to-loopback", host="localhost"))
    assert "127.0.0.1" in error.reason and "not a public address" in error.reason
    followed = await fetch.fetch(url(server, "/to-ok", host="localhost"))
    assert followed.content == IMAGE
    error = await refused(fetch, url(server, "/loop", host="localhost"))
    assert "redirects" in error.reason


async def test_too_big_wrong_type_and_missing(
    server: ThreadingHTTPServer, http: httpx.AsyncClient
) -> None:
    fetch = fetcher(http, "127.0.0.1", max_bytes=100_000)
    error = await refused(fetch, url(server, "/big.png"))
    assert "larger than the 97 KiB limit" in error.reason
    error = await refused(fetch, url(server, "/page"))
    assert "content type text/html is not an image" in error.reason
    error = await refused(fetch, url(server, "/missing.png"))
    assert "HTTP 404" in error.reason
    error = await refused(fetch, "http://127.0.0.1:9/nothing.png")
    assert "could not download it" in error.reason


async def test_only_http_and_https(http: httpx.AsyncClient) -> None:
    for address in ("file:///etc/passwd", "ftp://example.com/a.png", "gopher://x/"):
        error = await refused(fetcher(http), address)
        assert "only http and https" in error.reason
    error = await refused(fetcher(http), "http://user:pw@example.com/a.png")
    assert "credentials" in error.reason


async def test_downloaded_once_per_url(
    server: ThreadingHTTPServer, http: httpx.AsyncClient
) -> None:
    fetch = fetcher(http, "127.0.0.1")
    before = server.hits.count("/ok.png")  # type: ignore[attr-defined]
    for _ in range(3):
        await fetch.fetch(url(server, "/ok.png"))
    assert server.hits.count("/ok.png") == before + 1  # type: ignore[attr-defined]
    assert (fetch.hits, fetch.misses) == (2, 1)


def test_public_addresses() -> None:
    assert is_public_address("93.184.216.34")
    assert is_public_address("2606:2800:220:1:248:1893:25c8:1946")
    for address in (
        "127.0.0.1",
        "10.1.2.3",
        "192.168.0.1",
        "172.16.0.1",
        "169.254.169.254",
        "::1",
        "fe80::1",
        "fc00::1",
        "::ffff:127.0.0.1",
        "0.0.0.0",
        "224.0.0.1",
    ):
        assert not is_public_address(address), address


def test_connection_is_pinned_to_the_checked_address() -> None:
    target, headers, extensions = pinned("https://media.example.com/a/b.png?x=1", "93.184.216.34")
    assert target == "https://93.184.216.34/a/b.png?x=1"
    assert headers == {"Host": "media.example.com"}
    assert extensions == {"sni_hostname": "media.example.com"}
    target, headers, extensions = pinned("http://media.example.com:8080/a.png", "2606:2800::1")
    assert target == "http://[2606:2800::1]:8080/a.png"
    assert headers == {"Host": "media.example.com:8080"} and extensions == {}
    assert pinned("http://127.0.0.1:1/a.png", None) == ("http://127.0.0.1:1/a.png", {}, {})


MALFORMED = (
    "http://example.com:99999/a.png",  # urlsplit: port out of range (ValueError)
    "http://[::1/a.png",  # urlsplit: invalid IPv6 URL (ValueError)
    "http://example.com/\x00.png",  # httpx: non-printable character (InvalidURL)
    "http://exa\x00mple.com/a.png",
    "http://exa mple.com/a.png",  # a space in the host
)


@pytest.mark.parametrize("address", MALFORMED)
async def test_malformed_urls_answer_every_waiter(http: httpx.AsyncClient, address: str) -> None:
    """Many deliveries of a batch ask for the same malformed URL at once: each gets a
    MediaError, quickly; none waits for an answer that never comes."""
    fetch = fetcher(http)
    results = await asyncio.wait_for(
        asyncio.gather(*(fetch.fetch(address) for _ in range(5)), return_exceptions=True), 5
    )
    assert all(isinstance(r, MediaError) for r in results), results
    assert "\x00" not in str(results[0])  # storable as text everywhere


async def test_a_failure_past_the_checks_still_answers_every_waiter(
    server: ThreadingHTTPServer, http: httpx.AsyncClient
) -> None:
    """Any exception, not only the expected ones (here the client itself breaks), ends as a
    MediaError for the caller that downloads and for those that wait for it."""

    class Broken(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            await asyncio.sleep(0)  # fail after a checkpoint, as real I/O would
            raise RuntimeError("a bug below the fetcher")

    async with httpx.AsyncClient(transport=Broken()) as broken:
        fetch = fetcher(broken, "127.0.0.1")
        results = await asyncio.wait_for(
            asyncio.gather(
                *(fetch.fetch(url(server, "/ok.png")) for _ in range(4)), return_exceptions=True
            ),
            5,
        )
    assert all(isinstance(r, MediaError) for r in results), results
    assert all("could not download it (RuntimeError)" in str(r) for r in results)


async def test_cancelled_download_hands_over_to_a_waiter(
    server: ThreadingHTTPServer, http: httpx.AsyncClient
) -> None:
    """The delivery that started a download is cancelled: the ones waiting for the same URL
    fetch it themselves instead of waiting forever."""
    started = asyncio.Event()
    release = asyncio.Event()

    class Held(httpx.AsyncBaseTransport):
        def __init__(self) -> None:
            self.inner = httpx.AsyncHTTPTransport()

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            if not started.is_set():
                started.set()
                await release.wait()  # the first download never ends by itself
            return await self.inner.handle_async_request(request)

    async with httpx.AsyncClient(transport=Held()) as held:
        fetch = fetcher(held, "127.0.0.1")
        first = asyncio.create_task(fetch.fetch(url(server, "/ok.png")))
        await started.wait()
        waiter = asyncio.create_task(fetch.fetch(url(server, "/ok.png")))
        await wait_until(lambda: fetch.hits == 1, timeout=5, every=0)  # it waits on the first
        first.cancel()
        media = await asyncio.wait_for(waiter, 5)
    assert media.content == IMAGE
    assert first.cancelled()
