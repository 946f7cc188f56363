"""The parts of a post beyond the post itself: a thread's replies or a first comment. Plain
data, shared by the engine (which stores what was sent) and the publishers (which send)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass

# Where a post may be a thread (each part replies to the one before) and where it may carry a
# first comment (a comment on the published post). Only platforms whose publisher sends them.
THREAD_PLATFORMS: frozenset[str] = frozenset({"bluesky", "mastodon", "threads", "x"})
COMMENT_PLATFORMS: frozenset[str] = frozenset({"facebook", "instagram", "linkedin"})


@dataclass(frozen=True, slots=True)
class Part:
    """What one part says. Index 0 is the post itself; 1.. its replies, or its first comment."""

    text: str
    media_urls: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SentPart:
    """A part the platform took: its id, what a reply must point at (Bluesky's cid in `ref`)."""

    index: int
    platform_post_id: str
    url: str | None = None
    ref: str | None = None
    existed: bool = False  # the platform said it had it already (an idempotent replay)


# Awaited right after each part is taken, before the next is sent: records it durably so a
# retry resumes after it. Raises when it cannot record.
PartRecorder = Callable[[SentPart], Awaitable[None]]

# Set while one part of a post with parts is being sent (its index): the scheduler's hook before
# a publishing request reads it, so its journal names the part that may reach the platform.
sending_part: ContextVar[int | None] = ContextVar("sending_part", default=None)
