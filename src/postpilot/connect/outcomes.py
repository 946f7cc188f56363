"""What the connect service answers: where a flow stands, and why a request cannot go on (each
refusal with its API code and status, and the field it concerns)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime

from postpilot.errors import PostpilotError
from postpilot.store.tables import Account


class ConnectError(PostpilotError):
    """A connect request that cannot go on; `code` and `field` say why, for the API."""

    code = "invalid_request"
    status = 422

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class UnsupportedPlatform(ConnectError):
    code = "unsupported_platform"


class InvalidInput(ConnectError):
    pass


class InvalidState(ConnectError):
    code = "invalid_state"
    status = 400


class FlowNotFound(ConnectError):
    code = "not_found"
    status = 404


class NotChoosing(ConnectError):
    code = "not_choosing"
    status = 409


class PlatformUnreachable(ConnectError):
    # A 4xx: most often a server the person named that does not answer (a misspelt instance).
    code = "platform_unreachable"


@dataclass(frozen=True, slots=True)
class Started:
    flow_id: str
    authorize_url: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class Choice:
    platform_id: str
    name: str
    handle: str


@dataclass(frozen=True, slots=True)
class Finished:
    """Where a flow ended: accounts connected, a choice to make, or a refusal."""

    flow_id: str | None
    status: str  # done | choosing | failed
    workspace_id: str | None = None
    account_ids: list[str] = dataclasses.field(default_factory=list)
    choices: list[Choice] = dataclasses.field(default_factory=list)
    error: str | None = None  # access_denied, connect_refused, platform_not_configured, ...
    message: str | None = None
    field: str | None = None
    success_url: str | None = None
    retryable_delivery_ids: list[str] = dataclasses.field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Checked:
    account: Account
    ok: bool
    message: str
