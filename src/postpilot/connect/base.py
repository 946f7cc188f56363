"""How an account gets connected: each platform's `Connector` turns what a person gives (an
OAuth consent, an app password, a bot token, a webhook URL) into the credentials its publisher
needs, checked live against the platform ("who am I") before the account exists.

A connector is stateless, like a publisher: the connect service (`connect/service.py`) keeps the
flow's state (state parameter, PKCE verifier, per-instance app registrations) in the database
and hands each call what it needs in a `ConnectContext`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar, Protocol, runtime_checkable

import httpx

from postpilot.errors import PostpilotError


class Method(StrEnum):
    """How a person connects an account of a platform."""

    OAUTH = "oauth"  # the platform's consent page, then our callback with a code
    DIRECT = "direct"  # what the platform issued to the person (app password, bot token, URL)


@dataclass(frozen=True, slots=True)
class Input:
    """One thing a person types to start a flow or connect directly (a Mastodon instance, a
    Bluesky handle and app password, a Telegram bot token and channel)."""

    name: str
    description: str  # one line, for a person
    secret: bool = False
    required: bool = True


@dataclass(frozen=True, slots=True)
class App:
    """The deployment's app registered at the platform (or, for Mastodon, at one instance)."""

    client_id: str
    client_secret: str | None = None


@dataclass(frozen=True, slots=True)
class Grant:
    """What the platform's token call gave, read into one shape."""

    access_token: str
    refresh_token: str | None = None
    expires_at: datetime | None = None  # from the platform's `expires_in` (or equivalent)
    scopes: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)  # Discord webhook, Slack team, ...


@dataclass(frozen=True, slots=True)
class Target:
    """One thing a login can post to (the user, a Page, a channel, a room), as the account it
    becomes. `platform_id` is the platform's stable id, never only the handle."""

    platform_id: str
    name: str  # for a person choosing among several
    handle: str
    credentials: dict[str, Any]  # complete, in the publisher's declared shape
    options: dict[str, Any] = field(default_factory=dict)
    base_url: str | None = None
    expires_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Identity:
    """Who the platform says an account's credentials belong to (its "who am I")."""

    platform_id: str
    handle: str


class ConnectRefused(PostpilotError):
    """The platform (or the person's input) refused the connection: a message for a person,
    and the field it concerns where there is one (`inputs.app_password`, `credentials.token`)."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class AppNotConfigured(PostpilotError):
    """The deployment has no app registered at this platform: the settings to set."""


@dataclass
class ConnectContext:
    """What a connector call may use. `base_url` replaces every host of the platform (the
    sandbox, a proxy): paths stay the platform's own."""

    http: httpx.AsyncClient
    now: Callable[[], datetime]
    redirect_uri: str  # exactly as registered at the platform; sent again on the token call
    app: App | None = None
    base_url: str | None = None

    def url(self, default_host: str, path: str) -> str:
        """`path` on the platform's `default_host`, or on `base_url` when one is set."""
        return f"{(self.base_url or default_host).rstrip('/')}/{path.lstrip('/')}"


@runtime_checkable
class Connector(Protocol):
    platform: ClassVar[str]
    methods: ClassVar[tuple[Method, ...]]
    # What a person gives to start an OAuth flow (Mastodon: the instance) or to connect directly.
    start_inputs: ClassVar[tuple[Input, ...]]
    direct_inputs: ClassVar[tuple[Input, ...]]
    # Whether the deployment needs an app at the platform (CONNECT_<PLATFORM>_CLIENT_ID ...);
    # Mastodon registers one per instance itself.
    needs_app: ClassVar[bool]
    scopes: ClassVar[tuple[str, ...]]

    async def verify(self, ctx: ConnectContext, target: Target) -> Identity:
        """The platform's "who am I" with the target's credentials; `ConnectRefused` when the
        platform does not accept them, or they cannot post where the target says."""
        ...


@runtime_checkable
class OAuthConnector(Connector, Protocol):
    pkce: ClassVar[bool]

    def authorize_url(
        self,
        ctx: ConnectContext,
        *,
        state: str,
        code_challenge: str | None,
        inputs: Mapping[str, str],
    ) -> str: ...

    async def exchange(
        self,
        ctx: ConnectContext,
        *,
        code: str,
        code_verifier: str | None,
        inputs: Mapping[str, str],
    ) -> Grant: ...

    async def targets(
        self, ctx: ConnectContext, grant: Grant, inputs: Mapping[str, str]
    ) -> list[Target]:
        """Everything the login may post to; the person picks when there is more than one."""
        ...


@runtime_checkable
class DirectConnector(Connector, Protocol):
    async def sign_in(self, ctx: ConnectContext, inputs: Mapping[str, str]) -> list[Target]:
        """Trade what the person gave for the targets it reaches (Bluesky: createSession on the
        PDS resolved from the handle; Matrix: password login, then rooms)."""
        ...


@runtime_checkable
class RegistersApps(Protocol):
    """A platform where the app is registered per server (Mastodon): the service caches it."""

    async def register_app(self, ctx: ConnectContext, inputs: Mapping[str, str]) -> App: ...

    def app_key(self, inputs: Mapping[str, str]) -> str:
        """Which server's registration this is (the instance's origin)."""
        ...


@runtime_checkable
class Revokes(Protocol):
    """The platform lets us revoke an account's grant when it is disconnected."""

    async def revoke(self, ctx: ConnectContext, credentials: Mapping[str, Any]) -> None: ...
