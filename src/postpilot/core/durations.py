"""Durations as operators type them: `30s`, `10m`, `1h`, `1h30m`, `1d`, or plain seconds."""

from __future__ import annotations

import re

from postpilot.errors import InvalidValue

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86_400.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")


class InvalidDuration(InvalidValue):
    """Not a duration: use a number with a unit, e.g. 30s, 10m, 1h or 1h30m."""


def parse_duration(text: str) -> float:
    """Seconds in `text`; a bare number is seconds. Raises InvalidDuration."""
    value = text.strip().lower().replace(" ", "")
    if not value:
        raise InvalidDuration("empty duration: use e.g. 30s, 10m or 1h")
    try:
        return _non_negative(float(value), text)
    except ValueError:
        pass
    position, total = 0, 0.0
    for match in _PART.finditer(value):
        if match.start() != position:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        position = match.end()
    if position != len(value) or position == 0:
        raise InvalidDuration(f"{text!r} is not a duration: use e.g. 30s, 10m, 1h or 1h30m")
    return _non_negative(total, text)


def format_duration(seconds: float) -> str:
    """The shortest exact spelling: 600 -> '10m', 5400 -> '1h30m', 0.5 -> '0.5s'."""
    if seconds < 0 or seconds != seconds:
        raise InvalidDuration(f"{seconds!r} is not a duration")
    if seconds == 0:
        return "0s"
    if seconds != int(seconds):
        return f"{seconds:g}s"
    remaining, parts = int(seconds), []
    for unit, size in (("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)):
        count, remaining = divmod(remaining, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def _non_negative(seconds: float, text: str) -> float:
    if seconds < 0 or seconds != seconds or seconds == float("inf"):
        raise InvalidDuration(f"{text!r} is not a duration: it must be a finite time >= 0")
    return seconds
