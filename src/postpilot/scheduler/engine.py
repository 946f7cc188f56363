"""Turn one claimed delivery into a decision: publish it (refreshing the token when needed) and
ask the core what follows. Both schedulers call this; they differ only in how they batch."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import datetime

from opentelemetry import trace

from postpilot import logs, tracing
from postpilot.core import outcomes, variants
from postpilot.core.states import AccountStatus
from postpilot.core.transitions import (
    Recovery,
    Transition,
    apply_outcome,
    recover_expired_lease,
)
from postpilot.crypto import CredentialsError
from postpilot.publishers import flow
from postpilot.publishers import parts as publisher_parts
from postpilot.publishers.base import (
    AccountContext,
    Publisher,
    PublishRequest,
    in_flight_per_account,
)
from postpilot.publishers.registry import PUBLISHERS
from postpilot.scheduler import journal, lookups, parts, tokens
from postpilot.scheduler.renewal import Held, Renewals
from postpilot.scheduler.runtime import Runtime
from postpilot.store.work import AccountChange, AccountRecord, Decision, WorkItem

log = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)  # a no-op until tracing is configured (postpilot.tracing)


@dataclass
class Processed:
    decision: Decision
    outcome: str  # outcome kind, or "recovered" when no attempt was made
    duration_ms: float
    account_changes: list[AccountChange] = field(default_factory=list)
    ours: bool = False  # the outcome is our fault, not the platform's (logged as an error)


class PassState:
    """What a pass shares between its deliveries. Which of them its journal lists as sending
    (begun before the claim, marked right before each publishing request). Its accounts' tokens:
    one renewal per account across every worker (see `renewal`), and the freshest credentials
    seen, used by every later delivery. Once an account is known dead (the platform refused to
    renew its token, or rejected a token that cannot be renewed), its other deliveries in the
    pass fail the same way without asking the platform again, exactly as the reference scheduler
    decides after reading the account's stored state."""

    def __init__(
        self, runtime: Runtime, pass_id: str, *, lease_holds: Callable[[], bool] = lambda: True
    ) -> None:
        self._runtime = runtime
        self.pass_id = pass_id
        self._lease_holds = lease_holds
        self.sending: set[str] = set()  # journaled as sending: may have reached the platform
        # For a delivery with parts: the part last journaled as sending, and the parts known to
        # be recorded (by an earlier attempt or this pass), so a stop between parts is no doubt.
        self.part_sending: dict[str, int] = {}
        self.parts_recorded: dict[str, set[int]] = {}
        self._previous: dict[str | None, journal.PassRecord | None] = {}
        self.tokens = Renewals(runtime)
        self.rejected: dict[str, str] = {}  # account id -> why its token is dead

    async def previous_journal(self, pass_id: str | None) -> journal.PassRecord | None:
        """The journal of a pass whose deliveries this pass took over, kept for the pass."""
        if pass_id not in self._previous:
            self._previous[pass_id] = await self._runtime.journal.read(pass_id)
        return self._previous[pass_id]

    async def before_send(self, delivery_id: str) -> None:
        """Record durably that this delivery (the part of it being sent, for a thread or first
        comment) may now reach a platform without idempotency. The pass began its journal
        before it claimed anything.

        Nothing is sent once the lease is at risk, checked before the mark and again after its
        fsync, right before the request: a process that stalled (a loaded machine) must not
        send a thread's next part that a worker taking the delivery over may send too."""
        self._stop_unless_lease_holds()
        part = publisher_parts.sending_part.get()
        await self._runtime.journal.mark(self.pass_id, delivery_id, part)
        self._stop_unless_lease_holds()
        self.sending.add(delivery_id)
        if part is None:
            self.part_sending.pop(delivery_id, None)
        else:
            self.part_sending[delivery_id] = part

    def _stop_unless_lease_holds(self) -> None:
        if not self._lease_holds():
            raise flow.Stop(outcomes.Transient("not sent: the pass's lease was about to run out"))

    def may_have_sent(self, delivery_id: str) -> bool:
        """Something of the delivery may be on the platform without a record of it: it was
        journaled as sending, and not only a part that is recorded since."""
        if delivery_id not in self.sending:
            return False
        part = self.part_sending.get(delivery_id)
        return part is None or part not in self.parts_recorded.get(delivery_id, set())

    async def refresh(self, publisher: Publisher, held: Held) -> Held | outcomes.Outcome:
        """Renewed (or newer stored) credentials for a token about to expire, or the outcome a
        failed renewal means for its deliveries: `TokenExpired` when the platform refused
        (reconnect needed), `Transient` when it could not be reached (try later)."""
        return await self.tokens.before_expiry(publisher, held)


