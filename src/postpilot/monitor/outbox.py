"""Workspaces' webhooks, sent from the durable outbox (`store.webhooks`).

An event becomes one row per enabled subscription that wants it, written in the transaction of
the outcome it announces (`store.work.apply_decisions`, the reconciler); any process running
`OutboxSender.run` (the worker and the API) claims due rows, POSTs them signed through the
public-only HTTP client, and writes what came of it: sent only after a 2xx, retried with
backoff after a network error, timeout, 408, 429 or 5xx, failed after any other answer or when
the attempts run out. At least once: a process that dies mid-send leaves its rows to whoever
looks after their lease ends, and the receiver deduplicates on `X-Postpilot-Id`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

import httpx

from postpilot.core.events import Message
from postpilot.core.retry import RetryPolicy
from postpilot.crypto import CredentialCipher
from postpilot.monitor.webhooks import Answer, post_signed
from postpilot.store import webhooks as store
from postpilot.store.database import Database

log = logging.getLogger(__name__)

MAX_ERROR_CHARS = 500
PRUNE_EVERY = timedelta(hours=1)


def decide(answer: Answer, *, attempts: int, now: datetime, policy: RetryPolicy) -> store.Outcome:
    """What the row says after an attempt (`attempts` counts it). Pure."""
    if answer.accepted:
        return store.Outcome(store.OutboxStatus.SENT, now, answer.status, None, sent_at=now)
    error = answer.describe()[:MAX_ERROR_CHARS]
    if answer.retryable and policy.may_retry(attempts):
        later = now + policy.backoff(attempts)
        return store.Outcome(store.OutboxStatus.PENDING, later, answer.status, error)
    return store.Outcome(store.OutboxStatus.FAILED, now, answer.status, error)


def seal_secret(cipher: CredentialCipher, secret: str) -> str:
    """A signing secret as stored: encrypted like account credentials."""
    return cipher.encrypt({"secret": secret})


def open_secret(cipher: CredentialCipher, token: str) -> str:
    return str(cipher.decrypt(token)["secret"])


def claimer_id() -> str:
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class OutboxSender:
    """Writes events into the outbox and sends what is due from it."""

    def __init__(
        self,
        *,
        db: Database,
        http: httpx.AsyncClient,
        cipher: CredentialCipher,
        clock: Callable[[], datetime],
        policy: RetryPolicy,
        timeout_seconds: float,
        poll_seconds: float,
        batch_size: int,
        retention: timedelta = timedelta(days=30),
        concurrency: int = 8,
    ) -> None:
        self.db = db
        self.http = http  # the runtime's public-only client: a receiver is tenant input
        self.cipher = cipher
        self.clock = clock
        self.policy = policy
        self.timeout_seconds = timeout_seconds
        self.poll_seconds = poll_seconds
        self.batch_size = batch_size
        self.retention = retention
        self._last_prune: datetime | None = None
        self.claimer = claimer_id()
        # Long enough for one attempt and its write; a row held longer is taken over.
        self.lease = timedelta(seconds=timeout_seconds * 2 + 5)
        self._limit = asyncio.Semaphore(concurrency)
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Look for due rows now (this process just made one due)."""
        self._wake.set()

    async def record(self, messages: Sequence[Message]) -> int:
        """Write `messages` for every subscription that wants them, in one transaction; how
        many rows that made."""
        if not messages:
            return 0
        async with self.db.engine.begin() as conn:
            written = await store.record_events(conn, messages, now=self.clock())
        if written:
            self._wake.set()
        return written

    async def send_due(self) -> int:
        """Claim one batch of due rows and send them; how many were claimed."""
        async with self.db.engine.begin() as conn:
            claimed = await store.claim(
                conn,
                claimer=self.claimer,
                now=self.clock(),
                lease=self.lease,
                limit=self.batch_size,
            )
        if claimed:
            await asyncio.gather(*(self._send(row) for row in claimed))
        return len(claimed)

    async def drain(self) -> None:
        """Send batches until none is due (tests and shutdown)."""
        while await self.send_due():
            pass

    async def prune_if_due(self) -> int:
        """Remove the log older than `retention`, at most once per PRUNE_EVERY."""
        now = self.clock()
        if self._last_prune is not None and now - self._last_prune < PRUNE_EVERY:
            return 0
        self._last_prune = now
        async with self.db.engine.begin() as conn:
            removed = await store.prune(conn, before=now - self.retention)
        if removed:
            log.info("webhook log pruned", extra={"rows": removed})
        return removed

    async def run(self, stop: asyncio.Event) -> None:
        """Send what is due until `stop`: at once after this process wrote rows, else every
        `poll_seconds` (rows other processes wrote, retries coming due)."""
        while not stop.is_set():
            try:
                await self.prune_if_due()
                if await self.send_due() >= self.batch_size:
                    continue  # more may be due right now
            except Exception:
                log.exception("webhook outbox pass failed")
            self._wake.clear()
            waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._wake.wait())]
            try:
                await asyncio.wait(
                    waits, timeout=self.poll_seconds, return_when=asyncio.FIRST_COMPLETED
                )
            finally:
                for waiting in waits:
                    waiting.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await waiting

    async def _send(self, row: store.Claimed) -> None:
        async with self._limit:
            try:
                answer = await post_signed(
                    self.http,
                    row.url,
                    secret=open_secret(self.cipher, row.secret),
                    message=Message(row.event, row.event_id, row.payload),
                    timestamp=int(self.clock().timestamp()),
                    timeout_seconds=self.timeout_seconds,
                )
            except Exception as exc:  # a bug or an unreadable secret: the row must not stick
                log.exception("webhook attempt failed", extra={"webhook_delivery_id": row.id})
                answer = Answer(None, f"{type(exc).__name__}")
            outcome = decide(answer, attempts=row.attempts, now=self.clock(), policy=self.policy)
            async with self.db.engine.begin() as conn:
                written = await store.settle(conn, row.id, claimer=self.claimer, outcome=outcome)
            if not written:
                log.info("webhook delivery taken over", extra={"webhook_delivery_id": row.id})
            elif outcome.status is not store.OutboxStatus.SENT:
                log.warning(
                    "webhook attempt not accepted",
                    extra={
                        "webhook_delivery_id": row.id,
                        "subscription_id": row.subscription_id,
                        "event": row.event,
                        "attempts": row.attempts,
                        "status": outcome.status.value,
                        "error": outcome.last_error,
                    },
                )
