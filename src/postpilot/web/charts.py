"""Line charts as geometry for server-rendered SVG: the monitor's series in, each scheduler's
line segments and points (in the SVG's own units) out. Pure; the template draws them.

Server-rendered so the dashboard needs no chart package, no script and no second request: the
htmx poll swaps in fresh SVG, and the page reads the same with scripts off."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from markupsafe import Markup, escape

WIDTH = 600
HEIGHT = 170
LEFT = 48  # room for the y labels
RIGHT = 8
TOP = 10
BOTTOM = 22  # room for the x labels


@dataclass(frozen=True, slots=True)
class Metric:
    key: str  # in a series point
    title: str
    unit: str  # ms, %, per pass, per s
    scale: float = 1.0  # a ratio is drawn as a percentage


METRICS: tuple[Metric, ...] = (
    Metric("processing_p95_ms", "Processing time per delivery (p95)", "ms"),
    Metric("db_statements_per_pass", "DB statements per pass", "per pass"),
    Metric("cache_hit_rate", "Cache hit rate", "%", 100.0),
    Metric("error_rate", "Error rate", "%", 100.0),
    Metric("throughput_per_second", "Throughput", "per s"),
    Metric("lateness_p99_ms", "Lateness (p99)", "ms"),
)


@dataclass(frozen=True, slots=True)
class Point:
    x: float
    y: float
    value: float
    at: str  # HH:MM, for the point's title


@dataclass(frozen=True, slots=True)
class Line:
    scheduler: str
    path: str  # SVG polyline `points`
    points: list[Point]
    latest: float | None

    def dots(self, unit: str) -> Markup:
        """A circle per point with its value as the title, as SVG. Written here rather than
        in the template: a week has 2,000 of them, and the template's escaping of every
        attribute made them most of the page's time."""
        name, unit = escape(self.scheduler), escape(unit)
        return Markup(
            "".join(
                f'<circle class="pt pt-{name}" cx="{p.x}" cy="{p.y}" r="2.5">'
                f"<title>{name} {p.at}: {round(p.value, 3)} {unit}</title></circle>"
                for p in self.points
            )
        )


@dataclass(frozen=True, slots=True)
class Tick:
    y: float
    label: str


@dataclass(frozen=True, slots=True)
class Chart:
    metric: Metric
    lines: list[Line]
    ticks: list[Tick]
    start_label: str
    end_label: str
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    right_edge: int = WIDTH - RIGHT
    top: int = TOP
    bottom_edge: int = HEIGHT - BOTTOM

    @property
    def point_count(self) -> int:
        return sum(len(line.points) for line in self.lines)

    @property
    def empty(self) -> bool:
        return self.point_count == 0

    @property
    def summary(self) -> str:
        """The chart in words, for screen readers."""
        parts = []
        for line in self.lines:
            latest = "no passes" if line.latest is None else f"latest {fmt(line.latest)}"
            parts.append(f"{line.scheduler}: {len(line.points)} points, {latest}")
        return f"{self.metric.title} ({self.metric.unit}); " + "; ".join(parts)


def fmt(value: float) -> str:
    if value == 0 or abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 1:
        return f"{value:.1f}"
    return f"{value:.3g}"


def _ceiling(value: float) -> float:
    """A round top for the y axis (1, 2 or 5 times a power of ten) at or above `value`."""
    if value <= 0:
        return 1.0
    magnitude = 10.0 ** math.floor(math.log10(value))
    return next(magnitude * f for f in (1, 2, 5, 10) if magnitude * f >= value)


def _time(at: str) -> str:
    return datetime.fromisoformat(at).strftime("%H:%M")


def chart(metric: Metric, points: Mapping[str, Sequence[Mapping[str, Any]]]) -> Chart:
    """One chart of `metric` from `summary.series(...)["points"]` (scheduler -> buckets)."""
    values = {
        name: [
            None if p.get(metric.key) is None else float(p[metric.key]) * metric.scale
            for p in buckets
        ]
        for name, buckets in points.items()
    }
    top = _ceiling(max((v for vs in values.values() for v in vs if v is not None), default=0))
    count = max((len(b) for b in points.values()), default=0)
    span_x = WIDTH - RIGHT - LEFT
    span_y = HEIGHT - BOTTOM - TOP

    def x_of(index: int) -> float:
        return round(LEFT + span_x * (index / max(1, count - 1)), 1)

    def y_of(value: float) -> float:
        return round(TOP + span_y * (1 - value / top), 1)

    lines = []
    for name, buckets in points.items():
        drawn = [
            Point(x_of(index), y_of(value), value, _time(buckets[index]["at"]))
            for index, value in enumerate(values[name])
            if value is not None
        ]
        # A bucket without a pass is no point, and the line spans it: passes come every few
        # minutes, not every bucket, and a line of dots would read worse.
        path = " ".join(f"{p.x},{p.y}" for p in drawn)
        lines.append(Line(name, path, drawn, drawn[-1].value if drawn else None))
    ticks = [Tick(y_of(top * share), fmt(top * share)) for share in (0, 0.5, 1)]
    first = next(iter(points.values()), [])
    return Chart(
        metric=metric,
        lines=lines,
        ticks=ticks,
        start_label=_time(first[0]["at"]) if first else "",
        end_label=_time(first[-1]["at"]) if first else "",
    )


def charts(points: Mapping[str, Sequence[Mapping[str, Any]]]) -> list[Chart]:
    return [chart(metric, points) for metric in METRICS]
