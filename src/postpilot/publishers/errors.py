"""Translate transport errors and generic HTTP statuses into outcomes, in one place."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

from postpilot.core import outcomes
from postpilot.publishers.transport import NotPublicAddress


def transport_outcome(exc: httpx.TransportError, what: str) -> outcomes.Outcome:
    """A request that failed below HTTP. Connecting failed: it never reached the platform.
    Anything after the request was sent may have reached it."""
    if isinstance(exc, NotPublicAddress):  # will not change by trying again
        return outcomes.Permanent(f"{what}: {exc.reason}")
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout):
        return outcomes.Transient(f"{what}: could not connect ({type(exc).__name__})")
    return outcomes.Ambiguous(f"{what}: no answer after sending ({type(exc).__name__})")


def unsent_outcome(exc: httpx.TransportError, what: str) -> outcomes.Outcome:
    """A request before the publishing one failed below HTTP: nothing was published."""
    if isinstance(exc, NotPublicAddress):
        return outcomes.Permanent(f"{what}: {exc.reason}")
    return outcomes.Transient(f"{what}: {type(exc).__name__}; nothing was published yet")


def server_error_outcome(response: httpx.Response, what: str) -> outcomes.Outcome:
    """5xx: 503 says the server did not take the request; others may have acted on it."""
    reason = f"{what}: HTTP {response.status_code} from the platform"
    if response.status_code == 503:
        return outcomes.Transient(reason, retry_after_seconds=retry_after_seconds(response))
    return outcomes.Ambiguous(reason)


def retry_after_seconds(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(0.0, (when - datetime.now(UTC)).total_seconds())


def reset_from_epoch(value: str | None, fallback: datetime) -> datetime:
    try:
        return datetime.fromtimestamp(float(value), UTC) if value else fallback
    except ValueError:
        return fallback


def epoch_or_none(value: str | None) -> datetime | None:
    """A reset given as Unix seconds (decimals allowed), or None when absent or garbled."""
    try:
        return datetime.fromtimestamp(float(value), UTC) if value else None
    except (ValueError, OverflowError, OSError):
        return None


def reset_from_iso(value: str | None, fallback: datetime) -> datetime:
    if not value:
        return fallback
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return fallback
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def error_text(response: httpx.Response, limit: int = 300) -> str:
    """The platform's own words, trimmed: people act on them."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:limit] or f"HTTP {response.status_code}"
    if isinstance(body, dict):
        for key in ("error_description", "error", "detail", "message", "description", "title"):
            value = body.get(key)
            if isinstance(value, str) and value:
                return value[:limit]
            if isinstance(value, dict) and isinstance(value.get("message"), str):
                return str(value["message"])[:limit]
    return str(body)[:limit]
