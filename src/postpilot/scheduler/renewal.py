"""One token renewal per account across every pass, worker and process.

Platforms that rotate refresh tokens accept each one once, so two workers renewing the same
account would leave one of them with a dead refresh token. Renewal is serialised per account:
inside a pass by a lock, across passes by the stored `credentials_version`. On PostgreSQL the
account row is locked (`FOR NO KEY UPDATE`) while the platform is asked, so a second worker waits
and then finds the new version; everywhere the new credentials are written only if the version
they were renewed from is still the stored one (compare and swap). A worker that finds newer
credentials than the ones it holds uses them instead of renewing again. The renewal is written
at once, in its own transaction: the rotated refresh token must outlive the pass."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection

from postpilot.core import outcomes
from postpilot.core.states import AccountStatus
from postpilot.crypto import CredentialsError
from postpilot.publishers.base import AccountContext, Publisher, Refreshed
from postpilot.publishers.flow import RefreshUnavailable
from postpilot.scheduler import tokens
from postpilot.scheduler.runtime import Runtime
from postpilot.store import work

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Held:
    """Decrypted credentials and the version they were stored under."""

    account: AccountContext
    version: int


class Renewals:
    """What one pass knows about its accounts' tokens: the freshest credentials it has seen,
    renewals that failed (asked once per credentials version), and renewals it could not store
    (written later with the pass's outcomes)."""

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime
        self._locks: dict[str, asyncio.Lock] = {}
        self._fresh: dict[str, Held] = {}
        self._failed: dict[tuple[str, int], outcomes.Outcome] = {}
        self.unsaved: dict[str, work.AccountChange] = {}

    def current(self, held: Held) -> Held:
        """`held`, or newer credentials for its account that this pass already has."""
        known = self._fresh.get(held.account.id)
        return known if known is not None and known.version > held.version else held

    def version(self, account_id: str, default: int) -> int:
        """The newest credentials version this pass has seen for the account."""
        known = self._fresh.get(account_id)
        return max(default, known.version) if known is not None else default

    async def before_expiry(self, publisher: Publisher, held: Held) -> Held | outcomes.Outcome:
        """Renewed (or newer stored) credentials for a token about to expire, or the outcome a
        failed renewal means. A platform that cannot be reached while the token still works
        leaves it in use."""
        result = await self._renew(publisher, held, rejected=False)
        if result is None:
            return held
        expires = held.account.token_expires_at
        if isinstance(result, outcomes.Transient) and expires and expires > self._runtime.now():
            return held
        return result

    async def after_rejection(
        self, publisher: Publisher, held: Held
    ) -> Held | outcomes.Outcome | None:
        """After the platform rejected `held`: credentials to retry with (newer ones another
        worker or delivery stored, or renewed now), the outcome a failed renewal means, or None
        when there is nothing newer and the platform cannot renew: the rejection stands."""
        return await self._renew(publisher, held, rejected=True)

    async def _renew(
        self, publisher: Publisher, held: Held, *, rejected: bool
    ) -> Held | outcomes.Outcome | None:
        account_id = held.account.id
        async with self._locks.setdefault(account_id, asyncio.Lock()):
            known = self.current(held)
            if known is not held and (rejected or not tokens.due(known.account, self._now())):
                return known
            if failed := self._failed.get((account_id, known.version)):
                return failed
            # Shielded: a delivery stopped mid-renewal (its timeout) must not lose the rotated
            # refresh token between the platform's answer and the write.
            renewal = asyncio.ensure_future(self._renew_stored(publisher, known, rejected=rejected))
            try:
                return await asyncio.shield(renewal)
            except (SQLAlchemyError, OSError) as exc:
                if account_id in self.unsaved:
                    return self._fresh[account_id]  # renewed; stored with the outcomes
                log.warning(
                    "token renewal could not read the account",
                    extra={"account_id": account_id, "error": type(exc).__name__},
                )
                return outcomes.Transient(
                    "the database could not be reached to renew the account's token; "
                    "it will be tried again"
                )

    async def _renew_stored(
        self, publisher: Publisher, held: Held, *, rejected: bool
    ) -> Held | outcomes.Outcome | None:
        db = self._runtime.db
        if db.is_sqlite:  # one writer: no row lock, the compare and swap decides
            async with db.engine.begin() as conn:
                stored = await work.read_credentials(conn, held.account.id)
            result = await self._renew_from(publisher, held, stored, rejected=rejected, conn=None)
        else:
            async with db.engine.begin() as conn:
                # Only a renewal needs the row held; a token that cannot be renewed is just re-read.
                lock = publisher.can_refresh
                stored = await work.read_credentials(conn, held.account.id, lock=lock)
                result = await self._renew_from(
                    publisher, held, stored, rejected=rejected, conn=conn
                )
        self.unsaved.pop(held.account.id, None)  # committed
        return result

    async def _renew_from(
        self,
        publisher: Publisher,
        held: Held,
        stored: work.StoredCredentials | None,
        *,
        rejected: bool,
        conn: AsyncConnection | None,
    ) -> Held | outcomes.Outcome | None:
        if stored is None:
            return outcomes.Permanent(f"the {held.account.platform} account was deleted")
        if stored.credentials_version > held.version:
            newer = self._adopt(held, stored)
            if isinstance(newer, outcomes.Outcome):
                return newer
            if rejected or not tokens.due(newer.account, self._now()):
                return newer
            held = newer
        if stored.status != AccountStatus.ACTIVE:  # another worker's renewal was refused
            return outcomes.TokenExpired(
                stored.status_reason or f"the {held.account.platform} account needs reconnecting"
            )
        if not publisher.can_refresh:
            return None
        result = await publisher.refresh(held.account, self._runtime.publish)
        if isinstance(result, Refreshed):
            return await self._store(held, result, conn)
        if conn is None:  # without a row lock another process may have renewed meanwhile
            async with self._runtime.db.engine.begin() as own:
                again = await work.read_credentials(own, held.account.id)
            if again is not None and again.credentials_version > held.version:
                return self._adopt(held, again)
        failed: outcomes.Outcome
        if isinstance(result, RefreshUnavailable):
            failed = outcomes.Transient(result.reason, result.retry_after_seconds)
        else:
            failed = outcomes.TokenExpired(
                f"{held.account.platform} token refresh failed: {result.reason}"
            )
        self._failed[(held.account.id, held.version)] = failed
        return failed

    async def _store(self, held: Held, result: Refreshed, conn: AsyncConnection | None) -> Held:
        now = self._now()
        credentials = tokens.stamped(result.credentials, now)
        renewed = Held(
            account=replace(
                held.account, credentials=credentials, token_expires_at=result.expires_at
            ),
            version=held.version + 1,
        )
        encrypted = self._runtime.cipher.encrypt(credentials)
        # Kept before writing: if the write fails, the pass still uses the renewed token and
        # writes it with its outcomes (the refresh token it replaced is already spent).
        self._fresh[held.account.id] = renewed
        self.unsaved[held.account.id] = work.AccountChange(
            account_id=held.account.id,
            credentials=encrypted,
            token_expires_at=result.expires_at,
            credentials_version=held.version,
        )
        if conn is not None:  # the row is locked: committed when the lock is let go
            swapped = await self._swap(conn, held, encrypted, result, now)
        else:
            async with self._runtime.db.engine.begin() as own:
                swapped = await self._swap(own, held, encrypted, result, now)
        if not swapped:
            del self.unsaved[held.account.id]
            # Someone stored other credentials since we read them (a person's edit, or another
            # process renewing at the same moment): theirs win, never overwritten.
            self._fresh.pop(held.account.id, None)
            async with self._runtime.db.engine.begin() as own:
                stored = await work.read_credentials(own, held.account.id)
            if stored is None:
                return held
            newer = self._adopt(held, stored)
            return newer if isinstance(newer, Held) else held
        self._runtime.credentials.set((held.account.id, renewed.version), credentials)
        log.info(
            "token renewed",
            extra={"account_id": held.account.id, "credentials_version": renewed.version},
        )
        return renewed

    @staticmethod
    async def _swap(
        conn: AsyncConnection, held: Held, encrypted: str, result: Refreshed, now: datetime
    ) -> bool:
        return await work.swap_credentials(
            conn,
            held.account.id,
            expected_version=held.version,
            credentials=encrypted,
            token_expires_at=result.expires_at,
            now=now,
        )

    def _adopt(self, held: Held, stored: work.StoredCredentials) -> Held | outcomes.Outcome:
        """The stored credentials, decrypted, remembered as this pass's freshest."""
        key = (held.account.id, stored.credentials_version)
        credentials = self._runtime.credentials.get(key)
        if credentials is None:
            try:
                credentials = self._runtime.cipher.decrypt(stored.credentials)
            except CredentialsError as exc:
                return outcomes.Permanent(str(exc))
            self._runtime.credentials.set(key, credentials)
        newer = Held(
            account=replace(
                held.account, credentials=credentials, token_expires_at=stored.token_expires_at
            ),
            version=stored.credentials_version,
        )
        if newer.version > self.current(held).version:
            self._fresh[held.account.id] = newer
        return newer

    def _now(self) -> datetime:
        return self._runtime.now()
