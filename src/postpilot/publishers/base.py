"""The publisher protocol and what flows through it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Protocol, runtime_checkable

import httpx

from postpilot.core.outcomes import Outcome
from postpilot.core.readback import ReadBack
from postpilot.core.transitions import Recovery
from postpilot.publishers import urls
from postpilot.publishers.addresses import AddressPolicy
from postpilot.publishers.budgets import RateBudgets
from postpilot.publishers.fields import AccountFields
from postpilot.publishers.media import MediaFetcher
from postpilot.publishers.parts import Part, PartRecorder, SentPart
from postpilot.publishers.uploads import UploadCache, UploadStore


@dataclass(frozen=True, slots=True)
class AccountContext:
    """An account as a publisher sees it: decrypted credentials, never written back by it."""

    id: str
    platform: str
    handle: str
    base_url: str | None
    options: dict[str, Any]
    credentials: dict[str, Any]
    token_expires_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class PublishRequest:
    delivery_id: str
    idempotency_key: str  # the same on every attempt of this delivery
    text: str  # the post's text with this platform's override applied
    media_urls: tuple[str, ...]
    account: AccountContext
    scheduled_at: datetime
    attempt: int  # 1 for the first try
    recovered: bool = False  # an earlier attempt may have reached the platform
    # A thread's replies after the post, or the comment put under it (publishers/chain.py);
    # `sent` the parts an earlier attempt recorded, `record_part` stores each one sent now.
    thread: tuple[Part, ...] = ()
    first_comment: str | None = None
    sent: tuple[SentPart, ...] = ()
    record_part: PartRecorder | None = None


@dataclass(frozen=True, slots=True)
class Refreshed:
    credentials: dict[str, Any]  # the complete new credentials to store
    expires_at: datetime | None


@dataclass(frozen=True, slots=True)
class RefreshFailed:
    reason: str


RefreshResult = Refreshed | RefreshFailed


@dataclass
class PublishContext:
    """Shared per-process resources handed to every publisher call. Publishers keep no state of
    their own: whatever outlives one call (uploaded-media ids, rate budgets, connections) is
    here, built once per process by the composition root."""

    http: httpx.AsyncClient
    media: MediaFetcher
    now: Callable[[], datetime]
    # Overrides each platform's API base (the sandbox URL in demos, tests and benchmarks).
    base_urls: dict[str, str] = field(default_factory=dict)
    # Rate-limit budgets per account and per app, updated from responses, consulted before
    # sending. In-process by default; share one across a process (or back it by Redis).
    budgets: RateBudgets = field(default_factory=RateBudgets)
    # Uploaded-media ids to reuse (see uploads.py). In-process by default; Redis-backed when
    # REDIS_URL is set, so every worker reuses every other's uploads.
    uploads: UploadStore = field(default_factory=UploadCache)
    # Which non-public hosts may be reached (the runtime's client enforces it on every
    # connection; the API checks account and media URLs against it when they are saved).
    addresses: AddressPolicy = field(default_factory=AddressPolicy)

    def base_url(self, platform: str, account: AccountContext, default: str) -> str:
        """The base of `platform`'s API for `account`, rebuilt from its parts: what is appended
        is the API path, which a base URL ending in `#` or `?` or holding `..` cannot change.
        Segments we do not control are added with `urls.segment`."""
        return urls.api_base(self.base_urls.get(platform) or account.base_url or default)


class Publisher(Protocol):
    platform: ClassVar[str]
    recovery: ClassVar[Recovery]
    can_refresh: ClassVar[bool]
    # Sends to one account a pass may have in flight at once: more only earns rate-limit
    # answers (platforms.md: about one message a second per chat, channel or room on
    # Telegram, Slack, Discord and Matrix; volume limits per account elsewhere).
    max_in_flight_per_account: ClassVar[int]
    account_fields: ClassVar[AccountFields]  # what an account holds, checked when saved

    async def publish(self, request: PublishRequest, ctx: PublishContext) -> Outcome: ...

    async def refresh(self, account: AccountContext, ctx: PublishContext) -> RefreshResult: ...


@dataclass(frozen=True, slots=True)
class Lookup:
    """What to look for when reading a platform back (see `FindsPublished`)."""

    request: PublishRequest
    since: datetime  # the earliest moment a send of this delivery could have been posted
    taken: frozenset[str] = frozenset()  # platform ids that other deliveries already hold


@runtime_checkable
class FindsPublished(Protocol):
    """Optional: the platform lets us read back what the account posted, so a delivery that
    may have been sent can be settled without a person. Each implementation documents when
    its "not found" is authoritative; anywhere else it answers `CannotTell`."""

    async def find_published(self, lookup: Lookup, ctx: PublishContext) -> ReadBack: ...


def finder(publisher: object) -> FindsPublished | None:
    return publisher if isinstance(publisher, FindsPublished) else None


# For a platform without a publisher (its deliveries fail without a request).
DEFAULT_IN_FLIGHT_PER_ACCOUNT = 1


def in_flight_per_account(publisher: Publisher | None) -> int:
    """The account cap of `publisher`'s platform, at least 1."""
    if publisher is None:
        return DEFAULT_IN_FLIGHT_PER_ACCOUNT
    return max(
        1, int(getattr(publisher, "max_in_flight_per_account", DEFAULT_IN_FLIGHT_PER_ACCOUNT))
    )
