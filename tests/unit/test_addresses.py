"""Which addresses tenant URLs may reach, and how account URLs are checked and rebuilt: pure
functions, no DNS, no sockets."""

from __future__ import annotations

import pytest

from postpilot.publishers import urls
from postpilot.publishers.addresses import (
    AddressPolicy,
    is_public_address,
    literal_address,
)

PUBLIC = (
    "93.184.216.34",
    "8.8.8.8",
    "1.1.1.1",
    "2606:2800:220:1:248:1893:25c8:1946",
    "2a00:1450:4007:80e::200e",
    "64:ff9b::808:808",  # NAT64 of 8.8.8.8: what DNS64 answers on IPv6-only networks
    "2002:808:808::1",  # 6to4 of 8.8.8.8
    "::ffff:8.8.8.8",
)

NOT_PUBLIC = (
    # IPv4
    "127.0.0.1",
    "127.255.255.254",
    "10.1.2.3",
    "172.16.0.1",
    "192.168.0.1",
    "169.254.169.254",  # cloud metadata
    "100.64.0.1",  # carrier-grade NAT
    "0.0.0.0",
    "0.1.2.3",
    "192.0.0.8",
    "192.0.2.1",
    "198.18.0.1",
    "224.0.0.1",
    "239.255.255.250",
    "240.0.0.1",
    "255.255.255.255",
    # IPv6
    "::1",
    "::",
    "fe80::1",
    "fe80::1%1",
    "fc00::1",
    "fd12:3456::1",
    "ff02::1",
    "2001:db8::1",
    "2001::1",  # Teredo
    # IPv4 embedded in IPv6
    "::ffff:127.0.0.1",  # mapped
    "::ffff:10.0.0.1",
    "::7f00:1",  # IPv4-compatible 127.0.0.1
    "::127.0.0.1",
    "::a9fe:a9fe",  # IPv4-compatible 169.254.169.254
    "::ffff:0:7f00:1",  # IPv4-translated 127.0.0.1
    "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
    "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
    "64:ff9b::a9fe:a9fe",  # NAT64 of the metadata service
    "64:ff9b:1::a00:1",  # local-use NAT64
    "2002:7f00:1::1",  # 6to4 of 127.0.0.1
    "2002:c0a8:1::1",  # 6to4 of 192.168.0.1
    "2002:a9fe:a9fe::",  # 6to4 of the metadata service
)


@pytest.mark.parametrize("address", PUBLIC)
def test_public(address: str) -> None:
    assert is_public_address(address)


@pytest.mark.parametrize("address", NOT_PUBLIC)
def test_not_public(address: str) -> None:
    assert not is_public_address(address)


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("2130706433", "127.0.0.1"),  # decimal
        ("0177.0.0.1", "127.0.0.1"),  # octal
        ("0x7f.0.0.1", "127.0.0.1"),  # hex
        ("0x7f.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("017700000001", "127.0.0.1"),
        ("127.0.0.1.", "127.0.0.1"),
        ("[::1]", "::1"),
        ("[::ffff:127.0.0.1]", "::ffff:7f00:1"),
        ("example.com", None),
        ("0x7f.example", None),
        ("localhost", None),
    ],
)
def test_literal_spellings(host: str, address: str | None) -> None:
    found = literal_address(host)
    assert (str(found) if found is not None else None) == address


def test_allow_list_by_host_and_port() -> None:
    policy = AddressPolicy.allowing("127.0.0.1:8765", "matrix.internal", "[::1]:8008", " ")
    assert policy.is_allowed_host("127.0.0.1", 8765)
    assert not policy.is_allowed_host("127.0.0.1", 6379)
    assert policy.is_allowed_host("MATRIX.internal.", 443)
    assert policy.is_allowed_host("::1", 8008) and policy.is_allowed_host("[::1]", 8008)
    assert not policy.is_allowed_host("::1", 22)
    assert policy.may_connect("127.0.0.1", 8765) and not policy.may_connect("127.0.0.1", 80)
    assert policy.may_connect("8.8.8.8", 80)
    assert policy.refusal("2130706433", 8765) is None  # the same address, spelled otherwise
    assert policy.refusal("127.0.0.1", 6379) == "127.0.0.1 is not a public address"
    assert policy.refusal("localhost", 80) == "localhost is not a public address"
    assert policy.refusal("api.localhost", 80) is not None
    assert policy.refusal("example.com", 80) is None  # names are checked when connecting


