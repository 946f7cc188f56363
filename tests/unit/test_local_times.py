"""Local times across DST changes, ranges and zone names; unstorable text. Pure, no I/O."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from postpilot.api import fields, text
from postpilot.core.timezones import (
    Dst,
    InvalidTimeZone,
    LocalTimeError,
    OutOfRange,
    in_zone,
    to_utc,
    zone,
)

GAP = datetime(2027, 3, 28, 2, 30)  # Europe/Paris: 02:00 CET -> 03:00 CEST
OVERLAP = datetime(2027, 10, 31, 2, 30)  # Europe/Paris: 03:00 CEST -> 02:00 CET


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def test_a_gap_time_is_refused_with_both_instants() -> None:
    with pytest.raises(LocalTimeError) as caught:
        to_utc(GAP, "Europe/Paris")
    earlier, later = caught.value.choices
    assert (earlier.dst, earlier.utc) == (Dst.EARLIER, utc(2027, 3, 28, 0, 30))
    assert (later.dst, later.utc) == (Dst.LATER, utc(2027, 3, 28, 1, 30))
    assert later.local.isoformat() == "2027-03-28T03:30:00+02:00"
    message = str(caught.value)
    assert "2027-03-28T02:30 does not exist in Europe/Paris" in message
    assert "skip 1 h" in message
    assert "2027-03-28T00:30:00Z" in message and "2027-03-28T01:30:00Z" in message


def test_an_overlap_time_is_refused_with_both_instants() -> None:
    with pytest.raises(LocalTimeError) as caught:
        to_utc(OVERLAP, "Europe/Paris")
    earlier, later = caught.value.choices
    assert earlier.utc == utc(2027, 10, 31, 0, 30)
    assert later.utc == utc(2027, 10, 31, 1, 30)
    assert earlier.local.isoformat() == "2027-10-31T02:30:00+02:00"
    assert later.local.isoformat() == "2027-10-31T02:30:00+01:00"
    assert "happens twice in Europe/Paris" in str(caught.value)


@pytest.mark.parametrize(
    ("local", "dst", "expected"),
    [
        (GAP, Dst.EARLIER, utc(2027, 3, 28, 0, 30)),
        (GAP, Dst.LATER, utc(2027, 3, 28, 1, 30)),
        (OVERLAP, Dst.EARLIER, utc(2027, 10, 31, 0, 30)),
        (OVERLAP, Dst.LATER, utc(2027, 10, 31, 1, 30)),
        # `dst` changes nothing where the local time is unique.
        (datetime(2027, 7, 1, 9), Dst.LATER, utc(2027, 7, 1, 7)),
    ],
)
def test_the_client_says_which_instant(local: datetime, dst: Dst, expected: datetime) -> None:
    assert to_utc(local, "Europe/Paris", dst) == expected


def test_a_half_hour_gap_is_named_in_minutes() -> None:
    # Lord Howe Island moves its clocks by 30 minutes.
    with pytest.raises(LocalTimeError, match="skip 30 min"):
        to_utc(datetime(2027, 10, 3, 2, 15), "Australia/Lord_Howe")


@pytest.mark.parametrize(
    ("moment", "tz"),
    [
        (datetime.fromisoformat("9999-12-31T23:59:59-14:00"), "UTC"),
        (datetime.fromisoformat("0001-01-01T00:00:00+14:00"), "UTC"),
        (datetime(9999, 12, 31, 23), "Pacific/Kiritimati"),
        (datetime(1, 1, 1, 0), "Etc/GMT-14"),
        (datetime(9999, 12, 31, 12), "UTC"),  # stored, it could not be shown in UTC+14
    ],
)
def test_moments_near_the_ends_of_time_are_out_of_range(moment: datetime, tz: str) -> None:
    with pytest.raises(OutOfRange, match="out of range"):
        to_utc(moment, tz)


def test_any_stored_moment_can_be_shown_in_any_zone() -> None:
    latest = to_utc(datetime(9999, 12, 30), "UTC")
    assert in_zone(latest, "Pacific/Kiritimati").year == 9999
    earliest = to_utc(datetime(1, 1, 2), "UTC")
    assert in_zone(earliest, "Etc/GMT+12").year == 1


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("A" * 300, "at most 64 characters"),
        ("America", "unknown time zone"),  # a directory of the zone database
        ("../../etc/passwd", "unknown time zone"),
        ("/etc/localtime", "unknown time zone"),
        ("Europe/Paris\x00", "unknown time zone"),
        ("", "unknown time zone"),
    ],
)
def test_zone_names_are_bounded_and_checked(name: str, words: str) -> None:
    with pytest.raises(InvalidTimeZone, match=words):
        zone(name)


def test_real_zone_names_pass() -> None:
    for name in ("UTC", "Europe/Paris", "America/Argentina/ComodRivadavia", "Etc/GMT+12"):
        assert zone(name).key == name


def test_unstorable_text_is_found_in_keys_values_and_numbers() -> None:
    document = {
        "ok": ["fine", 1, 2.5, None, True],
        "nul": "a\x00b",
        "deep": {"list": [{"k\x00": "v"}]},
        "lone": "\ud83d",
        "pair": "\U0001f600",
        "inf": float("inf"),
    }
    found = {(p["field"], p["message"].split(",")[0]) for p in text.problems(document)}
    assert found == {
        ("nul", "contains a NUL character (\\u0000)"),
        ("deep.list.0.k\N{REPLACEMENT CHARACTER}", "the key contains a NUL character (\\u0000)"),
        ("lone", "contains a lone UTF-16 surrogate"),
        ("inf", "is not a finite number"),
    }


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (b'{"a": NaN}', "NaN is not a JSON number"),
        (b'{"a": -Infinity}', "-Infinity is not a JSON number"),
        (b"[" * 100_000 + b"]" * 100_000, "nested more than"),
        (b'{"a": 1' + b"0" * 5000 + b"}", "not valid JSON"),
        (b'{"a": "\xff"}', "not valid JSON"),
        (b"{nope", "not valid JSON"),
    ],
)
def test_bodies_that_are_not_storable_json(raw: bytes, words: str) -> None:
    with pytest.raises(text.BadJson, match=words):
        text.parse(raw)


def test_nesting_past_the_limit_is_a_problem_not_a_recursion() -> None:
    deep: object = "x"
    for _ in range(text.MAX_DEPTH + 5):
        deep = [deep]
    assert text.problems(deep)[0]["message"] == f"nested deeper than {text.MAX_DEPTH}"
    assert fields.depth({"a": [1]}) == 2 and fields.depth({}) == 1 and fields.depth(3) == 0
