"""Ask a platform whether a delivery that may have been sent is there, within a time bound.

Used twice: when a pass takes over a delivery its dead holder may have sent (`on_recovery`: a
post found there is published at once; anything else becomes `unknown`), and by the
periodic reconciliation of stored `unknown` deliveries (`reconcile`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import timedelta

from postpilot.core import readback, variants
from postpilot.core.transitions import Transition, reconcile
from postpilot.crypto import CredentialsError
from postpilot.publishers.base import AccountContext, Lookup, PublishRequest, finder
from postpilot.publishers.registry import PUBLISHERS
from postpilot.scheduler import parts
from postpilot.scheduler.runtime import Runtime
from postpilot.store import unknown
from postpilot.store.work import AccountRecord, WorkItem

log = logging.getLogger(__name__)

# A platform's clock and ours may disagree by this much: the window opens this long before the
# delivery was scheduled.
CLOCK_SKEW = timedelta(minutes=5)
# A whole read-back (every page) may take this many HTTP timeouts before we stop waiting.
TIMEOUTS_PER_LOOK = 3

AccountOf = Callable[[AccountRecord, Runtime], AccountContext]


def readable(platform: str) -> bool:
    """The platform's publisher can read back what an account posted."""
    return finder(PUBLISHERS.get(platform)) is not None


def lookup_for(item: WorkItem, account: AccountContext, taken: frozenset[str]) -> Lookup:
    """Look for exactly what a publish of this delivery would have sent."""
    delivery = item.delivery
    request = PublishRequest(
        delivery_id=delivery.id,
        idempotency_key=delivery.idempotency_key,
        text=variants.text_for(
            text=item.post.text,
            overrides=item.post.overrides,
            account_overrides=item.post.account_overrides,
            platform=delivery.platform,
            account_id=item.account.id,
        ),
        media_urls=variants.media_for(
            media_urls=item.post.media_urls,
            account_overrides=item.post.account_overrides,
            account_id=item.account.id,
        ),
        account=account,
        scheduled_at=delivery.scheduled_at,
        attempt=delivery.attempts,
        recovered=True,
    )
    return Lookup(request=request, since=delivery.scheduled_at - CLOCK_SKEW, taken=taken)


async def taken_ids(runtime: Runtime, item: WorkItem) -> frozenset[str]:
    """Platform ids the account's other deliveries hold: never this delivery's post."""
    since = item.delivery.scheduled_at - CLOCK_SKEW
    async with runtime.db.engine.connect() as conn:
        return await unknown.platform_ids_held(
            conn, account_id=item.account.id, other_than=item.delivery.id, since=since
        )


async def look(item: WorkItem, runtime: Runtime, account_of: AccountOf) -> readback.ReadBack:
    """What the platform shows for this delivery; never raises, never waits unbounded."""
    publisher = finder(PUBLISHERS.get(item.delivery.platform))
    if publisher is None:
        return readback.CannotTell(
            f"{item.delivery.platform} does not let us read back what an account posted"
        )
    if parts.has_parts(item):
        # Finding the post says nothing of its replies or comment: a person settles it.
        return readback.CannotTell("a thread or first comment is not read back, only its post")
    try:
        account = account_of(item.account, runtime)
    except CredentialsError as exc:
        return readback.CannotTell(str(exc))
    bound = runtime.settings.HTTP_TIMEOUT_SECONDS * TIMEOUTS_PER_LOOK
    try:
        async with asyncio.timeout(bound):
            lookup = lookup_for(item, account, await taken_ids(runtime, item))
            return await publisher.find_published(lookup, runtime.publish)
    except TimeoutError:
        return readback.CannotTell(f"reading {item.delivery.platform} back took over {bound} s")
    except Exception as exc:  # a bug or a database fault must not lose the delivery
        log.exception("read-back failed", extra={"delivery_id": item.delivery.id})
        return readback.CannotTell(f"internal error reading back ({type(exc).__name__})")


async def on_recovery(item: WorkItem, runtime: Runtime, account_of: AccountOf) -> Transition | None:
    """A taken-over delivery its dead holder may have sent: `published` when the platform shows
    it. Otherwise None (it becomes `unknown`): its send may still land, so "not found" is only
    acted on later, by `reconcile`, once it has settled."""
    if not readable(item.delivery.platform):
        return None
    answer = await look(item, runtime, account_of)
    log.info(
        "read back a recovered delivery",
        extra={"delivery_id": item.delivery.id, "answer": type(answer).__name__},
    )
    return reconcile(item.delivery.snapshot, answer, runtime.now(), settled=False)
