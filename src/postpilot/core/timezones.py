"""Time zones: the user writes local time in an IANA zone; we store UTC and keep the zone."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


class InvalidTimeZone(ValueError):
    """Not an IANA time-zone name (use names like 'Europe/Paris' or 'UTC')."""


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidTimeZone(
            f"unknown time zone {name!r}: use an IANA name such as 'Europe/Paris' or 'UTC'"
        ) from exc


def to_utc(moment: datetime, tz_name: str) -> datetime:
    """A naive moment is local time in `tz_name`; an aware one is converted as is."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone(tz_name))
    return moment.astimezone(UTC)


def in_zone(moment_utc: datetime, tz_name: str) -> datetime:
    return as_utc(moment_utc).astimezone(zone(tz_name))


def as_utc(moment: datetime) -> datetime:
    """SQLite hands datetimes back naive; everything we store is UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
