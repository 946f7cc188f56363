"""What a pass began sending, and what it decided, kept durably on this machine.

A pass that dies leaves its claimed deliveries to be taken over when its lease ends. Where the
platform cannot deduplicate a repeat, the next holder must know whether an attempt may have
reached it. Writing that to the database before every send would cost a statement per delivery,
so the pass appends to a local file (fsynced) instead:

- `begin`: written before the pass claims anything, so a pass that dies at any point after its
  claim leaves a file;
- `sending <id>`: written right before the request that publishes (not before token refreshes,
  media or uploads, which cannot publish); `sending <id> <part>` for a thread's reply or a first
  comment, before each part's request (part 0 is the post itself);
- `outcome <id> <json>`: written only when the database could not take the pass's outcomes, so
  the next holder can write them instead of sending again.

Reading it back, for a delivery taken over from that pass:
- the file has an outcome for it: that outcome is written, nothing is sent;
- the file lists it as sending: it may have been sent (`unknown` where the platform cannot
  deduplicate); for a delivery with parts, only the last part named may have been sent, and
  only if no row of `delivery_parts` records it (parts go in order, each recorded before the
  next is marked): recorded, the next holder resumes after it without doubt;
- the file exists and does not list it: it was never sent, so it is published normally;
- no file (the pass ran on another machine): it may have been sent, to be safe.

The file is removed once the pass has written its outcomes. Files older than a day are swept.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from postpilot.core.states import DeliveryStatus
from postpilot.core.transitions import Event, Transition

BEGIN = "begin"
SENDING = "sending"
OUTCOME = "outcome"
SWEEP_AFTER_SECONDS = 86_400.0


@dataclass(frozen=True, slots=True)
class PassRecord:
    """What one pass's journal says."""

    pass_id: str
    sending: frozenset[str]
    outcomes: Mapping[str, Transition] = field(default_factory=dict)
    # The part last marked as sending, for a delivery whose last mark named one.
    parts: Mapping[str, int] = field(default_factory=dict)


