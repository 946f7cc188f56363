"""The pure rules: a queue's slots in its zone and the posts that take them; RRULEs counted in
local time across DST changes (Europe/Paris and America/New_York, both directions)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from postpilot.core import queue_slots, recurrence
from postpilot.core.queue_slots import Waiting

PARIS = "Europe/Paris"
NEW_YORK = "America/New_York"


def local(instant: datetime, tz_name: str) -> datetime:
    return instant.astimezone(ZoneInfo(tz_name))


@pytest.mark.parametrize(
    ("tz_name", "first", "last"),
    [
        (PARIS, datetime(2027, 3, 20, 9), datetime(2027, 4, 5)),  # clocks forward 28 March
        (PARIS, datetime(2027, 10, 25, 9), datetime(2027, 11, 5)),  # back 31 October
        (NEW_YORK, datetime(2027, 3, 8, 9), datetime(2027, 3, 20)),  # forward 14 March
        (NEW_YORK, datetime(2027, 11, 1, 9), datetime(2027, 11, 12)),  # back 7 November
    ],
)
def test_a_daily_rule_is_at_nine_local_every_day_across_a_dst_change(
    tz_name: str, first: datetime, last: datetime
) -> None:
    rule = recurrence.parse("FREQ=DAILY;COUNT=30", first, tz_name)
    found = list(rule.between(datetime(2027, 1, 1, tzinfo=UTC), last.replace(tzinfo=UTC)))
    days = [local(i, tz_name).date() for i in found]
    assert days == [first.date() + timedelta(days=n) for n in range(len(days))]
    assert {local(i, tz_name).strftime("%H:%M") for i in found} == {"09:00"}
    offsets = {local(i, tz_name).utcoffset() for i in found}
    assert len(offsets) == 2, "the window spans the change"


def test_a_missing_local_time_is_read_with_the_offset_before_the_gap() -> None:
    # 02:30 does not exist in Paris on 28 March 2027: RFC 5545 makes it 03:30 local.
    rule = recurrence.parse("FREQ=DAILY;COUNT=3", datetime(2027, 3, 27, 2, 30), PARIS)
    found = list(rule.between(datetime(2027, 3, 1, tzinfo=UTC), datetime(2027, 4, 1, tzinfo=UTC)))
    assert [local(i, PARIS).strftime("%d %H:%M") for i in found] == [
        "27 02:30",
        "28 03:30",
        "29 02:30",
    ]


def test_an_hourly_rule_never_doubles_the_repeated_hour() -> None:
    rule = recurrence.parse("FREQ=HOURLY;COUNT=4", datetime(2027, 10, 31, 0, 0), PARIS)
    found = list(rule.between(datetime(2027, 10, 1, tzinfo=UTC), datetime(2027, 11, 1, tzinfo=UTC)))
    assert len(found) == len(set(found)) == 4
    assert [local(i, PARIS).strftime("%H") for i in found] == ["00", "01", "02", "03"]


def test_an_until_in_utc_is_kept_as_local_time() -> None:
    rule = recurrence.parse(
        "RRULE:FREQ=DAILY;UNTIL=20270327T080000Z", datetime(2027, 3, 25, 9), PARIS
    )
    assert rule.text == "FREQ=DAILY;UNTIL=20270327T090000"
    found = list(rule.between(datetime(2027, 3, 1, tzinfo=UTC), datetime(2027, 4, 1, tzinfo=UTC)))
    assert len(found) == 3


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("FREQ=DAILY", "give an end, UNTIL or COUNT"),
        ("FREQ=MINUTELY;COUNT=5", "FREQ must be one of"),
        ("FREQ=DAILY;COUNT=5;BYHOUR=25", "hour must be in 0..23"),
        ("FREQ=DAILY;COUNT=abc", "COUNT must be a whole number"),
        ("FREQ=DAILY;COUNT=5000", "COUNT must be a whole number up to 1000"),
        ("FREQ=DAILY;COUNT=5;COUNT=6", "COUNT is given twice"),
        ("FREQ=DAILY;COUNT=5;FOO=1", "unknown parameter 'FOO'"),
        ("DTSTART:20270101T000000\nRRULE:FREQ=DAILY;COUNT=5", "one RRULE line"),
        ("FREQ=DAILY;UNTIL=2027-13-01Z", "UNTIL must look like"),
        ("FREQ", "is not NAME=VALUE"),
    ],
)
def test_a_bad_rule_is_refused_naming_the_problem(text: str, named: str) -> None:
    with pytest.raises(recurrence.InvalidRule, match=named.replace("(", r"\(")):
        recurrence.parse(text, datetime(2027, 3, 1, 9), PARIS)


MONDAY_NINE_WEDNESDAY_TWO = [{"day": 0, "time": "09:00"}, {"day": 2, "time": "14:30"}]


def test_posts_take_the_next_slots_in_order() -> None:
    slots = queue_slots.parse_slots(MONDAY_NINE_WEDNESDAY_TWO)
    now = datetime(2027, 3, 1, 8, 30, tzinfo=UTC)  # Monday 09:30 in Paris: today's slot passed
    times = queue_slots.assign([Waiting("a"), Waiting("b"), Waiting("c")], slots, PARIS, now)
    assert {k: local(v, PARIS).strftime("%a %d %H:%M") for k, v in times.items()} == {
        "a": "Wed 03 14:30",
        "b": "Mon 08 09:00",
        "c": "Wed 10 14:30",
    }


def test_slots_keep_their_local_time_across_the_spring_change() -> None:
    slots = queue_slots.parse_slots([{"day": 6, "time": "02:30"}, {"day": 6, "time": "10:00"}])
    now = datetime(2027, 3, 27, tzinfo=UTC)
    times = queue_slots.assign([Waiting("gap"), Waiting("after")], slots, PARIS, now)
    # 02:30 is missing on 28 March: taken as 03:30 local, never skipped.
    assert local(times["gap"], PARIS).strftime("%d %H:%M") == "28 03:30"
    assert local(times["after"], PARIS).strftime("%d %H:%M") == "28 10:00"


def test_a_post_waiting_out_its_gap_leaves_earlier_slots_to_the_next() -> None:
    slots = queue_slots.parse_slots(MONDAY_NINE_WEDNESDAY_TWO)
    now = datetime(2027, 3, 1, tzinfo=UTC)
    later = datetime(2027, 3, 5, tzinfo=UTC)
    times = queue_slots.assign([Waiting("evergreen", later), Waiting("next")], slots, PARIS, now)
    assert local(times["evergreen"], PARIS).strftime("%a %d") == "Mon 08"
    assert local(times["next"], PARIS).strftime("%a %d") == "Mon 01"


def test_no_slots_assign_nothing() -> None:
    assert queue_slots.assign([Waiting("a")], [], PARIS, datetime(2027, 3, 1, tzinfo=UTC)) == {}


@pytest.mark.parametrize(
    ("raw", "named"),
    [
        ([{"day": 7, "time": "09:00"}], r"slots\[0\].day"),
        ([{"day": 0, "time": "24:00"}], r"slots\[0\].time"),
        ([{"day": 0, "time": "9:00"}], r"slots\[0\].time"),
        ([{"day": 0}], "exactly"),
        ([{"day": 0, "time": "09:00"}, {"day": 0, "time": "09:00"}], "twice"),
    ],
)
def test_bad_slots_are_refused(raw: list[dict[str, object]], named: str) -> None:
    with pytest.raises(queue_slots.InvalidSlots, match=named):
        queue_slots.parse_slots(raw)