async def process(item: WorkItem, runtime: Runtime, state: PassState) -> Processed:
    publisher = PUBLISHERS.get(item.delivery.platform)
    hook: Callable[[], Awaitable[None]] | None = None
    if publisher is not None and parts.recovery_of(item, publisher) is Recovery.NONE:
        hook = functools.partial(state.before_send, item.delivery.id)
    token = flow.before_publishing_request.set(hook)
    try:
        with (
            logs.context(delivery_id=item.delivery.id),
            tracing.span(
                tracer,
                "postpilot.publish",  # ids and kinds only: never a token or the post's text
                attributes={
                    "postpilot.delivery_id": item.delivery.id,
                    "postpilot.platform": item.delivery.platform,
                },
            ) as span,
        ):
            processed = await _process(item, runtime, state)
            span.set_attribute("postpilot.outcome", processed.outcome)
            return processed
    finally:
        flow.before_publishing_request.reset(token)


def in_flight_cap(platform: str) -> int:
    """How many sends to one account of `platform` a pass may have in flight at once."""
    return in_flight_per_account(PUBLISHERS.get(platform))


def deferred(item: WorkItem, runtime: Runtime, until: datetime, why: str) -> Processed:
    """The decision for a delivery not sent because its account is rate limited until `until`
    (an earlier delivery of the account was told so): rescheduled then, no attempt spent. Only
    for a delivery that was not taken over: one that was goes through `process`, whose
    recovery decides first whether it may be sent at all."""
    assert not item.delivery.recovered
    started = time.perf_counter()
    transition = apply_outcome(
        item.delivery.snapshot,
        outcomes.RateLimited(until=until, reason=why),
        runtime.now(),
        policy=runtime.policy,
        recovery=Recovery.IDEMPOTENT,  # not read for a rate limit: nothing was sent
    )
    return _processed(item, transition, "rate_limited", started, [])


def interrupted(item: WorkItem, runtime: Runtime, state: PassState, why: str) -> Processed:
    """The decision for a delivery whose publish was stopped (timeout, lease about to run out,
    shutdown): `Ambiguous` when its publishing request may have gone out, `Transient` when it
    provably did not (nothing was journaled as sending, or only parts of a thread or first
    comment that are recorded since, on a platform that needs the journal)."""
    started = time.perf_counter()
    publisher = PUBLISHERS.get(item.delivery.platform)
    recovery = parts.recovery_of(item, publisher)
    outcome: outcomes.Outcome
    if recovery is Recovery.NONE and not state.may_have_sent(item.delivery.id):
        parts_went = item.delivery.id in state.sending  # each of them recorded since
        safe = "every part sent is recorded" if parts_went else "nothing was published yet"
        outcome = outcomes.Transient(f"{why}; {safe}")
    else:
        outcome = outcomes.Ambiguous(f"{why} while publishing")
    transition = apply_outcome(
        item.delivery.snapshot, outcome, runtime.now(), policy=runtime.policy, recovery=recovery
    )
    return _processed(item, transition, outcomes.outcome_kind(outcome), started, [])


