"""Durations as operators type them: parsed to seconds, refused with a reason, spelled back in
the shortest exact form."""

from __future__ import annotations

import pytest

from postpilot.core.durations import InvalidDuration, format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30),
        ("10m", 600),
        ("1h", 3600),
        ("1h30m", 5400),
        ("2d", 172_800),
        ("90", 90),
        ("0.5s", 0.5),
        ("250ms", 0.25),
        (" 10M ", 600),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "10x", "m10", "1h 30", "-5s", "1.2.3s", "s", "inf", "nan"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(InvalidDuration):
        parse_duration(text)


def test_format_duration() -> None:
    assert [format_duration(s) for s in (0, 30, 600, 5400, 86_400, 0.5)] == [
        "0s",
        "30s",
        "10m",
        "1h30m",
        "1d",
        "0.5s",
    ]
