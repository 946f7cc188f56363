"""URLs from tenants, checked before they are stored and rebuilt before they are used: an account's
base URL can name a server but never change the path of an API call; a media URL must be one
that can be fetched at all. No DNS here (see `addresses` and `transport` for what happens at
connect time)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit

import httpx

from postpilot.errors import InvalidValue
from postpilot.publishers.addresses import AddressPolicy

# Where a publish goes when the stored base URL cannot be used at all (a row from before URLs
# were checked): `.invalid` never resolves (RFC 6761) and the guarded transport refuses it with
# a reason that says what to fix, inside the publisher's own error handling.
UNUSABLE_HOST = "unusable-account-url.invalid"
UNUSABLE_BASE = f"http://{UNUSABLE_HOST}"


class UnusableUrl(InvalidValue):
    """A URL postpilot will not use; the message says why, for the person who typed it."""


@dataclass(frozen=True, slots=True)
class HttpUrl:
    scheme: str
    host: str  # lower case; an IPv6 literal without brackets
    port: int | None  # as written; None for the scheme's default
    path: str
    query: str

    @property
    def effective_port(self) -> int:
        return self.port or (443 if self.scheme == "https" else 80)

    @property
    def origin(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}" if self.port else f"{self.scheme}://{host}"


def parse_http_url(url: str) -> HttpUrl:
    """The parts of an absolute http(s) URL without credentials, or `UnusableUrl`."""
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        raise UnusableUrl("contains a space or a control character")
    if "\\" in url:
        raise UnusableUrl("contains a backslash")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:  # "Invalid IPv6 URL", "Port out of range 0-65535", ...
        raise UnusableUrl(f"is not a valid URL ({exc})") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise UnusableUrl("only http and https URLs can be used")
    if "@" in parts.netloc:
        raise UnusableUrl("URLs with credentials are not allowed")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise UnusableUrl("the URL has no host")
    if port == 0:
        raise UnusableUrl("port 0 cannot be connected to")
    try:
        httpx.URL(url)  # what the client will parse: IDNA and the rest
    except Exception as exc:  # httpx.InvalidURL, idna.IDNAError (a ValueError), ...
        raise UnusableUrl(f"is not a valid URL ({type(exc).__name__})") from None
    return HttpUrl(parts.scheme.lower(), host.lower(), port, parts.path, parts.query)


def account_base_url(value: str) -> str:
    """An account's server URL (base_url, pds_url) in one spelling: http(s), a host, maybe a
    port and a path prefix; nothing that could redirect the API path appended to it."""
    url = parse_http_url(value)
    if "?" in value or "#" in value:
        raise UnusableUrl("must not have a query (?) or a fragment (#)")
    segments = url.path.split("/")
    if any(unquote(s) in (".", "..") for s in segments):
        raise UnusableUrl("must not contain . or .. path segments")
    if any("/" in unquote(s) for s in segments):
        raise UnusableUrl("must not contain an encoded slash (%2F)")
    return f"{url.origin}{url.path.rstrip('/')}"


@functools.lru_cache(maxsize=4096)  # called for every request; few distinct bases
def api_base(value: str) -> str:
    """The base of every API call, rebuilt from its parts at publish time too (rows stored
    before URLs were checked); an unusable one goes nowhere (`UNUSABLE_BASE`)."""
    if not value:
        return ""
    try:
        return account_base_url(value)
    except UnusableUrl:
        return UNUSABLE_BASE


def segment(value: object) -> str:
    """One path segment from a value we do not control (an id, a token): it can never add a
    segment, a query or a fragment, nor be a dot segment."""
    text = quote(str(value), safe=":")
    return text.replace(".", "%2E") if text in (".", "..") else text


def check_account_url(value: str, policy: AddressPolicy) -> str:
    """`account_base_url`, also refusing a host that is plainly private (an IP literal, or
    localhost) unless the operator allowed it. Names are checked when connecting."""
    normalised = account_base_url(value)
    url = parse_http_url(normalised)
    if reason := policy.refusal(url.host, url.effective_port):
        raise UnusableUrl(reason)
    return normalised


def check_media_url(value: str, policy: AddressPolicy) -> None:
    """A media URL that can be fetched at all: the same refusals, without DNS."""
    url = parse_http_url(value)
    if reason := policy.refusal(url.host, url.effective_port):
        raise UnusableUrl(reason)
