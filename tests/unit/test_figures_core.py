"""The shared figures, each against values worked out by hand: outcome counts and rates, ratios,
throughput and per-delivery costs, means, percentiles and how two runs compare."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest

from postpilot.core import figures
from postpilot.core.figures import Change, Outcomes


@dataclass
class _Report:
    """Any object with the five counts is enough (a pass report, stored figures, a run)."""

    published: int = 0
    failed: int = 0
    retried: int = 0
    rate_limited: int = 0
    unknown: int = 0
    released: int = 0
    lost_lease: int = 0


def test_outcomes_are_every_decision_and_nothing_handed_back() -> None:
    report = _Report(
        published=7, failed=2, retried=3, rate_limited=4, unknown=1, released=5, lost_lease=6
    )
    assert figures.outcomes(report) == 17


@pytest.mark.parametrize(
    ("kind", "is_error", "ends_a_delivery"),
    [
        ("published", False, True),
        ("failed", True, True),
        ("retried", True, False),
        ("rate_limited", False, False),  # flow control: it waits, then goes out
        ("unknown", True, True),
    ],
)
def test_which_outcomes_are_errors_and_which_end_a_delivery(
    kind: str, is_error: bool, ends_a_delivery: bool
) -> None:
    one = Outcomes(**{kind: 1})
    assert figures.outcomes(one) == 1
    assert figures.errors(one) == int(is_error)
    assert figures.finished(one) == int(ends_a_delivery)
    assert figures.error_rate(one) == float(is_error)
    assert figures.success_rate(one) == float(kind == "published")


def test_rates_of_a_mixed_pass() -> None:
    report = _Report(published=14, failed=1, retried=2, rate_limited=2, unknown=1)
    assert figures.error_rate(report) == pytest.approx(4 / 20)
    assert figures.success_rate(report) == pytest.approx(14 / 20)


def test_rates_of_no_decision_are_unknown_not_zero() -> None:
    nothing = _Report(released=3, lost_lease=1)
    assert figures.outcomes(nothing) == 0
    assert figures.error_rate(nothing) is None
    assert figures.success_rate(nothing) is None


@pytest.mark.parametrize(
    ("part", "whole", "expected"),
    [(1, 4, 0.25), (0, 4, 0.0), (3, 0, None), (None, 4, None), (3, None, None), (2.5, 0.5, 5.0)],
)
def test_ratio(part: float | None, whole: float | None, expected: float | None) -> None:
    assert figures.ratio(part, whole) == expected


def test_hit_rate() -> None:
    assert figures.hit_rate(15, 5) == 0.75
    assert figures.hit_rate(0, 3) == 0.0
    assert figures.hit_rate(0, 0) is None


def test_throughput_is_deliveries_per_second() -> None:
    assert figures.throughput(20, 2.0) == 10.0
    assert figures.throughput(0, 2.0) == 0.0
    assert figures.throughput(5, 0.0) is None


def test_per_delivery_spreads_a_total() -> None:
    assert figures.per_delivery(1200.0, 10) == 120.0
    assert figures.per_delivery(8, 20) == 0.4
    assert figures.per_delivery(3, 0) is None


def test_mean() -> None:
    assert figures.mean([1.0, 2.0, 6.0]) == 3.0
    assert figures.mean([42.0]) == 42.0
    assert figures.mean([]) is None


TEN = [float(v) for v in (7, 3, 1, 10, 2, 9, 4, 8, 6, 5)]  # order does not matter


@pytest.mark.parametrize(
    ("q", "expected"),
    [(0, 1.0), (25, 3.25), (50, 5.5), (95, 9.55), (99, 9.91), (100, 10.0)],
)
def test_percentile_interpolates_between_closest_ranks(q: float, expected: float) -> None:
    assert figures.percentile(TEN, q) == pytest.approx(expected)


def test_percentile_edges() -> None:
    assert figures.percentile([], 50) is None
    assert figures.percentile([42.0], 0) == 42.0
    assert figures.percentile([42.0], 99) == 42.0
    assert figures.percentile([1.0, 3.0], 50) == 2.0
    assert figures.percentile([5.0] * 7, 95) == 5.0
    for q in (-1, 100.5, 101):
        with pytest.raises(ValueError, match="0-100"):
            figures.percentile([1.0], q)


def test_percentile_does_not_reorder_its_input() -> None:
    values = [3.0, 1.0, 2.0]
    figures.percentile(values, 50)
    assert values == [3.0, 1.0, 2.0]


def test_median_is_the_50th_percentile() -> None:
    assert figures.median(TEN) == 5.5
    assert figures.median([4.0, 1.0, 9.0]) == 4.0
    assert figures.median([]) is None


def test_change_of_a_figure_where_lower_is_better() -> None:
    change = Change(before=200.0, after=50.0, better="lower")
    assert change.ratio == 0.25
    assert change.percent == -75.0
    assert change.factor == 4.0
    assert change.improved is True
    assert change.improvement_percent == 75.0


def test_change_of_a_figure_where_higher_is_better() -> None:
    change = Change(before=10.0, after=40.0, better="higher")
    assert change.ratio == 4.0
    assert change.percent == 300.0
    assert change.factor == 4.0
    assert change.improved is True
    assert change.improvement_percent == 300.0


@pytest.mark.parametrize(
    ("before", "after", "better", "improvement"),
    [(100.0, 150.0, "lower", -50.0), (40.0, 10.0, "higher", -75.0)],
)
def test_a_regression_is_a_negative_improvement(
    before: float, after: float, better: figures.Better, improvement: float
) -> None:
    change = Change(before, after, better)
    assert change.improved is False
    assert change.improvement_percent == improvement


def test_rates_change_in_points_signed_toward_better() -> None:
    errors = Change(before=0.10, after=0.01, better="lower")
    assert errors.points == pytest.approx(-9.0)
    assert errors.improvement_points == pytest.approx(9.0)
    assert errors.improved is True
    success = Change(before=1.0, after=0.7, better="higher")
    assert success.points == pytest.approx(-30.0)
    assert success.improvement_points == pytest.approx(-30.0)
    assert success.improved is False


@pytest.mark.parametrize("better", ["lower", "higher"])
def test_no_change(better: figures.Better) -> None:
    same = Change(before=5.0, after=5.0, better=better)
    assert (same.ratio, same.percent, same.points, same.factor) == (1.0, 0.0, 0.0, 1.0)
    assert same.improved is False
    assert same.improvement_percent in (0.0, -0.0) and same.improvement_points in (0.0, -0.0)


def test_change_from_zero_has_no_ratio_nor_percent() -> None:
    change = Change(before=0.0, after=5.0, better="lower")
    assert change.ratio is None and change.percent is None and change.factor is None
    assert change.improvement_percent is None
    assert change.improvement_points == -500.0  # a rate from 0 to 5 (out of 1) still has points
    assert change.improved is False


def test_change_to_zero_is_a_full_cut_with_no_factor() -> None:
    change = Change(before=8.0, after=0.0, better="lower")
    assert change.ratio == 0.0 and change.percent == -100.0 and change.factor is None
    assert change.improvement_percent == 100.0


def test_factor_reads_the_same_both_ways() -> None:
    down = Change(before=1000.0, after=200.0, better="lower")
    up = Change(before=200.0, after=1000.0, better="higher")
    assert down.factor == up.factor == 5.0
    assert math.isclose(Change(3.0, 1.0, "lower").factor or 0, 3.0)


def test_a_change_needs_both_runs() -> None:
    assert Change.between(None, 1.0, "lower") is None
    assert Change.between(1.0, None, "higher") is None
    assert Change.between(None, None, "lower") is None
    assert Change.between(2.0, 1.0, "lower") == Change(2.0, 1.0, "lower")


@pytest.mark.parametrize(
    ("first_pass", "since_start", "phase"),
    [
        (True, 3600.0, "cold_start"),  # the process's first pass, however late it came
        (False, 299.9, "cold_start"),  # within the warm-up
        (False, 300.0, "steady_state"),
    ],
)
def test_cache_phase_is_cold_for_a_first_pass_or_within_the_warm_up(
    first_pass: bool, since_start: float, phase: str
) -> None:
    found = figures.cache_phase(
        first_pass=first_pass, since_start_seconds=since_start, warmup_seconds=300
    )
    assert found == phase


def test_cache_lookups_add_up_and_say_their_rate() -> None:
    total = figures.CacheLookups(2, 8) + figures.CacheLookups(19, 1)
    assert total.lookups == 30 and total.hit_rate == pytest.approx(0.7)
    assert figures.CacheLookups().public() == {"hits": 0, "misses": 0, "hit_rate": None}
