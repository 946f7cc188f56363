"""The delivery state machine: `(delivery, outcome, now) -> new state`. Pure; both schedulers
call it, so they can differ in how they execute but never in what they decide."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from postpilot.core import outcomes, readback
from postpilot.core.retry import RetryPolicy
from postpilot.core.states import DeliveryStatus


class Recovery(StrEnum):
    """How safely a platform lets us repeat an attempt that may already have reached it."""

    IDEMPOTENT = "idempotent"  # a key we choose makes a repeat return the first result
    VERIFIABLE = "verifiable"  # a repeat is refused as a duplicate that we can read as success
    NONE = "none"  # a repeat may double-post: never repeat blindly


class Event(StrEnum):
    """Activity-log events. Values are stored."""

    CREATED = "created"
    UPDATED = "updated"
    PUBLISHED = "published"
    RETRY_SCHEDULED = "retry_scheduled"
    RATE_LIMITED = "rate_limited"
    FAILED = "failed"
    UNKNOWN = "unknown"
    CANCELLED = "cancelled"
    RESOLVED = "resolved"
    LEASE_RECOVERED = "lease_recovered"
    RECONCILED = "reconciled"  # settled by reading the platform back


@dataclass(frozen=True, slots=True)
class DeliverySnapshot:
    """What the state machine needs to know about a delivery."""

    status: DeliveryStatus
    attempts: int
    due_at: datetime


@dataclass(frozen=True, slots=True)
class Transition:
    status: DeliveryStatus
    attempts: int
    due_at: datetime
    event: Event
    detail: str
    error: str | None = None
    platform_post_id: str | None = None
    platform_url: str | None = None
    published_at: datetime | None = None
    account_needs_reconnect: bool = False


def apply_outcome(
    delivery: DeliverySnapshot,
    outcome: outcomes.Outcome,
    now: datetime,
    *,
    policy: RetryPolicy,
    recovery: Recovery,
    rng: random.Random | None = None,
) -> Transition:
    """Decide the delivery's next state after one publish attempt."""
    attempts = delivery.attempts + 1
    match outcome:
        case outcomes.Published(platform_post_id=post_id, url=url, already_existed=existed):
            detail = "published" + (" (the platform already had it)" if existed else "")
            return Transition(
                status=DeliveryStatus.PUBLISHED,
                attempts=attempts,
                due_at=delivery.due_at,
                event=Event.PUBLISHED,
                detail=detail,
                platform_post_id=post_id,
                platform_url=url,
                published_at=now,
            )
        case outcomes.RateLimited(until=until, reason=reason):
            # A rate limit is the platform asking us to wait, not a failure: no attempt spent.
            return Transition(
                status=DeliveryStatus.SCHEDULED,
                attempts=delivery.attempts,
                due_at=max(until, now),
                event=Event.RATE_LIMITED,
                detail=f"{reason}; rescheduled for {max(until, now).isoformat()}",
                error=reason,
            )
        case outcomes.TokenExpired(reason=reason):
            message = f"{reason}: reconnect the account, then retry this post"
            return Transition(
                status=DeliveryStatus.FAILED,
                attempts=attempts,
                due_at=delivery.due_at,
                event=Event.FAILED,
                detail=message,
                error=message,
                account_needs_reconnect=True,
            )
        case outcomes.Permanent(reason=reason):
            return Transition(
                status=DeliveryStatus.FAILED,
                attempts=attempts,
                due_at=delivery.due_at,
                event=Event.FAILED,
                detail=reason,
                error=reason,
            )
        case outcomes.Ambiguous(reason=reason) if recovery is Recovery.NONE:
            return _unknown(delivery, attempts, reason)
        case outcomes.Ambiguous(reason=reason):
            return _retry_or_fail(delivery, attempts, reason, None, now, policy, rng)
        case outcomes.Transient(reason=reason, retry_after_seconds=retry_after):
            return _retry_or_fail(delivery, attempts, reason, retry_after, now, policy, rng)
    raise TypeError(f"not an outcome: {outcome!r}")


def recover_expired_lease(
    delivery: DeliverySnapshot,
    *,
    recovery: Recovery,
    may_have_sent: bool = True,
    part: str | None = None,
) -> Transition | None:
    """A delivery was reclaimed after its previous holder's lease ran out.

    Return None when it is safe to publish again (the platform deduplicates, or the previous
    holder provably never sent it), or the `unknown` transition when a repeat could double-post.
    `part` names the one part of a thread or first comment that may have been sent (e.g.
    "part 2 of 3"), when it is known.
    """
    if recovery is not Recovery.NONE or not may_have_sent:
        return None
    where = f" while sending {part}" if part else " mid-publish"
    return _unknown(
        delivery,
        delivery.attempts,
        f"the scheduler holding this delivery stopped{where} and the platform cannot "
        "deduplicate a repeat",
    )


def reconcile(
    delivery: DeliverySnapshot,
    answer: readback.ReadBack,
    now: datetime,
    *,
    settled: bool,
) -> Transition | None:
    """Settle a delivery that may have reached the platform from what reading it back said.

    Found: published, with the platform's id. NotFound: publish again now, but only once
    `settled` (no send of it can still land on the platform: its pass is gone and the platform
    has had time to show it), else a late post could still appear and a retry would double it.
    None: we cannot tell, leave it to a later look or to a person. No attempt is spent.
    """
    match answer:
        case readback.Found(platform_post_id=post_id, url=url, evidence=evidence):
            return Transition(
                status=DeliveryStatus.PUBLISHED,
                attempts=delivery.attempts,
                due_at=delivery.due_at,
                event=Event.RECONCILED,
                detail=f"found on the platform, so it was published: {evidence}",
                platform_post_id=post_id,
                platform_url=url,
                published_at=now,
            )
        case readback.NotFound(evidence=evidence) if settled:
            return Transition(
                status=DeliveryStatus.SCHEDULED,
                attempts=delivery.attempts,
                due_at=now,
                event=Event.RECONCILED,
                detail=f"not on the platform, so it was never published; publishing it again "
                f"now: {evidence}",
            )
    return None


def _unknown(delivery: DeliverySnapshot, attempts: int, reason: str) -> Transition:
    message = (
        f"{reason}; it may or may not have been published: check the account, then resolve it "
        "as published or retry"
    )
    return Transition(
        status=DeliveryStatus.UNKNOWN,
        attempts=attempts,
        due_at=delivery.due_at,
        event=Event.UNKNOWN,
        detail=message,
        error=message,
    )


def _retry_or_fail(
    delivery: DeliverySnapshot,
    attempts: int,
    reason: str,
    retry_after: float | None,
    now: datetime,
    policy: RetryPolicy,
    rng: random.Random | None,
) -> Transition:
    if not policy.may_retry(attempts):
        message = f"gave up after {attempts} attempts: {reason}"
        return Transition(
            status=DeliveryStatus.FAILED,
            attempts=attempts,
            due_at=delivery.due_at,
            event=Event.FAILED,
            detail=message,
            error=message,
        )
    delay = policy.backoff(attempts, rng=rng)
    if retry_after is not None:
        delay = max(delay, delay.__class__(seconds=retry_after))
    due = now + delay
    return Transition(
        status=DeliveryStatus.SCHEDULED,
        attempts=attempts,
        due_at=due,
        event=Event.RETRY_SCHEDULED,
        detail=f"attempt {attempts} failed ({reason}); retrying at {due.isoformat()}",
        error=reason,
    )
