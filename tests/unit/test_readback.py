"""Matching a platform's listing to a delivery, without I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from postpilot.core import readback
from postpilot.core.readback import Candidate, Listing

DUE = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
AFTER = DUE + timedelta(seconds=5)
BEFORE = DUE - timedelta(hours=1)


def listing(*candidates: Candidate, complete: bool = True) -> Listing:
    return Listing(tuple(candidates), complete=complete, where="feed")


def test_our_marker_proves_it_even_among_the_same_text() -> None:
    ours = Candidate("2", "hello", AFTER, url="u2", marker="d1")
    answer = readback.decide(
        listing(Candidate("1", "hello", AFTER, marker="d0"), ours),
        text="hello",
        since=DUE,
        marker="d1",
    )
    assert answer == readback.Found("2", "u2", "feed: 2 carries our marker")


def test_same_text_without_our_marker_cannot_be_told_apart() -> None:
    answer = readback.decide(
        listing(Candidate("1", "hello", AFTER)), text="hello", since=DUE, marker="d1"
    )
    assert isinstance(answer, readback.CannotTell) and "without our marker" in answer.reason


def test_exact_text_in_the_window_is_found_where_there_is_no_marker() -> None:
    answer = readback.decide(
        listing(Candidate("1", "hello", BEFORE), Candidate("2", " hello\n", AFTER)),
        text="hello",
        since=DUE,
    )
    assert isinstance(answer, readback.Found) and answer.platform_post_id == "2"


def test_two_posts_with_our_text_cannot_be_told_apart_unless_one_is_taken() -> None:
    both = listing(Candidate("1", "hello", AFTER), Candidate("2", "hello", AFTER))
    assert isinstance(readback.decide(both, text="hello", since=DUE), readback.CannotTell)
    answer = readback.decide(both, text="hello", since=DUE, taken={"1"})
    assert isinstance(answer, readback.Found) and answer.platform_post_id == "2"


def test_not_found_needs_a_complete_listing() -> None:
    other = Candidate("1", "something else", AFTER)
    complete = readback.decide(listing(other), text="hello", since=DUE)
    assert isinstance(complete, readback.NotFound)
    partial = readback.decide(listing(other, complete=False), text="hello", since=DUE)
    assert isinstance(partial, readback.CannotTell) and "does not reach back" in partial.reason


def test_a_post_older_than_the_window_is_not_ours() -> None:
    answer = readback.decide(listing(Candidate("1", "hello", BEFORE)), text="hello", since=DUE)
    assert isinstance(answer, readback.NotFound)
