"""When an access token is due for renewal: once less than a tenth of its lifetime is left, and
at the latest five minutes before it expires, so a 5-minute token is not renewed on every pass.

The lifetime is known from when we stored the token: every renewal stamps `token_issued_at` into
the (encrypted) credentials. A token whose issue time is unknown (connected by a person) is
renewed five minutes before it expires, and from then on its lifetime is known."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from postpilot.core.timezones import as_utc
from postpilot.publishers.base import AccountContext

ISSUED_AT = "token_issued_at"
MARGIN_CAP = timedelta(minutes=5)
MARGIN_SHARE = 0.1


def issued_at(credentials: dict[str, Any]) -> datetime | None:
    value = credentials.get(ISSUED_AT)
    if not isinstance(value, str):
        return None
    try:
        return as_utc(datetime.fromisoformat(value))
    except ValueError:
        return None


def margin(credentials: dict[str, Any], expires_at: datetime) -> timedelta:
    """How long before `expires_at` the token is renewed."""
    issued = issued_at(credentials)
    if issued is None or expires_at <= issued:
        return MARGIN_CAP
    return min(MARGIN_CAP, (expires_at - issued) * MARGIN_SHARE)


def due(account: AccountContext, now: datetime) -> bool:
    """True when the account's token should be renewed before it is used."""
    expires = account.token_expires_at
    return expires is not None and expires - now < margin(account.credentials, expires)


def stamped(credentials: dict[str, Any], now: datetime) -> dict[str, Any]:
    """Renewed credentials with the moment they were issued, to know their lifetime later."""
    return {**credentials, ISSUED_AT: now.isoformat()}
