"""Delivery and post states, and how a post's status derives from its deliveries."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum


class DeliveryStatus(StrEnum):
    """The state of one post going to one account. Values are the strings stored in the DB."""

    SCHEDULED = "scheduled"  # waiting for due_at (first attempt or a retry)
    CLAIMED = "claimed"  # leased by a scheduler pass; may be in flight to the platform
    PUBLISHED = "published"
    FAILED = "failed"  # terminal, with a reason a person can act on
    CANCELLED = "cancelled"
    UNKNOWN = "unknown"  # may or may not have reached a platform without idempotency


class PostStatus(StrEnum):
    SCHEDULED = "scheduled"
    PUBLISHING = "publishing"
    PUBLISHED = "published"
    PARTIALLY_PUBLISHED = "partially_published"
    FAILED = "failed"
    CANCELLED = "cancelled"
    NEEDS_ATTENTION = "needs_attention"  # some delivery is unknown: a person must resolve it


class AccountStatus(StrEnum):
    ACTIVE = "active"
    NEEDS_RECONNECT = "needs_reconnect"
    DISABLED = "disabled"


class WorkerState(StrEnum):
    """What a row of the worker heartbeats says. Values are the strings stored in the DB."""

    RUNNING = "running"
    STALLED = "stalled"  # its pass has run past its bound
    STOPPED = "stopped"
    CRON = "cron"  # not a worker: the last pass triggered from outside (HTTP cron, `run-once`)


class AlertStatus(StrEnum):
    FIRING = "firing"
    RESOLVED = "resolved"


def has_started(status: DeliveryStatus, attempts: int) -> bool:
    """Whether a delivery has begun publishing. One cancelled before any attempt (its account
    was deleted) has not: the post's other targets can still be edited."""
    untouched = status in (DeliveryStatus.SCHEDULED, DeliveryStatus.CANCELLED) and attempts == 0
    return not untouched


def derive_post_status(deliveries: Iterable[tuple[DeliveryStatus, int]]) -> PostStatus:
    """Derive a post's status from (status, attempts) of its deliveries.

    A post is still moving while any delivery is scheduled or claimed; once every delivery has
    ended, the mix of published/failed/cancelled decides.
    """
    statuses = [(DeliveryStatus(status), attempts) for status, attempts in deliveries]
    if not statuses:
        return PostStatus.CANCELLED
    kinds = {status for status, _ in statuses}
    if DeliveryStatus.UNKNOWN in kinds:
        return PostStatus.NEEDS_ATTENTION
    if DeliveryStatus.CLAIMED in kinds:
        return PostStatus.PUBLISHING
    if DeliveryStatus.SCHEDULED in kinds:
        started = any(has_started(status, attempts) for status, attempts in statuses)
        return PostStatus.PUBLISHING if started else PostStatus.SCHEDULED
    if kinds == {DeliveryStatus.CANCELLED}:
        return PostStatus.CANCELLED
    if DeliveryStatus.PUBLISHED in kinds:
        if kinds == {DeliveryStatus.PUBLISHED}:
            return PostStatus.PUBLISHED
        return PostStatus.PARTIALLY_PUBLISHED
    return PostStatus.FAILED
