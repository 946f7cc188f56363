"""Recurrence rules, pure: an RFC 5545 RRULE (python-dateutil reads it) counted in the post's
local time, so 09:00 stays 09:00 across DST changes: one occurrence per rule instant, never
skipped nor doubled (a missing local time is read with the offset before the gap, a repeated
one as its first instant, as RFC 5545 says)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from dateutil import rrule as dateutil_rrule

from postpilot.core.queue_slots import local_instant
from postpilot.core.timezones import as_utc, zone
from postpilot.errors import InvalidValue

MAX_RULE_CHARS = 500
MAX_COUNT = 1000
# Finer rules would flood the accounts; a post an hour is already a lot.
ALLOWED_FREQUENCIES = ("YEARLY", "MONTHLY", "WEEKLY", "DAILY", "HOURLY")
# Rules with an UNTIL far away are fine: only a window ahead is ever made into posts.
_DAY = timedelta(days=1)


class InvalidRule(InvalidValue):
    """Not an RRULE we can follow."""


@dataclass(frozen=True, slots=True)
class Rule:
    text: str  # as stored: UNTIL in local time
    starts_local: datetime  # naive wall-clock time
    tz_name: str

    def between(self, start: datetime, end: datetime) -> Iterator[datetime]:
        """The occurrences' UTC instants in [start, end), in order."""
        rule = _parse(self.text, self.starts_local)
        local_start = as_utc(start).astimezone(zone(self.tz_name)).replace(tzinfo=None)
        # A day of slack each side: offsets differ across the window's ends; the UTC test is exact.
        for local in rule.xafter(local_start - _DAY, inc=True):
            instant = local_instant(local, self.tz_name)
            if instant >= as_utc(end):
                return
            if instant >= as_utc(start):
                yield instant


def parse(text: str, starts_local: datetime, tz_name: str) -> Rule:
    """A Rule, or InvalidRule naming the problem. `text` is one RRULE ("FREQ=DAILY;COUNT=5",
    optionally prefixed "RRULE:"); it must end (UNTIL or COUNT). An UNTIL in UTC ("...Z") is
    turned into the zone's local time."""
    if starts_local.tzinfo is not None:
        raise InvalidRule("starts_at: give a local time without an offset")
    body = text.strip()
    if body.upper().startswith("RRULE:"):
        body = body[len("RRULE:") :]
    if not body or len(body) > MAX_RULE_CHARS:
        raise InvalidRule(f"rrule: give one RRULE of at most {MAX_RULE_CHARS} characters")
    if any(c in body for c in "\r\n:"):
        raise InvalidRule("rrule: give one RRULE line (no DTSTART, EXDATE or other lines)")
    parts: dict[str, str] = {}
    for part in body.split(";"):
        name, sep, value = part.partition("=")
        if not sep or not name or not value:
            raise InvalidRule(f"rrule: {part!r} is not NAME=VALUE")
        if name.upper() in parts:
            raise InvalidRule(f"rrule: {name.upper()} is given twice")
        parts[name.upper()] = value
    freq = parts.get("FREQ", "").upper()
    if freq not in ALLOWED_FREQUENCIES:
        raise InvalidRule(f"rrule: FREQ must be one of {', '.join(ALLOWED_FREQUENCIES)}")
    if "UNTIL" not in parts and "COUNT" not in parts:
        raise InvalidRule("rrule: give an end, UNTIL or COUNT")
    if "COUNT" in parts and (not parts["COUNT"].isdigit() or int(parts["COUNT"]) > MAX_COUNT):
        raise InvalidRule(f"rrule: COUNT must be a whole number up to {MAX_COUNT}")
    if parts.get("UNTIL", "").upper().endswith("Z"):
        parts["UNTIL"] = _local_until(parts["UNTIL"], tz_name)
    stored = ";".join(f"{name}={value}" for name, value in parts.items())
    _parse(stored, starts_local)
    return Rule(stored, starts_local, tz_name)


def _local_until(value: str, tz_name: str) -> str:
    try:
        utc = datetime.strptime(value.upper(), "%Y%m%dT%H%M%SZ")
    except ValueError:
        raise InvalidRule("rrule: UNTIL must look like 20271231T235959Z") from None
    local = as_utc(utc).astimezone(zone(tz_name))
    return local.strftime("%Y%m%dT%H%M%S")


def _parse(text: str, starts_local: datetime) -> dateutil_rrule.rrule:
    try:
        rule = dateutil_rrule.rrulestr(text, dtstart=starts_local)
    except (ValueError, TypeError, OverflowError) as exc:
        raise InvalidRule(f"rrule: {exc}") from None
    if not isinstance(rule, dateutil_rrule.rrule):
        raise InvalidRule("rrule: give one RRULE")
    return rule
