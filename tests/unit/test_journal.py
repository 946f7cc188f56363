"""The in-flight journal: what a dead pass may have sent, read back from disk."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from pathlib import Path

from postpilot.core.states import DeliveryStatus
from postpilot.core.transitions import Event, Transition
from postpilot.scheduler.journal import InDoubt, InFlightJournal, in_doubt


async def test_marked_deliveries_may_have_been_sent_and_others_not(tmp_path: Path) -> None:
    journal = InFlightJournal(tmp_path / "journal")
    await journal.begin("pass-1")
    await journal.mark("pass-1", "d1")
    assert await journal.may_have_sent("pass-1", "d1")
    assert not await journal.may_have_sent("pass-1", "d2")
    await journal.end("pass-1")
    assert await journal.may_have_sent("pass-1", "d2"), "no journal: assume it may have been sent"


async def test_a_pass_from_elsewhere_is_treated_as_may_have_sent(tmp_path: Path) -> None:
    journal = InFlightJournal(tmp_path)
    assert await journal.may_have_sent("never-seen", "d1")
    assert await journal.may_have_sent(None, "d1")
    await journal.mark("no-begin", "d1")  # marks without a begin line prove nothing
    assert await journal.may_have_sent("no-begin", "d2")


def test_sweep_removes_only_old_journals(tmp_path: Path) -> None:
    old, new = tmp_path / "old.log", tmp_path / "new.log"
    old.write_text("begin\n")
    new.write_text("begin\n")
    long_ago = time.time() - 2 * 86_400
    os.utime(old, (long_ago, long_ago))
    InFlightJournal(tmp_path).sweep()
    assert not old.exists() and new.exists()


async def test_outcomes_the_database_did_not_take_are_read_back(tmp_path: Path) -> None:
    journal = InFlightJournal(tmp_path)
    now = datetime(2026, 11, 30, 12, tzinfo=UTC)
    published = Transition(
        status=DeliveryStatus.PUBLISHED,
        attempts=1,
        due_at=now,
        event=Event.PUBLISHED,
        detail="published",
        platform_post_id="42",
        platform_url="https://example.org/42",
        published_at=now,
    )
    await journal.begin("pass-2")
    await journal.mark("pass-2", "d1")
    await journal.keep_outcomes("pass-2", [("d1", published)])
    record = await journal.read("pass-2")
    assert record is not None
    assert record.sending == {"d1"}
    assert record.outcomes == {"d1": published}


async def test_a_torn_or_unknown_line_counts_as_may_have_sent(tmp_path: Path) -> None:
    (tmp_path / "pass-3.log").write_text("begin\nsending d1\nsend")
    journal = InFlightJournal(tmp_path)
    assert await journal.may_have_sent("pass-3", "d1")
    assert not await journal.may_have_sent("pass-3", "d2")
    record = await journal.read("pass-3")
    assert record is not None and "send" in record.sending


async def test_the_part_last_marked_is_in_doubt_only_until_it_is_recorded(tmp_path: Path) -> None:
    journal = InFlightJournal(tmp_path)
    await journal.begin("pass-4")
    await journal.mark("pass-4", "thread", 0)
    await journal.mark("pass-4", "thread", 1)
    await journal.mark("pass-4", "plain")
    record = await journal.read("pass-4")
    assert record is not None
    assert record.sending == {"thread", "plain"} and record.parts == {"thread": 1}
    assert in_doubt(record, "thread", {0}) == InDoubt(1), "sent, maybe, and not recorded"
    assert in_doubt(record, "thread", {0, 1}) is None, "recorded: resume after it"
    assert in_doubt(record, "plain") == InDoubt()
    assert in_doubt(record, "other", set()) is None, "never marked: never sent"


def test_a_mark_without_a_part_leaves_the_whole_delivery_in_doubt(tmp_path: Path) -> None:
    """An older version's journal (no part), or a whole-delivery mark after a part's."""
    (tmp_path / "pass-5.log").write_text("begin\nsending d1\nsending d2 0\nsending d2\n")
    record = InFlightJournal(tmp_path)._read("pass-5")
    assert record is not None and record.parts == {}
    assert in_doubt(record, "d1", {0, 1}) == InDoubt()
    assert in_doubt(record, "d2", {0}) == InDoubt()


def test_without_a_journal_only_the_first_part_not_recorded_is_in_doubt() -> None:
    assert in_doubt(None, "d1", {0, 1}) == InDoubt(2)
    assert in_doubt(None, "d1", set()) == InDoubt(), "nothing recorded: the post itself"
    assert in_doubt(None, "d1") == InDoubt()
