"""Queue slots, pure: a queue's weekly slots in its time zone, and which slot each of its
posts takes.

A slot is a day of the week (0 Monday .. 6 Sunday) and a local time. A local time a DST change
skips (02:30 on the night clocks jump) is taken as the same number of minutes after the
jump's start with the offset before it (03:30), and one that happens twice as its first
instant, as RFC 5545 does for recurrences: a slot is never skipped nor doubled."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from postpilot.core.timezones import as_utc, zone
from postpilot.errors import InvalidValue

MAX_SLOTS = 7 * 24  # one an hour, every day
_TIME = re.compile(r"([01]\d|2[0-3]):([0-5]\d)")
# A queue holds at most this many waiting posts, so even one slot a week (plus an evergreen
# gap of a year) stays within MAX_WEEKS_AHEAD: QueueTooLong is a guard, not an answer.
MAX_WAITING = 1000
MAX_WEEKS_AHEAD = 1100


class InvalidSlots(InvalidValue):
    """The slots are not a list of distinct {"day": 0-6, "time": "HH:MM"}."""


class QueueTooLong(InvalidValue):
    """The queue would reach further ahead than its slots may be counted."""


@dataclass(frozen=True, slots=True, order=True)
class Slot:
    day: int  # 0 Monday .. 6 Sunday, as date.weekday()
    at: time

    def describe(self) -> dict[str, object]:
        return {"day": self.day, "time": self.at.strftime("%H:%M")}


def parse_slots(raw: Sequence[dict[str, object]]) -> list[Slot]:
    """Slots from their JSON form, sorted; InvalidSlots naming the first problem."""
    if len(raw) > MAX_SLOTS:
        raise InvalidSlots(f"slots: at most {MAX_SLOTS} slots")
    parsed: list[Slot] = []
    for index, item in enumerate(raw):
        day, at = item.get("day"), item.get("time")
        if set(item) != {"day", "time"}:
            raise InvalidSlots(f'slots[{index}]: give exactly "day" and "time"')
        if not isinstance(day, int) or isinstance(day, bool) or not 0 <= day <= 6:
            raise InvalidSlots(f"slots[{index}].day: give 0 (Monday) to 6 (Sunday)")
        match = _TIME.fullmatch(at) if isinstance(at, str) else None
        if match is None:
            raise InvalidSlots(f'slots[{index}].time: give a 24-hour "HH:MM", e.g. "09:30"')
        parsed.append(Slot(day, time(int(match[1]), int(match[2]))))
    if len(set(parsed)) != len(parsed):
        raise InvalidSlots("slots: the same day and time is given twice")
    return sorted(parsed)


def local_instant(local: datetime, tz_name: str) -> datetime:
    """The UTC instant of a naive wall-clock time, by RFC 5545's rule for DST: a missing time
    uses the offset before the gap, a repeated one its first instant (fold 0 does both)."""
    return as_utc(local.replace(tzinfo=zone(tz_name), fold=0))


def upcoming(slots: Sequence[Slot], tz_name: str, after: datetime) -> Iterator[datetime]:
    """Every slot instant strictly after `after`, in order, forever (none without slots)."""
    if not slots:
        return
    start: date = as_utc(after).astimezone(zone(tz_name)).date()
    for week in range(MAX_WEEKS_AHEAD + 1):
        for offset in range(7):
            day = start + timedelta(days=7 * week + offset)
            instants = sorted(
                local_instant(datetime.combine(day, s.at), tz_name)
                for s in slots
                if s.day == day.weekday()
            )
            yield from (i for i in instants if i > as_utc(after))
    raise QueueTooLong(f"the queue reaches more than {MAX_WEEKS_AHEAD} weeks ahead")


@dataclass(frozen=True, slots=True)
class Waiting:
    """A queued post that has not started publishing, in queue order."""

    post_id: str
    not_before: datetime | None = None  # an evergreen comeback waits out its gap


def assign(
    waiting: Sequence[Waiting], slots: Sequence[Slot], tz_name: str, now: datetime
) -> dict[str, datetime]:
    """Each waiting post's slot: in queue order, each takes the first free slot after `now`
    (and after its `not_before`). Two posts never share a slot."""
    free = upcoming(slots, tz_name, now)
    skipped: list[datetime] = []  # free slots passed over by a post still waiting out its gap
    times: dict[str, datetime] = {}
    for post in waiting:
        floor = as_utc(post.not_before) if post.not_before else datetime.min.replace(tzinfo=UTC)
        early = next((s for s in skipped if s >= floor), None)
        if early is not None:
            skipped.remove(early)
            times[post.post_id] = early
            continue
        for instant in free:
            if instant >= floor:
                times[post.post_id] = instant
                break
            skipped.append(instant)
    return times
