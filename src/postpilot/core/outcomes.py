"""What a publish attempt returned, classified. Publishers return these; they never raise for
an expected platform answer."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Published:
    platform_post_id: str
    url: str | None = None
    # True when the platform told us the post already existed (idempotent replay, duplicate
    # answer naming the existing post): still a success, recorded as such in the activity log.
    already_existed: bool = False


@dataclass(frozen=True, slots=True)
class RateLimited:
    until: datetime
    reason: str = "rate limited by the platform"


@dataclass(frozen=True, slots=True)
class TokenExpired:
    reason: str = "the platform rejected the account's token"


@dataclass(frozen=True, slots=True)
class Transient:
    """Failed before the platform could have acted on it (connection refused, 503...)."""

    reason: str
    retry_after_seconds: float | None = None


@dataclass(frozen=True, slots=True)
class Permanent:
    """The platform refused for a reason retrying will not fix (bad media, text too long...);
    `ours` when the fault is on our side instead (no publisher, credentials we cannot read)."""

    reason: str
    ours: bool = False


@dataclass(frozen=True, slots=True)
class Ambiguous:
    """The attempt may have reached the platform (timeout after sending, 500, 502, 504);
    `ours` when our own code failed mid-attempt (a publisher crashed)."""

    reason: str
    ours: bool = False


Outcome = Published | RateLimited | TokenExpired | Transient | Permanent | Ambiguous


def outcome_kind(outcome: Outcome) -> str:
    """A short stable name for metrics and logs."""
    return {
        Published: "published",
        RateLimited: "rate_limited",
        TokenExpired: "token_expired",
        Transient: "transient",
        Permanent: "permanent",
        Ambiguous: "ambiguous",
    }[type(outcome)]
