"""Signed, expiring links to library media, for the platforms that download an image from a
URL themselves (Facebook, Instagram, Threads, Slack): `{PUBLIC_BASE_URL}/media/{id}/{token}`.

The token is the expiry and an HMAC (keyed with SECRET_KEY) of the id and that expiry: it
cannot be guessed or moved to another media, and it stops working when it expires. A link is
made when a delivery is published, so it lives only as long as the platform needs it."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from postpilot import crypto
from postpilot.publishers.addresses import is_public_address
from postpilot.settings import Settings

PATH = "/media"
PURPOSE = "media-link"
# Slack shows the image from the URL long after the post, so the link outlives the publish.
LIFETIME = timedelta(days=7)
MAX_TOKEN = 100


@dataclass(frozen=True, slots=True)
class MediaLinks:
    secret_key: str
    base_url: str  # PUBLIC_BASE_URL, without a trailing slash
    lifetime: timedelta = LIFETIME

    def url(self, media_id: str, now: datetime) -> str:
        expires = int((now + self.lifetime).timestamp())
        return f"{self.base_url}{PATH}/{media_id}/{expires}.{self._sign(media_id, expires)}"

    def seconds_left(self, media_id: str, token: str, now: datetime) -> int | None:
        """How long the link's token is still good for; None when it is not a valid one."""
        expires_text, _, signature = token.partition(".")
        if len(token) > MAX_TOKEN or not expires_text.isdigit() or not signature:
            return None
        expires = int(expires_text)
        if not crypto.signed(self.secret_key, PURPOSE, f"{media_id}.{expires}", signature):
            return None
        left = expires - int(now.timestamp())
        return left if left > 0 else None

    def _sign(self, media_id: str, expires: int) -> str:
        return crypto.sign(self.secret_key, PURPOSE, f"{media_id}.{expires}")


def unreachable_reason(base_url: str) -> str | None:
    """Why a platform on the internet could not download from `base_url` (a loopback or private
    address, or a name only a local network knows), or None when it looks public."""
    host = (urlsplit(base_url).hostname or "").rstrip(".").lower()
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        local = host == "localhost" or "." not in host
        if local or host.endswith((".localhost", ".local", ".internal", ".lan", ".home.arpa")):
            return f"{host} is a local name"
        return None
    return None if is_public_address(str(address)) else f"{host} is not a public address"


def for_settings(settings: Settings) -> MediaLinks:
    if not settings.SECRET_KEY:
        raise ValueError("SECRET_KEY is not set")
    return MediaLinks(settings.SECRET_KEY, settings.PUBLIC_BASE_URL)
