"""Turn one claimed delivery into a decision: publish it (refreshing the token when needed) and
ask the core what follows. Both schedulers call this; they differ only in how they batch."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field, replace
from datetime import timedelta

from postpilot import logs
from postpilot.core import outcomes
from postpilot.core.states import AccountStatus
from postpilot.core.transitions import (
    Recovery,
    Transition,
    apply_outcome,
    recover_expired_lease,
)
from postpilot.crypto import CredentialsError
from postpilot.publishers.base import AccountContext, Publisher, PublishRequest, Refreshed
from postpilot.publishers.flow import RefreshUnavailable
from postpilot.publishers.registry import PUBLISHERS
from postpilot.scheduler import lookups
from postpilot.scheduler.runtime import Runtime
from postpilot.store.work import AccountChange, AccountRecord, Decision, WorkItem

log = logging.getLogger(__name__)

REFRESH_MARGIN = timedelta(minutes=5)


@dataclass
class Processed:
    decision: Decision
    outcome: str  # outcome kind, or "recovered" when no attempt was made
    duration_ms: float
    account_changes: list[AccountChange] = field(default_factory=list)


class PassState:
    """What a pass shares between its deliveries. Its in-flight journal (begun lazily, before the
    first send to a platform that cannot deduplicate). One token refresh per
    account per pass, however many of its deliveries ask at once (platforms that rotate refresh
    tokens would reject the second); and once a platform rejected an account's token, its other
    deliveries in the pass fail the same way without asking the platform again, exactly as the
    reference scheduler decides after reading the account's stored state."""

    def __init__(self, runtime: Runtime, pass_id: str) -> None:
        self._runtime = runtime
        self.pass_id = pass_id
        self.journal_begun = False
        self._journal_lock = asyncio.Lock()
        self._locks: dict[str, asyncio.Lock] = {}
        self._results: dict[str, AccountContext | outcomes.Outcome] = {}
        self.rejected: dict[str, str] = {}  # account id -> why its token is dead

    async def before_send(self, delivery_id: str) -> None:
        """Record durably that this delivery may reach a platform without idempotency."""
        journal = self._runtime.journal
        async with self._journal_lock:
            if not self.journal_begun:
                await journal.begin(self.pass_id)
                self.journal_begun = True
        await journal.mark(self.pass_id, delivery_id)

    async def refresh(
        self, publisher: Publisher, account: AccountContext, record: AccountRecord
    ) -> tuple[AccountContext | outcomes.Outcome, AccountChange | None]:
        """The refreshed account, or the outcome a failed refresh means for its deliveries:
        `TokenExpired` when the platform refused (reconnect needed), `Transient` when it could
        not be reached (the token may be fine: try later, keep the account active)."""
        lock = self._locks.setdefault(account.id, asyncio.Lock())
        async with lock:
            if account.id in self._results:
                return self._results[account.id], None
            result = await publisher.refresh(account, self._runtime.publish)
            if isinstance(result, Refreshed):
                fresh = AccountContext(
                    id=account.id,
                    platform=account.platform,
                    handle=account.handle,
                    base_url=account.base_url,
                    options=account.options,
                    credentials=result.credentials,
                    token_expires_at=result.expires_at,
                )
                self._runtime.credentials.set(
                    (account.id, record.credentials_version + 1), result.credentials
                )
                change = AccountChange(
                    account_id=account.id,
                    credentials=self._runtime.cipher.encrypt(result.credentials),
                    token_expires_at=result.expires_at,
                )
                self._results[account.id] = fresh
                return fresh, change
            if isinstance(result, RefreshUnavailable):
                retry = outcomes.Transient(result.reason, result.retry_after_seconds)
                self._results[account.id] = retry
                return retry, None
            reason = f"{account.platform} token refresh failed: {result.reason}"
            self._results[account.id] = outcomes.TokenExpired(reason)
            return outcomes.TokenExpired(reason), None


async def process(item: WorkItem, runtime: Runtime, state: PassState) -> Processed:
    with logs.context(delivery_id=item.delivery.id):
        return await _process(item, runtime, state)


async def _process(item: WorkItem, runtime: Runtime, state: PassState) -> Processed:
    started = time.perf_counter()
    changes: list[AccountChange] = []
    publisher = PUBLISHERS.get(item.delivery.platform)
    recovery = publisher.recovery if publisher else Recovery.NONE
    snapshot = item.delivery.snapshot
    if item.delivery.recovered and recovery is Recovery.NONE:
        sent = await runtime.journal.may_have_sent(item.delivery.previous_claimer, item.delivery.id)
        if held := recover_expired_lease(snapshot, recovery=recovery, may_have_sent=sent):
            if lookups.readable(item.delivery.platform):
                # A post found there needs no person. Journaled as sending first: a look that
                # is stopped leaves the delivery in doubt instead of letting it be sent again.
                await state.before_send(item.delivery.id)
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
    return _processed(item, transition, outcomes.outcome_kind(outcome), started, changes)


def _processed(
    item: WorkItem,
    transition: Transition,
    kind: str,
    started: float,
    changes: list[AccountChange],
) -> Processed:
    return Processed(
        decision=Decision(delivery=item.delivery, transition=transition),
        outcome=kind,
        duration_ms=(time.perf_counter() - started) * 1000,
        account_changes=changes,
    )


async def _attempt(
    item: WorkItem,
    publisher: Publisher | None,
    runtime: Runtime,
    state: PassState,
    changes: list[AccountChange],
) -> outcomes.Outcome:
    if publisher is None:
        return outcomes.Permanent(f"no publisher for platform {item.delivery.platform!r}")
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
    try:
        account = account_context(item.account, runtime)
    except CredentialsError as exc:
        return outcomes.Permanent(str(exc))
    refreshed = False
    expires = account.token_expires_at
    if publisher.can_refresh and expires and expires - runtime.now() < REFRESH_MARGIN:
        result, change = await state.refresh(publisher, account, item.account)
        changes.extend([change] if change else [])
        if not isinstance(result, AccountContext):
            return result
        account, refreshed = result, True
    request = PublishRequest(
        delivery_id=item.delivery.id,
        idempotency_key=item.delivery.idempotency_key,
        text=item.post.overrides.get(item.delivery.platform, item.post.text),
        media_urls=item.post.media_urls,
        account=account,
        scheduled_at=item.delivery.scheduled_at,
        attempt=item.delivery.attempts + 1,
        recovered=item.delivery.recovered,
    )
    if publisher.recovery is Recovery.NONE:
        await state.before_send(item.delivery.id)
    outcome = await _guarded_publish(publisher, request, runtime)
    if isinstance(outcome, outcomes.TokenExpired) and publisher.can_refresh and not refreshed:
        result, change = await state.refresh(publisher, account, item.account)
        changes.extend([change] if change else [])
        if not isinstance(result, AccountContext):
            return result
        return await _guarded_publish(publisher, replace(request, account=result), runtime)
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
            "the worker log has the details"
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