class InFlightJournal:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    async def begin(self, pass_id: str) -> None:
        await asyncio.to_thread(self._append, pass_id, [BEGIN])

    async def mark(self, pass_id: str, delivery_id: str, part: int | None = None) -> None:
        """Returns only once the mark is on disk: the caller sends after it. `part` names the
        part of a thread or first comment about to be sent."""
        line = f"{SENDING} {delivery_id}" if part is None else f"{SENDING} {delivery_id} {part}"
        await asyncio.to_thread(self._append, pass_id, [line])

    async def keep_outcomes(self, pass_id: str, decided: Iterable[tuple[str, Transition]]) -> None:
        """The database did not take these outcomes: keep them for whoever takes over."""
        lines = [
            f"{OUTCOME} {delivery_id} {json.dumps(encode_transition(transition))}"
            for delivery_id, transition in decided
        ]
        if lines:
            await asyncio.to_thread(self._append, pass_id, lines)

    async def read(self, pass_id: str | None) -> PassRecord | None:
        """The pass's record, or None when this machine has no journal of it."""
        if not pass_id:
            return None
        return await asyncio.to_thread(self._read, pass_id)

    async def may_have_sent(self, pass_id: str | None, delivery_id: str) -> bool:
        return may_have_sent(await self.read(pass_id), delivery_id)

    async def end(self, pass_id: str) -> None:
        await asyncio.to_thread(self._path(pass_id).unlink, True)

    def sweep(self) -> None:
        if not self.directory.is_dir():
            return
        cutoff = time.time() - SWEEP_AFTER_SECONDS
        for path in self.directory.glob("*.log"):
            with contextlib.suppress(OSError):
                if path.stat().st_mtime < cutoff:
                    path.unlink()

    def _path(self, pass_id: str) -> Path:
        if not pass_id.replace("-", "").isalnum():
            raise ValueError(f"not a pass id: {pass_id!r}")
        return self.directory / f"{pass_id}.log"

    def _append(self, pass_id: str, lines: list[str]) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self._path(pass_id)
        created = not path.exists()
        with path.open("a", encoding="utf-8") as journal:
            journal.write("".join(f"{line}\n" for line in lines))
            journal.flush()
            os.fsync(journal.fileno())
        if created:  # make the new directory entry itself durable
            fd = os.open(self.directory, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def _read(self, pass_id: str) -> PassRecord | None:
        try:
            lines = self._path(pass_id).read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return None
        if not lines or lines[0] != BEGIN:
            return None
        sending: set[str] = set()
        decided: dict[str, Transition] = {}
        parts: dict[str, int] = {}
        for line in lines[1:]:
            kind, _, rest = line.partition(" ")
            if kind == SENDING:
                delivery_id, _, part = rest.partition(" ")
                sending.add(delivery_id)
                # The last mark of a delivery counts; one without a part (an older version's,
                # or a whole-delivery mark) leaves the whole delivery in doubt.
                if part.isdigit():
                    parts[delivery_id] = int(part)
                else:
                    parts.pop(delivery_id, None)
            elif kind == OUTCOME:
                delivery_id, _, encoded = rest.partition(" ")
                with contextlib.suppress(ValueError, KeyError, TypeError):
                    decided[delivery_id] = decode_transition(json.loads(encoded))
            else:  # a torn last line, or a journal of an older version: may have sent
                sending.add(line)
        return PassRecord(
            pass_id=pass_id, sending=frozenset(sending), outcomes=decided, parts=parts
        )


def may_have_sent(record: PassRecord | None, delivery_id: str) -> bool:
    """No journal of the pass on this machine, or it lists the delivery as sending."""
    return record is None or delivery_id in record.sending


@dataclass(frozen=True, slots=True)
class InDoubt:
    """What of a delivery may have reached the platform without a record of it: `part` (its
    index), or the whole delivery when None."""

    part: int | None = None


def in_doubt(
    record: PassRecord | None, delivery_id: str, recorded: Collection[int] | None = None
) -> InDoubt | None:
    """What a dead pass may have sent of a delivery and not recorded, or None when nothing.
    `recorded`: the indexes of its parts in `delivery_parts` (None for a delivery without
    parts). Parts are sent in order, each recorded before the next is marked, so at most one
    part is in doubt: the last one marked, unless it is recorded; without a journal, the first
    part not recorded. Pure."""
    if recorded is None:
        return InDoubt() if may_have_sent(record, delivery_id) else None
    if record is None:
        return InDoubt(_first_missing(recorded) if recorded else None)
    if delivery_id not in record.sending:
        return None
    part = record.parts.get(delivery_id)
    if part is None:
        return InDoubt()
    return None if part in recorded else InDoubt(part)


def _first_missing(recorded: Collection[int]) -> int:
    index = 0
    while index in recorded:
        index += 1
    return index


def encode_transition(transition: Transition) -> dict[str, Any]:
    return {
        "status": transition.status.value,
        "attempts": transition.attempts,
        "due_at": transition.due_at.isoformat(),
        "event": transition.event.value,
        "detail": transition.detail,
        "error": transition.error,
        "platform_post_id": transition.platform_post_id,
        "platform_url": transition.platform_url,
        "published_at": transition.published_at.isoformat() if transition.published_at else None,
        "account_needs_reconnect": transition.account_needs_reconnect,
    }


def decode_transition(data: dict[str, Any]) -> Transition:
    published_at = data.get("published_at")
    return Transition(
        status=DeliveryStatus(data["status"]),
        attempts=int(data["attempts"]),
        due_at=datetime.fromisoformat(data["due_at"]),
        event=Event(data["event"]),
        detail=str(data["detail"]),
        error=data.get("error"),
        platform_post_id=data.get("platform_post_id"),
        platform_url=data.get("platform_url"),
        published_at=datetime.fromisoformat(published_at) if published_at else None,
        account_needs_reconnect=bool(data.get("account_needs_reconnect")),
    )
