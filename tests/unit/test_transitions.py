"""The delivery state machine, without I/O."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from postpilot.core import outcomes, readback
from postpilot.core.retry import RetryPolicy
from postpilot.core.states import DeliveryStatus
from postpilot.core.transitions import (
    DeliverySnapshot,
    Event,
    Recovery,
    apply_outcome,
    reconcile,
    recover_expired_lease,
)

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
POLICY = RetryPolicy(max_attempts=3, base_delay_seconds=10, max_delay_seconds=100, jitter=0)


def snapshot(attempts: int = 0) -> DeliverySnapshot:
    return DeliverySnapshot(status=DeliveryStatus.CLAIMED, attempts=attempts, due_at=NOW)


def decide(outcome: outcomes.Outcome, attempts: int = 0, recovery: Recovery = Recovery.IDEMPOTENT):
    return apply_outcome(snapshot(attempts), outcome, NOW, policy=POLICY, recovery=recovery)


def test_published_records_platform_ids_and_time() -> None:
    t = decide(outcomes.Published("42", "https://x/42"))
    assert (t.status, t.event, t.attempts) == (DeliveryStatus.PUBLISHED, Event.PUBLISHED, 1)
    assert (t.platform_post_id, t.platform_url, t.published_at) == ("42", "https://x/42", NOW)


def test_rate_limit_reschedules_at_reset_without_spending_an_attempt() -> None:
    reset = NOW + timedelta(minutes=7)
    t = decide(outcomes.RateLimited(until=reset), attempts=2)
    assert t.status is DeliveryStatus.SCHEDULED
    assert t.due_at == reset
    assert t.attempts == 2
    assert t.event is Event.RATE_LIMITED


def test_rate_limit_reset_in_the_past_means_now() -> None:
    t = decide(outcomes.RateLimited(until=NOW - timedelta(hours=1)))
    assert t.due_at == NOW


def test_transient_backs_off_exponentially_then_gives_up() -> None:
    first = decide(outcomes.Transient("503"), attempts=0)
    second = decide(outcomes.Transient("503"), attempts=1)
    assert first.status is second.status is DeliveryStatus.SCHEDULED
    assert first.due_at == NOW + timedelta(seconds=10)
    assert second.due_at == NOW + timedelta(seconds=20)
    last = decide(outcomes.Transient("503"), attempts=2)
    assert last.status is DeliveryStatus.FAILED
    assert last.error == "gave up after 3 attempts: 503"


def test_transient_honours_a_longer_retry_after() -> None:
    t = decide(outcomes.Transient("busy", retry_after_seconds=90))
    assert t.due_at == NOW + timedelta(seconds=90)


def test_permanent_fails_with_the_platform_message() -> None:
    t = decide(outcomes.Permanent("mastodon: Validation failed: Text character limit of 500"))
    assert t.status is DeliveryStatus.FAILED
    assert t.error == "mastodon: Validation failed: Text character limit of 500"


def test_token_expired_fails_and_asks_for_a_reconnect() -> None:
    t = decide(outcomes.TokenExpired("token revoked"))
    assert t.status is DeliveryStatus.FAILED
    assert t.account_needs_reconnect
    assert t.error is not None and "reconnect the account" in t.error


@pytest.mark.parametrize("recovery", [Recovery.IDEMPOTENT, Recovery.VERIFIABLE])
def test_ambiguous_is_retried_where_a_repeat_is_safe(recovery: Recovery) -> None:
    t = decide(outcomes.Ambiguous("read timeout"), recovery=recovery)
    assert t.status is DeliveryStatus.SCHEDULED
    assert t.event is Event.RETRY_SCHEDULED


def test_ambiguous_becomes_unknown_where_a_repeat_could_double_post() -> None:
    t = decide(outcomes.Ambiguous("read timeout"), recovery=Recovery.NONE)
    assert t.status is DeliveryStatus.UNKNOWN
    assert t.error is not None and "resolve it" in t.error


def test_expired_lease_is_republished_only_where_safe() -> None:
    assert recover_expired_lease(snapshot(1), recovery=Recovery.IDEMPOTENT) is None
    assert recover_expired_lease(snapshot(1), recovery=Recovery.VERIFIABLE) is None
    held = recover_expired_lease(snapshot(1), recovery=Recovery.NONE)
    assert held is not None and held.status is DeliveryStatus.UNKNOWN
    assert held.attempts == 1
    never_sent = recover_expired_lease(snapshot(1), recovery=Recovery.NONE, may_have_sent=False)
    assert never_sent is None


def test_jitter_stays_within_its_fraction() -> None:
    policy = RetryPolicy(base_delay_seconds=100, max_delay_seconds=1000, jitter=0.2)
    rng = random.Random(7)
    delays = [policy.backoff(1, rng=rng).total_seconds() for _ in range(200)]
    assert min(delays) >= 80 and max(delays) <= 120
    assert len(set(delays)) > 100


def test_backoff_is_capped() -> None:
    assert POLICY.backoff(30).total_seconds() == 100


@pytest.mark.parametrize(
    "kwargs",
    [{"max_attempts": 0}, {"base_delay_seconds": -1}, {"jitter": 1.0}, {"max_delay_seconds": 1}],
)
def test_policy_rejects_nonsense(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


def unknown(attempts: int = 1) -> DeliverySnapshot:
    return DeliverySnapshot(status=DeliveryStatus.UNKNOWN, attempts=attempts, due_at=NOW)


def test_found_on_the_platform_is_published_with_its_id_and_no_attempt_spent() -> None:
    found = readback.Found(
        "C1:171.5", "https://x/171", "slack history: C1:171.5 carries our marker"
    )
    for settled in (True, False):
        t = reconcile(unknown(2), found, NOW, settled=settled)
        assert t is not None
        assert (t.status, t.event, t.attempts) == (DeliveryStatus.PUBLISHED, Event.RECONCILED, 2)
        assert (t.platform_post_id, t.platform_url, t.published_at) == (
            "C1:171.5",
            "https://x/171",
            NOW,
        )
        assert "carries our marker" in t.detail


def test_not_found_is_published_again_only_once_no_send_can_still_land() -> None:
    missing = readback.NotFound("slack history: nothing since then")
    assert reconcile(unknown(), missing, NOW, settled=False) is None
    t = reconcile(unknown(1), missing, NOW, settled=True)
    assert t is not None
    assert (t.status, t.due_at, t.attempts, t.event) == (
        DeliveryStatus.SCHEDULED,
        NOW,
        1,
        Event.RECONCILED,
    )
    assert "never published" in t.detail and t.platform_post_id is None


def test_cannot_tell_leaves_the_delivery_to_a_person() -> None:
    doubt = readback.CannotTell("missing_scope")
    assert reconcile(unknown(), doubt, NOW, settled=True) is None
