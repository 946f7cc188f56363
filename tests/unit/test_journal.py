"""The in-flight journal: what a dead pass may have sent, read back from disk."""

from __future__ import annotations

import os
import time
from pathlib import Path

from postpilot.scheduler.journal import InFlightJournal


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
