"""A client's `scheduled_at` as a UTC instant, or a 422 that says what to send instead."""

from __future__ import annotations

from datetime import datetime

from postpilot.api.errors import ApiError
from postpilot.core import timezones


def scheduled_utc(value: datetime, tz_name: str, dst: timezones.Dst | None) -> datetime:
    """The same rule on create and edit: a DST gap or overlap needs `dst` (or an offset)."""
    try:
        return timezones.to_utc(value, tz_name, dst)
    except timezones.LocalTimeError as exc:
        choices = [
            {"dst": c.dst.value, "utc": c.utc.isoformat(), "local": c.local.isoformat()}
            for c in exc.choices
        ]
        raise ApiError(
            422,
            "dst_choice_needed",
            f"scheduled_at: {exc}",
            [{"field": "scheduled_at", "message": str(exc), "choices": choices}],
        ) from exc
    except ValueError as exc:  # out of range, unknown zone
        raise ApiError(
            422,
            "invalid_request",
            f"scheduled_at: {exc}",
            [{"field": "scheduled_at", "message": str(exc)}],
        ) from exc
