"""The client's address behind reverse proxies (core/proxies.py): X-Forwarded-For is read
only from a trusted proxy, from the right, and what a client wrote to its left is ignored."""

from __future__ import annotations

import pytest

from postpilot.core.proxies import client_address, parse_networks
from postpilot.settings import Settings

PROXIES = parse_networks("10.0.0.0/8, 192.0.2.1, 2001:db8::/32")


def test_a_direct_connection_is_its_own_address_whatever_it_claims() -> None:
    assert client_address("203.0.113.9", ["198.51.100.1"], PROXIES) == "203.0.113.9"
    assert client_address("203.0.113.9", ["198.51.100.1"], ()) == "203.0.113.9"


def test_a_trusted_proxy_names_the_client() -> None:
    assert client_address("192.0.2.1", ["198.51.100.7"], PROXIES) == "198.51.100.7"
    assert client_address("2001:db8::5", ["2001:db8::9, 198.51.100.7"], PROXIES) == ("198.51.100.7")


def test_a_chain_of_proxies_is_skipped_from_the_right_and_spoofed_hops_are_not_believed() -> None:
    # The client sent "1.2.3.4" itself; the outer proxy 10.1.1.1 appended the client's real
    # address, the inner one (the peer) appended 10.1.1.1.
    forwarded = ["1.2.3.4, 198.51.100.7", "10.1.1.1"]
    assert client_address("10.2.2.2", forwarded, PROXIES) == "198.51.100.7"


def test_no_header_or_garbage_keeps_the_last_address_a_proxy_vouched_for() -> None:
    assert client_address("10.2.2.2", [], PROXIES) == "10.2.2.2"
    assert client_address("10.2.2.2", ["not-an-ip, 10.1.1.1"], PROXIES) == "10.1.1.1"
    assert client_address("unknown", ["198.51.100.7"], PROXIES) == "unknown"


def test_the_setting_is_checked_when_read() -> None:
    settings = Settings(_env_file=None, TRUSTED_PROXIES="127.0.0.1, 10.0.0.0/8")  # type: ignore[call-arg]
    assert [str(n) for n in settings.trusted_proxies] == ["127.0.0.1/32", "10.0.0.0/8"]
    with pytest.raises(ValueError, match=r"'proxy\.example' is not an IP address or network"):
        Settings(_env_file=None, TRUSTED_PROXIES="proxy.example")  # type: ignore[call-arg]