async def _process(item: WorkItem, runtime: Runtime, state: PassState) -> Processed:
    started = time.perf_counter()
    changes: list[AccountChange] = []
    publisher = PUBLISHERS.get(item.delivery.platform)
    recovery = parts.recovery_of(item, publisher)
    snapshot = item.delivery.snapshot
    if item.delivery.recovered:
        record = await state.previous_journal(item.delivery.previous_claimer)
        if record is not None and (kept := record.outcomes.get(item.delivery.id)):
            # The previous pass decided it but the database did not take its outcome then.
            detail = f"{kept.detail} (written from the journal of pass {record.pass_id})"
            return _processed(item, replace(kept, detail=detail), "recovered", started, changes)
        doubt = await parts.in_doubt(record, item, runtime) if recovery is Recovery.NONE else None
        where = None
        if doubt is not None and doubt.part is not None:
            where = f"part {doubt.part + 1} of {parts.part_count(item)}"
        sent = doubt is not None
        if held := recover_expired_lease(
            snapshot, recovery=recovery, may_have_sent=sent, part=where
        ):
            if lookups.readable(item.delivery.platform):
                # A post found there needs no person. Journaled as sending first: a look that
                # is stopped leaves the delivery in doubt instead of letting it be sent again.
                try:
                    await state.before_send(item.delivery.id)
                except flow.Stop:  # the lease is at risk: no look now; the reconciler looks later
                    return _processed(item, held, "recovered", started, changes)
                if found := await lookups.on_recovery(item, runtime, account_context):
                    return _processed(item, found, "reconciled", started, changes)
            return _processed(item, held, "recovered", started, changes)
    outcome = await _attempt(item, publisher, runtime, state, changes)
    transition = apply_outcome(
        snapshot, outcome, runtime.now(), policy=runtime.policy, recovery=recovery
    )
    if isinstance(outcome, outcomes.TokenExpired):
        state.rejected.setdefault(item.account.id, outcome.reason)
        if not any(c.needs_reconnect for c in changes):
            changes.append(AccountChange(item.account.id, needs_reconnect=outcome.reason))
    ours = isinstance(outcome, outcomes.Permanent | outcomes.Ambiguous) and outcome.ours
    return _processed(item, transition, outcomes.outcome_kind(outcome), started, changes, ours=ours)


def _processed(
    item: WorkItem,
    transition: Transition,
    kind: str,
    started: float,
    changes: list[AccountChange],
    *,
    ours: bool = False,
) -> Processed:
    return Processed(
        decision=Decision(delivery=item.delivery, transition=transition),
        outcome=kind,
        duration_ms=(time.perf_counter() - started) * 1000,
        account_changes=changes,
        ours=ours,
    )


async def _attempt(
    item: WorkItem,
    publisher: Publisher | None,
    runtime: Runtime,
    state: PassState,
    changes: list[AccountChange],
) -> outcomes.Outcome:
    if publisher is None:
        return outcomes.Permanent(
            f"no publisher for platform {item.delivery.platform!r}", ours=True
        )
    if reason := state.rejected.get(item.account.id):
        return outcomes.TokenExpired(reason)
    if item.account.status != AccountStatus.ACTIVE:
        return outcomes.TokenExpired(
            item.account.status_reason
            or f"account {item.account.handle} on {item.account.platform} is {item.account.status}"
        )
    return await _publish(item, publisher, runtime, state, changes)


async def _publish(
    item: WorkItem,
    publisher: Publisher,
    runtime: Runtime,
    state: PassState,
    changes: list[AccountChange],
) -> outcomes.Outcome:
    outcome = await _publish_with_token(item, publisher, runtime, state, changes)
    if (unsaved := state.tokens.unsaved.get(item.account.id)) is not None:
        changes.append(unsaved)  # a renewal the database did not take: written with outcomes
    return outcome


