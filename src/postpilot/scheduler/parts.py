"""The engine's side of threads and first comments: give a publish request the post's parts and
those an earlier attempt recorded as sent, and record each part the moment it is sent.

A part's row is a fact (the platform took it), not an outcome: it is written whatever the
lease, on its own, before the next part goes out, so that no later attempt (this pass's retry,
another worker after a lease ran out, a person's retry of an `unknown` delivery) sends it again.
The delivery's outcome is still written only under the lease, as for any delivery."""

from __future__ import annotations

from dataclasses import replace

from postpilot.core.transitions import Recovery
from postpilot.publishers import parts as publisher_parts
from postpilot.publishers.base import Publisher, PublishRequest
from postpilot.publishers.parts import Part, SentPart
from postpilot.scheduler import journal
from postpilot.scheduler.runtime import Runtime
from postpilot.store import parts as stored_parts
from postpilot.store.work import WorkItem


def has_parts(item: WorkItem) -> bool:
    """The delivery sends more than its post on its platform (a thread or a first comment)."""
    platform = item.delivery.platform
    if item.post.thread and platform in publisher_parts.THREAD_PLATFORMS:
        return True
    return item.post.first_comment is not None and platform in publisher_parts.COMMENT_PLATFORMS


def recovery_of(item: WorkItem, publisher: Publisher | None) -> Recovery:
    """How safely an attempt of this delivery may be repeated. A thread or first comment on a
    platform whose only guard is its duplicate answer is not repeated blindly: that answer says
    a part is there but not under which id, and the next part must reply to that id."""
    if publisher is None:
        return Recovery.NONE
    if publisher.recovery is Recovery.VERIFIABLE and has_parts(item):
        return Recovery.NONE
    return publisher.recovery


def part_count(item: WorkItem) -> int:
    """How many parts the delivery sends: the post and its replies, or the post and its comment."""
    if not has_parts(item):
        return 1
    if item.delivery.platform in publisher_parts.THREAD_PLATFORMS:
        return 1 + len(item.post.thread)
    return 2


async def in_doubt(
    record: journal.PassRecord | None, item: WorkItem, runtime: Runtime
) -> journal.InDoubt | None:
    """What the dead pass of `record` may have sent of this delivery without recording it. For
    a delivery with parts the journal is read against the parts recorded: a statement, only
    for a delivery the journal does not clear outright."""
    delivery_id = item.delivery.id
    if not has_parts(item) or not journal.may_have_sent(record, delivery_id):
        return journal.in_doubt(record, delivery_id)
    async with runtime.db.engine.connect() as conn:
        stored = await stored_parts.sent_parts(conn, [delivery_id])
    return journal.in_doubt(record, delivery_id, {part.index for part in stored})


async def with_parts(
    request: PublishRequest, item: WorkItem, runtime: Runtime, recorded: set[int] | None = None
) -> PublishRequest:
    """`request` with the post's parts for its platform, what was sent of them, and a recorder.
    A post without parts there costs no statement. `recorded` gets the index of every part
    known to be recorded (stored before, or recorded now)."""
    if not has_parts(item):
        return request
    platform = item.delivery.platform
    thread: tuple[Part, ...] = ()
    comment: str | None = None
    if platform in publisher_parts.THREAD_PLATFORMS:
        thread = tuple(
            Part(str(p.get("text") or ""), tuple(p.get("media_urls") or ()))
            for p in item.post.thread
        )
    else:
        comment = item.post.first_comment
    async with runtime.db.engine.connect() as conn:
        stored = await stored_parts.sent_parts(conn, [item.delivery.id])
    sent = tuple(
        SentPart(s.index, s.platform_post_id, url=s.url, ref=s.platform_ref) for s in stored
    )
    known = recorded if recorded is not None else set()
    known.update(s.index for s in stored)
    delivery_id = item.delivery.id

    async def record(part: SentPart) -> None:
        async with runtime.db.engine.begin() as conn:
            await stored_parts.record_sent(
                conn,
                delivery_id=delivery_id,
                index=part.index,
                platform_post_id=part.platform_post_id,
                platform_ref=part.ref,
                url=part.url,
                now=runtime.now(),
            )
        known.add(part.index)

    return replace(request, thread=thread, first_comment=comment, sent=sent, record_part=record)
