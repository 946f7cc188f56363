"""The publishing client's shortcut for simple calls, kept pure: a body and headers encoded byte for
byte as httpx encodes them (tests/unit/test_simple_requests.py compares the two), and the answer
turned into an `httpx.Response` that reads like one httpx made.

A simple call has a JSON, form (a mapping of plain values) or bytes/str body, or none, and
headers as a mapping of strings; anything else is not simple (`encode` returns None) and goes
through httpx itself."""

from __future__ import annotations

import json as jsonlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import httpx
import yarl

from postpilot.publishers.transport_aiohttp import Answer

_FORM_VALUES = (str, int, float, bool, type(None))
_SAYS_LENGTH = ("POST", "PUT", "PATCH")


@dataclass(frozen=True, slots=True)
class Target:
    """A URL string parsed once: httpx's form (checks, errors), aiohttp's, the Host header."""

    url: httpx.URL
    wire: yarl.URL
    host_header: str


@dataclass(frozen=True, slots=True)
class Encoded:
    body: bytes | None
    content_type: str | None
    headers: Mapping[str, str]


def encode(*, content: Any, data: Any, json: Any, headers: Any) -> Encoded | None:
    """The body and its content type as httpx would send them, or None when the call is not
    simple."""
    if headers is None:
        headers = {}
    elif not isinstance(headers, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
    ):
        return None
    given = sum(value is not None for value in (content, data, json))
    if given == 0:
        return Encoded(None, None, headers)
    if given > 1:
        return None
    if json is not None:
        body = jsonlib.dumps(json, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        return Encoded(body.encode("utf-8"), "application/json", headers)
    if data is not None:
        form = _form(data)
        if form is None:
            return None
        return Encoded(form, "application/x-www-form-urlencoded", headers)
    if isinstance(content, str):
        return Encoded(content.encode("utf-8"), None, headers)
    if isinstance(content, bytes):
        return Encoded(content, None, headers)
    return None  # a stream or an iterator: httpx sends it chunked


def _form(data: Any) -> bytes | None:
    if not isinstance(data, Mapping):
        return None
    pairs: list[tuple[str, str]] = []
    for key, value in data.items():
        values = value if isinstance(value, list | tuple) else (value,)
        if not isinstance(key, str) or not all(isinstance(v, _FORM_VALUES) for v in values):
            return None
        pairs.extend((key, _form_value(v)) for v in values)
    return urlencode(pairs, doseq=True).encode("utf-8")


def _form_value(value: str | int | float | bool | None) -> str:
    """As httpx writes a form value: booleans in JSON's spelling, None as empty."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return ""
    return str(value)


def merged_headers(
    method: str, defaults: httpx.Headers, encoded: Encoded, host_header: str
) -> list[tuple[str, str]]:
    """The client's headers, replaced by the call's of the same name, then Host, Content-Length
    and Content-Type unless the call set them (httpx's order of precedence; a bodiless POST,
    PUT or PATCH says Content-Length: 0)."""
    merged: dict[str, tuple[str, str]] = {
        name.lower(): (name, value) for name, value in defaults.items()
    }
    for name, value in encoded.headers.items():
        merged[name.lower()] = (name, value)
    merged.setdefault("host", ("Host", host_header))
    if encoded.body is not None:
        merged.setdefault("content-length", ("Content-Length", str(len(encoded.body))))
        if encoded.content_type is not None:
            merged.setdefault("content-type", ("Content-Type", encoded.content_type))
    elif method in _SAYS_LENGTH:
        merged.setdefault("content-length", ("Content-Length", "0"))
    return list(merged.values())


def read_response(
    answer: Answer,
    method: str,
    url: httpx.URL,
    sent_headers: list[tuple[str, str]],
    elapsed_seconds: float,
) -> httpx.Response:
    """An httpx.Response of a body read whole. An encoded body (gzip, br, ...) is decoded by
    httpx's own decoders; a plain one is taken as it is."""
    encoding = next(
        (v for k, v in answer.raw_headers if k.lower() == b"content-encoding"), b"identity"
    )
    if encoding.strip().lower() != b"identity":
        request = httpx.Request(method, url, headers=sent_headers)
        response = httpx.Response(
            answer.status,
            headers=answer.raw_headers,
            stream=httpx.ByteStream(answer.content),
            request=request,
            extensions=answer.extensions,
        )
        response.read()
        return response
    return ReadResponse(answer, method, url, sent_headers, elapsed_seconds)


class ReadResponse(httpx.Response):
    """A response whose body is already here: built without httpx's stream reading, with its
    request (no body) made only if someone asks for it (`raise_for_status` does)."""

    def __init__(
        self,
        answer: Answer,
        method: str,
        url: httpx.URL,
        sent_headers: list[tuple[str, str]],
        elapsed_seconds: float,
    ) -> None:
        super().__init__(
            answer.status,
            headers=answer.raw_headers,
            stream=httpx.ByteStream(answer.content),
            extensions=answer.extensions,
        )
        self._method = method
        self._url = url
        self._sent_headers = sent_headers
        # What httpx's own reading and closing leave behind (`aread`, `aclose`).
        self._content = answer.content
        self._num_bytes_downloaded = len(answer.content)
        self._elapsed = timedelta(seconds=elapsed_seconds)
        self.is_stream_consumed = True
        self.is_closed = True

    @property
    def request(self) -> httpx.Request:
        if self._request is None:
            self._request = httpx.Request(self._method, self._url, headers=self._sent_headers)
        return self._request

    @request.setter
    def request(self, value: httpx.Request) -> None:
        self._request = value

    def raise_for_status(self) -> httpx.Response:
        _ = self.request  # httpx reads the attribute itself here: make the request first
        return super().raise_for_status()
