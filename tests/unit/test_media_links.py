"""Signed media links on their own: a link is good until it expires, for its media only, under
any key SECRET_KEY lists (rotation); which PUBLIC_BASE_URLs a platform could not reach."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from postpilot import crypto
from postpilot.media import links

NOW = datetime(2027, 3, 1, 12, tzinfo=UTC)
MEDIA = "0b6f2a1e-8c1d-4c53-9a7e-3f2d5b1c9e10"


def token_of(url: str) -> str:
    return url.rsplit("/", 1)[1]


def test_a_link_is_good_until_it_expires_and_for_its_media_only() -> None:
    signer = links.MediaLinks("key-one", "https://pp.example.com", timedelta(hours=1))
    url = signer.url(MEDIA, NOW)
    assert url.startswith(f"https://pp.example.com/media/{MEDIA}/")
    token = token_of(url)
    assert signer.seconds_left(MEDIA, token, NOW) == 3600
    assert signer.seconds_left(MEDIA, token, NOW + timedelta(minutes=59)) == 60
    assert signer.seconds_left(MEDIA, token, NOW + timedelta(hours=1)) is None
    assert signer.seconds_left(MEDIA.replace("0b", "0c"), token, NOW) is None
    assert signer.seconds_left(MEDIA, token.replace(".", ".x"), NOW) is None
    assert signer.seconds_left(MEDIA, "", NOW) is None
    assert signer.seconds_left(MEDIA, "x" * 200, NOW) is None


def test_links_survive_a_key_rotation_while_the_old_key_is_listed() -> None:
    old = links.MediaLinks("key-one", "https://pp.example.com")
    token = token_of(old.url(MEDIA, NOW))
    rotated = links.MediaLinks("key-two,key-one", "https://pp.example.com")
    assert rotated.seconds_left(MEDIA, token, NOW) is not None
    assert (
        links.MediaLinks("key-two", "https://pp.example.com").seconds_left(MEDIA, token, NOW)
        is None
    )


def test_a_signature_is_for_one_purpose() -> None:
    signature = crypto.sign("key", "media-link", "message")
    assert crypto.signed("key", "media-link", "message", signature)
    assert not crypto.signed("key", "another-purpose", "message", signature)


@pytest.mark.parametrize(
    ("base_url", "reachable"),
    [
        ("https://postpilot.example.com", True),
        ("https://203.0.113.7:8443", False),  # documentation range: not global
        ("https://8.8.8.8", True),
        ("http://127.0.0.1:8000", False),
        ("http://[::1]:8000", False),
        ("http://10.0.0.5", False),
        ("http://192.168.1.20:8000", False),
        ("http://localhost:8000", False),
        ("http://app.localhost", False),
        ("http://postpilot.internal", False),
        ("http://postpilot", False),
    ],
)
def test_which_public_base_urls_a_platform_could_reach(base_url: str, reachable: bool) -> None:
    assert (links.unreachable_reason(base_url) is None) is reachable, base_url
