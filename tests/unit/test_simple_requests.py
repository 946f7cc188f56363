"""The publishing client's shortcut encodes a call byte for byte as httpx does (body, headers and
their precedence), declines what it does not handle, and answers with a response that reads
like httpx's own."""

from __future__ import annotations

import gzip
from typing import Any

import httpx
import pytest

from postpilot.publishers import simple
from postpilot.publishers.transport_aiohttp import Answer

URL = "https://social.example:8443/api/v1/statuses?x=1"
CLIENT_HEADERS = {"User-Agent": "postpilot/0.1"}

SIMPLE_CALLS: list[tuple[str, dict[str, Any]]] = [
    ("POST", {"json": {"status": "héllo 👋", "n": 1, "nested": {"a": [1, 2.5, None, True]}}}),
    (
        "POST",
        {"json": [1, "two"], "headers": {"Authorization": "Bearer t", "Idempotency-Key": "1"}},
    ),
    ("POST", {"data": {"chat_id": "-100", "text": "a&b=c ü", "silent": True, "n": 3, "x": None}}),
    ("POST", {"data": {"tags": ["a", "b"], "off": False}}),
    ("POST", {"content": b"\x89PNG...", "headers": {"Content-Type": "image/png"}}),
    ("PUT", {"content": "plain text"}),
    ("POST", {}),
    ("GET", {"headers": {"authorization": "Bearer t", "user-agent": "theirs"}}),
    ("DELETE", {}),
    ("POST", {"json": {"a": 1}, "headers": {"content-type": "application/json; charset=utf-8"}}),
]


def _httpx_request(method: str, call: dict[str, Any]) -> httpx.Request:
    client = httpx.Client(headers=CLIENT_HEADERS)
    return client.build_request(method, URL, **call)


def _ours(method: str, call: dict[str, Any]) -> tuple[list[tuple[str, str]], bytes]:
    encoded = simple.encode(
        content=call.get("content"),
        data=call.get("data"),
        json=call.get("json"),
        headers=call.get("headers"),
    )
    assert encoded is not None, "a simple call"
    defaults = httpx.Client(headers=CLIENT_HEADERS).headers
    url = httpx.URL(URL)
    headers = simple.merged_headers(method, defaults, encoded, url.netloc.decode("ascii"))
    return headers, encoded.body or b""


def _normalised(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return sorted((name.lower(), value) for name, value in headers)


@pytest.mark.parametrize(("method", "call"), SIMPLE_CALLS)
def test_a_simple_call_is_encoded_as_httpx_encodes_it(method: str, call: dict[str, Any]) -> None:
    theirs = _httpx_request(method, call)
    headers, body = _ours(method, call)
    assert body == theirs.read()
    assert _normalised(headers) == _normalised(
        [(k.decode(), v.decode()) for k, v in theirs.headers.raw]
    )


@pytest.mark.parametrize(
    "call",
    [
        {"json": {"a": 1}, "data": {"b": "2"}},
        {"data": {"nested": {"no": "dicts"}}},
        {"data": b"raw"},
        {"content": iter([b"chunked"])},
        {"headers": [("X-A", "1"), ("X-A", "2")]},
        {"headers": {"X-Bytes": b"1"}},
    ],
)
def test_anything_else_is_left_to_httpx(call: dict[str, Any]) -> None:
    assert (
        simple.encode(
            content=call.get("content"),
            data=call.get("data"),
            json=call.get("json"),
            headers=call.get("headers"),
        )
        is None
    )


def _answer(status: int, body: bytes, *headers: tuple[bytes, bytes]) -> Answer:
    return Answer(status, headers, body, {"http_version": b"HTTP/1.1", "reason_phrase": b"Why"})


def test_the_response_reads_like_httpx_own() -> None:
    body = b'{"id": "42", "text": "h\xc3\xa9"}'
    answer = _answer(429, body, (b"Content-Type", b"application/json"), (b"Retry-After", b"7"))
    sent = [("Host", "social.example:8443"), ("Authorization", "Bearer t")]
    response = simple.read_response(answer, "POST", httpx.URL(URL), sent, 0.02)

    assert response.status_code == 429 and response.reason_phrase == "Why"
    assert response.json() == {"id": "42", "text": "hé"}
    assert response.text == body.decode() and response.content == body
    assert response.headers["retry-after"] == "7"
    assert response.is_client_error and not response.is_success
    assert response.elapsed.total_seconds() == pytest.approx(0.02)
    assert response.is_closed and response.num_bytes_downloaded == len(body)
    with pytest.raises(httpx.HTTPStatusError) as raised:
        response.raise_for_status()  # needs the request: made when asked for
    assert raised.value.request.method == "POST" and raised.value.request.url == httpx.URL(URL)
    assert raised.value.request.headers["authorization"] == "Bearer t"


def test_an_encoded_body_is_decoded_by_httpx() -> None:
    body = b'{"ok": true}'
    answer = _answer(
        200, gzip.compress(body), (b"Content-Encoding", b"gzip"), (b"Content-Type", b"text/json")
    )
    response = simple.read_response(answer, "GET", httpx.URL(URL), [], 0.0)
    assert response.content == body and response.json() == {"ok": True}