@pytest.mark.parametrize(
    ("value", "normalised"),
    [
        ("https://mastodon.social", "https://mastodon.social"),
        ("https://Mastodon.Social/", "https://mastodon.social"),
        ("http://matrix.example.org:8008/", "http://matrix.example.org:8008"),
        ("https://example.com/prefix/api/", "https://example.com/prefix/api"),
        ("https://[2606:2800::1]:8443", "https://[2606:2800::1]:8443"),
    ],
)
def test_account_urls_are_normalised(value: str, normalised: str) -> None:
    assert urls.account_base_url(value) == normalised


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("ftp://example.com", "only http and https"),
        ("javascript:alert(1)", "only http and https"),
        ("mastodon.social", "only http and https"),
        ("https://user:pw@example.com", "credentials"),
        ("https://@example.com", "credentials"),
        ("https://example.com/#", "query (?) or a fragment (#)"),
        ("https://example.com/x#y", "query (?) or a fragment (#)"),
        ("https://example.com/?x=", "query (?) or a fragment (#)"),
        ("https://example.com?", "query (?) or a fragment (#)"),
        ("https://example.com/a/../admin", ". or .. path segments"),
        ("https://example.com/a/%2e%2e/admin", ". or .. path segments"),
        ("https://example.com/./a", ". or .. path segments"),
        ("https://example.com/a%2Fb", "encoded slash"),
        ("https://example.com:99999", "not a valid URL"),
        ("https://example.com:0", "port 0"),
        ("http://[::1", "not a valid URL"),
        ("https://exa mple.com", "space or a control character"),
        ("https://example.com/\x00", "space or a control character"),
        ("https://example.com\\@evil.com", "backslash"),
        ("https://", "no host"),
    ],
)
def test_account_urls_that_are_refused(value: str, reason: str) -> None:
    with pytest.raises(urls.UnusableUrl) as caught:
        urls.account_base_url(value)
    assert reason in str(caught.value)


@pytest.mark.parametrize(
    "stored",
    [
        "https://evil.example/#",
        "https://evil.example/steal?x=",
        "https://evil.example/a/../../b",
        "http://evil.example:99999",
        "http://[::1",
        "gopher://evil.example",
    ],
)
def test_a_stored_base_that_could_change_the_path_goes_nowhere(stored: str) -> None:
    """Rows saved before URLs were checked: the API path cannot be redirected at publish time."""
    assert urls.api_base(stored) == urls.UNUSABLE_BASE


def test_api_base_keeps_a_good_base_and_an_empty_one() -> None:
    assert urls.api_base("https://pds.example.com/") == "https://pds.example.com"
    assert urls.api_base("") == ""


@pytest.mark.parametrize(
    ("value", "escaped"),
    [
        ("123456:ABC-def_9", "123456:ABC-def_9"),  # a Telegram bot token stays readable
        ("!room:example.org", "%21room:example.org"),
        ("a/../b", "a%2F..%2Fb"),
        ("..", "%2E%2E"),
        (".", "%2E"),
        ("x?y#z", "x%3Fy%23z"),
        (12345, "12345"),
    ],
)
def test_path_segments_cannot_add_structure(value: object, escaped: str) -> None:
    assert urls.segment(value) == escaped


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/a.png",
        "http://2130706433/a.png",
        "http://[::ffff:127.0.0.1]/a.png",
        "http://169.254.169.254/latest",
        "http://localhost:8080/a.png",
        "http://[64:ff9b::a00:1]/a.png",
    ],
)
def test_media_urls_naming_a_private_address_are_refused_without_dns(url: str) -> None:
    with pytest.raises(urls.UnusableUrl, match="not a public address"):
        urls.check_media_url(url, AddressPolicy())


def test_media_urls_of_an_allowed_host_and_of_names_pass() -> None:
    urls.check_media_url("http://127.0.0.1:8765/a.png", AddressPolicy.allowing("127.0.0.1:8765"))
    urls.check_media_url("https://cdn.example.com/a.png?size=2#x", AddressPolicy())
