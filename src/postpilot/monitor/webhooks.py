"""Signed webhooks, sent in the background so a pass never waits for (or breaks on) a receiver.

Each request is a JSON POST with these headers:

    X-Postpilot-Event: alert.firing | alert.resolved | delivery.published | ...
    X-Postpilot-Id: a stable id for the message (the same on every retry: deduplicate on it)
    X-Postpilot-Timestamp: unix seconds when this attempt was signed
    X-Postpilot-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<raw body>" under the secret>

A receiver recomputes the HMAC over the raw body (`verify()` does it, with a replay window).
Network errors, timeouts, 408, 429 and 5xx are retried with exponential backoff (tenacity), up
to WEBHOOK_MAX_ATTEMPTS; any other answer ends the message. The queue is in memory and bounded:
when it is full new messages are dropped and counted, and what is still queued at shutdown is
sent for a few seconds, then given up (logged). `WebhookSender` serves the operator's
ALERT_WEBHOOK_URL and EVENTS_WEBHOOK_URL; workspaces' subscriptions are sent from the durable
outbox (`monitor.outbox`) with the same headers, signature and retry rule (`post_signed`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx
from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from postpilot.core.events import Message
from postpilot.errors import PostpilotError

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Postpilot-Signature"
TIMESTAMP_HEADER = "X-Postpilot-Timestamp"
EVENT_HEADER = "X-Postpilot-Event"
ID_HEADER = "X-Postpilot-Id"
REPLAY_TOLERANCE_SECONDS = 300


def sign(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"sha256={digest.hexdigest()}"


def signed_headers(secret: str, message: Message, body: bytes, timestamp: int) -> dict[str, str]:
    """The headers of one attempt at sending `message` (signed afresh each time)."""
    return {
        "Content-Type": "application/json",
        EVENT_HEADER: message.kind,
        ID_HEADER: message.id,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: sign(secret, timestamp, body),
    }


@dataclass(frozen=True, slots=True)
class Answer:
    """What one attempt got: the receiver's status, or the network error instead."""

    status: int | None
    error: str | None = None

    @property
    def accepted(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def retryable(self) -> bool:
        """Network errors, timeouts, 408, 429 and 5xx may succeed later; other answers not."""
        status = self.status
        return status is None or status in (408, 429) or status >= 500

    def describe(self) -> str:
        return self.error or f"HTTP {self.status}"


async def post_signed(
    http: httpx.AsyncClient,
    url: str,
    *,
    secret: str,
    message: Message,
    timestamp: int,
    timeout_seconds: float | None = None,
) -> Answer:
    """POST `message` to `url`, signed; never raises for what the receiver or network did."""
    body = message.body()
    headers = signed_headers(secret, message, body, timestamp)
    timeout = httpx.USE_CLIENT_DEFAULT if timeout_seconds is None else timeout_seconds
    try:
        response = await http.post(url, content=body, headers=headers, timeout=timeout)
    except httpx.HTTPError as exc:
        return Answer(None, f"{type(exc).__name__}: {exc}")
    return Answer(response.status_code)


def verify(
    secret: str,
    *,
    body: bytes,
    timestamp: str,
    signature: str,
    now: float | None = None,
    tolerance_seconds: float = REPLAY_TOLERANCE_SECONDS,
) -> bool:
    """What a receiver does: the signature matches and the timestamp is recent."""
    try:
        moment = int(timestamp)
    except ValueError:
        return False
    current = time.time() if now is None else now
    if abs(current - moment) > tolerance_seconds:
        return False
    return hmac.compare_digest(sign(secret, moment, body), signature)


class Retryable(PostpilotError):
    """The receiver may accept the message later."""


@dataclass
class SenderStats:
    sent: int = 0
    failed: int = 0  # gave up after retries, or refused
    dropped: int = 0  # the queue was full
    attempts: int = 0


class WebhookSender:
    """A bounded queue and a few background tasks that POST signed messages to one URL."""

    def __init__(
        self,
        name: str,
        *,
        url: str,
        secret: str,
        max_attempts: int = 5,
        timeout_seconds: float = 10.0,
        queue_size: int = 10_000,
        concurrency: int = 2,
        backoff_seconds: float = 0.5,
        max_backoff_seconds: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.name = name
        self.url = url
        self._secret = secret
        self.max_attempts = max_attempts
        self._backoff = backoff_seconds
        self._max_backoff = max_backoff_seconds
        self._http = httpx.AsyncClient(
            timeout=timeout_seconds,
            transport=transport,
            headers={"User-Agent": "postpilot-webhooks/0.1"},
        )
        self._queue: asyncio.Queue[Message] = asyncio.Queue(maxsize=queue_size)
        self._concurrency = concurrency
        self._tasks: list[asyncio.Task[None]] = []
        self._clock = clock
        self.stats = SenderStats()

    def enqueue(self, message: Message) -> bool:
        """Queue a message without waiting; False when the queue is full (it is dropped)."""
        try:
            self._queue.put_nowait(message)
        except asyncio.QueueFull:
            self.stats.dropped += 1
            log.warning(
                "webhook queue full: message dropped",
                extra={"webhook": self.name, "event": message.kind, "message_id": message.id},
            )
            return False
        self._start()
        return True

    async def send(self, message: Message) -> bool:
        """Deliver one message now, with retries. True when the receiver accepted it."""
        try:
            async for attempt in AsyncRetrying(
                stop=stop_after_attempt(self.max_attempts),
                wait=wait_exponential(multiplier=self._backoff, max=self._max_backoff),
                retry=retry_if_exception_type(Retryable),
                reraise=True,
            ):
                with attempt:
                    await self._post(message)
        except Exception as exc:
            self.stats.failed += 1
            log.warning(
                "webhook not delivered",
                extra={
                    "webhook": self.name,
                    "event": message.kind,
                    "message_id": message.id,
                    "error": str(exc),
                },
            )
            return False
        self.stats.sent += 1
        return True

    async def _post(self, message: Message) -> None:
        self.stats.attempts += 1
        answer = await post_signed(
            self._http, self.url, secret=self._secret, message=message, timestamp=int(self._clock())
        )
        if answer.accepted:
            return
        if answer.retryable:
            raise Retryable(answer.describe())
        raise RuntimeError(f"refused with HTTP {answer.status}")

    def _start(self) -> None:
        self._tasks = [task for task in self._tasks if not task.done()]
        while len(self._tasks) < self._concurrency:
            name = f"webhook-{self.name}-{len(self._tasks)}"
            self._tasks.append(asyncio.create_task(self._work(), name=name))

    async def _work(self) -> None:
        while True:
            message = await self._queue.get()
            try:
                await self.send(message)
            except Exception:  # never let one message stop the sender
                log.exception("webhook sender failed", extra={"webhook": self.name})
            finally:
                self._queue.task_done()

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    async def drain(self, timeout_seconds: float = 5.0) -> bool:
        """Wait until every queued message is handled; False on timeout."""
        if not self._tasks:
            return self._queue.empty()
        try:
            await asyncio.wait_for(self._queue.join(), timeout_seconds)
        except TimeoutError:
            return False
        return True

    async def close(self, timeout_seconds: float = 5.0) -> None:
        if not await self.drain(timeout_seconds):
            log.warning(
                "webhook messages abandoned at shutdown",
                extra={"webhook": self.name, "pending": self.pending},
            )
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        await self._http.aclose()
