"""Time zones: the user writes local time in an IANA zone; we store UTC and keep the zone.

A local time can be missing (a DST gap: clocks jump from 02:00 to 03:00) or happen twice (an
overlap: clocks go back from 03:00 to 02:00). Neither is guessed: the caller names which of the
two possible instants it means (`Dst.EARLIER` or `Dst.LATER`), or gets `LocalTimeError` listing
both."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from postpilot.errors import InvalidValue

# The longest IANA name is 32 characters ("America/Argentina/ComodRivadavia").
MAX_ZONE_NAME = 64
_ZONE_NAME = re.compile(r"[A-Za-z0-9_+\-]+(/[A-Za-z0-9_+\-]+)*")
# One day inside datetime's range on both sides: any zone's offset (< 24 h) can then show the
# instant as local time without overflowing.
EARLIEST = datetime(1, 1, 2, tzinfo=UTC)
LATEST = datetime(9999, 12, 30, tzinfo=UTC)


class InvalidTimeZone(InvalidValue):
    """Not an IANA time-zone name (use names like 'Europe/Paris' or 'UTC')."""


class OutOfRange(InvalidValue):
    """The moment is too close to year 1 or year 9999 to be scheduled."""


class Dst(StrEnum):
    """Which instant a local time in a DST gap or overlap means."""

    EARLIER = "earlier"
    LATER = "later"


@dataclass(frozen=True, slots=True)
class Choice:
    dst: Dst
    utc: datetime
    local: datetime  # the same instant as the zone's clocks show it

    def describe(self) -> str:
        return (
            f'dst "{self.dst.value}" for {self.utc.strftime("%Y-%m-%dT%H:%M:%SZ")} '
            f"({self.local.isoformat()} local)"
        )


class LocalTimeError(InvalidValue):
    """A local time in a DST gap or overlap, sent without saying which instant it means."""

    def __init__(self, message: str, choices: tuple[Choice, Choice]) -> None:
        super().__init__(message)
        self.choices = choices


def zone(name: str) -> ZoneInfo:
    if len(name) > MAX_ZONE_NAME:
        raise InvalidTimeZone(f"time zone names are at most {MAX_ZONE_NAME} characters")
    if not _ZONE_NAME.fullmatch(name):
        raise InvalidTimeZone(_unknown(name))
    try:
        return ZoneInfo(name)
    # OSError: a name that reaches a directory or an unreadable file on the system's zone path.
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise InvalidTimeZone(_unknown(name)) from exc


def _unknown(name: str) -> str:
    return f"unknown time zone {name!r}: use an IANA name such as 'Europe/Paris' or 'UTC'"


def to_utc(moment: datetime, tz_name: str, dst: Dst | None = None) -> datetime:
    """A naive moment is local time in `tz_name`; an aware one is converted as is.

    Raises LocalTimeError for a local time in a gap or overlap when `dst` is None, OutOfRange
    for a moment that cannot be shown in every zone."""
    tz = zone(tz_name)
    if moment.tzinfo is not None:
        return in_range(moment)
    choices = _choices(moment, tz)
    if choices is None:
        return in_range(moment.replace(tzinfo=tz))
    if dst is not None:
        return choices[0].utc if dst is Dst.EARLIER else choices[1].utc
    raise LocalTimeError(_explain(moment, tz_name, choices), choices)


def in_range(moment: datetime) -> datetime:
    """`moment` (aware) in UTC, refused when it is outside [EARLIEST, LATEST]."""
    try:
        utc = moment.astimezone(UTC)
    except OverflowError:
        utc = None
    if utc is None or not EARLIEST <= utc <= LATEST:
        raise OutOfRange(
            f"{moment.isoformat()} is out of range: give a time between "
            f"{EARLIEST.date().isoformat()} and {LATEST.date().isoformat()}"
        )
    return utc


def _choices(local: datetime, tz: ZoneInfo) -> tuple[Choice, Choice] | None:
    """Both instants a gap or overlap local time could mean, earlier first; None if unique."""
    first, second = local.replace(tzinfo=tz, fold=0), local.replace(tzinfo=tz, fold=1)
    if first.utcoffset() == second.utcoffset():
        return None
    utcs = sorted(in_range(m) for m in (first, second))
    return (
        Choice(Dst.EARLIER, utcs[0], utcs[0].astimezone(tz)),
        Choice(Dst.LATER, utcs[1], utcs[1].astimezone(tz)),
    )


def _explain(local: datetime, tz_name: str, choices: tuple[Choice, Choice]) -> str:
    earlier, later = choices
    shown = local.isoformat(timespec="minutes")
    if _is_gap(local, earlier):
        jump = later.utc - earlier.utc
        what = f"does not exist in {tz_name}: the clocks skip {_hours(jump)} there"
    else:
        what = f"happens twice in {tz_name}: the clocks go back there"
    return (
        f"{shown} {what}; send {earlier.describe()} or {later.describe()}, "
        "or give scheduled_at with an offset"
    )


def _is_gap(local: datetime, earlier: Choice) -> bool:
    # In an overlap both instants read back as the same wall time; in a gap neither does.
    return earlier.local.replace(tzinfo=None) != local


def _hours(span: timedelta) -> str:
    minutes = int(span.total_seconds() // 60)
    return f"{minutes // 60} h" if minutes % 60 == 0 else f"{minutes} min"


def in_zone(moment_utc: datetime, tz_name: str) -> datetime:
    return as_utc(moment_utc).astimezone(zone(tz_name))


def as_utc(moment: datetime) -> datetime:
    """SQLite hands datetimes back naive; everything we store is UTC."""
    if moment.tzinfo is UTC:  # asyncpg's: nothing to convert (several per claimed row)
        return moment
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
