"""Reading a platform back to settle a delivery that may or may not have been published. Pure:
publishers list what the account posted; `decide` says whether one of those is ours.

A listing is matched by a marker we attached when sending (Slack message metadata), or else by
the exact text posted after the delivery was due. "Not found" is only worth acting on when the
listing is complete (every page since `since` was read, nothing cut off); the caller also waits
until no send of the delivery can still land (see `transitions.reconcile`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Found:
    platform_post_id: str
    url: str | None
    evidence: str  # what matched, for the activity entry


@dataclass(frozen=True, slots=True)
class NotFound:
    evidence: str  # what was read


@dataclass(frozen=True, slots=True)
class CannotTell:
    reason: str


ReadBack = Found | NotFound | CannotTell


@dataclass(frozen=True, slots=True)
class Candidate:
    """One post or message the platform listed for the account."""

    id: str
    text: str
    at: datetime | None  # when the platform says it was posted; None: unknown
    url: str | None = None
    marker: str | None = None  # the marker it carries (Slack metadata), if any


@dataclass(frozen=True, slots=True)
class Listing:
    candidates: tuple[Candidate, ...]
    complete: bool  # every post since `since` is in `candidates`
    where: str  # what was read, in words ("slack channel C1 history")


def decide(
    listing: Listing,
    *,
    text: str,
    since: datetime,
    marker: str | None = None,
    taken: Iterable[str] = (),
) -> ReadBack:
    """Which listed post is this delivery's.

    `marker`: the platform carries one (then only the marker proves a post is ours, and a post
    with our text but no marker is a reason to ask a person). `taken`: platform ids already
    recorded for other deliveries, never ours.
    """
    excluded = set(taken)
    window = [
        c for c in listing.candidates if c.id not in excluded and (c.at is None or c.at >= since)
    ]
    if marker is not None:
        marked = [c for c in window if c.marker == marker]
        if marked:
            first = min(marked, key=lambda c: (c.at is None, c.at or since))
            extra = f" ({len(marked)} carry it)" if len(marked) > 1 else ""
            return Found(
                first.id, first.url, f"{listing.where}: {first.id} carries our marker{extra}"
            )
    same_text = [c for c in window if c.text.strip() == text.strip() and c.marker is None]
    if marker is not None and same_text:
        return CannotTell(
            f"{listing.where}: {len(same_text)} post(s) with the same text but without our marker"
        )
    if marker is None and len(same_text) == 1:
        found = same_text[0]
        return Found(found.id, found.url, f"{listing.where}: {found.id} has the exact text")
    if len(same_text) > 1:
        return CannotTell(f"{listing.where}: {len(same_text)} posts with the same text")
    if not listing.complete:
        return CannotTell(
            f"{listing.where}: the listing does not reach back to {since.isoformat()}"
        )
    return NotFound(f"{listing.where}: nothing with our text since {since.isoformat()}")