async def _publish_with_token(
    item: WorkItem,
    publisher: Publisher,
    runtime: Runtime,
    state: PassState,
    changes: list[AccountChange],
) -> outcomes.Outcome:
    try:
        held = state.tokens.current(
            Held(account_context(item.account, runtime), item.account.credentials_version)
        )
    except CredentialsError as exc:
        return outcomes.Permanent(str(exc), ours=True)
    if publisher.can_refresh and tokens.due(held.account, runtime.now()):
        renewed = await state.refresh(publisher, held)
        if not isinstance(renewed, Held):
            return _account_outcome(renewed, item, state, changes)
        held = renewed
    request = PublishRequest(
        delivery_id=item.delivery.id,
        idempotency_key=item.delivery.idempotency_key,
        text=variants.text_for(
            text=item.post.text,
            overrides=item.post.overrides,
            account_overrides=item.post.account_overrides,
            platform=item.delivery.platform,
            account_id=item.account.id,
        ),
        media_urls=variants.media_for(
            media_urls=item.post.media_urls,
            account_overrides=item.post.account_overrides,
            account_id=item.account.id,
        ),
        account=held.account,
        scheduled_at=item.delivery.scheduled_at,
        attempt=item.delivery.attempts + 1,
        recovered=item.delivery.recovered,
    )
    recorded = state.parts_recorded.setdefault(item.delivery.id, set())
    request = await parts.with_parts(request, item, runtime, recorded)  # thread, first comment
    outcome = await _guarded_publish(publisher, request, runtime)
    if not isinstance(outcome, outcomes.TokenExpired):
        return outcome
    # Rejected: retry once with the freshest token (stored by another worker or delivery, or
    # renewed now) before anything is declared dead.
    retry = await state.tokens.after_rejection(publisher, held)
    if retry is None:  # nothing newer, and the platform cannot renew: the rejection stands
        return _account_outcome(outcome, item, state, changes)
    if not isinstance(retry, Held):
        return _account_outcome(retry, item, state, changes)
    # With the parts the first try sent: those are not sent again.
    request = await parts.with_parts(
        replace(request, account=retry.account), item, runtime, recorded
    )
    again = await _guarded_publish(publisher, request, runtime)
    if isinstance(again, outcomes.TokenExpired) and publisher.can_refresh:
        # A token issued moments ago was rejected: the renewal works, so the account is not
        # dead; the delivery tries again later (and renews again if it must).
        return outcomes.Transient(f"{again.reason} (just after renewing the token)")
    return _account_outcome(again, item, state, changes)


def _account_outcome(
    outcome: outcomes.Outcome, item: WorkItem, state: PassState, changes: list[AccountChange]
) -> outcomes.Outcome:
    """A `TokenExpired` outcome marks the account for reconnecting, but only while the
    credentials it was decided on are still the stored ones."""
    if isinstance(outcome, outcomes.TokenExpired):
        version = state.tokens.version(item.account.id, item.account.credentials_version)
        change = AccountChange(
            item.account.id, needs_reconnect=outcome.reason, credentials_version=version
        )
        changes.append(change)
    return outcome


async def _guarded_publish(
    publisher: Publisher, request: PublishRequest, runtime: Runtime
) -> outcomes.Outcome:
    try:
        return await publisher.publish(request, runtime.publish)
    except Exception as exc:  # a bug in a publisher must not lose the delivery
        log.exception(
            "publisher crashed",
            extra={"delivery_id": request.delivery_id, "platform": publisher.platform},
        )
        # Only the type: an exception's text may carry a URL with a token (Telegram, Discord).
        return outcomes.Ambiguous(
            f"internal error in the {publisher.platform} publisher ({type(exc).__name__}); "
            "the worker log has the details",
            ours=True,
        )


def account_context(record: AccountRecord, runtime: Runtime) -> AccountContext:
    """Decrypt once per credentials version: an edit bumps the version, so it is never stale."""
    key = (record.id, record.credentials_version)
    credentials = runtime.credentials.get(key)
    if credentials is None:
        credentials = runtime.cipher.decrypt(record.credentials)
        runtime.credentials.set(key, credentials)
    return AccountContext(
        id=record.id,
        platform=record.platform,
        handle=record.handle,
        base_url=record.base_url,
        options=record.options,
        credentials=credentials,
        token_expires_at=record.token_expires_at,
    )
