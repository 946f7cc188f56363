"""The address guarantee of the publishing client's transport: every connection it opens goes to a
public address (or one the operator allowed), checked after DNS, for every request and every
redirect hop, and the socket is opened to exactly the address that was checked (no second lookup
to rebind). TLS still uses the host name (SNI and the certificate check), and the pool still keys
connections by it.

Doing it at the socket means no publisher can forget it. A refusal is a `NotPublicAddress`, a
`httpx.ConnectError`: nothing was sent, and every publisher already treats it so.

The publishing client runs on aiohttp (`transport_aiohttp`, built by `build_runtime`); the
httpcore backend here keeps the same guarantee for an httpx client over httpcore, which the
`client` benchmark measures against it."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from typing import Any

import anyio
import httpcore
import httpx

from postpilot.errors import PostpilotError
from postpilot.publishers.addresses import AddressPolicy
from postpilot.publishers.urls import UNUSABLE_HOST

SocketOption = (
    tuple[int, int, int] | tuple[int, int, bytes | bytearray] | tuple[int, int, None, int]
)


class NotPublicAddress(PostpilotError, httpx.ConnectError):
    """The destination is not a public address (and not allowed by PRIVATE_HOSTS_ALLOWED)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class PublicOnlyBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, resolving names itself and refusing what the policy does."""

    def __init__(
        self, policy: AddressPolicy, inner: httpcore.AsyncNetworkBackend | None = None
    ) -> None:
        self._policy = policy
        self._inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        options: dict[str, Any] = {
            "timeout": timeout,
            "local_address": local_address,
            "socket_options": socket_options,
        }
        if host == UNUSABLE_HOST:
            raise NotPublicAddress(
                "the account's server URL is not a valid http(s) URL: edit the account"
            )
        if self._policy.is_allowed_host(host, port):
            return await self._inner.connect_tcp(host, port, **options)
        addresses = await self._resolve(host, port, timeout)
        refused = [a for a in addresses if not self._policy.may_connect(a, port)]
        if refused:
            named = host if host == refused[0] else f"{host} ({refused[0]})"
            raise NotPublicAddress(f"{named} is not a public address; nothing was sent")
        failure: Exception | None = None
        for address in addresses:  # like socket.create_connection: the first that answers
            try:
                return await self._inner.connect_tcp(address, port, **options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None
        raise failure

    async def _resolve(self, host: str, port: int, timeout: float | None) -> list[str]:
        try:
            return [str(ipaddress.ip_address(host.strip("[]")))]
        except ValueError:
            pass
        try:
            with anyio.fail_after(timeout):
                infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(f"resolving {host} took too long") from exc
        except OSError as exc:
            raise httpcore.ConnectError(f"{host} does not resolve") from exc
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        if not addresses:
            raise httpcore.ConnectError(f"{host} does not resolve")
        return addresses

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise NotPublicAddress("unix sockets are not used for publishing")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def public_only_transport(policy: AddressPolicy, **options: Any) -> httpx.AsyncHTTPTransport:
    """`httpx.AsyncHTTPTransport(**options)` whose connections pass `policy`."""
    transport = httpx.AsyncHTTPTransport(**options)
    # httpx does not take a network backend; its httpcore pool does (a documented parameter of
    # httpcore.AsyncConnectionPool), so set it on the pool httpx built with our options.
    pool: Any = transport._pool
    pool._network_backend = PublicOnlyBackend(policy)
    return transport
