"""Send a post and its parts in order, each once: parts an earlier attempt recorded are not sent
again, each part sent is recorded before the next goes out, and an outcome short of the end
names the part it stopped at. The publisher supplies how one part is sent."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from postpilot.core import outcomes
from postpilot.publishers.base import PublishRequest
from postpilot.publishers.parts import Part, SentPart, sending_part

log = logging.getLogger(__name__)

# Sends part `index` given the parts before it (index 0 first), or says why it did not go.
SendPart = Callable[[int, Part, tuple[SentPart, ...]], Awaitable[SentPart | outcomes.Outcome]]


def has_parts(request: PublishRequest) -> bool:
    return bool(request.thread) or request.first_comment is not None


def all_parts(request: PublishRequest) -> tuple[Part, ...]:
    """The post (index 0) then its replies, or its first comment."""
    first = Part(request.text, request.media_urls)
    if request.thread:
        return (first, *request.thread)
    if request.first_comment is not None:
        return (first, Part(request.first_comment))
    return (first,)


def part_key(request: PublishRequest, index: int) -> str:
    """A part's idempotency key: the delivery's for the post itself (so a post without parts
    keeps the key it always had), the delivery's plus the index for the others."""
    return request.idempotency_key if index == 0 else f"{request.idempotency_key}:{index}"


async def publish_parts(request: PublishRequest, send: SendPart) -> outcomes.Outcome:
    """Send what was not sent yet, in order; Published with the post's id once all went."""
    done = {part.index: part for part in request.sent}
    wanted = all_parts(request)
    chain: list[SentPart] = []
    for index, part in enumerate(wanted):
        if (earlier := done.get(index)) is not None:
            chain.append(earlier)
            continue
        token = sending_part.set(index) if len(wanted) > 1 else None
        try:
            result = await send(index, part, tuple(chain))
        finally:
            if token is not None:
                sending_part.reset(token)
        if not isinstance(result, SentPart):
            return _at_part(result, index, len(wanted))
        if request.record_part is not None:
            try:
                await request.record_part(result)
            except Exception as exc:  # the part is out there: never send it blindly again
                log.warning(
                    "a sent part could not be recorded",
                    extra={"delivery_id": request.delivery_id, "error": type(exc).__name__},
                )
                return outcomes.Ambiguous(
                    f"part {index + 1} of {len(wanted)} was sent but could not be recorded"
                )
        chain.append(result)
    root = chain[0]
    return outcomes.Published(
        platform_post_id=root.platform_post_id,
        url=root.url,
        already_existed=all(part.existed for part in chain),
    )


def _at_part(outcome: outcomes.Outcome, index: int, total: int) -> outcomes.Outcome:
    """The outcome of a part with its place in the reason, so a person sees where it stopped."""
    if total == 1:
        return outcome
    where = f"part {index + 1} of {total}"
    match outcome:
        case outcomes.Published() | outcomes.TokenExpired():
            return outcome  # a token is the account's, whichever part met it
        case outcomes.RateLimited(until=until, reason=reason):
            return outcomes.RateLimited(until=until, reason=f"{where}: {reason}")
        case outcomes.Transient(reason=reason, retry_after_seconds=after):
            return outcomes.Transient(f"{where}: {reason}", after)
        case outcomes.Permanent(reason=reason, ours=ours):
            return outcomes.Permanent(f"{where}: {reason}", ours=ours)
        case outcomes.Ambiguous(reason=reason, ours=ours):
            return outcomes.Ambiguous(f"{where}: {reason}", ours=ours)
